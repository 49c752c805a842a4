"""OpenAI-compatible chat-completions over HTTP (OpenAI, vLLM, llama.cpp server, ...) with httpx."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from taskgrove.core import Choice, Message
from taskgrove.models.causes import FATAL_STATUS, network_cause, server_message, status_hint
from taskgrove.models.errors import ModelError
from taskgrove.models.loopbound import PerLoop
from taskgrove.models.openai_format import MalformedResponse, parse_completion, request_params, wire_messages
from taskgrove.models.retry import (
    RetryPolicy,
    TransientError,
    call_with_retries,
    is_retryable_status,
    parse_retry_after,
)
from taskgrove.models.sampling import Sampling
from taskgrove.models.tool_calls import validate_tools

if TYPE_CHECKING:
    import httpx

OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"


def public_url(url: str) -> str:
    """``url`` without user info, query or fragment: safe to show and to use in identities."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


class _Secret:
    """Holds the API key; prints as ``***`` and refuses to be pickled."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    def __reduce__(self) -> Any:
        raise TypeError("an API key is not serialisable")


class OpenAICompatibleModel:
    """``openai/<model>``: POST ``{base_url}/chat/completions``, retried, at most ``concurrency`` at once.

    The key is read from the environment variable ``api_key_env`` (default ``OPENAI_API_KEY``);
    with no key, requests go without ``Authorization`` (fine for a local vLLM or llama.cpp
    server) unless the variable was named explicitly or the server is OpenAI's own.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str | None = None,
        concurrency: int = 32,
        request_timeout: float = 60.0,
        max_retries: int = 5,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        """``retry_policy`` sets the backoff (its ``max_retries`` is replaced by ``max_retries``)."""
        import httpx  # noqa: F401  (fail here, with the backend, if it is missing)

        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL).rstrip("/")
        if urlsplit(url).scheme not in ("http", "https"):
            raise ModelError(f"openai/{model}: base_url must be an http(s) URL, got {public_url(url)!r}")
        self.model = model
        self.name = f"openai/{model}"
        self.base_url = public_url(url)
        self.cache_identity = f"{self.name}@{self.base_url}"
        self._url = f"{url}/chat/completions"
        parts = urlsplit(url)
        self._host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
        self._answered = False  # the endpoint has returned a completion at least once
        self._timeout = request_timeout
        self._policy = dataclasses.replace(retry_policy or RetryPolicy(), max_retries=max_retries)
        key_env = api_key_env or DEFAULT_KEY_ENV
        key = os.environ.get(key_env)
        if not key and (api_key_env or urlsplit(url).hostname == urlsplit(OPENAI_BASE_URL).hostname):
            raise ModelError(f"{self.name}: no API key: set the environment variable {key_env}")
        self._key = _Secret(key) if key else None
        self._concurrency = concurrency
        self._loop_state: PerLoop[_ClientPool] = PerLoop(self._new_loop_state)

    def __repr__(self) -> str:
        return f"OpenAICompatibleModel(name={self.name!r}, base_url={self.base_url!r})"

    def __reduce__(self) -> Any:
        raise TypeError(f"{type(self).__name__} holds a live HTTP client and is not serialisable")

    def _new_loop_state(self) -> _ClientPool:
        return _ClientPool(self._concurrency, self._timeout)

    async def generate(
        self, messages: list[Message], *, tools: list[dict[str, Any]] | None = None, **sampling: Any
    ) -> Choice:
        """One chat completion, retried on 429/5xx/timeouts/connection errors/malformed bodies.

        Not retried: HTTP 4xx other than 408/409/425/429, a host name that does not resolve, a
        rejected TLS certificate (:mod:`taskgrove.models.causes`); those raise a
        :class:`ModelError` with the server's message or the socket error after one attempt."""
        params = Sampling.from_kwargs(sampling)
        payload: dict[str, Any] = {"model": self.model, "messages": wire_messages(messages), **request_params(params)}
        if tools := validate_tools(tools):
            payload["tools"] = tools
        pool = self._loop_state.get()
        started = time.perf_counter()
        choice = await call_with_retries(
            lambda: self._attempt(pool, payload), policy=self._policy, semaphore=pool.semaphore, model=self.name
        )
        choice.latency_s = time.perf_counter() - started
        return choice

    async def _attempt(self, pool: _ClientPool, payload: dict[str, Any]) -> Choice:
        import httpx

        headers = {"Authorization": f"Bearer {self._key.reveal()}"} if self._key else {}
        try:
            with pool.client() as client:
                response = await client.post(self._url, json=payload, headers=headers)
        except httpx.TimeoutException:
            raise TransientError(f"timed out after {self._timeout:g}s") from None
        except httpx.TransportError as exc:
            raise self._transport_failure(exc) from None
        status = response.status_code
        if is_retryable_status(status):
            raise TransientError(
                f"HTTP {status} {response.reason_phrase} from {self.base_url}: {self._server_message(response)}",
                status=status,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        if status >= 400:
            hint = status_hint(status)
            raise ModelError(
                f"{self.name}: HTTP {status} {response.reason_phrase} from {self.base_url}"
                + (f" ({hint})" if hint else "")
                + f": {self._server_message(response)}",
                model=self.name,
                status=status,
                attempts=1,
                fatal=status in FATAL_STATUS,
            )
        try:
            choice = parse_completion(response.json(), latency_s=0.0)
        except (ValueError, MalformedResponse) as exc:
            raise TransientError(
                f"malformed response body (HTTP {status}): {type(exc).__name__}", status=status
            ) from None
        self._answered = True
        return choice

    def _transport_failure(self, exc: Exception) -> Exception:
        """The root cause of a failed connection: not retried when no retry can fix it."""
        cause = network_cause(exc, host=self._host)
        if cause is None:
            return TransientError(f"connection error ({type(exc).__name__}: {exc or 'no detail'})")
        if not cause.retryable:
            return ModelError(f"{self.name}: {cause.text}", model=self.name, attempts=1, fatal=True)
        return TransientError(cause.text, fatal_when_exhausted=cause.kind == "refused" and not self._answered)

    def _server_message(self, response: httpx.Response) -> str:
        """The server's own error message, one line, the key scrubbed."""
        return self._scrub(server_message(response.text)) or "(empty body)"

    def _scrub(self, text: str) -> str:
        return text.replace(self._key.reveal(), "***") if self._key else text

    async def aclose(self) -> None:
        """Close this loop's HTTP client."""
        pool = self._loop_state.pop_current()
        if pool is not None:
            await pool.aclose()


class _ClientPool:
    """The HTTP clients of one event loop: ``concurrency`` clients of one connection each, and a
    semaphore letting at most ``concurrency`` requests run, so each request has a client (and its
    kept-alive connection) to itself.

    One shared client would do, but httpcore's pool (1.0.9) hands an idle HTTP/1.1 connection to
    every request queued in the same pass, the losers retry, and each pass walks all connections
    (encode/httpcore#1035, open): with 256 connections a request cost ~13 pool passes and the client
    spent most of its time there. With one connection per client no two requests meet in a pool.
    """

    def __init__(self, concurrency: int, timeout: float) -> None:
        import ssl

        import certifi
        import httpx

        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        context = ssl.create_default_context(cafile=certifi.where())  # one CA load, not one per client
        self.clients = [
            httpx.AsyncClient(timeout=httpx.Timeout(timeout), limits=limits, trust_env=False, verify=context)
            for _ in range(concurrency)
        ]
        self.idle = list(range(concurrency))  # a stack: the most recently used (warm) connection first
        self.semaphore = asyncio.Semaphore(concurrency)

    @contextlib.contextmanager
    def client(self) -> Iterator[httpx.AsyncClient]:
        """A client no other request is using (call only while holding :attr:`semaphore`)."""
        if not self.idle:
            raise RuntimeError("more requests in flight than clients: the semaphore was not held")
        index = self.idle.pop()
        try:
            yield self.clients[index]
        finally:
            self.idle.append(index)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()
