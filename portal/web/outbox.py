"""The reminder outbox for operations: /admin/outbox (waiting, failed, the oldest waiting,
the last delivery, "Retry failed") and /healthz/outbox (503 once the queue has stopped
moving for PORTAL_REMINDER_STALL_SECONDS)."""

from __future__ import annotations

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from portal import clock
from portal.reminders.status import failed_messages, outbox_status, retry_failed
from portal.settings import Settings
from portal.web.backoffice import EDITORS, _context, _format_when, require_role
from portal.web.rendering import render, unit_of_work

OUTBOX_STATUS_PATH = "/admin/outbox"


def outbox_page(request: Request) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    with unit_of_work(request) as db:
        user = require_role(request, db)
        if isinstance(user, Response):
            return user
        now = clock.now()
        status = outbox_status(db, state.company_id, now)
        requeued = request.query_params.get("requeued")
        return render(
            request,
            "backoffice/outbox.html",
            _context(
                user,
                status=status,
                stalled=status.stalled(now, settings.reminders.stall_seconds),
                failed=failed_messages(db, state.company_id),
                requeued=int(requeued) if requeued and requeued.isdigit() else None,
                when=_format_when(settings.company.timezone),
            ),
        )


def retry_failed_messages(request: Request) -> Response:
    state = request.app.state
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        count = retry_failed(db, state.company_id, user.id, clock.now())
    return RedirectResponse(f"{OUTBOX_STATUS_PATH}?requeued={count}", status_code=303)


async def outbox_health(request: Request) -> Response:
    """For monitoring: the queue's figures, and 503 when due messages have waited the
    whole window while nothing was delivered (no worker, or a stuck one)."""
    state = request.app.state
    settings: Settings = state.settings

    def check() -> dict[str, object]:
        with state.read_session_factory() as db:
            now = clock.now()
            status = outbox_status(db, state.company_id, now)
        return {
            "status": "stalled" if status.stalled(now, settings.reminders.stall_seconds) else "ok",
            "waiting": status.waiting,
            "due": status.due,
            "failed": status.failed,
            "bounced": status.bounced,
            "oldest_due_at": status.oldest_due_at.isoformat() if status.oldest_due_at else None,
            "last_sent_at": status.last_sent_at.isoformat() if status.last_sent_at else None,
            "stall_seconds": settings.reminders.stall_seconds,
        }

    body = await to_thread.run_sync(check, limiter=state.health_limiter)
    return JSONResponse(
        body,
        status_code=503 if body["status"] == "stalled" else 200,
        headers={"Cache-Control": "no-store"},
    )


routes = [
    Route(OUTBOX_STATUS_PATH, outbox_page, name="admin_outbox"),
    Route(
        f"{OUTBOX_STATUS_PATH}/retry-failed",
        retry_failed_messages,
        methods=["POST"],
        name="admin_outbox_retry",
    ),
    Route("/healthz/outbox", outbox_health, name="healthz_outbox"),
]
