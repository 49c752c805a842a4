"""The root cause of a failed request, dug out of the exception chain (httpx, aiohttp, openai and
litellm each wrap the socket error that says what happened), and whether trying again can help.

=====================================  =========  ============================================
cause                                  retried    why
=====================================  =========  ============================================
host name does not resolve             no         the name does not exist; another try asks the
(``EAI_NONAME``, ``EAI_FAIL``)                    same resolver the same question
temporary DNS failure (``EAI_AGAIN``)  yes        the resolver may answer next time
connection refused                     yes        a server restarting (or still loading its
                                                  model) refuses for a while; when it refuses
                                                  through every retry and the endpoint never
                                                  answered, the error is marked fatal
TLS certificate rejected, or the       no         configuration: every request fails the same
server speaks no TLS (wrong version)              way
other TLS errors, connection reset     yes        a dropped connection may not recur
=====================================  =========  ============================================
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

_DNS_PERMANENT = {
    code for code in (getattr(socket, name, None) for name in ("EAI_NONAME", "EAI_NODATA", "EAI_FAIL")) if code
}
_DNS_PERMANENT_TEXT = ("Name or service not known", "No address associated with hostname", "nodename nor servname")


@dataclass(frozen=True, slots=True)
class Cause:
    """What went wrong, said plainly (``text``), and whether another attempt may succeed."""

    kind: str  # "dns", "refused", "tls", "reset"
    text: str
    retryable: bool


def exception_chain(exc: BaseException, limit: int = 16) -> Iterator[BaseException]:
    """``exc``, then its causes/contexts, outermost first (bounded, cycle-safe)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < limit:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def network_cause(exc: BaseException, *, host: str | None = None) -> Cause | None:
    """The network-level root cause of ``exc`` (DNS, refused, TLS, reset), or ``None`` if there is none."""
    where = f" {host!r}" if host else ""
    for error in exception_chain(exc):
        if isinstance(error, socket.gaierror):
            detail = error.strerror or str(error)
            if error.errno in _DNS_PERMANENT or any(text in detail for text in _DNS_PERMANENT_TEXT):
                return Cause("dns", f"cannot resolve host{where}: name does not resolve ({detail})", False)
            return Cause("dns", f"cannot resolve host{where}: temporary DNS failure ({detail})", True)
        if isinstance(error, ConnectionRefusedError):
            return Cause("refused", f"connection refused by{where or ' the server'} (nothing listening there?)", True)
        if isinstance(error, ssl.SSLCertVerificationError):
            reason = error.verify_message or error.reason or str(error)
            return Cause("tls", f"TLS certificate of{where or ' the server'} rejected: {reason}", False)
        if isinstance(error, ssl.SSLError):
            reason = str(error.reason or error)
            if reason in ("WRONG_VERSION_NUMBER", "UNSUPPORTED_PROTOCOL", "RECORD_LAYER_FAILURE"):
                return Cause(
                    "tls", f"TLS error with{where or ' the server'}: {reason} (is it an http:// server?)", False
                )
            return Cause("tls", f"TLS error with{where or ' the server'}: {reason}", True)
        if isinstance(error, ConnectionResetError):
            return Cause("reset", f"connection reset by{where or ' the server'}", True)
    return None


FATAL_STATUS = frozenset({401, 403, 404})
"""HTTP statuses that every request to the same endpoint, model and key would get again."""


def status_hint(status: int) -> str:
    """A few words on what a client-error status usually means for a model endpoint."""
    return {
        401: "the API key is missing or wrong",
        403: "the API key may not use this model or endpoint",
        404: "no such endpoint or model at this base URL",
    }.get(status, "")


def server_message(body: str) -> str:
    """The server's own error message from a response body (OpenAI's ``{"error": {"message": ...}}``,
    ``{"error": "..."}``, ``{"detail": ...}``, or the raw text), on one line, at most 300 characters."""
    text = body[:2000]
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        if error is not None:
            text = error if isinstance(error, str) else json.dumps(error)
    return " ".join(text.split())[:300]


def response_text(exc: BaseException) -> str | None:
    """The body of the HTTP response an exception (or one it wraps) carries, if any."""
    for error in exception_chain(exc):
        response = getattr(error, "response", None)
        try:
            text = getattr(response, "text", None)
        except Exception:  # a streamed or dummy response without a readable body
            continue
        if isinstance(text, str) and text:
            return text
    return None
