"""Answer parser tests."""

from __future__ import annotations

import re

import pytest

from taskgrove.tasks.parsers import (
    get_parser,
    parse_entities,
    parse_json,
    parse_label,
    parse_number,
    parse_regex,
    parse_text,
)

SENTIMENT = ["positive", "negative", "neutral", "not neutral"]

# --- labels --------------------------------------------------------------------------------


def test_label_exact_mode():
    assert parse_label("positive", SENTIMENT, mode="exact") == "positive"
    assert parse_label("  positive\n", SENTIMENT, mode="exact") == "positive"
    assert parse_label("Positive", SENTIMENT, mode="exact") is None
    assert parse_label("positive.", SENTIMENT, mode="exact") is None


def test_label_insensitive_mode():
    for text in ["Positive", " POSITIVE. ", "**positive**", '"positive"', "`positive`"]:
        assert parse_label(text, SENTIMENT, mode="insensitive") == "positive", text
    assert parse_label("Not   Neutral", SENTIMENT, mode="insensitive") == "not neutral"
    assert parse_label("The answer is positive", SENTIMENT, mode="insensitive") is None


def test_label_mention_longest_and_one_label():
    assert parse_label("I think the sentiment is Negative overall.", SENTIMENT) == "negative"
    assert parse_label("It is NOT   neutral.", SENTIMENT) == "not neutral"  # longest wins
    # two different labels on one line and no marker: a hedge, not "the first mention"
    assert parse_label("neutral, though some say not neutral", SENTIMENT) is None
    assert parse_label("positive or negative? negative.", SENTIMENT) is None
    assert parse_label("positive or negative?\nnegative.", SENTIMENT) == "negative"  # the last line decides
    assert parse_label("The tone is positively glowing", SENTIMENT) is None  # word boundaries
    assert parse_label("neutrality", SENTIMENT) is None
    assert parse_label("**Positive**", SENTIMENT) == "positive"
    assert parse_label("", SENTIMENT) is None
    assert parse_label(None, SENTIMENT) is None


def test_label_overlap_at_same_start_longest_wins():
    labels = ["very positive", "positive", "very"]
    assert parse_label("Answer: very positive!", labels) == "very positive"
    assert parse_label("Answer: very", labels) == "very"
    assert parse_label("label: neutral-ish", ["neutral", "neutral-ish"]) == "neutral-ish"


def test_label_aliases_map_to_canonical_labels():
    aliases = {"pos": "positive", "+": "positive", "bearish": "negative"}
    assert parse_label("POS", SENTIMENT, aliases=aliases) == "positive"
    assert parse_label("Overall: bearish outlook", SENTIMENT, aliases=aliases) == "negative"
    assert parse_label("+", SENTIMENT, aliases=aliases, mode="exact") == "positive"
    assert parse_label("Pos.", SENTIMENT, aliases=aliases, mode="insensitive") == "positive"
    assert parse_label("positively", SENTIMENT, aliases=aliases) is None  # "pos" inside a word
    with pytest.raises(ValueError):
        parse_label("x", SENTIMENT, aliases={"x": "unknown"})


def test_label_letter_choices_case_sensitive():
    letters = ["A", "B", "C", "D"]
    text = "This is a hard one: C."
    assert parse_label(text, letters) is None  # the article "a" and C -- why case_sensitive exists
    assert parse_label(text, letters, case_sensitive=True) == "C"
    assert parse_label("This is a hard one. The answer is C.", letters) == "C"  # the marker decides


# --- regex ---------------------------------------------------------------------------------


def test_regex_first_group_or_whole_match():
    assert parse_regex("Answer: (B) because", r"\(([A-D])\)") == "B"
    assert parse_regex("first 12 then 34", r"\d+") == "12"
    assert parse_regex("Final answer:  yes ", r"final answer:(.*)") is None  # case-sensitive by default
    assert parse_regex("Final answer:  yes ", r"(?i)final answer:(.*)") == "yes"
    assert parse_regex("no match", r"(\d+)") is None
    assert parse_regex(None, r"x") is None
    assert parse_regex("key=val", r"(?P<k>\w+)=(?P<v>\w+)", group="v") == "val"


def test_regex_parser_from_factory_with_flags():
    p = get_parser("regex", pattern=r"final answer:\s*(.+)", flags="IGNORECASE")
    assert p("... Final Answer:  Paris \n") == "Paris"
    assert p("nothing") is None
    with pytest.raises(re.error):
        get_parser("regex", pattern="(")
    with pytest.raises(ValueError):
        get_parser("regex", pattern=r"(a)", group=2)


# --- JSON ----------------------------------------------------------------------------------


def test_json_bare_fenced_and_in_prose():
    assert parse_json('{"label": "yes", "score": 2}') == {"label": "yes", "score": 2}
    fenced = 'Sure! Here it is:\n```json\n{"a": {"b": [1, 2]}}\n```\nHope that helps.'
    assert parse_json(fenced) == {"a": {"b": [1, 2]}}
    assert parse_json(fenced, field="a.b.1") == 2
    assert parse_json("```\n[1, 2, 3]\n```") == [1, 2, 3]
    assert parse_json('The result is {"label": "yes"} as requested.', field="label") == "yes"
    assert parse_json('noise {not json} then {"ok": true}', field="ok") is True
    assert parse_json("no json here") is None
    assert parse_json('{"a": 1}', field="b") is None
    assert parse_json('{"a": [1]}', field="a.5") is None
    assert parse_json(None) is None
    assert get_parser("json", field="label")('```json\n{"label": "neg"}\n```') == "neg"


# --- entities ------------------------------------------------------------------------------


def test_entities_line_formats():
    text = (
        "Here are the entities:\n"
        "1. Apple Inc. - ORG\n"
        "- **Tim Cook**: PER\n"
        "* Coca-Cola - ORG\n"
        "\u2022 Paris \u2013 LOC\n"
        "2) Jean-Pierre Dupont | PER\n"
        "Berlin (LOC)\n"
    )
    assert parse_entities(text) == [
        ("Apple Inc.", "ORG"),
        ("Tim Cook", "PER"),
        ("Coca-Cola", "ORG"),
        ("Paris", "LOC"),
        ("Jean-Pierre Dupont", "PER"),
        ("Berlin", "LOC"),
    ]


def test_entities_split_at_last_separator_and_skip_prose():
    assert parse_entities("A - B Corp - ORG") == [("A - B Corp", "ORG")]
    assert parse_entities("Apple - ORG (a company)") == [("Apple", "ORG")]
    assert parse_entities("Note: this line is a sentence of prose\nIBM - ORG") == [("IBM", "ORG")]


def test_entities_type_filter_is_case_insensitive_and_canonical():
    text = "Apple - org\nParis - LOC"
    assert parse_entities(text, types=["ORG", "LOC"]) == [("Apple", "ORG"), ("Paris", "LOC")]


def test_entities_lines_of_unknown_types_are_kept_to_count_as_false_positives():
    text = "Apple - org\nParis - LOC\nMonday - DATE"
    assert parse_entities(text, types=["ORG", "LOC"]) == [("Apple", "ORG"), ("Paris", "LOC"), ("Monday", "DATE")]
    assert get_parser("entities", types=["PER"])("Apple - ORG") == [("Apple", "ORG")]
    # prose is not a typed line: "Sentence: ..." (a colon) or a multi-word "type"
    assert parse_entities("Sentence: Apple\nApple - ORG", types=["ORG"]) == [("Apple", "ORG")]
    assert parse_entities("Here is - my long answer", types=["ORG"]) is None


def test_entities_none_and_unparsable():
    for text in ["None", "none.", "No entities", "N/A", "There are no entities in this text.", "[]"]:
        assert parse_entities(text) == [], text
    assert parse_entities("I could not find anything useful") is None
    assert parse_entities("Let me read the sentence.\nNone") == []  # a final "None" line
    assert parse_entities("None of these look like names, maybe Apple?") is None
    assert parse_entities("") is None
    assert parse_entities(None) is None
    assert parse_entities("```\nApple - ORG\n```") == [("Apple", "ORG")]


# --- numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is 42.", 42.0),
        ("1,234.5", 1234.5),
        ("Total: 1,234,567 units", 1234567.0),
        ("-3", -3.0),
        ("\u22122.5", -2.5),
        ("a loss of (3.2) million", -3.2e6),
        ("(3.2)", -3.2),
        ("(3.2) thousand", -3200.0),
        ("3 million (3.2)", -3.2),
        ("$3.5 million", 3.5e6),
        ("US$5bn", 5e9),
        ("3.5M users", 3.5e6),
        ("10k", 1e4),
        ("-$1,200", -1200.0),
        ("$-7", -7.0),
        ("1e-3", 0.001),
        (".5", 0.5),
        ("revenue grew 12%", 12.0),
        ("12.5 percent", 12.5),
        ("5th place", 5.0),
        ("from 3-4 then", 4.0),
        ("COVID-19", 19.0),
    ],
)
def test_number_parsing(text, expected):
    assert parse_number(text) == pytest.approx(expected)


def test_number_options():
    text = "In 2023, revenue rose 12% to $3.5 billion (up from 3.1)."
    assert parse_number(text) == pytest.approx(3.1)
    assert parse_number(text, which="first") == pytest.approx(2023)
    assert parse_number("grew 12%", percent="fraction") == pytest.approx(0.12)
    assert parse_number("$3.5 million", scale_words=False) == pytest.approx(3.5)
    assert parse_number("no digits here") is None
    assert parse_number(None) is None
    assert parse_number("(see note) 7") == 7.0  # parentheses without a number are no negative
    with pytest.raises(ValueError):
        parse_number("1", which="middle")  # type: ignore[arg-type]


# --- text and factory ----------------------------------------------------------------------


def test_text_parser_strips_only():
    assert parse_text("  Paris \n") == "Paris"
    assert parse_text("") == ""
    assert parse_text(None) is None
    assert get_parser("text")("  x ") == "x"


def test_get_parser_builds_each_kind_and_validates_options():
    label = get_parser("label", labels=["yes", "no"], aliases={"y": "yes"}, mode="mention")
    assert label("I'd say y.") == "yes"
    assert get_parser("number", which="first", percent="fraction")("12% then 5") == pytest.approx(0.12)
    with pytest.raises(TypeError):
        get_parser("label")  # labels are required
    with pytest.raises(TypeError):
        get_parser("number", wich="first")  # typo in an option
    with pytest.raises(ValueError):
        get_parser("number", which="middle")
    with pytest.raises(ValueError):
        get_parser("label", labels=["a"], mode="fuzzy")
    with pytest.raises(ValueError):
        get_parser("yaml")


def test_parsers_never_raise_on_garbage():
    garbage = ["", "\x00\x01", "{[(", "```json\n{bad\n```", "-", "$", "%", "()", "\n\n\n", "é" * 1000]
    parsers = [
        get_parser("label", labels=SENTIMENT),
        get_parser("regex", pattern=r"(\d+)"),
        get_parser("json", field="a.b"),
        get_parser("entities"),
        get_parser("number"),
        get_parser("text"),
    ]
    for parser in parsers:
        for text in garbage:
            parser(text)


# --- adversarial inputs (issue #10): each rule, the input that used to fool it ------------------

SENT3 = ["positive", "negative", "neutral"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The sentiment is not positive, it is negative.", "negative"),  # negation
        ("It isn't positive; negative.", "negative"),
        ("Negative rather than positive.", "negative"),
        ("neither positive nor negative", None),
        ("There is no doubt: positive.", "positive"),  # "no doubt" is not a negation
        ("positive/negative", None),  # hedges
        ("positive or negative", None),
        ("Either positive or neutral.", None),
        ("Answer: positive or negative", None),  # a hedge in the final answer itself
        ("Positive aspects... negative aspects...\nAnswer: negative", "negative"),  # marker
        ("The answer is \\boxed{neutral}, not positive", "neutral"),
        ("Some say positive, others negative.\nOverall: negative", "negative"),  # last line
        ("Positive, negative and neutral readings all exist.", None),  # several, no final answer
        ("POSITIVE", "positive"),
        ("x", None),
    ],
)
def test_label_rules_on_adversarial_text(text: str, expected: str | None) -> None:
    assert parse_label(text, SENT3) == expected


def test_label_first_line_option_for_label_then_explanation_prompts():
    text = "INCLAIM\nIt projects growth, unlike OUTOFCLAIM sentences that state facts."
    assert parse_label(text, ["INCLAIM", "OUTOFCLAIM"]) == "OUTOFCLAIM"  # the last line, by default
    assert parse_label(text, ["INCLAIM", "OUTOFCLAIM"], line="first") == "INCLAIM"
    with pytest.raises(ValueError, match="line"):
        get_parser("label", labels=["a"], line="middle")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Refund not showing up", "refund_not_showing_up"),
        ("REFUND-NOT-SHOWING-UP", "refund_not_showing_up"),
        ("The intent is refund_not_showing_up.", "refund_not_showing_up"),
        ("reverted card payment", "reverted_card_payment?"),
        ("Reverted_Card_Payment?", "reverted_card_payment?"),
    ],
)
def test_label_spelled_variants(text: str, expected: str) -> None:
    labels = ["refund_not_showing_up", "reverted_card_payment?", "card_arrival"]
    assert parse_label(text, labels) == expected
    assert parse_label(text.removeprefix("The intent is ").rstrip("."), labels, mode="insensitive") == expected


@pytest.mark.parametrize(
    ("text", "expected"), [("-1", None), ("1", "1"), ("1.5", None), ("10", None), ("Rating: 2", "2"), ("+1", None)]
)
def test_label_numerals_are_whole_numbers(text: str, expected: str | None) -> None:
    assert parse_label(text, ["0", "1", "2"]) == expected


@pytest.mark.parametrize(
    ("text", "options", "expected"),
    [
        ("Revenue grew 20% in 2019.", {}, 20.0),  # a year is not the answer
        ("In 2019", {}, 2019.0),  # ... unless it is the only number
        ("The increase was $10 million.", {"scale_words": False}, 10.0),  # gold in the table's units
        ("The increase was $10 million.", {}, 10_000_000.0),
        ("3.5bn", {}, 3.5e9),
        ("(1,234)", {}, -1234.0),  # accounting negative
        ("12%", {}, 12.0),
        ("12%", {"percent": "fraction"}, 0.12),
        ("From 2018 to 2019 sales rose from 90 to 100.\nThe answer is 11.1%", {}, 11.1),  # marker
        ("The answer is 5.2, half of 10.4", {}, 5.2),  # first number after a marker
        ("Final answer:\n\n-3.5", {}, -3.5),  # the marker's number on the next line
        ("steps 1, 2, 3 ... \\boxed{42} checked against 41", {}, 42.0),  # boxed
        ("We had 100 and 80.\nSo 100 - 80 = 20", {}, 20.0),  # after the last "="
        ("We had 100 and 80. So the change is 20.", {}, 20.0),  # the last number of the last line
        ("no numbers here", {}, None),
    ],
)
def test_number_final_answer_rules(text: str, options: dict, expected: float | None) -> None:
    assert parse_number(text, **options) == (pytest.approx(expected) if expected is not None else None)


def test_number_last_and_first_remain_available():
    assert parse_number("Revenue grew 20% in 2019.", which="last") == 2019.0
    assert parse_number("Revenue grew 20% in 2019.", which="first") == 20.0


def test_numeric_match_no_longer_credits_a_year():
    from taskgrove.metrics.numeric import numeric_match

    # the old cause: the last number (2019) was within 1% of 20 * 100 with percent_equivalent
    assert numeric_match(parse_number("Revenue grew 20% in 2019."), 20, rel_tol=0.01, percent_equivalent=True)
    assert not numeric_match(parse_number("Revenue grew 21% in 2019."), 20, rel_tol=0.01, percent_equivalent=True)
    assert numeric_match(parse_number("The increase was $10 million.", scale_words=False), 10, rel_tol=0.01)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{'a': 1, 'b': None, 'c': True}", {"a": 1, "b": None, "c": True}),  # Python literal
        ('{"a": 1, "b": [1, 2,],}', {"a": 1, "b": [1, 2]}),  # trailing commas
        ('{"a": true, "b": null,}', {"a": True, "b": None}),  # JSON words and a trailing comma
        ("Result: {'100.0': 'other'} (done)", {"100.0": "other"}),  # a literal inside prose
        ('```json\n{"x": "}",}\n```', {"x": "}"}),  # braces inside strings
        ("{'a': 1", None),  # unbalanced
    ],
)
def test_json_accepts_python_literals_and_trailing_commas(text: str, expected: object) -> None:
    assert parse_json(text) == expected
