"""Response cache: SQLite (WAL) keyed by sha256 of model identity, messages, tools and sampling.

Only greedy requests (temperature 0) are cached. Every response is committed on its own, so a
process killed at any moment loses none it had stored; one connection per cache object, guarded
by a lock, serves threads and asyncio tasks alike.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from taskgrove.core import Choice, Message, Model
from taskgrove.models.sampling import Sampling

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(identity: str, kind: str, payload: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of everything that determines the answer."""
    blob = json.dumps(
        {"identity": identity, "kind": kind, **payload},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """A key -> JSON value store in one SQLite file (WAL mode, one commit per write)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL keeps every commit across a process crash (kill -9); only power loss can drop the last ones.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)

    def get(self, key: str) -> Any | None:
        """The stored value, or ``None``."""
        with self._lock:
            row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, value: Any, *, model: str, kind: str) -> None:
        """Store ``value`` (JSON-serialisable) and commit before returning."""
        text = json.dumps(value, ensure_ascii=False)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, model, kind, value, created) VALUES (?, ?, ?, ?, ?)",
                (key, model, kind, text, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"


class CachedModel:
    """Wraps any model: greedy ``generate`` answers (and ``loglikelihood`` scores, when the model
    has them) come from the cache when present (``Choice.cached = True``) and are stored when not."""

    def __init__(self, model: Model, cache: ResponseCache) -> None:
        self.inner = model
        self.cache = cache
        self.name = model.name
        self.identity: str = getattr(model, "cache_identity", model.name)

    def __repr__(self) -> str:
        return f"CachedModel({self.inner!r}, {self.cache!r})"

    def __getattr__(self, attribute: str) -> Any:
        # Only reached for attributes not defined here: delegate (stats, tokenizer, ...), and
        # offer a cached ``loglikelihood`` exactly when the wrapped model can score.
        inner = self.__dict__.get("inner")
        if inner is None:
            raise AttributeError(attribute)
        value = getattr(inner, attribute)
        if attribute == "loglikelihood":
            return self._cached_loglikelihood
        return value

    async def generate(
        self, messages: list[Message], *, tools: list[dict[str, Any]] | None = None, **sampling: Any
    ) -> Choice:
        """The inner model's reply, from the cache for greedy requests when stored before."""
        params = Sampling.from_kwargs(sampling)
        if not params.greedy:
            return await self.inner.generate(messages, tools=tools, **sampling)
        key = cache_key(self.identity, "generate", {"messages": messages, "tools": tools, "sampling": params.as_dict()})
        stored = self.cache.get(key)
        if stored is not None:
            choice = Choice.from_record(stored)
            choice.cached = True
            return choice
        choice = await self.inner.generate(messages, tools=tools, **sampling)
        self.cache.put(key, choice.to_record(), model=self.name, kind="generate")
        return choice

    async def _cached_loglikelihood(self, context: list[Message], continuations: list[str]) -> list[float]:
        key = cache_key(self.identity, "loglikelihood", {"context": context, "continuations": continuations})
        stored = self.cache.get(key)
        if stored is not None:
            return [float(x) for x in stored]
        scores = await self.inner.loglikelihood(context, continuations)  # type: ignore[attr-defined]
        self.cache.put(key, list(scores), model=self.name, kind="loglikelihood")
        return scores

    async def aclose(self) -> None:
        """Close the wrapped model, then the cache."""
        try:
            await self.inner.aclose()  # type: ignore[attr-defined]
        finally:
            self.cache.close()
