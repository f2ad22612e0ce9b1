"""A Content-Security-Policy on every HTML answer (issue 21 finding 14).

Pages that need more set their own policy (the console's pages: ``api/console/_render.py``; ``/docs``:
``api/_docs.py``) and keep it. Every other ``text/html`` answer — an error page, a redirect body, a page added
later without thinking of it — gets :data:`DEFAULT_CSP`, which lets it load nothing, run no script and be
framed by no one, plus ``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send


DEFAULT_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)


class HtmlHeadersMiddleware:
    """Pure ASGI: looks at each response's start message only (streams pass untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                names = {k.lower() for k, _ in headers}
                ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if ctype.lower().startswith(b"text/html"):
                    if b"content-security-policy" not in names:
                        headers.append((b"content-security-policy", DEFAULT_CSP.encode()))
                    if b"x-content-type-options" not in names:
                        headers.append((b"x-content-type-options", b"nosniff"))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
