"""The widget: /embed.js for the company's website, the framed entry page, and the
hand-over when the browser kept no cookie in the frame (see portal/embed/handoff.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from portal import i18n
from portal.access.service import digest
from portal.embed import handoff as handoffs
from portal.embed.handoff import HandoffSigner
from portal.settings import PROJECT_ROOT, Settings
from portal.web.context import (
    choose_language,
    current_access,
    embed_host,
    set_session_cookie,
    set_unpartitioned_frame_cookie,
    use_language,
)
from portal.web.rendering import client_ip, read_unit_of_work, render, unit_of_work

EMBED_JS = PROJECT_ROOT / "static" / "embed.js"


async def embed_js(request: Request) -> Response:
    # Loaded by the company's pages: another site may use it (CORP), caches may keep it.
    return FileResponse(
        EMBED_JS,
        media_type="text/javascript; charset=utf-8",
        headers={
            "Cache-Control": "public, max-age=3600",
            "Cross-Origin-Resource-Policy": "cross-origin",
        },
    )


def _frame_language(request: Request) -> None:
    settings: Settings = request.app.state.settings
    asked = i18n.normalise(request.query_params.get("lang"), settings.languages)
    chosen = request.cookies.get("relance_lang")
    use_language(asked if asked and not chosen else choose_language(request))


def embed_entry(request: Request) -> Response:
    """/embed?host=<the company's site>: the widget's first page (the welcome page, with
    "Pay an invoice"), or the portal when this frame already holds a session."""
    host = embed_host(request, request.query_params.get("host"))
    _frame_language(request)
    if host is None:
        return render(request, "embed/not_allowed.html", {"access": None}, status_code=403)
    with read_unit_of_work(request) as db:
        access = current_access(request, db)
    if access is not None and access.embed_origin == host:
        return RedirectResponse("/", status_code=303)
    return render(request, "portal/welcome.html", {"access": None, "embed_host": host})


def embedded_redirect(request: Request, session_id: str, host: str, secret: str) -> Response:
    """A session just started in the frame: set the partitioned cookie and check it came back."""
    signer: HandoffSigner = request.app.state.handoff
    token = signer.issue(session_id, host)
    response = RedirectResponse(f"/embed/check?h={token}", status_code=303)
    set_session_cookie(response, request.app.state.settings, secret, embedded=True)
    return response


def _expired(request: Request) -> Response:
    use_language(choose_language(request))
    return render(request, "embed/expired.html", {"access": None}, status_code=410)


def embed_check(request: Request) -> Response:
    """Did the cookie come back? Then the portal; otherwise say so and offer a way on."""
    signer: HandoffSigner = request.app.state.handoff
    token = request.query_params.get("h", "")
    handoff = signer.read(token)
    if handoff is None:
        return _expired(request)
    with read_unit_of_work(request) as db:
        access = current_access(request, db)
    if access is not None and access.session_id == handoff.session_id:
        return RedirectResponse("/", status_code=303)
    use_language(choose_language(request))
    return render(
        request,
        "embed/no_cookie.html",
        {
            "access": None,
            "embed_host": handoff.host,
            "frame_url": f"/embed/resume?h={token}&to=frame",
            "tab_url": f"/embed/resume?h={token}&to=tab",
            "after_storage_access": request.query_params.get("again") == "1",
        },
    )


def embed_resume(request: Request) -> Response:
    """Follow a hand-over token, once: in a new tab (a top-level session with its plain
    cookie), or back in the frame after the Storage Access API granted its cookies."""
    signer: HandoffSigner = request.app.state.handoff
    handoff = signer.read(request.query_params.get("h", ""))
    to_tab = request.query_params.get("to") != "frame"
    if handoff is None:
        return _expired(request)
    with unit_of_work(request) as db:
        secret = handoffs.resume(
            db,
            handoff,
            top_level=to_tab,
            client_ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
        )
    if secret is None:
        return _expired(request)
    settings: Settings = request.app.state.settings
    if to_tab:
        response = RedirectResponse("/", status_code=303)
        set_session_cookie(response, settings, secret)
        return response
    token = signer.issue(digest(secret), handoff.host)
    response = RedirectResponse(f"/embed/check?h={token}&again=1", status_code=303)
    set_session_cookie(response, settings, secret, embedded=True)
    set_unpartitioned_frame_cookie(response, settings, secret)
    return response


routes = [
    Route("/embed.js", embed_js, name="embed_js"),
    Route("/embed", embed_entry, name="embed"),
    Route("/embed/check", embed_check, name="embed_check"),
    Route("/embed/resume", embed_resume, name="embed_resume"),
]
