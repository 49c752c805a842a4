"""FLaME's inference CSVs scored by `taskgrove evaluate --file_name x.csv` (columns as FLaME's
inference scripts write them, cells as pandas writes them)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.metrics import accuracy_score, f1_score

SRC = Path(__file__).parents[1] / "src"


def evaluate(tmp_path: Path, task: str, csv_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    args = ["evaluate", "--tasks", task, "--file_name", str(csv_path), "--output_dir", str(tmp_path / "out")]
    return subprocess.run([sys.executable, "-m", "taskgrove", *args], capture_output=True, text=True, env=env)


def metrics_of(tmp_path: Path, task: str) -> dict:
    (path,) = list((tmp_path / "out").rglob("metrics.json"))
    stored = json.loads(path.read_text())
    assert stored["task"] == task
    return stored["metrics"]


def write_csv(path: Path, columns: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def test_fomc_csv_is_scored_like_a_taskgrove_run(tmp_path: Path) -> None:
    # fomc_inference.py: sentences, llm_responses, actual_labels (0 dovish, 1 hawkish, 2 neutral), complete_responses
    replies = ["HAWKISH", "The stance is dovish.", "", "hawkish or dovish", "NEUTRAL"]
    gold = [1, 0, 2, 0, 1]
    path = write_csv(
        tmp_path / "fomc_results.csv",
        ["sentences", "llm_responses", "actual_labels", "complete_responses"],
        [[f"s{i}", r, g, "ModelResponse(...)"] for i, (r, g) in enumerate(zip(replies, gold, strict=True))],
    )
    done = evaluate(tmp_path, "finance/fomc", path)
    assert done.returncode == 0, done.stderr
    metrics = metrics_of(tmp_path, "finance/fomc")
    names = {0: "DOVISH", 1: "HAWKISH", 2: "NEUTRAL"}
    truth = [names[g] for g in gold]
    pred = ["HAWKISH", "DOVISH", "<invalid>", "<invalid>", "NEUTRAL"]  # empty cell and hedge: unparsable
    assert metrics["accuracy"]["value"] == pytest.approx(accuracy_score(truth, pred))
    assert metrics["f1_weighted"]["value"] == pytest.approx(
        f1_score(truth, pred, labels=sorted(set(truth) | set(pred)), average="weighted", zero_division=0)
    )
    assert metrics["unparsable"]["value"] == pytest.approx(2 / 5)


def test_subjectiveqa_csv_has_one_sample_per_feature(tmp_path: Path) -> None:
    features = ["RELEVANT", "SPECIFIC", "CAUTIOUS", "ASSERTIVE", "CLEAR", "OPTIMISTIC"]
    columns = ["questions", "answers", *(f"{f}_response" for f in features), *(f"{f}_actual_label" for f in features)]
    rows = [["q0", "a0", *["2"] * 6, *[2, 2, 2, 1, 1, 1]], ["q1", "a1", *["-1"] * 6, *[0] * 6]]
    path = write_csv(tmp_path / "subjectiveqa.csv", columns, rows)
    done = evaluate(tmp_path, "finance/subjectiveqa", path)
    assert done.returncode == 0, done.stderr
    metrics = metrics_of(tmp_path, "finance/subjectiveqa")
    assert metrics["accuracy"]["n"] == 12
    assert metrics["accuracy"]["value"] == pytest.approx(3 / 12)  # "-1" is not the label 1
    assert metrics["unparsable"]["value"] == pytest.approx(6 / 12)


def test_finer_csv_reads_token_and_tag_lists(tmp_path: Path) -> None:
    # finer_inference.py writes the token list (sentences) and integer BIO tags as Python literals
    tokens = ["Silicon", "Valley", "Bank", "hired", "John", "Smith", "."]
    tags = [5, 6, 6, 0, 1, 2, 0]
    path = write_csv(
        tmp_path / "finer.csv",
        ["sentences", "llm_responses", "actual_labels", "complete_responses"],
        [[repr(tokens), "Silicon Valley Bank - ORG\nJohn Smith - LOC", repr(tags), ""]],
    )
    done = evaluate(tmp_path, "finance/finer", path)
    assert done.returncode == 0, done.stderr
    metrics = metrics_of(tmp_path, "finance/finer")
    assert metrics["entity_precision"]["value"] == pytest.approx(1 / 2)
    assert metrics["entity_recall"]["value"] == pytest.approx(1 / 2)


def test_csv_errors_are_one_line_usage_errors(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", ["llm_responses"], [["HAWKISH"]])
    done = evaluate(tmp_path, "finance/fomc", path)
    assert done.returncode == 2 and "no column(s) actual_labels" in done.stderr and "Traceback" not in done.stderr
    done = evaluate(tmp_path / "b", "finance_offline/banking77", path)
    assert done.returncode == 2 and "FLaME's tasks only" in done.stderr


def test_banking77_and_finqa_csvs(tmp_path: Path) -> None:
    # banking77_inference.py: integer label ids in FLaME's category order
    path = write_csv(
        tmp_path / "banking77.csv",
        ["documents", "llm_responses", "actual_labels", "complete_responses"],
        [["q0", "activate_my_card", 0, ""], ["q1", "Refund not showing up", 51, ""], ["q2", "age_limit", 53, ""]],
    )
    done = evaluate(tmp_path, "finance/banking77", path)
    assert done.returncode == 0, done.stderr
    assert metrics_of(tmp_path, "finance/banking77")["accuracy"]["value"] == pytest.approx(2 / 3)
    # finqa_inference.py: response / actual_label; the gold in the report's units
    path = write_csv(
        tmp_path / "finqa.csv",
        ["context", "response", "actual_label", "complete_responses"],
        [["c0", "Revenue grew 20% in 2019.", "20%", ""], ["c1", "The increase was $10 million.", "10", ""]],
    )
    done = evaluate(tmp_path / "finqa", "finance/finqa", path)
    assert done.returncode == 0, done.stderr
    assert metrics_of(tmp_path / "finqa", "finance/finqa")["numeric_match"]["value"] == 1.0
