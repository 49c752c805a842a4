"""Log-likelihood scoring for the local backend: one full pass per row, or one prefill per context.

A row is ``(ids, n)``: the tokens of context + continuation, encoded together, and how many of
the last tokens are the continuation. :func:`full_pass_scores` runs every row through the model
(what lm-evaluation-harness does). :func:`shared_prefix_scores` runs each item's context once
(the part common to all contexts of a batch, such as a system prompt or few-shot examples, only
once per batch), keeps the KV cache, expands it to one cache row per choice and feeds only the
continuations.

The token split stays that of the rows: a row's context is its first ``len(ids) - n`` tokens,
which (see :func:`plan_item`) is a prefix of the plain context's tokens, a token shorter when the
context's last token merged with the continuation's first. The prefill therefore covers the
shortest such context minus one token, and each row re-feeds its remaining context tokens, so
every continuation token is predicted from exactly the context it has in a full pass.

torch and transformers are imported inside the functions that run the model.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field
from typing import Any

from taskgrove.models.packed_scoring import PACK_MIN_ROWS, packed_scores, packs

Row = tuple[list[int], int]  # (context + continuation ids, number of continuation tokens)

MAX_REFEED = 16
"""A row whose context is more than this many tokens shorter than the plain context's (a merge
reaching far back) is scored by a full pass instead of stretching every row of its item."""

CACHE_BUDGET = 16_384
"""Most token positions (rows x (cached + fed tokens)) held in one continuation pass's expanded
KV cache; bounds memory when an item has many choices."""


@dataclass(frozen=True, slots=True)
class ItemPlan:
    """How one item's rows are scored: ``prefill`` tokens once, then ``fed[i]`` per shared row."""

    prefill: list[int]
    shared: list[int]  # row indices scored against the prefill's cache
    fed: list[list[int]]  # their tokens after the prefill (>= 1 context token, then the continuation)
    counts: list[int]  # how many of each ``fed`` row's last tokens are the continuation
    fallback: list[int]  # row indices scored by a full pass


@dataclass
class PrefixStats:
    """What the shared-prefix scorer did (rows are choices)."""

    items: int = 0
    prefilled_tokens: int = 0
    shared_rows: int = 0
    fallback_rows: int = 0
    passes: int = 0  # continuation passes (one per chunk of rows)


@dataclass
class _Chunk:
    items: list[int] = field(default_factory=list)  # item indices prefilled together
    rows: list[tuple[int, int]] = field(default_factory=list)  # (item index, position in its plan.shared)


def plan_item(context_ids: list[int], rows: list[Row], max_refeed: int | None = None) -> ItemPlan:
    """Split ``rows`` (all after the same context, tokenised as ``context_ids``) into shared and
    fallback rows; ``max_refeed`` defaults to :data:`MAX_REFEED`."""
    max_refeed = MAX_REFEED if max_refeed is None else max_refeed
    shareable = []
    for index, (ids, n) in enumerate(rows):
        own = len(ids) - n  # this row's context length under its split
        if own >= 2 and own >= len(context_ids) - max_refeed and ids[:own] == context_ids[:own]:
            shareable.append(index)
    if not shareable:
        return ItemPlan([], [], [], [], list(range(len(rows))))
    cut = min(len(rows[i][0]) - rows[i][1] for i in shareable) - 1
    fed = [rows[i][0][cut:] for i in shareable]
    fallback = sorted(set(range(len(rows))) - set(shareable))
    return ItemPlan(context_ids[:cut], shareable, fed, [rows[i][1] for i in shareable], fallback)


def full_pass_scores(model: Any, rows: list[Row], pad_id: int, device: str) -> list[float]:
    """Sum of continuation log-probs of each row, one left-padded forward pass over whole rows."""
    import torch

    input_ids, attention_mask = left_pad([ids for ids, _ in rows], pad_id, device)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    keep = max(n for _, n in rows) + 1
    with torch.inference_mode():
        logits = model(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, logits_to_keep=keep
        ).logits
    return _continuation_sums(logits, input_ids, [n for _, n in rows])


def score_items(
    model: Any, items: list[list[Row]], plans: list[ItemPlan], pad_id: int, device: str, stats: PrefixStats
) -> list[list[float]]:
    """Each item's row scores: shared rows from one prefill per item, the rest by a full pass."""
    results = [[0.0] * len(rows) for rows in items]
    shared = shared_prefix_scores(model, plans, pad_id, device, stats)
    for result, plan, scores in zip(results, plans, shared, strict=True):
        for index, score in zip(plan.shared, scores, strict=True):
            result[index] = score
    fallback = [(item, index) for item, plan in enumerate(plans) for index in plan.fallback]
    if fallback:
        sums = full_pass_scores(model, [items[item][index] for item, index in fallback], pad_id, device)
        for (item, index), score in zip(fallback, sums, strict=True):
            results[item][index] = score
        stats.fallback_rows += len(fallback)
    return results


def shared_prefix_scores(
    model: Any, plans: list[ItemPlan], pad_id: int, device: str, stats: PrefixStats, budget: int | None = None
) -> list[list[float]]:
    """Scores of each plan's ``shared`` rows (in order), in three steps: the prefix common to all
    items' prefills (a system prompt, few-shot examples) once; the rest of each item's prefill;
    then every choice's tokens against its item's cache, in chunks of at most ``budget``
    (default :data:`CACHE_BUDGET`) cached + fed positions."""
    import torch

    budget = CACHE_BUDGET if budget is None else budget
    scores: list[list[float]] = [[0.0] * len(plan.shared) for plan in plans]
    groups = _group(plans, budget)
    prefills = [plans[item].prefill for group in groups for item in group[0].items]
    common = _common_prefix(prefills) if len(prefills) > 1 else []
    base = _feed(model, None, None, [common], [0], pad_id, device)[0] if common else None
    stats.prefilled_tokens += len(common)
    for number, group in enumerate(groups):
        items = group[0].items
        past = base if base is None or number == len(groups) - 1 else copy.deepcopy(base)
        index = torch.zeros(len(items), dtype=torch.long, device=device)
        rests = [plans[item].prefill[len(common) :] for item in items]
        past = _feed(model, past, index, rests, [len(common)] * len(items), pad_id, device)[0]
        stats.prefilled_tokens += sum(map(len, rests))
        if len(items) == 1 and len(plans[items[0]].shared) >= PACK_MIN_ROWS:
            _score_packed(model, past, plans[items[0]], scores[items[0]], device, stats)
            continue
        slot = {item: s for s, item in enumerate(items)}
        for part, chunk in enumerate(group):
            own = past if part == len(group) - 1 else copy.deepcopy(past)
            counts = [plans[item].counts[k] for item, k in chunk.rows]
            rows = torch.tensor([slot[item] for item, _ in chunk.rows], dtype=torch.long, device=device)
            fed = [plans[item].fed[k] for item, k in chunk.rows]
            starts = [len(plans[item].prefill) for item, _ in chunk.rows]
            _, logits, input_ids = _feed(model, own, rows, fed, starts, pad_id, device, keep=max(counts) + 1)
            stats.passes += 1
            for (item, k), value in zip(chunk.rows, _continuation_sums(logits, input_ids, counts), strict=True):
                scores[item][k] = value
    stats.items += len(plans)
    stats.shared_rows += sum(len(p.shared) for p in plans)
    return scores


def _score_packed(
    model: Any, past: _Past, plan: ItemPlan, scores: list[float], device: str, stats: PrefixStats
) -> None:
    """One item's many choices side by side in packed rows after its one-row cache (packed_scoring)."""
    runs = packs([len(fed) for fed in plan.fed])
    for number, run in enumerate(runs):
        own = past if number == len(runs) - 1 else copy.deepcopy(past)
        fed, counts = [plan.fed[k] for k in run], [plan.counts[k] for k in run]
        values = packed_scores(model, own.cache, own.mask, fed, counts, len(plan.prefill), device, _cache_kwarg(model))
        stats.passes += 1
        for k, value in zip(run, values, strict=True):
            scores[k] = value


def _group(plans: list[ItemPlan], budget: int) -> list[list[_Chunk]]:
    """Chunks of rows sharing one prefill: whole items while they fit the budget; an item too
    big for it alone is prefilled once and split into several chunks."""
    groups: list[list[_Chunk]] = []
    current, width = _Chunk(), 0
    for item, plan in enumerate(plans):
        if not plan.shared:
            continue
        item_width = len(plan.prefill) + max(len(f) for f in plan.fed)
        rows = [(item, k) for k in range(len(plan.shared))]
        if current.items and (len(current.rows) + len(rows)) * max(width, item_width) > budget:
            groups.append([current])
            current, width = _Chunk(), 0
        if not current.items and len(rows) * item_width > budget:
            per = max(1, budget // item_width)
            groups.append([_Chunk([item], rows[start : start + per]) for start in range(0, len(rows), per)])
            continue
        current.items.append(item)
        current.rows.extend(rows)
        width = max(width, item_width)
    if current.items:
        groups.append([current])
    return groups


@dataclass
class _Past:
    """A KV cache and the attention mask of the positions it holds (0 = padding)."""

    cache: Any
    mask: Any


def _feed(
    model: Any,
    past: _Past | None,
    rows: Any,
    sequences: list[list[int]],
    starts: list[int],
    pad_id: int,
    device: str,
    keep: int = 1,
) -> tuple[_Past, Any, Any]:
    """Run ``sequences`` (left-padded; row i continues cache row ``rows[i]`` at position
    ``starts[i]``) and return the grown cache, the last ``keep`` logits and the input ids.

    ``past`` is changed in place: its rows are first selected (and repeated) by ``rows``.
    """
    import torch
    from transformers import DynamicCache

    input_ids, new_mask = left_pad(sequences, pad_id, device)
    if past is None:
        past = _Past(DynamicCache(config=model.config), new_mask)
    else:
        past.cache.reorder_cache(rows)  # index_select along the batch: a copy of the row per use
        past = _Past(past.cache, torch.cat([past.mask.index_select(0, rows), new_mask], dim=1))
    first = torch.tensor(starts, dtype=torch.long, device=device).unsqueeze(1)
    position_ids = first + (new_mask.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        logits = model(
            input_ids=input_ids,
            attention_mask=past.mask,
            position_ids=position_ids,
            use_cache=True,
            logits_to_keep=keep,
            **{_cache_kwarg(model): past.cache},
        ).logits
    return past, logits, input_ids


def _common_prefix(sequences: list[list[int]]) -> list[int]:
    """The longest common prefix of ``sequences``, one token shorter than the shortest of them."""
    first, limit = sequences[0], min(map(len, sequences)) - 1
    n = 0
    while n < limit and all(seq[n] == first[n] for seq in sequences):
        n += 1
    return first[:n]


def _continuation_sums(logits: Any, input_ids: Any, counts: list[int]) -> list[float]:
    """Per row, the sum of log-probs of its last ``counts[i]`` tokens; ``logits`` are the last
    ``max(counts) + 1`` positions of right-aligned rows (kept logit j predicts the token after it)."""
    import torch

    keep = logits.shape[1]
    logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    targets = input_ids[:, input_ids.shape[1] - keep + 1 :]
    picked = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return [float(picked[i, picked.shape[1] - n :].sum()) if n else 0.0 for i, n in enumerate(counts)]


def _cache_kwarg(model: Any) -> str:
    """``cache`` (transformers >= 5) or ``past_key_values``: how ``forward`` takes a KV cache."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def left_pad(sequences: list[list[int]], pad_id: int, device: str) -> tuple[Any, Any]:
    """``(input_ids, attention_mask)`` of ``sequences`` right-aligned in one tensor."""
    import torch

    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if seq:
            input_ids[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
            attention_mask[row, width - len(seq) :] = 1
    return input_ids.to(device), attention_mask.to(device)
