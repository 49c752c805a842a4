"""Few-shot demonstration candidates of a declarative task, drawn per item (moved out of
:mod:`taskgrove.tasks.declarative`, which builds them)."""

from __future__ import annotations

import random
from typing import Any

from taskgrove.errors import ConfigError


class FewShotPool:
    """Demonstration candidates: pool rows, each rendered once, when first drawn."""

    def __init__(self, task: Any, rows: list[tuple[str, dict[str, Any]]], *, exclude_item: bool) -> None:
        self.task = task
        self.rows = rows
        self.exclude_item = exclude_item
        self._ids = {row_id for row_id, _ in rows} if exclude_item else set()
        self._rendered: dict[tuple[int, Any], list[str]] = {}

    def draw(self, rng: random.Random, k: int, item_id: str, value: Any) -> list[list[str]]:
        """``k`` distinct demonstrations; when pool and items are the same split's rows, never the
        row whose id is ``item_id`` (the item under test)."""
        n = len(self.rows)
        available = n - (1 if item_id in self._ids else 0)
        if available < k:
            raise ConfigError(
                f"task {self.task.name}: {k} few-shot examples requested but the few-shot split "
                f"{self.task.spec.fewshot.split!r} offers {available}; lower num_fewshot"
            )
        picked = [
            i for i in rng.sample(range(n), min(n, k + 1)) if item_id not in self._ids or self.rows[i][0] != item_id
        ][:k]
        out = []
        for i in picked:
            key = (i, value)
            shown = self._rendered.get(key)
            if shown is None:
                row_id, row = self.rows[i]
                shown = self._rendered[key] = self.task.demonstration(row, value, row_id)
            out.append(shown)
        return out
