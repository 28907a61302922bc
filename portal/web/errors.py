"""Friendly, translated error pages; never a trace."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from portal.web.context import choose_language, use_language
from portal.web.rendering import render

log = logging.getLogger(__name__)


async def http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    use_language(choose_language(request))
    template = "errors/404.html" if status in (404, 405) else "errors/error.html"
    return render(request, template, {"access": None, "status": status}, status_code=status)


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    use_language(choose_language(request))
    return render(request, "errors/error.html", {"access": None, "status": 500}, status_code=500)
