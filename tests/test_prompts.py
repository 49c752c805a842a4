"""Prompt templates and zero-/few-shot message building."""

from __future__ import annotations

import pytest

from taskgrove.errors import ConfigError
from taskgrove.tasks.prompts import (
    PromptError,
    build_messages,
    compile_template,
    fewshot_messages,
    insert_fewshot,
    make_environment,
)


def test_template_sees_fields_row_constants_and_extras() -> None:
    env = make_environment({"labels": ["up", "down"]})
    template = compile_template(
        "t", "{{ sentence }} | {{ row['sentence'] | upper }} | {{ labels | join('/') }} | {{ feature }}", env
    )
    assert template.render({"sentence": "rates rose"}, feature="CLEAR") == "rates rose | RATES ROSE | up/down | CLEAR"


def test_blocks_are_trimmed_and_lists_render_with_loops() -> None:
    env = make_environment()
    source = "Tokens:\n{% for t in tokens %}\n- {{ t }}\n{% endfor %}\nEnd"
    assert compile_template("t", source, env).render({"tokens": ["a", "b"]}) == "Tokens:\n- a\n- b\nEnd"


def test_missing_field_is_an_error_naming_the_template_and_the_fields() -> None:
    template = compile_template("finance/x: input", "Sentence: {{ sentence }}", make_environment())
    with pytest.raises(PromptError) as caught:
        template.render({"text": "hello", "label": 1})
    message = str(caught.value)
    assert "finance/x: input" in message and "sentence" in message and "label, text" in message


def test_syntax_error_is_a_config_error_with_the_line() -> None:
    with pytest.raises(ConfigError, match=r"template 'bad'.*line 2"):
        compile_template("bad", "fine\n{{ unclosed ", make_environment())


def test_no_html_escaping() -> None:
    assert compile_template("t", "{{ x }}", make_environment()).render({"x": "a < b & 'c'"}) == "a < b & 'c'"


def test_zero_shot_messages() -> None:
    assert build_messages(None, [], "Q") == [{"role": "user", "content": "Q"}]
    system = {"role": "system", "content": "S"}
    assert build_messages(system, (), "Q") == [system, {"role": "user", "content": "Q"}]


def test_few_shot_messages_alternate_before_the_item() -> None:
    system = {"role": "system", "content": "S"}
    messages = build_messages(system, [["q1", "a1"], ["q2", "a2"]], "Q")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert [m["content"] for m in messages] == ["S", "q1", "a1", "q2", "a2", "Q"]
    assert fewshot_messages([]) == []


def test_insert_fewshot_after_leading_system_messages() -> None:
    conversation = [
        {"role": "system", "content": "S1"},
        {"role": "system", "content": "S2"},
        {"role": "user", "content": "Q"},
    ]
    out = insert_fewshot(conversation, [["q", "a"]])
    assert [m["content"] for m in out] == ["S1", "S2", "q", "a", "Q"]
    assert insert_fewshot([{"role": "user", "content": "Q"}], [["q", "a"]])[0] == {"role": "user", "content": "q"}
    assert [m["content"] for m in conversation] == ["S1", "S2", "Q"]  # the stored conversation is not changed


@pytest.mark.parametrize(
    "source",
    [
        "Classify: {{ text }}",
        "[{{id}}] {{ text }} / {{ row }}\n",
        "{{ text }}{{ label }} and {{ extra_name }} with {{ const }}",
        "no placeholders at all\n",
        "{{ number }} {{ flag }} {{ nothing }} {{ items }}",
        "{% if text %}{{ text }}{% endif %}",
        "{{ text | upper }} {{ row.label }}",
        "{{- text -}}  {{ text }}",
        "}} odd {{ text }}",
    ],
)
def test_fast_rendering_equals_jinja(source):
    from taskgrove.tasks.prompts import Template, make_environment

    environment = make_environment({"const": "C"})
    template = Template("t", source, environment)
    row = {"text": "hello", "label": "pos", "id": 7, "number": 1.5, "flag": True, "nothing": None, "items": [1, "a"]}
    expected = environment.from_string(source).render(row, row=row, extra_name="X")
    assert template.render(row, extra_name="X") == expected


def test_fast_rendering_keeps_strict_undefined_errors():
    from taskgrove.tasks.prompts import PromptError, Template, make_environment

    template = Template("t", "Say {{ missing }}", make_environment())
    with pytest.raises(PromptError, match="missing"):
        template.render({"text": "x"})
