"""Answer parsers: turn a model's raw text into the value a metric scores.

Every parser takes the text (``None`` is allowed) and returns the parsed value, or ``None`` when
nothing parses; none raises on bad model output. :func:`get_parser` builds one from a name and
options, for declarative task files::

    parser: {name: label, labels: [positive, negative, neutral], mode: mention}
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from taskgrove.tasks.parse_labels import LabelMode, label_table, norm, parse_label
from taskgrove.tasks.parse_numbers import parse_number

__all__ = [
    "LabelMode",
    "get_parser",
    "parse_entities",
    "parse_json",
    "parse_label",
    "parse_number",
    "parse_regex",
    "parse_text",
]

Entity = tuple[str, str]

# --- regex ---------------------------------------------------------------------------------


def parse_regex(text: str | None, pattern: str | re.Pattern[str], *, group: int | str = 1) -> str | None:
    """The first match's ``group`` (the whole match when the pattern has no groups), stripped;
    ``""`` when the pattern matched but the group took no part (an explicit empty answer, e.g.
    "unanswerable" in ``(?:unanswerable|(.+))``); ``None`` (unparsable) when nothing matched."""
    if text is None:
        return None
    compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
    match = compiled.search(text)
    if match is None:
        return None
    value = match.group(group if compiled.groups else 0)
    return value.strip() if value is not None else ""


# --- JSON ----------------------------------------------------------------------------------

_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n?(.*?)```", re.DOTALL)
_MISSING = object()


_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def _decode(text: str) -> Any:
    """``text`` as JSON; failing that, JSON without trailing commas; failing that, a Python
    literal (``{'a': 1, 'b': None}``, ``True``); ``_MISSING`` when none reads it."""
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return json.loads(_TRAILING_COMMA.sub(r"\1", text))
    except ValueError:
        pass
    if text[:1] in "[{":
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
    return _MISSING


def _bracketed(text: str, start: int) -> str | None:
    """The balanced ``{...}``/``[...]`` starting at ``start`` (quotes respected), or ``None``."""
    closing = {"{": "}", "[": "]"}
    stack: list[str] = []
    quote = ""
    escaped = False
    for index in range(start, len(text)):
        char = text[index]
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in closing:
            stack.append(closing[char])
        elif char in "}]":
            if not stack or stack.pop() != char:
                return None
            if not stack:
                return text[start : index + 1]
    return None


def _find_json(text: str) -> Any:
    """The first JSON value found (the whole text, a fenced block, then the first balanced
    object/array in prose; each read as JSON, JSON with trailing commas, or a Python literal),
    or ``_MISSING``."""
    value = _decode(text)
    if value is not _MISSING:
        return value
    for block in _FENCE.findall(text):
        value = _decode(block)
        if value is not _MISSING:
            return value
    for match in re.finditer(r"[\[{]", text):
        candidate = _bracketed(text, match.start())
        if candidate is not None:
            value = _decode(candidate)
            if value is not _MISSING:
                return value
    return _MISSING


def _get_field(value: Any, field: str) -> Any:
    for key in field.split("."):
        if isinstance(value, Mapping) and key in value:
            value = value[key]
        elif isinstance(value, list) and re.fullmatch(r"-?\d+", key) and -len(value) <= int(key) < len(value):
            value = value[int(key)]
        else:
            return _MISSING
    return value


def parse_json(text: str | None, *, field: str | None = None) -> Any | None:
    """The JSON value in the text (bare, inside a ```json fence, or the first object/array in
    surrounding prose), or its ``field`` (dotted path, list indices allowed: ``"a.0.b"``).

    Also accepted: trailing commas (``{"a": 1,}``) and Python literals (``{'a': 1, 'b': None}``),
    which models often write for "JSON"."""
    if text is None:
        return None
    value = _find_json(text)
    if value is _MISSING:
        return None
    if field is None:
        return value
    got = _get_field(value, field)
    return None if got is _MISSING else got


# --- entities ------------------------------------------------------------------------------

_NONE_ANSWERS = frozenset(
    {"none", "no entities", "no entity", "n/a", "na", "nil", "null", "[]", "no named entities", "nothing"}
)
_BULLET = re.compile(r"^\s*(?:[-*\u2022+>]+|\(?\d{1,3}[.)](?=\s))\s*")
_NONE_SENTENCE = re.compile(r"(?:there (?:are|were) |i found |found )?no (?:named )?entit(?:y|ies)\b.*")
_SEPARATORS = (" - ", " \u2013 ", " \u2014 ", "\t", " | ", ":", " -- ")
_NAME_EDGE = " \t\"'`*_\u201c\u201d\u2018\u2019"
_TYPE_EDGE = _NAME_EDGE + ".,;()[]"
_UNKNOWN_TYPE = re.compile(r"[A-Za-z][A-Za-z_/\-]{0,19}")


def _entity_from_line(line: str, types: Mapping[str, str] | None) -> Entity | None:
    line = _BULLET.sub("", line, count=1).strip()
    if not line:
        return None
    cut = max(((line.rfind(sep), sep) for sep in _SEPARATORS), key=lambda x: x[0])
    colon = cut[1] == ":"
    if cut[0] <= 0:
        paren = re.fullmatch(r"(.+?)\s*\(([^()]+)\)\s*", line)  # "Apple (ORG)"
        if paren is None:
            return None
        name, kind = paren.group(1), paren.group(2)
    else:
        name, kind = line[: cut[0]], line[cut[0] + len(cut[1]) :]
    kind = re.split(r"\s+[(\[]", kind.strip(), maxsplit=1)[0]  # "ORG (a company)" -> "ORG"
    name, kind = name.strip(_NAME_EDGE), kind.strip(_TYPE_EDGE)
    if not name or not kind:
        return None
    if types is not None:
        canonical = types.get(kind.casefold())
        if canonical is not None:
            return (name, canonical)
        # a typed line of a type the task does not know: kept, so it counts as a false positive
        # (not with ":", which also introduces prose such as "Sentence: ...")
        return (name, kind) if not colon and _UNKNOWN_TYPE.fullmatch(kind) else None
    if len(kind) > 40 or len(kind.split()) > 4:  # prose such as "Note: this is ..."
        return None
    return (name, kind)


def parse_entities(text: str | None, *, types: Sequence[str] | None = None) -> list[Entity] | None:
    """``(name, type)`` pairs from lines like ``NAME - TYPE``.

    Bullets and numbering are ignored, and ``NAME: TYPE``, ``NAME | TYPE``, ``NAME (TYPE)`` and
    en/em dashes are accepted; the split is at the last separator, so names may hold hyphens.
    With ``types``, those types are matched case-insensitively and returned as given; a line
    typed with another single word (``Apple - PRODUCT``; not after ``:``) is kept with that
    type, so that it counts as a false positive. Without ``types``, a "type" longer than four
    words is taken for prose and skipped.
    An answer such as "None" or "No entities" (the whole reply, or its first or last line when no
    line names an entity) gives ``[]``; other text with no entity line gives ``None`` (unparsable).
    """
    if text is None:
        return None
    body = _FENCE.sub(lambda m: m.group(1), text).strip()
    if _is_none_answer(body):
        return []
    type_map = {t.casefold(): t for t in types} if types is not None else None
    entities = []
    for line in body.splitlines():
        entity = _entity_from_line(line, type_map)
        if entity is not None:
            entities.append(entity)
    if entities:
        return entities
    lines = [line for line in body.splitlines() if line.strip()]
    return [] if lines and (_is_none_answer(lines[0]) or _is_none_answer(lines[-1])) else None


def _is_none_answer(text: str) -> bool:
    if text.strip() in ("[]", "{}"):
        return True
    folded = norm(text)
    return folded in _NONE_ANSWERS or _NONE_SENTENCE.fullmatch(folded) is not None


# --- text and the factory ------------------------------------------------------------------


def parse_text(text: str | None) -> str | None:
    """The text with surrounding whitespace stripped (``None`` stays ``None``)."""
    return None if text is None else text.strip()


Parser = Callable[[str | None], Any]


def get_parser(name: str, **options: Any) -> Parser:
    """A one-argument parser by name: ``label`` (``labels``, ``mode``, ``aliases``,
    ``case_sensitive``, ``line``; rules in :mod:`taskgrove.tasks.parse_labels`), ``regex``
    (``pattern``, ``group``, ``flags`` as a string like ``"IGNORECASE|DOTALL"``), ``json``
    (``field``), ``entities`` (``types``), ``number`` (``which``, ``percent``, ``scale_words``;
    rules in :mod:`taskgrove.tasks.parse_numbers`) or ``text``. Options are checked now: a bad name, a missing or unknown option, or an
    invalid regex raises here rather than at parse time."""
    if name == "label":
        if "labels" not in options:
            raise TypeError("the label parser needs labels=[...]")
        labels = list(options.pop("labels"))
        mode = options.pop("mode", "mention")
        aliases = dict(options.pop("aliases", None) or {})
        case_sensitive = bool(options.pop("case_sensitive", False))
        line = options.pop("line", "last")
        _reject(name, options)
        if mode not in ("exact", "insensitive", "mention"):
            raise ValueError(f"unknown label mode {mode!r}")
        if line not in ("last", "first"):
            raise ValueError(f"line must be 'last' or 'first', got {line!r}")
        label_table(labels, aliases)
        return partial(parse_label, labels=labels, mode=mode, aliases=aliases, case_sensitive=case_sensitive, line=line)
    if name == "regex":
        if "pattern" not in options:
            raise TypeError("the regex parser needs pattern=...")
        flags = 0
        for flag in str(options.pop("flags", "") or "").replace(",", "|").split("|"):
            if flag.strip():
                flags |= getattr(re.RegexFlag, flag.strip().upper())
        compiled = re.compile(options.pop("pattern"), flags)
        group = options.pop("group", 1)
        _reject(name, options)
        if compiled.groups and not (
            (isinstance(group, int) and 0 <= group <= compiled.groups)
            or (isinstance(group, str) and group in compiled.groupindex)
        ):
            raise ValueError(f"pattern {compiled.pattern!r} has no group {group!r}")
        return partial(parse_regex, pattern=compiled, group=group)
    if name == "json":
        field = options.pop("field", None)
        _reject(name, options)
        return partial(parse_json, field=field)
    if name == "entities":
        types = options.pop("types", None)
        _reject(name, options)
        return partial(parse_entities, types=list(types) if types is not None else None)
    if name == "number":
        which = options.pop("which", "final")
        percent = options.pop("percent", "number")
        scale_words = bool(options.pop("scale_words", True))
        _reject(name, options)
        parse_number("0", which=which, percent=percent)  # validates the options
        return partial(parse_number, which=which, percent=percent, scale_words=scale_words)
    if name == "text":
        _reject(name, options)
        return parse_text
    raise ValueError(f"unknown parser {name!r}; known: label, regex, json, entities, number, text")


def _reject(name: str, options: Mapping[str, Any]) -> None:
    if options:
        raise TypeError(f"the {name} parser takes no option(s) {sorted(options)}")
