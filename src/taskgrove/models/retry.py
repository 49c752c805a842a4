"""One retry loop for every remote backend: bounded concurrency, exponential backoff with jitter,
``Retry-After`` honoured, and a :class:`ModelError` naming the model and status at the end."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from taskgrove.models.errors import ModelError

logger = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 425, 429})


def is_retryable_status(status: int) -> bool:
    """429, 408/409/425 and every 5xx are worth another try; other 4xx are the caller's fault."""
    return status in RETRYABLE_STATUS or status >= 500


class TransientError(Exception):
    """One attempt failed in a way another attempt may fix."""

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        fatal_when_exhausted: bool = False,
    ) -> None:
        """``fatal_when_exhausted`` marks the final :class:`ModelError` fatal if this is the last failure."""
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.retry_after = retry_after
        self.fatal_when_exhausted = fatal_when_exhausted


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_retries`` retries after the first attempt; delay ``base * 2**n`` capped at ``max_delay``,
    times a random factor in ``[1 - jitter, 1]``. A server's ``Retry-After`` wins, capped at
    ``max_retry_after``."""

    max_retries: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.5
    max_retry_after: float = 300.0

    def delay(self, retry: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        backoff = min(self.base_delay * (2**retry), self.max_delay)
        return backoff * (1 - self.jitter * random.random())


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; ``None`` if absent or bad."""
    if value is None:
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    semaphore: asyncio.Semaphore,
    model: str,
) -> T:
    """Run ``attempt`` until it returns, retrying on :class:`TransientError`.

    Each attempt holds one slot of ``semaphore``; waits between attempts do not. Any other
    exception (a :class:`ModelError` for what no retry can fix) propagates at once, untried
    again. After the last retry a :class:`ModelError` carrying the last failure's cause is raised.
    """
    retries = 0
    while True:
        async with semaphore:
            try:
                return await attempt()
            except TransientError as exc:
                failure = exc
        if retries >= policy.max_retries:
            raise ModelError(
                f"{model}: request failed after {retries + 1} attempt(s); last error: {failure.detail}",
                model=model,
                status=failure.status,
                attempts=retries + 1,
                fatal=failure.fatal_when_exhausted,
            ) from None
        wait = policy.delay(retries, failure.retry_after)
        logger.info("%s: %s; retry %d/%d in %.2fs", model, failure.detail, retries + 1, policy.max_retries, wait)
        retries += 1
        await asyncio.sleep(wait)
