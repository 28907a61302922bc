"""Health check, brand stylesheet and logo."""

from __future__ import annotations

from pathlib import Path

from anyio import to_thread
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from portal.branding.service import Look
from portal.settings import PROJECT_ROOT, Settings

DEFAULT_LOGO = PROJECT_ROOT / "static" / "img" / "logo.svg"
FAVICON = PROJECT_ROOT / "static" / "favicon.ico"


async def healthz(request: Request) -> Response:
    def check() -> bool:
        try:
            # Autocommit: on SQLite a transaction would queue for the write lock.
            with request.app.state.read_session_factory() as db:
                db.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    # Its own thread: a health check never queues behind page views waiting on the database.
    healthy = await to_thread.run_sync(check, limiter=request.app.state.health_limiter)
    return JSONResponse(
        {
            "status": "ok" if healthy else "unavailable",
            "database": "ok" if healthy else "unreachable",
        },
        status_code=200 if healthy else 503,
        headers={"Cache-Control": "no-store"},
    )


async def brand_css(request: Request) -> Response:
    """The company's colours as CSS variables (no inline style under the CSP); the admins'
    choice (checked against WCAG AA when saved), else the configured ones."""
    look: Look = request.app.state.site.look
    css = f":root{{--brand:{look.primary_colour};--accent:{look.accent_colour};}}\n"
    return Response(css, media_type="text/css", headers={"Cache-Control": "public, max-age=300"})


# An uploaded SVG passed branding.logo's allow-list; opened on its own it still runs
# nothing and loads nothing.
LOGO_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


async def logo(request: Request) -> Response:
    look: Look = request.app.state.site.look
    if look.logo:
        headers = {"Cache-Control": "public, max-age=300", "Content-Security-Policy": LOGO_CSP}
        return Response(look.logo, media_type=look.logo_type, headers=headers)
    settings: Settings = request.app.state.settings
    configured = Path(settings.company.logo_path) if settings.company.logo_path else None
    path = configured if configured is not None and configured.is_file() else DEFAULT_LOGO
    return FileResponse(path, headers={"Cache-Control": "public, max-age=300"})


async def favicon(request: Request) -> Response:
    """Browsers and tools ask for /favicon.ico whatever the page links."""
    return FileResponse(FAVICON, headers={"Cache-Control": "public, max-age=86400"})


routes = [
    Route("/healthz", healthz, name="healthz"),
    Route("/brand.css", brand_css, name="brand_css"),
    Route("/logo", logo, name="logo"),
    Route("/favicon.ico", favicon, name="favicon"),
]
