"""The task tree: aliases, groups, globs, suggestions, YAML-free registration paths."""

import pytest

from taskgrove.core import Task
from taskgrove.errors import ConfigError, UnknownTaskError
from taskgrove.registry import TaskRegistry, register_task
from taskgrove.tasks.builtin import build_registry, new_registry


class Dummy(Task):
    def get_dataset(self, split):
        yield {"id": "1"}


NAMES = [
    "finance/fomc",
    "finance/numclaim",
    "finance/finer",
    "treemark/similar/sst2",
    "treemark/similar/mnli",
    "treemark/dissimilar/squad_v2",
    "other/sst2",
]


@pytest.fixture
def registry() -> TaskRegistry:
    reg = new_registry()
    for name in NAMES:
        reg.register(name, lambda: Dummy("x"), description=f"about {name}")
    return reg


def test_full_name_alias_group_and_glob(registry):
    assert registry.resolve(["finance/fomc"]) == ["finance/fomc"]
    assert registry.resolve(["fomc"]) == ["finance/fomc"]
    assert registry.resolve(["finance"]) == ["finance/finer", "finance/fomc", "finance/numclaim"]
    assert registry.resolve(["treemark/similar"]) == ["treemark/similar/mnli", "treemark/similar/sst2"]
    assert registry.resolve(["similar"]) == ["treemark/similar/mnli", "treemark/similar/sst2"]
    assert registry.resolve(["finance/f*"]) == ["finance/finer", "finance/fomc"]
    assert registry.resolve(["treemark/*/s*"]) == ["treemark/dissimilar/squad_v2", "treemark/similar/sst2"]


def test_order_is_kept_and_repeats_dropped(registry):
    assert registry.resolve(["numclaim", "fomc", "finance/fomc"]) == ["finance/numclaim", "finance/fomc"]


def test_ambiguous_alias_names_every_candidate(registry):
    with pytest.raises(ConfigError, match="ambiguous.*other/sst2.*treemark/similar/sst2"):
        registry.resolve(["sst2"])


def test_unknown_task_suggests_close_names(registry):
    with pytest.raises(UnknownTaskError) as err:
        registry.resolve(["fomc", "fomcc"])
    assert "Task 'fomcc' not supported" in str(err.value)
    assert "finance/fomc" in err.value.suggestions


def test_unmatched_glob_is_an_error(registry):
    with pytest.raises(UnknownTaskError):
        registry.resolve(["nothing/*"])


def test_create_sets_the_registered_name(registry):
    assert registry.create("fomc").name == "finance/fomc"
    with pytest.raises(ConfigError, match="group"):
        registry.create("finance")


def test_a_leaf_cannot_also_be_a_group(registry):
    with pytest.raises(ConfigError):
        registry.register("finance", lambda: Dummy("x"))


def test_tree_lines_count_leaves(registry):
    lines = registry.tree_lines()
    assert "finance/ (3)" in lines
    assert "  similar/ (2)" in lines
    assert any(line.strip().startswith("fomc") and "about finance/fomc" in line for line in lines)
    assert registry.tree_lines("treemark")[0] == "treemark/ (3)"


def test_decorator_registration_reaches_new_registries():
    @register_task("tests/decorated_task", description="made by a decorator")
    class Decorated(Dummy):
        def __init__(self):
            super().__init__("ignored")

    registry = build_registry(builtin=False, plugins=False)
    assert registry.create("decorated_task").name == "tests/decorated_task"


def test_entry_point_plugins(monkeypatch, registry):
    class FakeEntryPoint:
        def __init__(self, name, value, target):
            self.name, self.value, self._target = name, value, target

        def load(self):
            return self._target

    def register(reg):
        reg.register("plugin/from_function", lambda: Dummy("x"))

    points = [FakeEntryPoint("plugin/as_class", "pkg:Cls", Dummy), FakeEntryPoint("bundle", "pkg:register", register)]
    monkeypatch.setattr("importlib.metadata.entry_points", lambda group: points if group == "taskgrove.tasks" else [])
    added = registry.add_entry_points()
    assert added == ["plugin/as_class", "plugin/from_function"]
    assert registry.create("as_class").name == "plugin/as_class"
