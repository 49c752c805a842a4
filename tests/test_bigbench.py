"""The bigbench/ subtree: keyword layout, registration from the index, and BIG-bench tasks run end
to end through the real Executor on small task.json fixtures (and on the real data when present)."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest

from scripted import ScriptedModel
from taskgrove.config import build_config
from taskgrove.metrics import get_metric
from taskgrove.registry import TaskRegistry
from taskgrove.runner.executor import Executor
from taskgrove.tasks.bigbench import (
    INDEX_HINT,
    BigBenchIndexMissing,
    build_index,
    postprocess,
    primary_keyword,
    register,
    slugify,
)
from taskgrove.tasks.builtin import build_registry, new_registry
from taskgrove.tasks.sources import default_bigbench_root, load_rows, read_bigbench_index

FIXTURES = Path(__file__).parent / "fixtures" / "bigbench"
COLORS = "bigbench/common_sense/color_facts"
CAPITALS = "bigbench/context_free_question_answering/capitals"
ADD = "bigbench/mathematics/sums/add"
NEGATE = "bigbench/mathematics/sums/negate"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the fixtures with its task index built (as scripts/fetch_bigbench.py would)."""
    folder = tmp_path_factory.mktemp("bb") / "bigbench"
    shutil.copytree(FIXTURES, folder)
    build_index(folder)
    return folder


@pytest.fixture
def registry(root: Path, monkeypatch: pytest.MonkeyPatch) -> TaskRegistry:
    monkeypatch.setenv("TASKGROVE_BIGBENCH_DIR", str(root))
    return build_registry(plugins=False)


def rows(root: Path, source: str, split: str = "test") -> list[dict[str, Any]]:
    return list(load_rows(source, split, root=str(root)))


def by_input(table: dict[str, str]) -> ScriptedModel:
    """Replies chosen by the item's input text, found in the last user message."""

    def script(messages: list[dict[str, Any]], tools: Any) -> str:
        last = messages[-1]["content"]
        hits = [reply for key, reply in table.items() if key in last]
        assert len(hits) == 1, f"no single scripted reply for {last!r}"
        return hits[0]

    return ScriptedModel(script)


class ScoringModel(ScriptedModel):
    """Also scores continuations: the shortest one (then the alphabetically first) is the most likely."""

    def __init__(self) -> None:
        super().__init__(lambda messages, tools: AssertionError("generate must not be called"))
        self.scored: list[list[str]] = []

    async def loglikelihood(self, context: list[dict[str, Any]], continuations: list[str]) -> list[float]:
        self.scored.append(list(continuations))
        first = min(continuations, key=lambda c: (len(c), c))
        return [0.0 if c == first else -1.0 - i for i, c in enumerate(continuations)]


def execute(registry: TaskRegistry, tmp_path: Path, task: str, model: Any, **values: Any) -> Any:
    values.setdefault("mode", "run")
    config = build_config({"tasks": [task], "output_dir": str(tmp_path / "results"), "progress": False, **values})
    return Executor(config, registry, model=model).run()


def metric(result: Any, task: str, name: str) -> float:
    return result.outcomes[task].metrics[name]["value"]


def stored(result: Any, task: str) -> dict[str, dict[str, Any]]:
    path = result.store.task(task).samples_path
    return {r["id"]: r for r in map(json.loads, path.read_text().splitlines())}


# --- the keyword rule ------------------------------------------------------------------------------


def test_primary_keyword_skips_format_keywords_and_slugifies() -> None:
    assert slugify("logical reasoning") == "logical_reasoning"
    assert slugify("context-free question answering") == "context_free_question_answering"
    assert slugify("non-English") == "non_english"
    assert primary_keyword(["multiple choice", "zero-shot", "common sense", "memorization"]) == "common_sense"
    assert primary_keyword(["many-shot", "json", "numerical response"]) == "other"
    assert primary_keyword([]) == "other"


# --- registration and the tree ---------------------------------------------------------------------


def test_tree_groups_tasks_by_primary_keyword(registry: TaskRegistry) -> None:
    names = registry.resolve(["bigbench"])
    assert sorted(names) == sorted([COLORS, CAPITALS, ADD, NEGATE])
    # subtasks take their parent's keyword ("mathematics"), not their own ("arithmetic")
    assert registry.resolve(["bigbench/mathematics"]) == [ADD, NEGATE]
    assert registry.resolve(["sums"]) == [ADD, NEGATE]  # a task with subtasks is a group
    assert registry.resolve(["color_facts"]) == [COLORS]
    assert registry.resolve(["bigbench/*/capitals"]) == [CAPITALS]
    lines = registry.tree_lines("bigbench")
    assert lines[0] == "bigbench/ (4)"
    assert "  mathematics/ (2)" in lines and "    sums/ (2)" in lines
    assert any(line.strip().startswith("color_facts") and "Name the usual colour of a thing" in line for line in lines)
    # the rest of the builtin tree is still there
    assert "code/humaneval" in registry.supported()


def test_index_entries_are_read_without_the_task_files(root: Path) -> None:
    infos = read_bigbench_index(root)
    assert infos is not None
    assert [(i.name, i.subtask, i.kind, i.n_examples) for i in infos] == [
        ("capitals", None, "generative", 10),
        ("color_facts", None, "multiple_choice", 12),
        ("sums", None, "generative", 0),
        ("sums", "add", "multiple_choice", 6),
        ("sums", "negate", "generative", 6),
    ]


def test_no_folder_registers_nothing(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert register(new_registry(), tmp_path / "missing") == []


def test_missing_index_registers_nothing_warns_and_does_not_scan(tmp_path: Path) -> None:
    folder = tmp_path / "bigbench"
    shutil.copytree(FIXTURES, folder)
    registry = new_registry()
    with pytest.warns(BigBenchIndexMissing, match=INDEX_HINT):
        assert register(registry, folder) == []
    assert len(registry) == 0
    assert read_bigbench_index(folder) is None  # the index was not built behind the user's back
    assert sum(build_index(folder).values()) == 4
    assert len(register(registry, folder)) == 4


# --- multiple choice -------------------------------------------------------------------------------


def test_multiple_choice_by_generation_reads_the_named_choice(
    registry: TaskRegistry, root: Path, tmp_path: Path
) -> None:
    items = rows(root, "bigbench:color_facts")
    assert len(items) == 10
    table, expected = {}, []
    for n, row in enumerate(items):
        wrong = next(c for c in row["choices"] if c != row["label"])
        if n % 3 == 0:
            table[row["input"]], ok = f"I believe it is {row['label']}.", True  # the choice named in free text
        elif n % 3 == 1:
            table[row["input"]], ok = wrong, False
        else:
            table[row["input"]], ok = "It has no colour I know of", False  # names no choice: unparsed
        expected.append(ok)
    model = by_input(table)
    result = execute(registry, tmp_path, COLORS, model)
    assert metric(result, COLORS, "accuracy") == pytest.approx(sum(expected) / len(expected))
    assert metric(result, COLORS, "unparsable") == pytest.approx(sum(1 for n in range(10) if n % 3 == 2) / 10)
    first = model.calls[0]["messages"]
    assert first[0] == {"role": "system", "content": "Answer each question about colours with one word: {{colour}}."}
    # BIG-bench's example text, choices in sorted order
    row = items[0]
    choices = "".join(f"\n  choice: {c}" for c in sorted(row["choices"]))
    assert first[-1]["content"] == f"Q: {row['input']}{choices}\nA:"
    saved = json.loads(result.store.task(COLORS).metrics_path.read_text())
    assert saved["primary_metric"] == "accuracy"


def test_multiple_choice_by_loglikelihood_scores_each_rows_own_choices(
    registry: TaskRegistry, root: Path, tmp_path: Path
) -> None:
    model = ScoringModel()
    result = execute(registry, tmp_path, ADD, model)
    items = rows(root, "bigbench:sums/add")
    expected = sum(1 for row in items if min(row["choices"], key=lambda c: (len(c), c)) == row["label"]) / len(items)
    assert metric(result, ADD, "accuracy") == pytest.approx(expected)
    assert 0 < expected < 1
    assert sorted(map(sorted, model.scored)) == sorted(sorted(row["choices"]) for row in items)
    assert model.calls == []


def test_few_shot_demonstrations_come_from_the_train_split(registry: TaskRegistry, root: Path, tmp_path: Path) -> None:
    train = {row["input"]: row["label"] for row in rows(root, "bigbench:color_facts", "train")}
    test_inputs = {row["input"] for row in rows(root, "bigbench:color_facts")}
    assert len(train) == 2 and not set(train) & test_inputs
    model = ScriptedModel(lambda messages, tools: "white")
    execute(registry, tmp_path, COLORS, model, prompt_format="few_shot", num_fewshot=2, limit=3)
    for call in model.calls:
        messages = call["messages"]
        assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
        shown = {next(q for q in train if q in messages[i]["content"]): messages[i + 1]["content"] for i in (1, 3)}
        assert shown == train  # each demonstration answered with its gold choice


# --- generative ------------------------------------------------------------------------------------


def test_generative_exact_match_after_bigbench_postprocessing(
    registry: TaskRegistry, root: Path, tmp_path: Path
) -> None:
    items = rows(root, "bigbench:capitals")
    gold = {row["input"]: row["target"] for row in items}
    assert gold["Bolivia"] == ["Sucre", "La Paz"]
    table = {country: f"{t if isinstance(t, str) else t[1]}. It is a lovely city." for country, t in gold.items()}
    table["Peru"] = "Cusco"  # wrong
    table["France"] = "The capital is Paris"  # right city, but not what exact match wants
    result = execute(registry, tmp_path, CAPITALS, by_input(table))
    right = [c for c in gold if c not in ("Peru", "France")]
    assert metric(result, CAPITALS, "exact_match") == pytest.approx(len(right) / len(gold))
    assert metric(result, CAPITALS, "reward") == pytest.approx(len(right) / len(gold))
    assert 0 < metric(result, CAPITALS, "bleu") <= 1  # the task lists bleu among its metrics (on [0, 1])
    saved = stored(result, CAPITALS)
    predictions = {r["scenario"]["input"]: r["outputs"][0]["metadata"]["prediction"] for r in saved.values()}
    assert predictions["Country: Bolivia\nCapital:"] == "La Paz"  # cut by the default output_regex
    assert json.loads(result.store.task(CAPITALS).metrics_path.read_text())["primary_metric"] == "exact_match"

    again = execute(registry, tmp_path, CAPITALS, None, mode="evaluate", file_name=str(result.store.root))
    assert metric(again, CAPITALS, "exact_match") == pytest.approx(len(right) / len(gold))


def test_stop_string_then_output_regex(registry: TaskRegistry, root: Path, tmp_path: Path) -> None:
    items = rows(root, "bigbench:sums/negate")
    table = {f"negate {row['input']} =": f"{row['target']}\nso the answer is 5" for row in items}
    first = items[0]
    table[f"negate {first['input']} ="] = f"the answer is {first['target']} and 12"  # no number at the end of the line
    result = execute(registry, tmp_path, NEGATE, by_input(table))
    assert metric(result, NEGATE, "exact_match") == pytest.approx((len(items) - 1) / len(items))


def test_postprocess_follows_bigbench() -> None:
    assert postprocess("17\nmore 5", "\n", r"([-+]?\d+)[.]{0,1}$") == "17"
    assert postprocess("\n17", "\n", r"\d+") == "17"  # a stop string at the very start cuts nothing
    assert postprocess("Paris. Nice", None, r"[^\.\?\!\;\n]+") == "Paris"
    assert postprocess("no digits", None, r"\d+") == ""
    assert postprocess("a#b#", "#", None) == "a#"
    assert postprocess(None, "\n", r"\d+") is None


def test_exact_match_metric_takes_a_target_or_a_list() -> None:
    scores = get_metric("exact_match").sample_scores(
        [("Paris ", "Paris"), ("La Paz", ["Sucre", "La Paz"]), ("paris", "Paris"), (None, "x")]
    )
    assert scores == [1.0, 1.0, 0.0, 0.0]


# --- the real BIG-bench data (present on dev machines, not on CI) -----------------------------------

REAL = default_bigbench_root()
_REAL_INDEX = read_bigbench_index(REAL)
needs_real_data = pytest.mark.skipif(  # scripts/setup.sh fetches only the quickstart's tasks
    _REAL_INDEX is None or len(_REAL_INDEX) < 900,
    reason=f"no indexed full BIG-bench data in {REAL} (python scripts/fetch_bigbench.py; --tasks fetches a part)",
)


@needs_real_data
def test_real_subtree_registers_and_a_real_task_runs(tmp_path: Path) -> None:
    registry = new_registry()
    names = register(registry, REAL)  # its speed: bench/hot_paths.py
    assert len(names) > 900
    assert registry.resolve(["navigate"]) == ["bigbench/logical_reasoning/navigate"]
    assert len(registry.resolve(["bigbench/mathematics/arithmetic"])) == 20

    gold = [row["label"] for row in load_rows("bigbench:navigate", "test", root=str(REAL))][:5]
    model = ScriptedModel(lambda messages, tools: "True")
    result = execute(registry, tmp_path, "navigate", model, limit=5)
    name = "bigbench/logical_reasoning/navigate"
    assert result.outcomes[name].samples == 5
    assert metric(result, name, "accuracy") == pytest.approx(gold.count("True") / 5)
    assert model.calls[0]["messages"][0]["content"].startswith("If you follow these instructions")


def test_an_unfetched_bigbench_names_the_fetch_command(tmp_path: Path) -> None:
    """A BIG-bench name when nothing is fetched: one line saying how to fetch it, not "not supported"."""
    from taskgrove.errors import UnknownTaskError

    for root in (tmp_path / "absent", tmp_path):
        registry = new_registry()
        assert register(registry, root) == []
        with pytest.raises(UnknownTaskError, match="BIG-bench is not fetched into .*fetch_bigbench.py"):
            registry.resolve(["bigbench/mathematics/arithmetic/1_digit_multiplication"])
        with pytest.raises(UnknownTaskError, match="not supported"):  # other families keep the usual message
            registry.resolve(["nonesuch/task"])
