"""Sampling parameters shared by every backend, normalised once so caches and batches agree."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

logger = logging.getLogger(__name__)

SAMPLING_KEYS = ("max_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "stop", "seed", "logprobs")
DEFAULT_MAX_TOKENS = 128


@dataclass(frozen=True, slots=True)
class Sampling:
    """Normalised sampling parameters; hashable, so equal settings batch and cache together.

    taskgrove's default is greedy decoding (``temperature=0``) for every backend.
    """

    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int | None = None
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False
    """Return each generated token's log-probability on the Choice (``Choice.logprobs``)."""

    @classmethod
    def from_kwargs(cls, sampling: Mapping[str, Any]) -> Sampling:
        """Build from ``generate(**sampling)`` keywords: unknown keys are ignored, ``None`` means default."""
        unknown = sorted(set(sampling) - set(SAMPLING_KEYS))
        if unknown:
            logger.debug("ignoring unknown sampling keys: %s", ", ".join(unknown))
        values: dict[str, Any] = {}
        for key in SAMPLING_KEYS:
            value = sampling.get(key)
            if value is not None:
                values[key] = value
        if "max_tokens" in values:
            values["max_tokens"] = _positive_int("max_tokens", values["max_tokens"])
        if "top_k" in values:
            values["top_k"] = _positive_int("top_k", values["top_k"])
        if "seed" in values:
            values["seed"] = int(values["seed"])
        if "logprobs" in values and not isinstance(values["logprobs"], bool):
            raise ValueError(f"logprobs must be True or False, got {values['logprobs']!r}")
        for key in ("temperature", "top_p", "repetition_penalty"):
            if key in values:
                values[key] = float(values[key])
        if values.get("temperature", 0.0) < 0:
            raise ValueError(f"temperature must be >= 0, got {values['temperature']}")
        if not 0 < values.get("top_p", 1.0) <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {values['top_p']}")
        if values.get("repetition_penalty", 1.0) <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {values['repetition_penalty']}")
        if "stop" in values:
            stop = values["stop"]
            stops = [stop] if isinstance(stop, str) else list(stop)
            if not all(isinstance(s, str) for s in stops):
                raise ValueError(f"stop must be a string or a list of strings, got {stop!r}")
            values["stop"] = tuple(dict.fromkeys(s for s in stops if s))
        return cls(**values)

    @property
    def greedy(self) -> bool:
        """True when decoding is deterministic (temperature 0)."""
        return self.temperature == 0

    def as_dict(self) -> dict[str, Any]:
        """Plain data, e.g. for cache keys."""
        data = asdict(self)
        data["stop"] = list(self.stop)
        if not self.logprobs:
            del data["logprobs"]  # keys of requests without logprobs stay as they were
        return data


def _positive_int(key: str, value: Any) -> int:
    number = int(value)
    if number <= 0 or number != value:
        raise ValueError(f"{key} must be a positive integer, got {value!r}")
    return number
