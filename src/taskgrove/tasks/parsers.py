"""Answer parsers: turn a model's raw text into the value a metric scores.

Every parser takes the text (``None`` is allowed) and returns the parsed value, or ``None`` when
nothing parses; none raises on bad model output. :func:`get_parser` builds one from a name and
options, for declarative task files::

    parser: {name: label, labels: [positive, negative, neutral], mode: mention}
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache, partial
from typing import Any, Literal

LabelMode = Literal["exact", "insensitive", "mention"]
Entity = tuple[str, str]

_EDGE = " \t\r\n\"'`*_.,;:!?()[]{}<>\u201c\u201d\u2018\u2019"


def _norm(text: str) -> str:
    """Casefold, collapse whitespace and strip quotes, markdown emphasis and punctuation at the ends."""
    return " ".join(text.casefold().split()).strip(_EDGE)


def _label_table(labels: Sequence[str], aliases: Mapping[str, str] | None) -> dict[str, str]:
    """Surface form -> canonical label (labels map to themselves)."""
    table = {label: label for label in labels}
    for alias, label in (aliases or {}).items():
        if label not in table.values():
            raise ValueError(f"alias {alias!r} maps to {label!r}, which is not one of the labels {list(labels)}")
        table[alias] = label
    return table


# --- labels --------------------------------------------------------------------------------


def parse_label(
    text: str | None,
    labels: Sequence[str],
    *,
    mode: LabelMode = "mention",
    aliases: Mapping[str, str] | None = None,
    case_sensitive: bool = False,
) -> str | None:
    """The canonical label the text gives, or ``None``.

    * ``exact``: the stripped text equals a label or alias.
    * ``insensitive``: equal after casefolding, collapsing whitespace and stripping quotes,
      ``**bold**`` markers and punctuation at both ends.
    * ``mention``: the label or alias mentioned first in free text, matched case-insensitively on
      word boundaries; when two match at the same place the longer wins, so with labels
      ``neutral`` and ``not neutral`` the text "it is not neutral" gives ``not neutral``.

    ``aliases`` maps other surface forms to labels, e.g. ``{"pos": "positive"}``. Use
    ``case_sensitive=True`` in ``mention`` mode for letter labels (``A``-``D``), which would
    otherwise match the article "a".
    """
    if text is None or not labels:
        return None
    table = _label_table(labels, aliases)
    if mode == "exact":
        return table.get(text.strip())
    if mode == "insensitive":
        folded = {_norm(form): label for form, label in table.items()}
        return folded.get(_norm(text))
    if mode != "mention":
        raise ValueError(f"unknown label mode {mode!r}")
    pattern, found = _mention_pattern(tuple(table.items()), case_sensitive)
    if pattern is None:
        return None
    match = pattern.search(text)
    return found[match.lastindex - 1] if match is not None and match.lastindex else None


@lru_cache(maxsize=256)
def _mention_pattern(
    table: tuple[tuple[str, str], ...], case_sensitive: bool
) -> tuple[re.Pattern[str] | None, list[str]]:
    """One alternation of every form, longest first, so the leftmost match is the first mention
    and, among mentions starting at the same place, the longest (one search instead of one per label)."""
    forms = sorted(
        ((form.split(), label) for form, label in table if form.split()), key=lambda item: -len(" ".join(item[0]))
    )
    if not forms:
        return None, []
    branches = ["(" + r"\s+".join(map(re.escape, words)) + ")" for words, _ in forms]
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(branches) + r")(?!\w)", 0 if case_sensitive else re.IGNORECASE)
    return pattern, [label for _, label in forms]


# --- regex ---------------------------------------------------------------------------------


def parse_regex(text: str | None, pattern: str | re.Pattern[str], *, group: int | str = 1) -> str | None:
    """The first match's ``group`` (the whole match when the pattern has no groups), stripped."""
    if text is None:
        return None
    compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
    match = compiled.search(text)
    if match is None:
        return None
    value = match.group(group if compiled.groups else 0)
    return value.strip() if value is not None else None


# --- JSON ----------------------------------------------------------------------------------

_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n?(.*?)```", re.DOTALL)
_MISSING = object()


def _find_json(text: str) -> Any:
    """The first JSON value found, or ``_MISSING``."""
    try:
        return json.loads(text.strip())
    except ValueError:
        pass
    for block in _FENCE.findall(text):
        try:
            return json.loads(block.strip())
        except ValueError:
            continue
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[\[{]", text):
        try:
            return decoder.raw_decode(text, match.start())[0]
        except ValueError:
            continue
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
    surrounding prose), or its ``field`` (dotted path, list indices allowed: ``"a.0.b"``)."""
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


def _entity_from_line(line: str, types: Mapping[str, str] | None) -> Entity | None:
    line = _BULLET.sub("", line, count=1).strip()
    if not line:
        return None
    cut = max(((line.rfind(sep), sep) for sep in _SEPARATORS), key=lambda x: x[0])
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
        if canonical is None:
            return None
        kind = canonical
    elif len(kind) > 40 or len(kind.split()) > 4:  # prose such as "Note: this is ..."
        return None
    return (name, kind)


def parse_entities(text: str | None, *, types: Sequence[str] | None = None) -> list[Entity] | None:
    """``(name, type)`` pairs from lines like ``NAME - TYPE``.

    Bullets and numbering are ignored, and ``NAME: TYPE``, ``NAME | TYPE``, ``NAME (TYPE)`` and
    en/em dashes are accepted; the split is at the last separator, so names may hold hyphens.
    With ``types`` only those types are kept (matched case-insensitively, returned as given).
    Without ``types``, a "type" longer than four words is taken for prose and skipped.
    An answer such as "None" or "No entities" gives ``[]``; text with no entity line gives ``None``.
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
    return [] if body and _is_none_answer(body.splitlines()[0]) else None


def _is_none_answer(text: str) -> bool:
    if text.strip() in ("[]", "{}"):
        return True
    norm = _norm(text)
    return norm in _NONE_ANSWERS or _NONE_SENTENCE.fullmatch(norm) is not None


# --- numbers -------------------------------------------------------------------------------

_SCALES = {
    "thousand": 1e3,
    "million": 1e6,
    "billion": 1e9,
    "trillion": 1e12,
    "k": 1e3,
    "m": 1e6,
    "mm": 1e6,
    "mn": 1e6,
    "bn": 1e9,
    "b": 1e9,
    "t": 1e12,
    "tn": 1e12,
}
_NUMBER = re.compile(
    r"""
    (?P<open>\(\s*)?
    (?<![\w.])
    (?P<sign>[-+\u2212](?=\s*[$\u20ac\u00a3\u00a5]?\s*[\d.]))?
    \s*(?:[$\u20ac\u00a3\u00a5]|USD|EUR|GBP)?\s*
    (?P<sign2>[-+\u2212])?
    (?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)
    (?P<exp>[eE][-+]?\d+)?
    (?:
        \s*(?P<pct>%|percent\b|per\ cent\b)
      | \s+(?P<word>thousand|million|billion|trillion)\b
      | (?P<suffix>k|mm|mn|m|bn|b|tn|t)\b
    )?
    (?P<close>\s*\))?
    (?:\s+(?P<word2>thousand|million|billion|trillion)\b)?
    """,
    re.VERBOSE | re.IGNORECASE,
)


def _numbers(text: str, percent: str, scale_words: bool) -> list[float]:
    out = []
    for m in _NUMBER.finditer(text):
        value = float(m.group("num").replace(",", "") + (m.group("exp") or ""))
        if (m.group("sign") or m.group("sign2") or "") in ("-", "\u2212"):
            value = -value
        if m.group("open") and m.group("close"):
            value = -abs(value)  # accounting negative: (3.2)
        if m.group("pct") and percent == "fraction":
            value /= 100.0
        scale = m.group("word") or m.group("suffix") or m.group("word2")
        if scale and scale_words:
            value *= _SCALES[scale.lower()]
        out.append(value)
    return out


def parse_number(
    text: str | None,
    *,
    which: Literal["last", "first"] = "last",
    percent: Literal["number", "fraction"] = "number",
    scale_words: bool = True,
) -> float | None:
    """A number from the text: the last one (default) or the first.

    Understands thousands separators ("1,234.5"), signs and the Unicode minus, accounting
    negatives ("(3.2)" is -3.2), currency symbols ("$3.5"), exponents ("1e-3"), percentages
    ("12%" is 12, or 0.12 with ``percent="fraction"``) and, with ``scale_words``, scale words and
    suffixes ("$3.5 million" and "3.5M" are 3500000; "bn"/"k" likewise). Other units are ignored.
    European decimal commas ("1.234,5") are not supported.
    """
    if text is None:
        return None
    if which not in ("last", "first"):
        raise ValueError(f"which must be 'last' or 'first', got {which!r}")
    if percent not in ("number", "fraction"):
        raise ValueError(f"percent must be 'number' or 'fraction', got {percent!r}")
    values = _numbers(text, percent, scale_words)
    if not values:
        return None
    return values[-1] if which == "last" else values[0]


# --- text and the factory ------------------------------------------------------------------


def parse_text(text: str | None) -> str | None:
    """The text with surrounding whitespace stripped (``None`` stays ``None``)."""
    return None if text is None else text.strip()


Parser = Callable[[str | None], Any]


def get_parser(name: str, **options: Any) -> Parser:
    """A one-argument parser by name: ``label`` (``labels``, ``mode``, ``aliases``,
    ``case_sensitive``), ``regex``
    (``pattern``, ``group``, ``flags`` as a string like ``"IGNORECASE|DOTALL"``), ``json``
    (``field``), ``entities`` (``types``), ``number`` (``which``, ``percent``, ``scale_words``)
    or ``text``. Options are checked now: a bad name, a missing or unknown option, or an
    invalid regex raises here rather than at parse time."""
    if name == "label":
        if "labels" not in options:
            raise TypeError("the label parser needs labels=[...]")
        labels = list(options.pop("labels"))
        mode = options.pop("mode", "mention")
        aliases = dict(options.pop("aliases", None) or {})
        case_sensitive = bool(options.pop("case_sensitive", False))
        _reject(name, options)
        if mode not in ("exact", "insensitive", "mention"):
            raise ValueError(f"unknown label mode {mode!r}")
        _label_table(labels, aliases)
        return partial(parse_label, labels=labels, mode=mode, aliases=aliases, case_sensitive=case_sensitive)
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
        which = options.pop("which", "last")
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
