"""``--batch``: a Model whose ``generate`` goes through a provider's batch endpoint.

Each ``generate`` call queues its request; the queue is submitted as one batch when it holds
``max_requests`` requests or when no request arrived for ``idle_s`` seconds (at most ``max_wait_s``
after the first). The batch id and every ``custom_id`` with its request hash are written to
``<run>/batches.json`` (atomically) before polling starts, so a resumed run finds the pending
batch and waits for it instead of submitting the requests again. Polling backs off from
``poll_s`` up to a minute. Items the provider failed become sample errors naming the cause.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskgrove.core import Choice, Message
from taskgrove.models.batch_wire import BatchProvider, Result
from taskgrove.models.errors import ModelError
from taskgrove.models.loopbound import PerLoop
from taskgrove.models.retry import RetryPolicy, call_with_retries
from taskgrove.models.sampling import Sampling

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

STATE_FILE = "batches.json"
MAX_POLL_S = 60.0


def request_key(body: dict[str, Any]) -> str:
    """A stable hash of one request body: the same sample asks the same thing after a resume."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class BatchState:
    """The run's submitted batches (``<run>/batches.json``): id, provider, state and items."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.batches: list[dict[str, Any]] = []
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            self.batches = list(data.get("batches", []))

    def add(self, batch_id: str, provider: str, items: list[tuple[str, str]]) -> None:
        """Record a just-submitted batch: ``items`` are ``(custom_id, request_key)`` pairs."""
        self.batches.append(
            {"id": batch_id, "provider": provider, "state": "submitted", "submitted_at": time.time(), "items": items}
        )
        self._save()

    def mark_failed(self, batch_id: str, custom_id: str) -> None:
        """Note an item that ended in an error: a later resume asks for it again instead of reusing it."""
        for batch in self.batches:
            if batch["id"] == batch_id and custom_id not in batch.setdefault("failed", []):
                batch["failed"].append(custom_id)
                self._save()

    def set_state(self, batch_id: str, state: str) -> None:
        """Note a batch's latest provider state."""
        for batch in self.batches:
            if batch["id"] == batch_id and batch.get("state") != state:
                batch["state"] = state
                self._save()

    def _save(self) -> None:
        data = json.dumps({"version": 1, "batches": self.batches}, indent=1).encode()
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


@dataclass
class _Queued:
    custom_id: str
    key: str
    body: dict[str, Any]
    future: asyncio.Future[tuple[str, Result]]


@dataclass
class _LoopState:
    client: httpx.AsyncClient
    semaphore: asyncio.Semaphore
    queue: list[_Queued] = field(default_factory=list)
    first_at: float = 0.0
    timer: asyncio.TimerHandle | None = None
    outcomes: dict[str, asyncio.Task[dict[str, Result]]] = field(default_factory=dict)
    submissions: set[asyncio.Task[None]] = field(default_factory=set)


class BatchModel:
    """A :class:`~taskgrove.core.Model` over a provider's batch API (see the module docstring).

    Without a run folder (``bind_run_folder`` not called) batches are still submitted and awaited,
    but nothing is recorded for a resume.
    """

    def __init__(
        self,
        provider: BatchProvider,
        *,
        max_requests: int = 1000,
        idle_s: float = 0.5,
        max_wait_s: float = 5.0,
        poll_s: float = 10.0,
        request_timeout: float = 60.0,
        max_retries: int = 5,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        if max_requests < 1:
            raise ValueError(f"max_requests must be >= 1, got {max_requests}")
        self.provider = provider
        self.name = provider.name
        self.cache_identity = f"{provider.name}@{getattr(provider, 'base_url', '')}"
        self.max_requests = max_requests
        self.idle_s = idle_s
        self.max_wait_s = max_wait_s
        self.poll_s = poll_s
        self._timeout = request_timeout
        self._policy = RetryPolicy(max_retries=max_retries) if retry_policy is None else retry_policy
        self.state: BatchState | None = None
        self._unclaimed: dict[str, collections.deque[tuple[str, str]]] = {}
        self._final_states: dict[str, str] = {}
        self._loop_state: PerLoop[_LoopState] = PerLoop(self._new_loop_state)

    def __repr__(self) -> str:
        return f"BatchModel(name={self.name!r})"

    def _new_loop_state(self) -> _LoopState:
        import httpx

        client = httpx.AsyncClient(timeout=httpx.Timeout(self._timeout), trust_env=False)
        return _LoopState(client, asyncio.Semaphore(8))

    def bind_run_folder(self, folder: str | Path) -> None:
        """Keep batch ids in ``<folder>/batches.json``; requests matching an item of a batch
        recorded there (by a run that stopped) are answered from that batch."""
        self.state = BatchState(Path(folder) / STATE_FILE)
        self._unclaimed = {}
        for batch in self.state.batches:
            failed = set(batch.get("failed", []))
            for custom_id, key in batch["items"]:
                if custom_id in failed:
                    continue  # an item that failed is asked again, in a new batch
                self._unclaimed.setdefault(key, collections.deque()).append((batch["id"], custom_id))

    async def generate(
        self, messages: list[Message], *, tools: list[dict[str, Any]] | None = None, **sampling: Any
    ) -> Choice:
        """The reply to one request, once the batch holding it has ended."""
        body = self.provider.body(messages, tools, Sampling.from_kwargs(sampling))
        key = request_key(body)
        started = time.perf_counter()
        pending = self._unclaimed.get(key)
        if pending:
            batch_id, custom_id = pending.popleft()
            results = await self._outcome(batch_id)
            result = results.get(custom_id) or self._missing(batch_id, custom_id)
        else:
            custom_id, future = self._enqueue(key, body)
            batch_id, result = await future
        if isinstance(result, ModelError):
            if self.state is not None and batch_id:
                self.state.mark_failed(batch_id, custom_id)
            raise result
        choice = Choice.from_record(result.to_record())  # each caller gets its own copy
        choice.latency_s = time.perf_counter() - started
        return choice

    # --- queueing and submitting ----------------------------------------------------------------
    def _enqueue(self, key: str, body: dict[str, Any]) -> tuple[str, asyncio.Future[tuple[str, Result]]]:
        state = self._loop_state.get()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[str, Result]] = loop.create_future()
        if not state.queue:
            state.first_at = loop.time()
        custom_id = f"tg-{uuid.uuid4().hex[:20]}"
        state.queue.append(_Queued(custom_id, key, body, future))
        if state.timer is not None:
            state.timer.cancel()
            state.timer = None
        if len(state.queue) >= self.max_requests:
            self._flush(state)
        else:
            delay = min(self.idle_s, max(state.first_at + self.max_wait_s - loop.time(), 0.0))
            state.timer = loop.call_later(delay, self._flush, state)
        return custom_id, future

    def _flush(self, state: _LoopState) -> None:
        if state.timer is not None:
            state.timer.cancel()
            state.timer = None
        items, state.queue = state.queue, []
        if items:
            task = asyncio.get_running_loop().create_task(self._submit(state, items))
            state.submissions.add(task)
            task.add_done_callback(state.submissions.discard)

    async def _submit(self, state: _LoopState, items: list[_Queued]) -> None:
        try:
            batch_id = await call_with_retries(
                lambda: self.provider.submit(state.client, [(item.custom_id, item.body) for item in items]),
                policy=self._policy,
                semaphore=state.semaphore,
                model=self.name,
            )
            logger.info("%s: submitted batch %s with %d request(s)", self.name, batch_id, len(items))
            if self.state is not None:
                self.state.add(batch_id, self.provider.kind, [(item.custom_id, item.key) for item in items])
            results = await self._outcome(batch_id)
        except Exception as exc:
            for item in items:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        for item in items:
            if not item.future.done():
                item.future.set_result(
                    (batch_id, results.get(item.custom_id) or self._missing(batch_id, item.custom_id))
                )

    # --- polling and results --------------------------------------------------------------------
    def _outcome(self, batch_id: str) -> asyncio.Task[dict[str, Result]]:
        state = self._loop_state.get()
        task = state.outcomes.get(batch_id)
        if task is None:
            task = state.outcomes[batch_id] = asyncio.get_running_loop().create_task(self._poll(state, batch_id))
        return task

    async def _poll(self, state: _LoopState, batch_id: str) -> dict[str, Result]:
        delay = self.poll_s
        while True:
            status = await call_with_retries(
                lambda: self.provider.status(state.client, batch_id),
                policy=self._policy,
                semaphore=state.semaphore,
                model=self.name,
            )
            if self.state is not None:
                self.state.set_state(batch_id, status.state)
            if status.done:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, max(MAX_POLL_S, self.poll_s))
        self._final_states[batch_id] = status.state
        return await call_with_retries(
            lambda: self.provider.results(state.client, status),
            policy=self._policy,
            semaphore=state.semaphore,
            model=self.name,
        )

    def _missing(self, batch_id: str, custom_id: str) -> ModelError:
        state = self._final_states.get(batch_id, "unknown")
        return ModelError(
            f"{self.name}: batch {batch_id} ended ({state}) without a result for request {custom_id}",
            model=self.name,
        )

    async def aclose(self) -> None:
        """Stop this loop's timers and polls and close its HTTP client (submitted batches stay recorded)."""
        state = self._loop_state.pop_current()
        if state is None:
            return
        if state.timer is not None:
            state.timer.cancel()
        for task in [*state.outcomes.values(), *state.submissions]:
            task.cancel()
        await asyncio.gather(*state.outcomes.values(), *state.submissions, return_exceptions=True)
        await state.client.aclose()
