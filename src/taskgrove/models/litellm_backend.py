"""Any provider litellm knows (``together_ai/...``, ``anthropic/...``), through the shared retry loop."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from taskgrove.core import Choice, Message
from taskgrove.models.causes import FATAL_STATUS, network_cause, response_text, server_message, status_hint
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


def import_litellm() -> ModuleType:
    """Import litellm with its bundled price map (it would otherwise fetch one over the network),
    quiet: no "Give Feedback / Get Help" banner or debug hint per failed request, no verbose
    prints, its loggers at WARNING (our errors carry the cause instead)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_LOG", "WARNING")
    try:
        import litellm
    except ImportError as exc:
        raise ModelError(f"this model spec needs litellm: pip install 'taskgrove[api]' ({exc})") from None
    litellm.suppress_debug_info = True
    litellm.set_verbose = False
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
    return litellm


class LiteLLMModel:
    """``litellm.acompletion(model=spec)`` with litellm's own retries off and ours on."""

    def __init__(
        self,
        spec: str,
        *,
        base_url: str | None = None,
        concurrency: int = 32,
        request_timeout: float = 60.0,
        max_retries: int = 5,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        """``retry_policy`` sets the backoff (its ``max_retries`` is replaced by ``max_retries``)."""
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self._litellm = import_litellm()
        self.name = spec
        self.cache_identity = f"{spec}@{base_url}" if base_url else spec
        self._base_url = base_url
        self._host = urlsplit(base_url).netloc.rpartition("@")[2] if base_url else None
        self._answered = False  # a completion came back at least once
        self._timeout = request_timeout
        self._policy = dataclasses.replace(retry_policy or RetryPolicy(), max_retries=max_retries)
        self._semaphore: PerLoop[asyncio.Semaphore] = PerLoop(lambda: asyncio.Semaphore(concurrency))

    def __repr__(self) -> str:
        return f"LiteLLMModel(name={self.name!r})"

    async def generate(
        self, messages: list[Message], *, tools: list[dict[str, Any]] | None = None, **sampling: Any
    ) -> Choice:
        """One completion through litellm, retried on rate limits, 5xx, timeouts and connection errors."""
        kwargs: dict[str, Any] = {
            "model": self.name,
            "messages": wire_messages(messages),
            "timeout": self._timeout,
            "num_retries": 0,
            "max_retries": 0,
            **request_params(Sampling.from_kwargs(sampling)),
        }
        if tools := validate_tools(tools):
            kwargs["tools"] = tools
        if self._base_url:
            kwargs["api_base"] = self._base_url
        started = time.perf_counter()
        choice = await call_with_retries(
            lambda: self._attempt(kwargs), policy=self._policy, semaphore=self._semaphore.get(), model=self.name
        )
        choice.latency_s = time.perf_counter() - started
        return choice

    async def _attempt(self, kwargs: dict[str, Any]) -> Choice:
        try:
            response = await self._litellm.acompletion(**kwargs)
        except Exception as exc:  # litellm maps every provider's errors onto openai-style ones
            raise self._classify(exc) from None
        try:
            choice = parse_completion(response, latency_s=0.0)
        except MalformedResponse as exc:
            raise TransientError(f"malformed response: {exc}") from None
        self._answered = True
        return choice

    def _classify(self, exc: Exception) -> Exception:
        """A litellm exception as a retry (:class:`TransientError`) or a final :class:`ModelError`, keeping
        the root cause: litellm reports an unresolvable host or a refused connection as HTTP 500."""
        cause = network_cause(exc, host=self._host)
        if cause is not None:
            if not cause.retryable:
                return ModelError(f"{self.name}: {cause.text}", model=self.name, attempts=1, fatal=True)
            return TransientError(cause.text, fatal_when_exhausted=cause.kind == "refused" and not self._answered)
        status = getattr(exc, "status_code", None)
        status = status if isinstance(status, int) else None
        transient_types = tuple(
            t
            for t in (getattr(self._litellm, "Timeout", None), getattr(self._litellm, "APIConnectionError", None))
            if t
        )
        message = _one_line(getattr(exc, "message", None) or str(exc))
        body = response_text(exc)
        said = server_message(body) if body else ""
        if said and said not in message:
            message = f"{message}: {said}" if message else said
        detail = f"{type(exc).__name__}" + (f" (HTTP {status})" if status else "") + (f": {message}" if message else "")
        if isinstance(exc, transient_types) or (status is not None and is_retryable_status(status)):
            return TransientError(detail, status=status, retry_after=_retry_after(exc))
        hint = status_hint(status) if status is not None else ""
        return ModelError(
            f"{self.name}: {detail}" + (f" ({hint})" if hint else ""),
            model=self.name,
            status=status,
            attempts=1,
            fatal=status in FATAL_STATUS,
        )

    async def aclose(self) -> None:
        """Nothing to release: litellm owns its clients."""


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or getattr(exc, "headers", None)
    if not headers:
        return None
    try:
        return parse_retry_after(headers.get("retry-after"))
    except AttributeError:
        return None


def _one_line(text: str) -> str:
    """litellm's message without its ``litellm.XError: XError: Provider -`` prefixes, on one line, <= 300 chars."""
    text = " ".join(str(text).split())
    while text.startswith("litellm.") or text.split(":", 1)[0].endswith(("Error", "Exception")):
        head, sep, rest = text.partition(": ")
        if not sep or " " in head.strip():
            break
        text = rest
    return text[:300]
