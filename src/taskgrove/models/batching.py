"""Dynamic batching: gather concurrent requests from asyncio, run them in batches in one worker thread.

Requests with the same key (e.g. the same sampling parameters) can share a batch; when more are
waiting than fit, the ones of similar length go together, starting with the batch that holds the
oldest request. Before choosing, the dispatcher lets every coroutine that is ready to run reach
its request (the event loop settles), so a batch is chosen from everything pending at that
moment, not from the first arrivals: given a whole run's requests at once, the batches are the
length-sorted chunks of the whole pool. Then, unless a full batch is waiting, it waits a short
gather window for company; while the worker is busy, requests pile up and the next batch leaves
as soon as it is free.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from taskgrove.models.errors import ModelError

logger = logging.getLogger(__name__)

P = TypeVar("P")
R = TypeVar("R")

BatchFn = Callable[[Hashable, list[P]], Sequence[R]]


SETTLE_PASSES = 64
"""At most this many event-loop passes to let ready coroutines submit before a batch is chosen."""


@dataclass
class BatchStats:
    """Counters of what the worker ran (rows: sequences; a request may hold several).

    ``tokens`` counts the requests' own lengths (as submitted, per row) and ``padded`` the
    batches' rows times their longest request: ``1 - tokens / padded`` is the padding share.
    """

    batches: int = 0
    requests: int = 0
    rows: int = 0
    largest: int = 0
    tokens: int = 0
    padded: int = 0

    def record(self, requests: int, rows: int, tokens: int = 0, padded: int = 0) -> None:
        self.batches += 1
        self.requests += requests
        self.rows += rows
        self.largest = max(self.largest, rows)
        self.tokens += tokens
        self.padded += padded

    def report(self, max_rows: int) -> dict[str, float | int]:
        """Batches, rows, batch fill (mean rows per batch / ``max_rows``) and padding waste."""
        return {
            "batches": self.batches,
            "rows": self.rows,
            "batch_size": max_rows,
            "fill": round(self.rows / self.batches / max_rows, 4) if self.batches else 0.0,
            "padding_waste": round(1 - self.tokens / self.padded, 4) if self.padded else 0.0,
        }


@dataclass(eq=False)
class _Pending(Generic[P]):
    key: Hashable
    payload: P
    rows: int
    length: int
    order: int
    arrived: float
    future: asyncio.Future[Any]


@dataclass(eq=False)
class _LoopState:
    loop: asyncio.AbstractEventLoop
    pending: list[_Pending[Any]] = field(default_factory=list)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class DynamicBatcher(Generic[P, R]):
    """``await submit(key, payload)`` -> the result ``run_batch(key, payloads)`` gave for it.

    ``run_batch`` runs in a single worker thread, one batch at a time, and returns one result
    per payload, in order; if it raises, every request of that batch fails with a
    :class:`ModelError` carrying the cause.
    """

    def __init__(
        self,
        run_batch: BatchFn[P, R],
        *,
        max_rows: int,
        gather_s: float = 0.005,
        name: str = "model",
    ) -> None:
        if max_rows < 1:
            raise ValueError(f"batch size must be >= 1, got {max_rows}")
        self._run_batch = run_batch
        self.max_rows = max_rows
        self.gather_s = gather_s
        self.name = name
        self.stats = BatchStats()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"taskgrove-{name}")
        self._state: _LoopState | None = None
        self._submitted = 0  # requests ever submitted: each one's arrival order, and a sign of new work
        self._closed = False

    async def submit(self, key: Hashable, payload: P, *, rows: int = 1, length: int = 0) -> R:
        """Queue one request of ``rows`` sequences, ``length`` tokens long, and wait for its result."""
        if self._closed:
            raise ModelError(f"{self.name}: the model is closed", model=self.name)
        state = self._loop_state()
        future: asyncio.Future[R] = state.loop.create_future()
        item = _Pending(key, payload, rows, length, self._submitted, state.loop.time(), future)
        state.pending.append(item)
        self._submitted += 1
        state.wakeup.set()
        return await future

    async def run_alone(self, fn: Callable[[], R]) -> R:
        """Run ``fn`` on the worker thread (between batches), e.g. to load or free a model."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def _loop_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._state
        if state is None or state.loop is not loop or state.task is None or state.task.done():
            state = _LoopState(loop)
            state.task = loop.create_task(self._dispatch(state), name=f"taskgrove-batcher-{self.name}")
            self._state = state
        return state

    async def _dispatch(self, state: _LoopState) -> None:
        try:
            while True:
                batch = await self._next_batch(state)
                await self._run(batch)
        except asyncio.CancelledError:
            self._fail(state.pending, ModelError(f"{self.name}: the model is closed", model=self.name))
            raise
        except BaseException as exc:  # a bug here must not leave callers waiting forever
            logger.exception("%s: batch dispatcher crashed", self.name)
            self._fail(state.pending, ModelError(f"{self.name}: batch dispatcher crashed: {exc!r}", model=self.name))
            raise

    async def _next_batch(self, state: _LoopState) -> list[_Pending[Any]]:
        loop = state.loop
        while True:
            state.pending = [p for p in state.pending if not p.future.done()]
            if not state.pending:
                state.wakeup.clear()
                await state.wakeup.wait()
                continue
            await self._settle()
            deadline = state.pending[0].arrived + self.gather_s
            while not self._full_batch_waiting(state.pending) and (remaining := deadline - loop.time()) > 0:
                state.wakeup.clear()
                try:
                    await asyncio.wait_for(state.wakeup.wait(), remaining)
                except TimeoutError:
                    break
            state.pending = [p for p in state.pending if not p.future.done()]
            if not state.pending:
                continue
            batch = self._choose(state.pending)
            chosen = set(map(id, batch))
            state.pending = [p for p in state.pending if id(p) not in chosen]
            return batch

    async def _settle(self) -> None:
        """Yield to the event loop until two passes in a row bring no new request (the coroutines
        that were ready have all reached the model or something else to wait for)."""
        quiet = 0
        for _ in range(SETTLE_PASSES):
            seen = self._submitted
            await asyncio.sleep(0)
            quiet = quiet + 1 if self._submitted == seen else 0
            if quiet == 2:
                return

    def _full_batch_waiting(self, pending: list[_Pending[Any]]) -> bool:
        rows: dict[Hashable, int] = {}
        for item in pending:
            rows[item.key] = rows.get(item.key, 0) + item.rows
            if rows[item.key] >= self.max_rows:
                return True
        return False

    def _choose(self, pending: list[_Pending[Any]]) -> list[_Pending[Any]]:
        """The length-sorted chunk (of its key's requests) that holds the oldest request."""
        oldest = pending[0]
        group = sorted((p for p in pending if p.key == oldest.key), key=lambda p: (p.length, p.order))
        chunk: list[_Pending[Any]] = []
        rows = 0
        for item in group:
            if chunk and rows + item.rows > self.max_rows:
                if any(p is oldest for p in chunk):
                    return chunk
                chunk, rows = [], 0
            chunk.append(item)
            rows += item.rows
        return chunk

    async def _run(self, batch: list[_Pending[Any]]) -> None:
        rows = sum(p.rows for p in batch)
        self.stats.record(len(batch), rows, sum(p.length * p.rows for p in batch), max(p.length for p in batch) * rows)
        loop = asyncio.get_running_loop()
        key = batch[0].key
        payloads = [p.payload for p in batch]
        try:
            results = await loop.run_in_executor(self._executor, self._run_batch, key, payloads)
            if len(results) != len(batch):
                raise RuntimeError(f"batch function returned {len(results)} results for {len(batch)} requests")
        except asyncio.CancelledError:
            self._fail(batch, ModelError(f"{self.name}: the model is closed", model=self.name))
            raise
        except Exception as exc:
            for item in batch:
                if not item.future.done():
                    error = ModelError(
                        f"{self.name}: batch of {len(batch)} failed: {type(exc).__name__}: {exc}", model=self.name
                    )
                    error.__cause__ = exc
                    item.future.set_exception(error)
            return
        for item, result in zip(batch, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)

    @staticmethod
    def _fail(items: list[_Pending[Any]], error: ModelError) -> None:
        for item in items:
            if not item.future.done() and not item.future.get_loop().is_closed():
                item.future.set_exception(error)

    async def aclose(self) -> None:
        """Fail waiting requests, stop the dispatcher and wait for the worker thread to finish."""
        self._closed = True
        state, self._state = self._state, None
        if (
            state is not None
            and state.task is not None
            and not state.task.done()
            and state.loop is asyncio.get_running_loop()
        ):
            state.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await state.task
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown)
