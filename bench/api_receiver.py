"""A webhook receiver for bench/api.py: answers 204 to every POST, counts nothing.

uvicorn --factory --app-dir bench api_receiver:asgi
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send


def asgi() -> object:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        status = 200 if scope["path"] == "/healthz" else 204
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app
