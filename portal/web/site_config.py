"""What admins set in the back office and every request needs, cached per worker
process: the host sites allowed to frame the portal (``PORTAL_FRAME_ANCESTORS`` plus the
admins' list), whether "Pay an invoice" is switched on, and the company's look
(``branding.service.Look``: colours, logo, texts, email sender).

Every response's ``frame-ancestors`` comes from here, so it is never a database read on
the event loop: the values are re-read in a thread at most every ``REFRESH_SECONDS``
(requests meanwhile use the values they find), and at once in the worker where an admin
changed them. Other workers follow within ``REFRESH_SECONDS``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from anyio import to_thread
from sqlalchemy import select

from portal.branding.service import Look, default_look, load_look
from portal.company.models import Company
from portal.embed.origins import stored_origins
from portal.settings import Settings

log = logging.getLogger(__name__)

REFRESH_SECONDS = 10.0


def look_version(look: Look) -> str:
    """Changes with the colours and the logo: /brand.css and /logo are cached by URL."""
    digest = hashlib.sha256(f"{look.primary_colour}{look.accent_colour}".encode())
    digest.update(look.logo or b"")
    return digest.hexdigest()[:10]


class SiteConfig:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.defaults = tuple(settings.frame_ancestors)
        self.look: Look = default_look(settings)
        self.look_version = look_version(self.look)
        self._stored: tuple[str, ...] = ()
        self.lookup_enabled = True
        self._read_at = float("-inf")
        self._refreshing = False

    def ancestors(self) -> tuple[str, ...]:
        """The ``frame-ancestors`` sources: the configured ones, then the admins'."""
        return self.defaults + tuple(o for o in self._stored if o not in self.defaults)

    def allows_host(self, origin: str) -> bool:
        """Whether the framed page may talk to ``origin`` (a stored or configured origin;
        never a keyword such as ``'self'`` or a wildcard)."""
        return "://" in origin and "*" not in origin and origin in self.ancestors()

    def stale(self) -> bool:
        return time.monotonic() - self._read_at > REFRESH_SECONDS

    def invalidate(self) -> None:
        self._read_at = float("-inf")

    def load(self, db: Any, company_id: int) -> None:
        """Read the values now (inside a request's transaction, or at start-up)."""
        self._stored = tuple(stored_origins(db, company_id))
        enabled = db.scalar(select(Company.lookup_enabled).where(Company.id == company_id))
        self.lookup_enabled = bool(enabled) if enabled is not None else True
        self.look = load_look(db, company_id, self.settings)
        self.look_version = look_version(self.look)
        self._read_at = time.monotonic()

    async def refresh(self, state: Any) -> None:
        """Re-read when stale, in a thread; a request arriving meanwhile does not wait."""
        if self._refreshing or not self.stale():
            return
        factory = getattr(state, "read_session_factory", None)
        company_id = getattr(state, "company_id", None)
        if factory is None or company_id is None:
            return  # not started yet
        self._refreshing = True

        def read() -> None:
            with factory() as db:
                self.load(db, company_id)

        try:
            await to_thread.run_sync(read)
        except Exception:
            log.exception("could not read the allowed host sites; keeping the last ones")
            self._read_at = time.monotonic()
        finally:
            self._refreshing = False
