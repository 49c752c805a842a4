"""Data parallel over several OpenAI-compatible servers (``--base-url http://a/v1,http://b/v1``).

Each request goes to the replica its prompt prefix hashes to (rendezvous hashing over the live
replicas, so requests sharing a system prompt or few-shot context hit the same prefix cache)
unless that replica has ``slack`` more requests outstanding than the least loaded one; then it goes
to the least loaded. A replica whose request fails with a connection error, a timeout or a 5xx is
marked dead for a cool-down (doubling up to ``max_cooldown_s``) and the request is queued again on
another replica: a request is never lost and answered once. After its cool-down a dead replica
gets requests again; if it fails again it stays out longer.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from taskgrove.core import Choice, Message
from taskgrove.models.errors import ModelError
from taskgrove.models.openai_http import OpenAICompatibleModel

logger = logging.getLogger(__name__)

PREFIX_CHARS = 1024


def prefix_key(messages: list[Message]) -> str:
    """What decides stickiness: the first ``PREFIX_CHARS`` characters of the conversation. A shared
    system prompt or few-shot context that long maps to one replica; short prompts spread out."""
    text = "\x00".join(f"{m.get('role')}:{m.get('content') or ''}" for m in messages)
    return text[:PREFIX_CHARS]


@dataclass
class Replica:
    """One server and its load: requests outstanding, dead until when, failures in a row."""

    model: OpenAICompatibleModel
    outstanding: int = 0
    dead_until: float = 0.0
    failures: int = 0
    served: int = 0

    def alive(self, now: float) -> bool:
        return now >= self.dead_until


class ReplicaModel:
    """A :class:`~taskgrove.core.Model` over several replicas of one model (see the module docstring)."""

    def __init__(
        self,
        replicas: list[OpenAICompatibleModel],
        *,
        slack: int = 4,
        cooldown_s: float = 10.0,
        max_cooldown_s: float = 300.0,
        max_rounds: int = 5,
    ) -> None:
        if not replicas:
            raise ValueError("at least one replica is needed")
        self.replicas = [Replica(model) for model in replicas]
        first = replicas[0]
        self.name = first.name
        self.cache_identity = first.name  # replicas serve the same model: one cache for all of them
        self.slack = slack
        self.cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self.max_rounds = max_rounds

    def __repr__(self) -> str:
        return f"ReplicaModel(name={self.name!r}, replicas={[r.model.base_url for r in self.replicas]})"

    def pick(self, key: str, now: float | None = None) -> Replica | None:
        """The replica for a request with prefix ``key``; ``None`` when every replica is dead."""
        now = time.monotonic() if now is None else now
        alive = [r for r in self.replicas if r.alive(now)]
        if not alive:
            return None
        sticky = max(alive, key=lambda r: hashlib.blake2b(f"{r.model.base_url}|{key}".encode(), digest_size=8).digest())
        least = min(alive, key=lambda r: r.outstanding)
        return sticky if sticky.outstanding < least.outstanding + self.slack else least

    async def generate(
        self, messages: list[Message], *, tools: list[dict[str, Any]] | None = None, **sampling: Any
    ) -> Choice:
        """One reply from some live replica; failed replicas hand the request on."""
        key = prefix_key(messages)
        last: ModelError | None = None
        rounds = attempts = 0
        while True:
            replica = self.pick(key)
            if replica is None or attempts >= self.max_rounds * len(self.replicas):
                rounds += 1
                if replica is not None or rounds > self.max_rounds:
                    raise ModelError(
                        f"{self.name}: no replica of {len(self.replicas)} answered after {attempts} attempt(s); "
                        f"last error: {last}",
                        model=self.name,
                    )
                wake = min(r.dead_until for r in self.replicas)
                await asyncio.sleep(max(wake - time.monotonic(), 0.0))
                continue
            replica.outstanding += 1
            attempts += 1
            try:
                choice = await replica.model.generate(messages, tools=tools, **sampling)
            except ModelError as exc:
                if exc.status is not None and exc.status < 500 and exc.status != 429:
                    raise  # the request's own fault: no other replica will answer it differently
                last = exc
                if exc.status != 429:
                    self._mark_dead(replica, exc)
                continue
            finally:
                replica.outstanding -= 1
            replica.failures = 0
            replica.served += 1
            return choice

    def _mark_dead(self, replica: Replica, exc: ModelError) -> None:
        now = time.monotonic()
        if replica.alive(now):  # requests failing together on one death count once
            replica.failures += 1
            cooldown = min(self.cooldown_s * 2 ** (replica.failures - 1), self.max_cooldown_s)
            replica.dead_until = now + cooldown
            logger.warning(
                "%s: replica %s is down (%s); retrying it in %.0fs", self.name, replica.model.base_url, exc, cooldown
            )

    async def aclose(self) -> None:
        """Close every replica's HTTP client."""
        for replica in self.replicas:
            await replica.model.aclose()


def create_replicas(
    model: str, urls: list[str], *, api_key_env: str | None, concurrency: int, request_timeout: float
) -> ReplicaModel:
    """A :class:`ReplicaModel` over ``urls``; each replica retries a failed request once itself,
    then hands it to another replica."""
    return ReplicaModel(
        [
            OpenAICompatibleModel(
                model,
                base_url=url,
                api_key_env=api_key_env,
                concurrency=concurrency,
                request_timeout=request_timeout,
                max_retries=1,
            )
            for url in urls
        ]
    )
