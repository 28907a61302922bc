"""The worker's share of imports: apply confirmed imports that no web process took (the
web app starts them itself after the response; a restart in between leaves them queued),
and remove original files past the retention period, once a day."""

from __future__ import annotations

import datetime as dt
import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from portal import clock
from portal.db import transaction
from portal.imports import service
from portal.settings import Settings

log = logging.getLogger(__name__)


def run_once(
    factory: sessionmaker[Session], settings: Settings, last_purge: dt.date | None = None
) -> dt.date:
    """Apply what is queued; purge if not done today. Returns the day of the last purge."""
    with factory() as db:
        waiting = service.queued(db)
    for import_id in waiting:
        service.apply_import(factory, settings, import_id)
    today = clock.now().date()
    if last_purge != today:
        with transaction(factory) as db:
            removed = service.purge(db, settings)
        if removed:
            log.info("removed %d imported files past their retention period", removed)
    return today


def run_imports_worker(
    factory: sessionmaker[Session], settings: Settings, stop: threading.Event
) -> None:
    last_purge: dt.date | None = None
    while not stop.is_set():
        try:
            last_purge = run_once(factory, settings, last_purge)
        except Exception:  # a database hiccup must not end the worker; try again later
            log.exception("imports round failed")
        stop.wait(settings.reminders.poll_seconds)


def start_thread(
    factory: sessionmaker[Session], settings: Settings, stop: threading.Event
) -> threading.Thread:
    thread = threading.Thread(
        target=run_imports_worker, args=(factory, settings, stop), name="imports", daemon=True
    )
    thread.start()
    return thread
