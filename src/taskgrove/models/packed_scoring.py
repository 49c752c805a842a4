"""Many choices of one item in one row: the continuation pass of the shared-prefix scorer, packed.

With many choices (a 77-way intent list), expanding the item's KV cache to one row per choice
copies the whole context once per choice. Here every choice's fed tokens are laid side by side in
one row after the item's cache instead, and a 4D attention mask lets each token see the cached
context and the earlier tokens of its own choice only (a block-diagonal causal mask); each choice's
positions restart where the context ends. Every continuation token is then predicted from exactly
what it sees in a full pass, so the scores are the same (within float error), and the cache is
read, never copied per choice.

torch is imported inside the functions.
"""

from __future__ import annotations

from typing import Any

PACK_MIN_ROWS = 8
"""Items with at least this many choices (and alone in their group) use the packed pass."""

PACK_TOKENS = 2_048
"""Most fed tokens in one packed row; an item with more is scored in several packed rows."""


def packs(lengths: list[int], limit: int | None = None) -> list[list[int]]:
    """Row indices in runs whose total length stays within ``limit`` (default :data:`PACK_TOKENS`;
    a longer row runs alone)."""
    limit = PACK_TOKENS if limit is None else limit
    runs: list[list[int]] = []
    current: list[int] = []
    total = 0
    for index, length in enumerate(lengths):
        if current and total + length > limit:
            runs.append(current)
            current, total = [], 0
        current.append(index)
        total += length
    if current:
        runs.append(current)
    return runs


def packed_scores(
    model: Any,
    cache: Any,
    past_mask: Any,
    fed: list[list[int]],
    counts: list[int],
    start: int,
    device: str,
    cache_kwarg: str = "past_key_values",
) -> list[float]:
    """Sum of the log-probs of each ``fed`` row's last ``counts[i]`` tokens, all rows in one pass.

    ``cache`` holds one row (the item's context, ``past_mask`` its 0/1 mask of shape (1, P)) and is
    grown by the pass; ``start`` is the position of every row's first fed token; ``cache_kwarg`` is
    how the model's ``forward`` takes a cache.
    """
    import torch

    if not any(counts):
        return [0.0] * len(fed)

    ids = [token for row in fed for token in row]
    length, past = len(ids), past_mask.shape[1]
    dtype = next(model.parameters()).dtype
    allowed = torch.zeros((length, past + length), dtype=torch.bool, device=device)
    allowed[:, :past] = past_mask[0].bool()
    positions: list[int] = []
    keep: list[int] = []
    targets: list[int] = []
    offset = 0
    for row, count in zip(fed, counts, strict=True):
        n = len(row)
        allowed[offset : offset + n, past + offset : past + offset + n] = torch.ones(
            (n, n), dtype=torch.bool, device=device
        ).tril()
        positions.extend(range(start, start + n))
        for j in range(n - count, n):  # the logit at j - 1 predicts token j
            keep.append(offset + j - 1)
            targets.append(row[j])
        offset += n
    mask = torch.zeros((1, 1, length, past + length), dtype=dtype, device=device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    with torch.inference_mode():
        logits = model(
            input_ids=torch.tensor([ids], dtype=torch.long, device=device),
            attention_mask=mask,
            position_ids=torch.tensor([positions], dtype=torch.long, device=device),
            use_cache=True,
            logits_to_keep=torch.tensor(keep, dtype=torch.long, device=device),
            **{cache_kwarg: cache},
        ).logits
    logprobs = torch.log_softmax(logits[0].float(), dim=-1)
    picked = logprobs.gather(-1, torch.tensor(targets, dtype=torch.long, device=device).unsqueeze(-1)).squeeze(-1)
    sums, at = [], 0
    for count in counts:
        sums.append(float(picked[at : at + count].sum()) if count else 0.0)
        at += count
    return sums
