"""Static files with cache lifetimes that follow their URL's version (portal.assets)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

from anyio import to_thread
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from portal.assets import content_hash

# A versioned URL never changes content: a year, and no revalidation on reload.
IMMUTABLE = "public, max-age=31536000, immutable"
# An unversioned (or outdated) URL: keep it, but ask again (ETag) before each use.
REVALIDATE = "public, no-cache"


class VersionedStaticFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code not in (200, 304):
            return response
        asked = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("v", [""])[0]
        current = await to_thread.run_sync(self._current_hash, path)
        headers = MutableHeaders(raw=response.raw_headers)
        headers["Cache-Control"] = IMMUTABLE if asked and asked == current else REVALIDATE
        return response

    def _current_hash(self, path: str) -> str:
        full_path, _stat = self.lookup_path(path)
        return content_hash(Path(full_path)) if full_path else ""
