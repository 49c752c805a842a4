"""The static HTML report: sections, charts, heatmap, embedded samples, no network, speed."""

import json
import re

import pytest

from fixtures.report.make_runs import TREEMARK_TASKS, FakeTask, bernoulli, comparison_json, treemark_runs, write_run
from taskgrove.cli import main
from taskgrove.errors import ConfigError
from taskgrove.report.collect import load_runs
from taskgrove.report.html import HtmlOptions, render_html
from taskgrove.report.leaderboard import build_leaderboard
from taskgrove.report.samples import clip, record_row
from taskgrove.report.training import comparison_from_runs, infer_kind, load_comparison, parse_comparison


def samples_of(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="samples-data">(.*?)</script>', page, re.S)
    assert match, "no samples block"
    return json.loads(match.group(1))


@pytest.fixture
def treemark(tmp_path):
    runs = treemark_runs(tmp_path / "results", n=40)
    return runs, comparison_json(tmp_path / "train" / "comparison.json", runs)


def test_page_has_tables_charts_and_samples(treemark, tmp_path):
    runs, _ = treemark
    board = build_leaderboard(load_runs([(p, None) for p in runs.values()]))
    page = render_html(board).decode()
    for element in (
        "runs-table",
        "overview-table",
        "leaderboards",
        "board-filter",
        "samples",
        "sample-list",
        "sample-wrong",
        "samples-data",
    ):
        assert f'id="{element}"' in page
    assert page.count('class="board"') == len(board.rows) == 6 + 2 * 3
    assert page.count('class="bar-chart"') == len(board.rows)
    assert page.count('class="whisker"') == 3 * 6 + 3 * 2  # every task interval; only treemark/similar groups have one
    assert page.count('<tr class="task-row"') == 6 and page.count('<tr class="group-row') == 6
    assert 'id="board-group-treemark-similar-weighted"' in page
    data = samples_of(page)
    assert data["tasks"] == board.tasks and len(data["runs"]) == 3
    assert len(data["rows"]) == 3 * (40 * 3 + 40 + 20 + 20) + 1  # the multi run has one extra (errored) qqp sample
    assert 'id="training"' not in page


def test_page_makes_no_network_requests(treemark):
    runs, _ = treemark
    page = render_html(build_leaderboard(load_runs([(p, None) for p in runs.values()]))).decode()
    assert "<link" not in page and " src=" not in page and "@import" not in page and "url(" not in page
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) <= {"http://www.w3.org/2000/svg"}  # the SVG namespace only


def test_sample_text_cannot_close_the_script_block(tmp_path):
    evil = "</script><script>document.title='pwned'</script><!--"
    run = write_run(tmp_path, "r", "m", {"x/a": FakeTask([1, 0], long_text=evil)})
    page = render_html(build_leaderboard(load_runs([(run, None)]))).decode()
    block = page[page.index('id="samples-data">') :]
    assert block.index("</script>") > block.index('"rows"')  # the first </script> closes the data block itself
    assert "pwned" not in page.replace("\\u003c", "<").split("samples-data")[0]
    rows = samples_of(page)["rows"]
    assert evil in rows[0][3]  # the text survives intact after JSON parsing


def test_training_heatmap_from_comparison_json(treemark, tmp_path, capsys):
    _runs, comparison_file = treemark
    out = tmp_path / "report"
    assert main(["report", str(comparison_file.parent), "--html", str(out)]) == 0
    page = (out / "index.html").read_text()
    assert 'id="training"' in page and 'id="heatmap-svg"' in page
    assert 'data-rows="3" data-cols="6"' in page
    assert page.count('<g class="cell') == 18
    assert page.count('class="cell trained"') == 1 + 3  # single: sst2; multi: the three similar tasks
    assert ">failed<" in page  # the single model's null codexglue score
    comparison = load_comparison(comparison_file)
    multi = comparison.models[-1]
    for task in TREEMARK_TASKS:  # every multi-task cell shows its difference from base
        assert f">{comparison.delta(multi, task):+.3f}<" in page
    data = samples_of(page)
    assert data["runs"] == ["base", "single_sst2_lora8", "multi_lora8"]  # run_dir entries are loaded under their labels


def test_labelled_runs_build_the_heatmap(treemark, tmp_path):
    runs, _ = treemark
    out = tmp_path / "labelled"
    args = ["report", "--html", str(out)]
    for label, path in runs.items():
        args += ["--label", f"{label}={path}"]
    assert main(args) == 0
    page = (out / "index.html").read_text()
    assert 'id="heatmap-svg"' in page and 'data-rows="3" data-cols="6"' in page
    comparison = comparison_from_runs(load_runs([(p, label) for label, p in runs.items()]))
    assert [m.kind for m in comparison.models] == ["base", "single", "multi"]
    sst2 = "treemark/similar/sst2"
    assert comparison.delta(comparison.models[2], sst2) == pytest.approx(
        comparison.models[2].scores[sst2].value - comparison.models[0].scores[sst2].value
    )


def test_comparison_format_is_checked(tmp_path):
    ok = parse_comparison(
        {
            "tasks": ["a"],
            "models": [
                {"label": "multi_full", "scores": {"a": 0.5}},
                {"label": "base", "scores": {"a": {"value": 0.4}}},
            ],
        }
    )
    assert [m.label for m in ok.models] == ["base", "multi_full"]  # base rows first
    assert (
        ok.models[1].kind == "multi"
        and ok.models[1].scores["a"].value == 0.5
        and not ok.models[1].scores["a"].has_interval
    )
    assert (
        infer_kind("single_sst2_LoRA_8") == "single"
        and infer_kind("base") == "base"
        and infer_kind("similar_FullFT") == "multi"
    )
    for bad, message in [
        ({"tasks": []}, "'models' list"),
        ({"models": [{"label": "x", "kind": "other"}]}, "kind 'other'"),
        ({"models": [{"label": "x"}, {"label": "x"}]}, "duplicate label"),
        ({"models": [{"label": "x", "scores": {"a": {"value": "high"}}}]}, "numeric 'value'"),
        ({"models": [{"label": "x", "trained_on": "a"}]}, "'trained_on' must be a list"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_comparison(bad)
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_comparison(tmp_path / "c.json")
    with pytest.raises(ConfigError, match="no comparison.json"):
        load_comparison(tmp_path / "nothing")


def test_sample_rows_flatten_messages_and_clip():
    assert (
        clip("abcdefghij", 4) == "a\n… [6 characters omitted] …\nhij"
    )  # a quarter from the start, the rest from the end
    assert clip("short", 10) == "short"
    record = {
        "id": "7",
        "input": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "x"}}],
            }
        ],
        "outputs": [
            {"messages": [{"role": "assistant", "content": "42"}], "reward": 1.0},
            {
                "messages": [
                    {"role": "assistant", "content": None, "tool_calls": [{"name": "calc"}]},
                    {"role": "tool", "content": "41"},
                ],
                "reward": 0,
            },
        ],
        "reference": {"answer": 42},
        "reward": 0.5,
        "error": None,
        "metrics": {"em": 0.5},
    }
    row = record_row(record)
    assert row[0] == "7" and row[1].startswith("[user]\nlook\n{")
    assert row[2][0] == ["42", 1.0]
    assert row[2][1][0].startswith('[assistant]\ntool calls: [{"name":"calc"}]') and row[2][1][1] == 0.0
    assert row[3] == '{"answer":42}' and row[4] == 0.5 and row[5] is None and row[6] == '{"em":0.5}'
    failed = record_row(
        {"id": "8", "input": [], "error": {"type": "TimeoutError", "message": "slow"}, "scenario": {"q": "say 8"}}
    )
    assert failed[5] == "TimeoutError: slow" and failed[4] is None and failed[2] == []
    assert failed[1] == '[scenario]\n{"q":"say 8"}'  # no messages: the scenario stands in for the input


def test_twenty_thousand_samples_render(tmp_path):
    # how fast: bench/hot_paths.py
    tasks = {f"big/g{i % 2}/t{i}": FakeTask(bernoulli(4000, 0.6, i), long_text="Some context. " * 30) for i in range(5)}
    run = write_run(tmp_path, "r20k", "m", tasks)
    assert main(["report", str(run), "--html", str(tmp_path / "big")]) == 0
    page = (tmp_path / "big" / "index.html").read_text()
    assert len(samples_of(page)["rows"]) == 20000


def test_no_samples_option(treemark):
    runs, _ = treemark
    page = render_html(
        build_leaderboard(load_runs([(next(iter(runs.values())), None)])),
        options=HtmlOptions(samples=False, title="T <1>"),
    ).decode()
    assert 'id="samples-data"' not in page and 'id="sample-list"' not in page and "<title>T &lt;1&gt;</title>" in page


def test_report_tasks_only_in_some_runs(tmp_path):
    a = write_run(tmp_path, "a", "m1", {"x/one": FakeTask([1, 0])})
    b = write_run(tmp_path, "b", "m2", {"x/two": FakeTask([1, 1])})
    page = render_html(build_leaderboard(load_runs([(a, None), (b, None)]))).decode()
    assert page.count('<td class="status">missing') == 2  # each run lacks the other's task in the score table


def test_merged_models_are_a_fourth_kind(treemark, tmp_path):
    runs, _ = treemark
    specs = [(p, label) for label, p in runs.items()] + [(runs["single_sst2_lora8"], "merged_ties_lora8")]
    comparison = comparison_from_runs(load_runs(specs))
    assert [m.kind for m in comparison.models] == ["base", "single", "multi", "merged"]
    assert infer_kind("merged_ties_LoRA_8") == "merged"
    out = tmp_path / "merged"
    args = ["report", "--html", str(out)] + [f"--label={label}={path}" for path, label in specs]
    assert main(args) == 0
    page = (out / "index.html").read_text()
    assert 'data-rows="4"' in page and "1 merged" in page
