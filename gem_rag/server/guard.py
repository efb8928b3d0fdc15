"""The checks every HTTP request passes before the app sees it (a pure ASGI middleware).

In this order: the ``Host`` header must name this server (421 otherwise: a page on another site that
rebinds its DNS name to 127.0.0.1 sends its own name); with an API key, ``/v1`` and ``/api`` need
``Authorization: Bearer <key>`` (401); the body may not exceed the path's limit (413, judged from
``Content-Length`` before reading, and while a chunked body arrives); a JSON body must be UTF-8 (400).
Every refusal uses OpenAI's error shape.

Example:
    >>> app.add_middleware(RequestGuard, allowed_hosts={"127.0.0.1", "localhost", "::1"}, api_key=None,
    ...                    limits=ServerLimits())
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Iterable

from gem_rag.server.limits import ServerLimits, megabytes

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
PROTECTED_PREFIXES = ("/v1/", "/api/")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict:
    """OpenAI's error shape."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class Disconnected(Exception):
    """The client went away while sending its body: nothing to answer."""


class Refusal(Exception):
    """A request the guard answers itself."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", code: str | None = None,
                 headers: Iterable[tuple[bytes, bytes]] = ()):
        super().__init__(message)
        self.status, self.body, self.headers = status, error_body(message, kind, code=code), list(headers)


def host_name(header: str) -> str:
    """'Example.COM:8000' -> 'example.com', '[::1]:8000' -> '::1'."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    name = value.rsplit(":", 1)[0] if value.count(":") == 1 else value
    return name.rstrip(".")


class RequestGuard:
    """ASGI middleware: Host check, optional API key, body-size limit, UTF-8 check (see the module doc)."""

    def __init__(self, app, *, allowed_hosts: Iterable[str] = LOOPBACK_HOSTS, api_key: str | None = None,
                 limits: ServerLimits | None = None):
        self.app = app
        self.allowed_hosts = {host_name(h) for h in allowed_hosts} | set(LOOPBACK_HOSTS)
        self.any_host = "*" in self.allowed_hosts
        self.api_key = api_key.strip().encode("utf-8") if api_key else None
        self.limits = limits or ServerLimits()

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            self.check_host(headers.get("host"))
            self.check_key(scope["path"], headers.get("authorization"))
            body = await self.read_body(scope, headers, receive)
        except Refusal as refusal:
            await respond(send, refusal)
            return
        except Disconnected:
            return
        if body is None:
            await self.app(scope, receive, send)
        else:
            await self.app(scope, replay(body, receive), send)

    def check_host(self, header: str | None) -> None:
        if header is None:
            raise Refusal(400, "the request has no Host header", code="missing_host")
        name = host_name(header)
        if not self.any_host and name not in self.allowed_hosts:
            logger.warning("Refused a request for Host %r", header)
            raise Refusal(421, f"this server does not answer to the host name {name!r} (a page on another site "
                               f"may be trying to reach it); if that name is this server's, start it with "
                               f"--allowed-hosts {name}", kind="misdirected_request", code="host_not_allowed")

    def check_key(self, path: str, authorization: str | None) -> None:
        if self.api_key is None or not (path.startswith(PROTECTED_PREFIXES) or path in ("/v1", "/api")):
            return
        challenge = [(b"www-authenticate", b"Bearer")]
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refusal(401, "this server needs an API key: send the header 'Authorization: Bearer <key>' with "
                               "the key it was started with (--api-key or GEM_RAG_API_KEY)",
                          code="missing_api_key", headers=challenge)
        if not hmac.compare_digest(token.strip().encode("latin-1"), self.api_key):  # the header's raw bytes
            raise Refusal(401, "invalid API key: send the key the server was started with (--api-key or "
                               "GEM_RAG_API_KEY) as 'Authorization: Bearer <key>'",
                          code="invalid_api_key", headers=challenge)

    async def read_body(self, scope: dict, headers: dict, receive: Receive) -> bytes | None:
        """The whole body (None when the method carries none), refused as soon as it is over the limit."""
        limit = self.limits.body_limit(scope["path"])
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                raise Refusal(400, f"Content-Length {declared!r} is not a number")
            if int(declared) > limit:
                raise too_large(int(declared), limit, scope["path"])
        if scope["method"] not in BODY_METHODS:
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Disconnected()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large(size, limit, scope["path"], streamed=True)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        check_utf8(body, headers.get("content-type", ""))
        return body


def too_large(size: int, limit: int, path: str, streamed: bool = False) -> Refusal:
    option = "--max-upload-mb" if path == "/api/upload" else "--max-body-mb"
    what = "more than " if streamed else ""
    return Refusal(413, f"the request body is {what}{size:,} bytes; this server accepts at most {megabytes(limit)} "
                        f"on {path}: send less per request (or start the server with a larger {option})",
                   code="request_too_large")


def check_utf8(body: bytes, content_type: str) -> None:
    """A JSON body (or one without a type, which FastAPI parses as JSON) must be UTF-8."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if body and (not kind or kind == "application/json" or kind.endswith("+json")):
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as err:
            raise Refusal(400, f"the request body is not valid UTF-8 (byte 0x{body[err.start]:02x} at offset "
                               f"{err.start}): send JSON encoded as UTF-8", code="invalid_utf8") from None


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive() that hands the app the already-read body, then listens for the disconnect."""
    sent = False

    async def receive_again() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_again


async def respond(send: Send, refusal: Refusal) -> None:
    payload = json.dumps(refusal.body).encode("utf-8")
    # "connection: close": the rest of a body left unread must not be taken for the next request
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
               (b"connection", b"close"), *refusal.headers]
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
