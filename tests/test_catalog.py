"""Every catalog task, end to end through the real Executor on its fixture (or its packaged data),
with a scripted model whose answers give metric values worked out here independently."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sklearn.metrics import f1_score

from scripted import ScriptedModel
from taskgrove.config import build_config
from taskgrove.core import Choice
from taskgrove.runner.executor import Executor
from taskgrove.tasks.builtin import build_registry
from taskgrove.tasks.catalog import CATALOG_DIR, catalog_files
from taskgrove.tasks.sources.bigbench_rows import default_bigbench_root
from taskgrove.tasks.spec import read_yaml

FIXTURES = Path(__file__).parent / "fixtures" / "catalog"
FIXTURE_TASKS = sorted(
    p.parent.relative_to(FIXTURES).as_posix()
    for p in FIXTURES.rglob("*.jsonl")
    if p.name.startswith(("test", "dev", "validation"))
)
OFFLINE_TASKS = ["finance_offline/banking77", "finance_offline/finer_ner"]
INVALID = "<invalid>"


def fixture_source(name: str) -> str:
    """The documented way to point a catalog task at local rows: the run's task option ``source``."""
    return f"file:{FIXTURES / name}/{{split}}.jsonl"


def run(
    tmp_path: Path, name: str, model: Any, *, mode: str = "run", fixture: bool = True, **overrides: Any
) -> tuple[dict[str, Any], Any]:
    task_config = dict(overrides)
    if fixture:
        task_config["options"] = {"source": fixture_source(name), **task_config.get("options", {})}
    config = build_config(
        {
            "mode": mode,
            "tasks": [name],
            "output_dir": str(tmp_path),
            "progress": False,
            "task_config": {name: task_config},
        }
    )
    result = Executor(config, build_registry(plugins=False), model=model).run()
    return result.outcomes[name].metrics, result


def answers(table: dict[str, str]) -> ScriptedModel:
    """Replies chosen by a snippet of the item under test (the last user message)."""

    def script(messages: list[dict[str, Any]], tools: Any) -> str:
        last = messages[-1]["content"]
        hits = [reply for key, reply in table.items() if key in last]
        assert len(hits) == 1, f"no single scripted reply for: {last[:200]!r}"
        return hits[0]

    return ScriptedModel(script)


def value(metrics: dict[str, Any], name: str) -> float:
    return metrics[name]["value"]


def sk_f1(gold: list[str], pred: list[str | None], average: str, **kw: Any) -> float:
    """scikit-learn's F1 with unparsed answers as a class of their own that never counts."""
    labels = sorted(set(gold) | {p for p in pred if p is not None})
    return float(
        f1_score(
            gold, [p if p is not None else INVALID for p in pred], labels=labels, average=average, zero_division=0, **kw
        )
    )


def entity_f1(tp: int, n_pred: int, n_gold: int) -> float:
    p, r = tp / n_pred, tp / n_gold
    return 2 * p * r / (p + r) if p + r else 0.0


# --- the tree --------------------------------------------------------------------------------


def test_every_catalog_task_resolves_and_builds() -> None:
    registry = build_registry(plugins=False)
    names = sorted(read_yaml(file)["name"] for file in catalog_files())
    assert len(names) == 22
    assert registry.resolve(names) == names
    assert registry.resolve(["finance"]) == [n for n in registry.supported() if n.startswith("finance/")]
    assert set(registry.resolve(["treemark/similar"])) == {
        "treemark/similar/sst2",
        "treemark/similar/mnli",
        "treemark/similar/qqp",
    }
    assert registry.resolve(["fomc"]) == ["finance/fomc"]
    for name in names:
        task = registry.create(name)
        assert task.name == name
        assert task.primary_metric
        assert registry.entry(name).description, name


def test_every_hub_task_has_a_fixture_and_every_flame_task_is_there() -> None:
    hub = []
    for file in catalog_files():
        data = read_yaml(file)
        if isinstance(data.get("source"), str) and data["source"].startswith("hf:"):
            hub.append(data["name"])
    assert sorted(hub) == FIXTURE_TASKS
    flame = "numclaim fomc finer finentity causal_classification subjectiveqa ectsum fnxl refind banking77 convfinqa finqa tatqa causal_detection"
    assert {f"finance/{n}" for n in flame.split()} <= set(hub)
    assert {"treemark/similar/sst2", "treemark/similar/mnli", "treemark/similar/qqp"} <= set(hub)
    assert {
        "treemark/dissimilar/squad_v2",
        "treemark/dissimilar/cnn_dailymail",
        "treemark/dissimilar/codexglue",
    } <= set(hub)


def test_catalog_file_names_match_task_names() -> None:
    for file in catalog_files():
        assert read_yaml(file)["name"] == file.relative_to(CATALOG_DIR).with_suffix("").as_posix()


def test_hub_ids_are_real_dataset_ids() -> None:
    sources = {read_yaml(f)["name"]: read_yaml(f)["source"] for f in catalog_files()}
    assert sources["finance/fomc"] == "hf:gtfintechlab/fomc_communication"
    assert sources["finance/finer"] == "hf:gtfintechlab/finer-ord-bio"
    assert sources["treemark/similar/sst2"] == "hf:nyu-mll/glue:sst2"
    assert sources["treemark/dissimilar/squad_v2"] == "hf:rajpurkar/squad_v2"
    assert sources["treemark/dissimilar/codexglue"] == "hf:google/code_x_glue_ct_code_to_text:python"


def test_missing_hub_dataset_fails_the_task_with_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    config = build_config({"mode": "run", "tasks": ["finance/fomc"], "output_dir": str(tmp_path), "progress": False})
    from taskgrove.errors import MultiTaskError

    with pytest.raises(MultiTaskError) as caught:
        Executor(config, build_registry(plugins=False), model=answers({})).run()
    message = str(caught.value)
    assert "gtfintechlab/fomc_communication" in message


def test_cli_tasks_prints_the_tree_quickly() -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    done = subprocess.run([sys.executable, "-m", "taskgrove", "tasks"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "finance/ (14)" in out and "finance_offline/ (2)" in out and "treemark/ (6)" in out
    assert "    sst2" in out and "fomc" in out
    probe = "import sys, taskgrove.tasks.builtin as r; r.build_registry(); print(sorted(m for m in ('pydantic', 'jinja2', 'datasets', 'torch', 'sklearn') if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    ).stdout.strip()
    assert loaded == "[]"


# --- classification tasks ------------------------------------------------------------------------


def test_fomc(tmp_path: Path) -> None:
    model = answers(
        {
            "strongly committed": "HAWKISH",
            "0 to 1/4 percent": "NEUTRAL",
            "little changed": "Neutral.",
            "Lower interest rates": "DOVISH - easing",
            "tighter policy": "I cannot tell.",
        }
    )
    metrics, _ = run(tmp_path, "finance/fomc", model)
    gold = ["HAWKISH", "DOVISH", "NEUTRAL", "DOVISH", "HAWKISH"]
    pred = ["HAWKISH", "NEUTRAL", "NEUTRAL", "DOVISH", None]
    assert value(metrics, "accuracy") == pytest.approx(0.6)
    assert value(metrics, "f1_weighted") == pytest.approx(sk_f1(gold, pred, "weighted")) == pytest.approx(2 / 3)
    assert value(metrics, "f1_macro") == pytest.approx(2 / 3)
    assert value(metrics, "unparsable") == pytest.approx(0.2)
    assert value(metrics, "reward") == pytest.approx(0.6)
    assert metrics["f1_weighted"]["ci_low"] <= 2 / 3 <= metrics["f1_weighted"]["ci_high"]


def test_numclaim_binary_f1(tmp_path: Path) -> None:
    model = answers(
        {
            "$2.10": "INCLAIM\nIt is a forecast.",
            "4,500": "OUTOFCLAIM",
            "15% return": "OUTOFCLAIM",
            "Net debt": "OUTOFCLAIM",
        }
    )
    metrics, _ = run(tmp_path, "finance/numclaim", model, prompt_format="few_shot", num_fewshot=2)
    assert value(metrics, "accuracy") == pytest.approx(0.75)
    assert value(metrics, "f1_binary") == pytest.approx(2 / 3)
    assert value(metrics, "precision_binary") == pytest.approx(1.0)
    assert value(metrics, "recall_binary") == pytest.approx(0.5)


def test_causal_classification_macro_f1(tmp_path: Path) -> None:
    model = answers({"new product launch": "1", "board met": "0", "slowed housing": "1", "strike caused": "Label: 1"})
    metrics, _ = run(tmp_path, "finance/causal_classification", model)
    assert value(metrics, "accuracy") == pytest.approx(0.75)
    assert value(metrics, "f1_macro") == pytest.approx((1 + 0.8 + 0) / 3)
    assert value(metrics, "f1_macro") == pytest.approx(sk_f1(["1", "0", "2", "1"], ["1", "0", "1", "1"], "macro"))


def test_subjectiveqa_one_scenario_per_feature(tmp_path: Path) -> None:
    by_feature = {
        "RELEVANT": "2",
        "SPECIFIC": "1",
        "CAUTIOUS": "1",
        "ASSERTIVE": "2",
        "CLEAR": "Rating: 2",
        "OPTIMISTIC": "2",
    }
    model = answers({f"feature: {feature} and": reply for feature, reply in by_feature.items()})
    metrics, result = run(tmp_path, "finance/subjectiveqa", model, prompt_format="few_shot", num_fewshot=1)
    records = list(result.store.task("finance/subjectiveqa").records())
    assert sorted(r["id"] for r in records) == sorted(f"0/{f}" for f in by_feature)
    gold = ["2", "1", "0", "2", "2", "1"]
    pred = ["2", "1", "1", "2", "2", "2"]
    assert value(metrics, "accuracy") == pytest.approx(4 / 6)
    assert value(metrics, "f1_weighted") == pytest.approx(sk_f1(gold, pred, "weighted"))
    for record in records:  # [system, demonstration, its answer, item]: a demonstration of the same feature
        feature = record["id"].split("/")[1]
        demo = record["input"][1]["content"]
        assert f"feature: {feature} and" in demo and ("Demand is strong" in demo or "We will see" in demo)
        assert record["input"][2]["content"] in "012"


def test_refind_aliases_and_weighted_f1(tmp_path: Path) -> None:
    model = answers({"Chief Executive": "PERSON/TITLE", "Beta Corp": "The relation is ORG-GPE", "Gamma": "ORG/ORG"})
    metrics, result = run(tmp_path, "finance/refind", model)
    assert value(metrics, "accuracy") == pytest.approx(2 / 3)
    gold = ["PERSON/TITLE", "ORG/GPE", "ORG/MONEY"]
    assert value(metrics, "f1_weighted") == pytest.approx(
        sk_f1(gold, ["PERSON/TITLE", "ORG/GPE", "ORG/ORG"], "weighted")
    )
    prompt = next(iter(result.store.task("finance/refind").records()))["input"][-1]["content"]
    # FLaME shows the span from ENT1 to ENT2 and skips the token after ENT1 ("serves")
    assert prompt.endswith("Text about entities: [ENT1] John Roe [/ENT1] as [ENT2] Chief Executive Officer [/ENT2]")


def test_banking77(tmp_path: Path) -> None:
    model = answers(
        {
            "still pending": "pending_transfer",
            "card arrive": "Category: card_arrival",
            "lost my card": "card_not_working",
        }
    )
    metrics, _ = run(tmp_path, "finance/banking77", model)
    assert value(metrics, "accuracy") == pytest.approx(2 / 3)
    gold = ["pending_transfer", "card_arrival", "lost_or_stolen_card"]
    assert value(metrics, "f1_weighted") == pytest.approx(
        sk_f1(gold, ["pending_transfer", "card_arrival", "card_not_working"], "weighted")
    )


def test_sst2(tmp_path: Path) -> None:
    model = answers({"charming": "positive", "bleak": "negative", "nolan": "Negative.", "astounding": "Positive"})
    metrics, _ = run(tmp_path, "treemark/similar/sst2", model, prompt_format="few_shot", num_fewshot=3)
    assert value(metrics, "accuracy") == pytest.approx(0.75)
    gold, pred = ["positive", "negative", "positive", "positive"], ["positive", "negative", "negative", "positive"]
    assert value(metrics, "f1_macro") == pytest.approx(sk_f1(gold, pred, "macro"))


def test_mnli(tmp_path: Path) -> None:
    model = answers(
        {
            "newest benefits": "neutral",
            "list of winners": "entailment",
            "mixed emotions": "contradiction",
            "hundred miles": "contradiction",
        }
    )
    metrics, _ = run(tmp_path, "treemark/similar/mnli", model)
    assert value(metrics, "accuracy") == pytest.approx(0.75)
    gold = ["neutral", "entailment", "neutral", "contradiction"]
    assert value(metrics, "f1_macro") == pytest.approx(
        sk_f1(gold, ["neutral", "entailment", "contradiction", "contradiction"], "macro")
    )


def test_qqp_yes_no_answers(tmp_path: Path) -> None:
    model = answers(
        {
            "African-Americans": "No.",
            "PhD in Computer": "Yes",
            "travel alone": "no, not duplicate",
            "make money": "They are not duplicate.",
        }
    )
    metrics, _ = run(tmp_path, "treemark/similar/qqp", model, prompt_format="few_shot", num_fewshot=2)
    assert value(metrics, "accuracy") == pytest.approx(0.75)
    assert value(metrics, "f1_binary") == pytest.approx(2 / 3)  # tp 1, fn 1, fp 0


# --- extraction tasks ----------------------------------------------------------------------------


def test_finer_entities(tmp_path: Path) -> None:
    model = answers(
        {
            "Silicon Valley Bank lent": "Silicon Valley Bank - ORG\nJohn Smith - PER\nBoston - ORG",
            "The market fell": "None",
            "Apple hired": "- Apple - ORG",
        }
    )
    metrics, result = run(tmp_path, "finance/finer", model, prompt_format="few_shot", num_fewshot=1)
    assert value(metrics, "entity_precision") == pytest.approx(3 / 4)
    assert value(metrics, "entity_recall") == pytest.approx(3 / 5)
    assert value(metrics, "entity_f1") == pytest.approx(entity_f1(3, 4, 5))
    first = next(iter(result.store.task("finance/finer").records()))
    assert first["reference"] == [["Silicon Valley Bank", "ORG"], ["John Smith", "PER"], ["Boston", "LOC"]]


def test_finentity(tmp_path: Path) -> None:
    model = answers({"Apple shares rose": "Apple - Positive\nBoeing - Positive", "FAA reviewed": "FAA - Neutral"})
    metrics, _ = run(tmp_path, "finance/finentity", model)
    assert value(metrics, "entity_f1") == pytest.approx(entity_f1(2, 3, 3))


def test_fnxl_json_answers(tmp_path: Path) -> None:
    model = answers(
        {
            "12.5 million": '```json\n{"12.5": "us-gaap:Revenues", "3.2": "us-gaap:Other"}\n```',
            "100 shares": "I do not know.",
        }
    )
    metrics, _ = run(tmp_path, "finance/fnxl", model, prompt_format="few_shot", num_fewshot=1)
    # the unparsable reply is one false positive, and its gold a miss
    assert value(metrics, "entity_precision") == pytest.approx(1 / 3)
    assert value(metrics, "entity_recall") == pytest.approx(1 / 3)
    assert value(metrics, "entity_f1") == pytest.approx(entity_f1(1, 3, 3))
    assert value(metrics, "unparsable") == pytest.approx(0.5)


def test_fnxl_numerals_compared_as_numbers_and_python_literal_replies(tmp_path: Path) -> None:
    model = answers(
        {
            "12.5 million": "{'12.50': 'us-gaap:revenues', '3.2': 'us-gaap:OperatingExpenses',}",
            "100 shares": '{"100.0": "us-gaap:StockIssuedDuringPeriodSharesNewIssues"}',
        }
    )
    metrics, _ = run(tmp_path, "finance/fnxl", model)
    assert value(metrics, "entity_f1") == pytest.approx(1.0)
    assert value(metrics, "unparsable") == 0.0


def test_causal_detection_spans(tmp_path: Path) -> None:
    model = answers(
        {
            "Sales fell": "demand weakened - CAUSE\nSales fell - CAUSE",
            "storm closed": "storm - CAUSE\nclosed the plant - EFFECT",
        }
    )
    metrics, _ = run(tmp_path, "finance/causal_detection", model)
    assert value(metrics, "entity_f1") == pytest.approx(entity_f1(3, 4, 4))


# --- numeric and QA tasks ------------------------------------------------------------------------


def test_convfinqa_numeric_match(tmp_path: Path) -> None:
    model = answers(
        {
            "percentage change": "It went from 100 to 120, so 20 percent.",
            "fraction of revenue": "80/120 = 0.667",
            "2019 profit": "The answer is 45",
        }
    )
    metrics, _ = run(tmp_path, "finance/convfinqa", model)
    assert value(metrics, "numeric_match") == pytest.approx(2 / 3)


def test_finqa_numeric_match(tmp_path: Path) -> None:
    model = answers({"growth rate": "Growth was 0.2", "increase in costs": "Costs rose by 10.5 million"})
    metrics, _ = run(tmp_path, "finance/finqa", model)
    assert value(metrics, "numeric_match") == pytest.approx(0.5)


def test_tatqa_last_line_squad_scores(tmp_path: Path) -> None:
    model = answers(
        {
            "revenue higher": "Revenue was 120 in 2019.\nThe answer is 2019",
            "two revenue sources": "Product sales, Services",
        }
    )
    metrics, _ = run(tmp_path, "finance/tatqa", model)
    assert value(metrics, "squad_em") == pytest.approx(0.5)
    assert value(metrics, "squad_f1") == pytest.approx((0.5 + 1.0) / 2)  # "answer is 2019" vs "2019": P 1/3, R 1


def test_squad_v2_with_unanswerable(tmp_path: Path) -> None:
    model = answers(
        {"Which team won": "Denver Broncos", "sang the anthem": "Unanswerable", "treaty signed": "in 1990 or so"}
    )
    metrics, _ = run(tmp_path, "treemark/dissimilar/squad_v2", model, prompt_format="few_shot", num_fewshot=2)
    assert value(metrics, "squad_em") == pytest.approx(2 / 3)
    assert value(metrics, "squad_f1") == pytest.approx((1 + 1 + 2 / 3) / 3)
    assert value(metrics, "unparsable") == 0.0


def test_squad_v2_empty_reply_is_unparsable_not_no_answer(tmp_path: Path) -> None:
    model = answers({"Which team won": "Broncos", "sang the anthem": "  ", "treaty signed": "1990"})
    metrics, _ = run(tmp_path, "treemark/dissimilar/squad_v2", model)
    assert value(metrics, "squad_em") == pytest.approx(2 / 3)  # the empty reply scores 0, not "no answer"
    assert value(metrics, "unparsable") == pytest.approx(1 / 3)


# --- generation tasks ----------------------------------------------------------------------------


def test_ectsum_rouge(tmp_path: Path) -> None:
    model = answers(
        {"$3.4 billion": "q revenue $3.4 billion, up 8%\nraises guidance", "Net loss narrowed": "zebra quartz"}
    )
    metrics, _ = run(tmp_path, "finance/ectsum", model)
    for name in ("rougeL", "rouge1", "rouge2"):
        assert value(metrics, name) == pytest.approx(0.5)


def test_cnn_dailymail_rouge(tmp_path: Path) -> None:
    summary = "Drivers are told to stay home .\nHeavy rains flood roads ."
    model = answers({"white tiger": "A rare white tiger is born at the zoo .", "Heavy rain": summary})
    metrics, result = run(tmp_path, "treemark/dissimilar/cnn_dailymail", model)
    from rouge_score import rouge_scorer

    gold = "Heavy rain floods roads across the region .\nDrivers are told to stay at home ."
    # primary: ROUGE-Lsum, stemmed, sentences split on newlines (union LCS over sentence pairs)
    lsum = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=True).score(gold, summary)["rougeLsum"].fmeasure
    # TreeMark's ROUGE-L: one LCS over the whole text, no stemming
    plain = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False).score(gold, summary)["rougeL"].fmeasure
    # by hand: sentence 1 of the summary matches "drivers are told to stay home" (6 of gold's 7
    # words in sentence 2), sentence 2 matches "heavy rain(s) flood(s) roads" only when stemmed
    # (4 words) -> union LCS 10 of 14 gold tokens, 10 of 10 summary tokens: F = 2*10/(14+10)
    assert lsum == pytest.approx(2 * 10 / 24)
    assert value(metrics, "rougeLsum") == pytest.approx((1.0 + lsum) / 2)
    assert value(metrics, "rougeL") == pytest.approx((1.0 + plain) / 2) and plain < lsum
    stored = json.loads(result.store.task("treemark/dissimilar/cnn_dailymail").metrics_path.read_text())
    assert stored["primary_metric"] == "rougeLsum" and stored["version"] == 2


def test_codexglue_bleu(tmp_path: Path) -> None:
    first = "Read the configuration file at path and return it as a dict ."
    model = answers({"read_config": first, "def mean": "Compute the mean of numbers ."})
    metrics, _ = run(tmp_path, "treemark/dissimilar/codexglue", model)
    import sacrebleu

    refs = [first, "Return the arithmetic mean of a list of numbers ."]
    expected = sacrebleu.corpus_bleu([first, "Compute the mean of numbers ."], [refs]).score
    assert value(metrics, "bleu") == pytest.approx(expected / 100)  # stored on [0, 1]
    assert 0 < expected < 100
    # primary: CodeXGLUE's smoothed BLEU-4 averaged over samples. The second by hand: unigrams 5
    # of 6 ("compute" is not in the gold), bigrams 3 of 5 ("the mean" is not), trigrams 1 of 4,
    # 4-grams 0 of 3; add-one smoothing above unigrams; log brevity penalty 1 - (10 + 1) / (6 + 1)
    second = math.exp((math.log(5 / 6) + math.log(4 / 6) + math.log(2 / 5) + math.log(1 / 4)) / 4 + 1 - 11 / 7)
    assert value(metrics, "smoothed_bleu_4") == pytest.approx((1.0 + second) / 2)


# --- offline tasks on their packaged data --------------------------------------------------------


def _evals_rows(name: str) -> list[dict[str, Any]]:
    from taskgrove.tasks.sources import load_rows

    return list(load_rows(f"openai-evals:{name}", "test"))


def test_offline_banking77_on_packaged_data(tmp_path: Path) -> None:
    rows = _evals_rows("banking77")
    gold = {row["input"][-1]["content"]: row["ideal"] for row in rows}
    # right on the first five queries, one fixed (wrong unless it is the gold) label after that
    first_five = {row["input"][-1]["content"] for row in rows[:5]}
    model = ScriptedModel(
        lambda messages, tools: (
            gold[messages[-1]["content"]] if messages[-1]["content"] in first_five else "card_arrival"
        )
    )
    metrics, _ = run(tmp_path, "finance_offline/banking77", model, fixture=False)
    expected = (5 + sum(row["ideal"] == "card_arrival" for row in rows[5:])) / len(rows)
    assert value(metrics, "accuracy") == pytest.approx(expected)
    assert metrics["accuracy"]["n"] == 10


def test_offline_finer_ner_on_packaged_data(tmp_path: Path) -> None:
    rows = _evals_rows("ner_finance")[:20]
    ideal = {row["input"][-1]["content"]: row["ideal"] for row in rows}

    def script(messages: list[dict[str, Any]], tools: Any) -> str:
        gold = ideal[messages[-1]["content"]]
        return f"Let me think step by step.\nFinal answer: {gold}" if gold.startswith("[") else "No entities found"

    metrics, _ = run(tmp_path, "finance_offline/finer_ner", model=ScriptedModel(script), fixture=False, limit=20)
    assert value(metrics, "entity_f1") == pytest.approx(1.0)

    # drop the last entity of every answer: recall falls by exactly the dropped count
    def partial(messages: list[dict[str, Any]], tools: Any) -> str:
        gold = ideal[messages[-1]["content"]]
        if not gold.startswith("["):
            return "No entities found"
        kept = gold.strip("[]").split(", ")[:-1]
        return f"[{', '.join(kept)}]" if kept else "No entities found"

    metrics, _ = run(
        tmp_path / "partial", "finance_offline/finer_ner", model=ScriptedModel(partial), fixture=False, limit=20
    )
    n_gold = sum(len(row["ideal"].strip("[]").split(", ")) for row in rows if row["ideal"].startswith("["))
    dropped = sum(1 for row in rows if row["ideal"].startswith("["))
    assert value(metrics, "entity_precision") == pytest.approx(1.0)
    assert value(metrics, "entity_recall") == pytest.approx((n_gold - dropped) / n_gold)


# --- modes ---------------------------------------------------------------------------------------


def test_evaluate_mode_rescoring_gives_the_same_metrics(tmp_path: Path) -> None:
    model = answers(
        {
            "strongly committed": "HAWKISH",
            "0 to 1/4": "NEUTRAL",
            "little changed": "NEUTRAL",
            "Lower interest": "DOVISH",
            "tighter policy": "HAWKISH",
        }
    )
    first, result = run(tmp_path, "finance/fomc", model, prompt_format="few_shot", num_fewshot=2, seed=7)
    config = build_config(
        {
            "mode": "evaluate",
            "tasks": ["finance/fomc"],
            "file_name": str(result.store.root),
            "output_dir": str(tmp_path),
            "progress": False,
            "task_config": {
                "finance/fomc": {
                    "options": {"source": fixture_source("finance/fomc")},
                    "prompt_format": "few_shot",
                    "num_fewshot": 2,
                    "seed": 7,
                }
            },
        }
    )
    again = Executor(config, build_registry(plugins=False)).run()
    assert again.outcomes["finance/fomc"].metrics == first
    assert value(first, "accuracy") == pytest.approx(0.8)


class ScoringModel(ScriptedModel):
    """Scores continuations: the choice named in the item's snippet table gets the highest log-likelihood."""

    def __init__(self, favourite: dict[str, str]) -> None:
        super().__init__(lambda messages, tools: pytest.fail("a scoring model is never asked to generate"))
        self.favourite = favourite
        self.scored: list[list[str]] = []

    async def loglikelihood(self, context: list[dict[str, Any]], continuations: list[str]) -> list[float]:
        self.scored.append(list(continuations))
        want = next(choice for key, choice in self.favourite.items() if key in context[-1]["content"])
        return [0.0 if c == want else -5.0 for c in continuations]


def test_multiple_choice_by_loglikelihood_then_replayed(tmp_path: Path) -> None:
    model = ScoringModel(
        {"African-Americans": "no", "PhD in Computer": "yes", "travel alone": "no", "make money": "no"}
    )
    metrics, result = run(tmp_path, "treemark/similar/qqp", model)
    assert model.scored == [["no", "yes"]] * 4
    assert value(metrics, "accuracy") == pytest.approx(0.75)
    records = list(result.store.task("treemark/similar/qqp").records())
    assert all(r["outputs"][0]["messages"][0]["choice"]["finish_reason"] == "loglikelihood" for r in records)
    assert records[0]["outputs"][0]["metadata"]["loglikelihoods"] == [0.0, -5.0]
    config = build_config(
        {
            "mode": "evaluate",
            "tasks": ["treemark/similar/qqp"],
            "file_name": str(result.store.root),
            "output_dir": str(tmp_path),
            "progress": False,
            "task_config": {"treemark/similar/qqp": {"options": {"source": fixture_source("treemark/similar/qqp")}}},
        }
    )
    again = Executor(config, build_registry(plugins=False)).run()
    assert value(again.outcomes["treemark/similar/qqp"].metrics, "accuracy") == pytest.approx(0.75)


def test_metrics_json_names_the_primary_metric(tmp_path: Path) -> None:
    model = answers(
        {"still pending": "pending_transfer", "card arrive": "card_arrival", "lost my card": "lost_or_stolen_card"}
    )
    _, result = run(tmp_path, "finance/banking77", model)
    stored = json.loads(result.store.task("finance/banking77").metrics_path.read_text())
    assert stored["primary_metric"] == "f1_weighted"
    assert stored["metrics"]["f1_weighted"]["value"] == pytest.approx(1.0)


def test_num_samples_gives_one_trajectory_each(tmp_path: Path) -> None:
    replies = iter(["positive", "negative"] * 8)
    model = ScriptedModel(lambda messages, tools: next(replies))
    metrics, result = run(tmp_path, "treemark/similar/sst2", model, num_samples=2)
    records = list(result.store.task("treemark/similar/sst2").records())
    assert all(len(r["outputs"]) == 2 for r in records)
    assert value(metrics, "accuracy") == pytest.approx(0.5)
    assert metrics["f1_macro"]["n"] == 4  # items, not outputs: the 2 outputs of an item are resampled together
    stored = json.loads(result.store.task("treemark/similar/sst2").metrics_path.read_text())
    assert stored["num_samples"] == 2 and stored["n"] == 4


def test_choice_objects_from_a_model_are_scored_by_content(tmp_path: Path) -> None:
    model = ScriptedModel(lambda messages, tools: Choice("HAWKISH", usage={"completion_tokens": 1}))
    metrics, _ = run(tmp_path, "finance/fomc", model)
    assert value(metrics, "accuracy") == pytest.approx(2 / 5)


QUICKSTART_BIGBENCH = "bigbench/mathematics/arithmetic/1_digit_multiplication"


@pytest.mark.skipif(
    not (default_bigbench_root() / "arithmetic" / "task.json").is_file(),
    reason="BIG-bench arithmetic not fetched (scripts/setup.sh runs scripts/fetch_bigbench.py --tasks arithmetic)",
)
def test_quickstart_config_runs_end_to_end(tmp_path: Path) -> None:
    """configs/quickstart.yaml with a scripted model in place of the embedded one."""
    root = Path(__file__).parents[1]
    config = build_config(
        {"output_dir": str(tmp_path), "progress": False}, yaml_file=root / "configs" / "quickstart.yaml"
    )
    assert config.model is None  # the embedded default model
    registry = build_registry(plugins=False)
    assert registry.resolve(config.tasks) == [
        QUICKSTART_BIGBENCH,
        "finance_offline/banking77",
        "finance_offline/finer_ner",
        "code/humaneval",
    ]

    def reply(messages: list[dict[str, Any]], tools: Any) -> str:
        asked = re.findall(r"What is (\d+) times (\d+)\?", messages[-1]["content"])
        if asked:  # BIG-bench multiplication: right on every item
            a, b = asked[-1]
            return f"{int(a) * int(b)}\n"
        return "No entities found" if "named entities" in messages[0]["content"] else "card_arrival"

    model = ScriptedModel(reply)
    result = Executor(config, registry, model=model).run()
    assert {name: outcome.samples for name, outcome in result.outcomes.items()} == {
        QUICKSTART_BIGBENCH: 80,
        "finance_offline/banking77": 10,
        "finance_offline/finer_ner": 20,
        "code/humaneval": 5,
    }
    stored = json.loads(result.store.task(QUICKSTART_BIGBENCH).metrics_path.read_text())
    assert stored["metrics"]["exact_match"]["value"] == pytest.approx(1.0)
    by_tokens = {call["sampling"]["max_tokens"]: call["messages"] for call in model.calls}
    assert [m["role"] for m in by_tokens[16]] == ["system", "user", "assistant"] * 1 + ["user", "assistant"] * 2 + [
        "user"
    ]
    arithmetic = by_tokens[4]  # three demonstrations from the train split, then the item
    assert [m["role"] for m in arithmetic] == ["user", "assistant"] * 3 + ["user"]


@pytest.mark.skipif(
    not (default_bigbench_root() / "arithmetic" / "task.json").is_file(), reason="BIG-bench arithmetic not fetched"
)
def test_loop_config_is_a_multi_task_lora_on_four_arithmetic_leaves() -> None:
    """configs/loop.yaml (README's core loop) resolves as documented: no hub, LoRA rank 8, evaluated."""
    from taskgrove.train.presets import resolve_train_config

    data = read_yaml(Path(__file__).parents[1] / "configs" / "loop.yaml")
    registry = build_registry(plugins=False)
    names = registry.resolve(data["tasks"])
    assert names == [
        f"bigbench/mathematics/arithmetic/1_digit_{op}"
        for op in ("addition", "division", "multiplication", "subtraction")
    ]
    options = {k: v for k, v in data.items() if k != "tasks"}
    config = resolve_train_config(
        {n: registry.create(n) for n in names}, requests=data["tasks"], yaml_data=options, cli={}
    )
    assert (config.run_name, config.kind, config.method, config.lora_rank) == (
        "arithmetic_1digit_LoRA_8",
        "multi",
        "lora",
        8,
    )
    assert config.evaluate and config.eval_split == "test" and config.split == "train"


# --- unparsable replies (issue #10) --------------------------------------------------------------


def test_constant_x_model_earns_nothing_on_finer_ner(tmp_path: Path) -> None:
    """An unparsable reply is wrong, also where the gold has no entities (it used to score 0.49)."""
    metrics, _ = run(tmp_path, "finance_offline/finer_ner", ScriptedModel(lambda m, t: "x"), fixture=False)
    assert metrics["reward"]["n"] == 1164
    assert value(metrics, "reward") <= 0.05
    assert value(metrics, "unparsable") == 1.0
    assert value(metrics, "entity_f1") == 0.0


FOMC_REPLIES = {
    "strongly committed": "HAWKISH",
    "0 to 1/4": "hawkish or dovish",  # a hedge: unparsable
    "little changed": "NEUTRAL",
    "Lower interest": "x",  # unparsable
    "tighter policy": "DOVISH",
}


def test_invalid_wrong_counts_unparsable_replies_as_wrong(tmp_path: Path) -> None:
    metrics, _ = run(tmp_path, "finance/fomc", answers(FOMC_REPLIES))
    assert value(metrics, "accuracy") == pytest.approx(2 / 5)
    assert value(metrics, "reward") == pytest.approx(2 / 5)
    assert value(metrics, "unparsable") == pytest.approx(2 / 5)
    gold = ["HAWKISH", "DOVISH", "NEUTRAL", "DOVISH", "HAWKISH"]
    pred = ["HAWKISH", None, "NEUTRAL", None, "DOVISH"]
    assert value(metrics, "f1_weighted") == pytest.approx(sk_f1(gold, pred, "weighted"))


def test_invalid_drop_leaves_unparsable_replies_out_as_flame_does(tmp_path: Path) -> None:
    metrics, _ = run(tmp_path, "finance/fomc", answers(FOMC_REPLIES), options={"invalid": "drop"})
    # FLaME's fomc_evaluate: rows whose label could not be extracted (-1) are removed first
    gold = ["HAWKISH", "NEUTRAL", "HAWKISH"]
    pred = ["HAWKISH", "NEUTRAL", "DOVISH"]
    assert value(metrics, "accuracy") == pytest.approx(2 / 3)
    assert metrics["accuracy"]["n"] == 3
    assert value(metrics, "reward") == pytest.approx(2 / 3)
    assert value(metrics, "unparsable") == pytest.approx(2 / 5)  # still reported over every reply
    assert value(metrics, "f1_weighted") == pytest.approx(sk_f1(gold, pred, "weighted"))
    with pytest.raises(Exception, match="invalid must be one of wrong, drop"):
        run(tmp_path / "bad", "finance/fomc", answers(FOMC_REPLIES), options={"invalid": "skip"})


def test_cli_tasks_verbose_shows_metric_and_differences() -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    done = subprocess.run(
        [sys.executable, "-m", "taskgrove", "tasks", "-v", "finance"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    blocks = [b for b in done.stdout.split("\n\n") if b.startswith("finance/")]
    assert len(blocks) == 14
    for block in blocks:
        assert "primary metric: " in block and "differences: " in block and "none documented" not in block, block
    assert "primary metric: f1_weighted" in blocks[0] and "unparsable replies: wrong" in blocks[0]


def test_invalid_drop_as_a_run_setting(tmp_path: Path) -> None:
    config = build_config(
        {
            "mode": "run",
            "tasks": ["finance/fomc"],
            "output_dir": str(tmp_path),
            "progress": False,
            "invalid": "drop",
            "task_config": {"finance/fomc": {"options": {"source": fixture_source("finance/fomc")}}},
        }
    )
    result = Executor(config, build_registry(plugins=False), model=answers(FOMC_REPLIES)).run()
    metrics = result.outcomes["finance/fomc"].metrics
    assert value(metrics, "accuracy") == pytest.approx(2 / 3) and metrics["accuracy"]["n"] == 3
    # a task's own option wins over the run's
    config = build_config(
        {
            "mode": "run",
            "tasks": ["finance/fomc"],
            "output_dir": str(tmp_path / "own"),
            "progress": False,
            "invalid": "drop",
            "task_config": {
                "finance/fomc": {"invalid": "wrong", "options": {"source": fixture_source("finance/fomc")}}
            },
        }
    )
    result = Executor(config, build_registry(plugins=False), model=answers(FOMC_REPLIES)).run()
    assert value(result.outcomes["finance/fomc"].metrics, "accuracy") == pytest.approx(2 / 5)
