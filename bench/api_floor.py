"""The floor for bench/api.py: a bare Starlette endpoint returning one customer's invoices
as JSON from the same database (one SELECT, no key check, no validation, no ORM), in the
thread pool capped like the portal's. Served by uvicorn exactly as the app is.

    uvicorn --factory --app-dir bench api_floor:asgi
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

from anyio import to_thread
from sqlalchemy import Table, bindparam, select
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portal.db import make_engine
from portal.invoices.models import Invoice

_invoices: Table = Invoice.__table__  # type: ignore[assignment]
COLUMNS = (
    "id",
    "number",
    "customer_id",
    "issue_date",
    "due_date",
    "currency",
    "amount_minor",
    "paid_minor",
    "status",
    "reminders_paused_until",
    "created_at",
    "updated_at",
)


def asgi() -> Starlette:
    engine = make_engine(os.environ["PORTAL_DATABASE_URL"])
    query = (
        select(*(_invoices.c[name] for name in COLUMNS))
        .where(_invoices.c.customer_id == bindparam("customer"))
        .order_by(_invoices.c.id)
        .limit(200)
    )

    def rows(customer_id: int) -> bytes:
        with engine.connect() as connection:
            found = connection.execute(query, {"customer": customer_id}).mappings().all()
        data: list[dict[str, Any]] = []
        for row in found:
            item = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
            item["remaining_minor"] = max(row["amount_minor"] - row["paid_minor"], 0)
            data.append(item)
        return json.dumps({"data": data, "next_cursor": None}).encode()

    async def invoices(request: Request) -> Response:
        body = await run_in_threadpool(rows, int(request.query_params["customer_id"]))
        return Response(body, media_type="application/json")

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        threads = int(os.environ.get("PORTAL_REQUEST_THREADS", "4"))
        to_thread.current_default_thread_limiter().total_tokens = threads
        yield
        engine.dispose()

    return Starlette(
        routes=[Route("/invoices", invoices), Route("/healthz", healthz)], lifespan=lifespan
    )
