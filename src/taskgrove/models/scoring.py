"""Log-likelihood scoring for the local backend: one full pass per row, or one prefill per context.

A row is ``(ids, n)``: the tokens of context + continuation, encoded together, and how many of
the last tokens are the continuation. :func:`full_pass_scores` runs every row through the model
(what lm-evaluation-harness does). :func:`shared_prefix_scores` runs each item's context once,
keeps its KV cache, expands it to one cache row per choice and feeds only the continuations.

The token split stays that of the rows: a row's context is its first ``len(ids) - n`` tokens,
which (see :func:`plan_item`) is a prefix of the plain context's tokens, one or two shorter when
the context's last token merged with the continuation's first. The prefill therefore covers the
shortest such context minus one token, and each row re-feeds its remaining context tokens, so
every continuation token is predicted from exactly the context it has in a full pass.

Only torch is imported, inside the functions that run the model.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field
from typing import Any

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
    """Scores of each plan's ``shared`` rows (in order): one prefill per item, continuations batched
    in chunks of at most ``budget`` (default :data:`CACHE_BUDGET`) cached + fed positions."""
    budget = CACHE_BUDGET if budget is None else budget
    scores: list[list[float]] = [[0.0] * len(plan.shared) for plan in plans]
    for group in _group(plans, budget):
        cache, prefix_mask = _prefill(model, [plans[i].prefill for i in group[0].items], pad_id, device)
        stats.prefilled_tokens += sum(len(plans[i].prefill) for i in group[0].items)
        slot = {item: s for s, item in enumerate(group[0].items)}
        for number, chunk in enumerate(group):
            own = cache if number == len(group) - 1 else copy.deepcopy(cache)
            sums = _continue(model, own, prefix_mask, plans, chunk, slot, pad_id, device)
            stats.passes += 1
            for (item, k), value in zip(chunk.rows, sums, strict=True):
                scores[item][k] = value
    stats.items += len(plans)
    stats.shared_rows += sum(len(p.shared) for p in plans)
    return scores


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


def _prefill(model: Any, prefixes: list[list[int]], pad_id: int, device: str) -> tuple[Any, Any]:
    """Run the contexts once (left-padded); return their KV cache and attention mask."""
    import torch
    from transformers import DynamicCache

    input_ids, attention_mask = left_pad(prefixes, pad_id, device)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config)
    with torch.inference_mode():
        model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=True,
            logits_to_keep=1,
            **{_cache_kwarg(model): cache},
        )
    return cache, attention_mask


def _continue(
    model: Any, cache: Any, prefix_mask: Any, plans: list[ItemPlan], chunk: _Chunk, slot: dict[int, int], pad_id: int, device: str
) -> list[float]:
    """Feed the chunk's rows against ``cache`` expanded to one row each; their continuation sums."""
    import torch

    fed = [plans[item].fed[k] for item, k in chunk.rows]
    counts = [plans[item].counts[k] for item, k in chunk.rows]
    index = torch.tensor([slot[item] for item, _ in chunk.rows], dtype=torch.long, device=device)
    cache.reorder_cache(index)  # index_select along the batch: one copy of its item's cache per row
    input_ids, fed_mask = left_pad(fed, pad_id, device)
    starts = torch.tensor([len(plans[item].prefill) for item, _ in chunk.rows], dtype=torch.long, device=device)
    position_ids = starts.unsqueeze(1) + (fed_mask.cumsum(-1) - 1).clamp(min=0)
    attention_mask = torch.cat([prefix_mask.index_select(0, index), fed_mask], dim=1)
    keep = max(counts) + 1
    with torch.inference_mode():
        logits = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=True,
            logits_to_keep=keep,
            **{_cache_kwarg(model): cache},
        ).logits
    return _continuation_sums(logits, input_ids, counts)


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
