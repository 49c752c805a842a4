import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))


class _RecordingAsyncio:
    """``asyncio`` for the retry loop's module, recording each ``sleep`` it asks for (then sleeping)."""

    def __init__(self, sleeps: list[float]) -> None:
        self._sleeps = sleeps

    async def sleep(self, delay: float, result: Any = None) -> Any:
        self._sleeps.append(delay)
        return await asyncio.sleep(delay, result)

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


@pytest.fixture
def requested_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits (seconds) the remote backends' retry loop requested, in order: a test checks the
    wait it asked for rather than the wall clock, which a busy machine stretches."""
    from taskgrove.models import retry

    sleeps: list[float] = []
    monkeypatch.setattr(retry, "asyncio", _RecordingAsyncio(sleeps))
    return sleeps
