"""Task files from elsewhere: templates run sandboxed, --include-path enters no hidden or run folder,
and a task file that fails to import is one line naming the file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from taskgrove.errors import ConfigError
from taskgrove.registry import TaskRegistry
from taskgrove.tasks.builtin import new_registry
from taskgrove.tasks.prompts import PromptError, compile_template, make_environment

ROOT = Path(__file__).resolve().parents[1]
MODEL = f"py:{ROOT / 'tests' / 'fixtures' / 'core' / 'models.py'}:slow_echo"


def ssti(marker: Path) -> str:
    """A template that, unsandboxed, runs a shell command creating ``marker``."""
    return "{{ cycler.__init__.__globals__.os.popen('touch " + str(marker) + "').read() }} {{ text }}"


def taskgrove(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "taskgrove", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def write_task(folder: Path, name: str, template: str) -> Path:
    (folder / "data.jsonl").write_text(json.dumps({"text": "hello", "label": "a"}) + "\n")
    spec = {
        "name": name,
        "source": f"file:{folder / 'data.jsonl'}",
        "input": template,
        "reference": "label",
        "metrics": ["accuracy"],
    }
    path = folder / f"{name.replace('/', '_')}.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    return path


# --- templates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ joiner.__init__.__globals__ }}",
        "{{ row.__class__ }}",
        "{% set x = row.update({'a': 1}) %}{{ x }}",
    ],
)
def test_templates_cannot_reach_python_internals(source: str) -> None:
    template = compile_template("t: input", source, make_environment())
    with pytest.raises(PromptError, match=r"template 't: input' failed: SecurityError: .*unsafe"):
        template.render({"text": "x"})


def test_ssti_in_a_yaml_task_fails_clearly_and_runs_no_shell(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    write_task(tmp_path, "evil/ssti", ssti(marker))
    registry = new_registry()
    assert registry.add_path(tmp_path) == ["evil/ssti"]
    task = registry.create("evil/ssti")
    task.configure(prompt_format="zero_shot", num_fewshot=0, seed=0, split="test")
    with pytest.raises(PromptError, match="SecurityError: access to attribute '__init__' of .* is unsafe"):
        list(task.get_dataset("test"))
    assert not marker.exists()


def test_ssti_task_run_from_the_cli_fails_the_task_with_the_reason(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    write_task(tasks, "evil/ssti", ssti(marker))
    result = taskgrove("run", "--tasks", "evil/ssti", "--include-path", str(tasks), "--model", MODEL, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Task: evil/ssti" in result.stderr and "SecurityError" in result.stderr and "unsafe" in result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists()


def test_ordinary_templates_still_render() -> None:
    env = make_environment({"labels": ["up", "down"]})
    source = "{{ text | upper }} {{ labels | join('/') }}{% for t in row.tokens %} {{ loop.index }}:{{ t }}{% endfor %}"
    template = compile_template("t", source, env)
    assert template.render({"text": "rates", "tokens": ["a", "b"]}) == "RATES up/down 1:a 2:b"


# --- include paths ----------------------------------------------------------------------------


def test_include_path_skips_hidden_folders_and_run_folders(tmp_path: Path) -> None:
    marker = tmp_path / "IMPORTED"
    evil = f"open({str(marker)!r}, 'a').write(__file__ + '\\n')\n"
    tree = tmp_path / "tree"
    (tree / "good").mkdir(parents=True)
    write_task(tree / "good", "good/yaml", "{{ text }}")
    (tree / "good" / "pytask.py").write_text(
        "from taskgrove.core import Task\nfrom taskgrove.registry import register_task\n"
        "@register_task('good/python')\nclass T(Task):\n    def get_dataset(self, split):\n        yield {'id': '1'}\n"
    )
    for hidden in (".git", ".venv/lib", "good/.cache"):
        (tree / hidden).mkdir(parents=True)
        (tree / hidden / "evil.py").write_text(evil)
        write_task(tree / hidden, "hidden/task", "{{ text }}")
    (tree / "good" / ".evil.py").write_text(evil)
    run = tree / "results" / "20260101-000000"  # a run folder taskgrove wrote: never task files
    (run / "core" / "count").mkdir(parents=True)
    (run / "run.json").write_text("{}")
    (run / "config.yaml").write_text("mode: inference\ntasks: [core/count]\n")
    (run / "core" / "count" / "helper.py").write_text(evil)
    (run / "core" / "count" / "task.yaml").write_text("name: run/inner\nsource: hf:x\n")

    registry = new_registry()
    added = registry.add_path(tree)
    assert sorted(added) == ["good/python", "good/yaml"]
    assert not marker.exists()

    assert registry.add_path(run) == [] and not marker.exists()  # a run folder named directly: nothing in it


def test_a_registry_without_a_spec_loader_ignores_yaml_in_hidden_and_run_folders(tmp_path: Path) -> None:
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.yaml").write_text("name: x\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text("{}")
    (tmp_path / "run" / "config.yaml").write_text("mode: inference\n")
    assert TaskRegistry().add_path(tmp_path) == []


@pytest.mark.parametrize(
    ("code", "line", "message"),
    [
        ("x = 1\nraise RuntimeError('no API key for\\nthe grader')\n", 2, "RuntimeError: no API key for the grader"),
        ("import os\n1 / 0\n", 2, "ZeroDivisionError: division by zero"),
        ("def broken(:\n    pass\n", 1, "SyntaxError: "),
        ("import taskgrove_no_such_module\n", 1, "ModuleNotFoundError: No module named 'taskgrove_no_such_module'"),
    ],
)
def test_a_task_file_that_fails_to_import_is_one_config_error(
    tmp_path: Path, code: str, line: int, message: str
) -> None:
    bad = tmp_path / "bad_tasks.py"
    bad.write_text(code)
    with pytest.raises(ConfigError) as caught:
        new_registry().add_path(tmp_path)
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(f"{bad} (line {line}) failed to import: ") and message in text


def test_import_failure_from_the_cli_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("import os\nraise ValueError('boom')\n")
    result = taskgrove("tasks", "--include-path", str(tmp_path / "bad.py"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'bad.py'} (line 2) failed to import: ValueError: boom"
    ]


def test_a_class_reference_to_a_missing_module_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("name: py/missing\nclass: taskgrove_no_such_module:Task\n")
    registry = new_registry()
    registry.add_path(tmp_path)
    with pytest.raises(ConfigError, match="cannot import module taskgrove_no_such_module: ModuleNotFoundError"):
        registry.create("py/missing")
