"""Named value converters of declarative tasks: gold fields and parsed answers into metric items.

A task file uses them where a dataset's shape differs from what a metric scores, e.g. BIO tags
into ``(text, type)`` entities for ``entity_f1``::

    reference: {field: tags, transform: {name: bio_entities, tokens: tokens}}
    prediction_transform: {name: mapping_pairs}

Each converter raises :class:`ValueError` on a value of the wrong shape. For gold values that is
an error of the task or its data; for model answers the task treats it as an unparsable answer.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Entity = tuple[str, str]
_OUTSIDE = frozenset({"O", "OTHER", "0"})


@dataclass(frozen=True)
class Transform:
    """A converter with its options bound; ``needs_row`` when it reads other fields of the row."""

    name: str
    apply: Callable[[Any, Mapping[str, Any]], Any]
    needs_row: bool = False

    def __call__(self, value: Any, row: Mapping[str, Any]) -> Any:
        return self.apply(value, row)


def _split_tag(tag: str) -> tuple[str, str]:
    """``(prefix, type)`` of a BIO tag: ``B-PER``/``I-PER``, ``PER_B``/``PER_I``, or ``O``."""
    text = str(tag).strip()
    upper = text.upper()
    if upper in _OUTSIDE:
        return "O", ""
    if len(text) > 2 and text[1] in "-_" and upper[0] in "BIES":
        return upper[0], text[2:]
    if len(text) > 2 and text[-2] in "-_" and upper[-1] in "BIES":
        return upper[-1], text[:-2]
    raise ValueError(f"not a BIO tag: {tag!r} (expected B-TYPE, I-TYPE, TYPE_B, TYPE_I or O)")


def bio_to_entities(tokens: Sequence[str], tags: Sequence[str]) -> list[Entity]:
    """Entities ``(text, type)`` of a BIO-tagged token sequence, in order.

    ``B``/``S`` start an entity, ``I``/``E`` continue one of the same type (or start one after
    ``O`` or another type, as seqeval does by default); tokens are joined with single spaces.
    """
    if len(tokens) != len(tags):
        raise ValueError(f"{len(tokens)} tokens but {len(tags)} tags")
    entities: list[Entity] = []
    start, kind = -1, ""
    for index, tag in enumerate(tags):
        prefix, tag_type = _split_tag(tag)
        continues = prefix in ("I", "E") and start >= 0 and tag_type == kind
        if not continues:
            if start >= 0:
                entities.append((" ".join(tokens[start:index]), kind))
            start, kind = (index, tag_type) if prefix != "O" else (-1, "")
    if start >= 0:
        entities.append((" ".join(tokens[start:]), kind))
    return entities


def _bio_entities(*, tokens: str = "tokens") -> Transform:
    def apply(tags: Any, row: Mapping[str, Any]) -> list[Entity]:
        if tokens not in row:
            raise ValueError(f"bio_entities needs the row field {tokens!r} (the tokens)")
        if not isinstance(tags, Sequence) or isinstance(tags, str):
            raise ValueError(f"bio_entities expects a list of tags, got {type(tags).__name__}")
        return bio_to_entities([str(t) for t in row[tokens]], [str(t) for t in tags])

    return Transform("bio_entities", apply, needs_row=True)


def _literal(value: Any) -> Any:
    """A JSON or Python-literal string as its value (datasets that store dicts as text)."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value.strip())
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"cannot read {value[:80]!r} as a literal: {exc}") from None


def _pairs(*, text: str, type: str) -> Transform:
    def apply(value: Any, row: Mapping[str, Any]) -> list[Entity]:
        items = _literal(value)
        if not isinstance(items, Sequence) or isinstance(items, str):
            raise ValueError(f"pairs expects a list of objects, got {type_name(items)}")
        out = []
        for item in items:
            if not isinstance(item, Mapping) or text not in item or type not in item:
                raise ValueError(f"pairs expects objects with keys {text!r} and {type!r}, got {item!r}")
            out.append((str(item[text]), str(item[type])))
        return out

    return Transform("pairs", apply)


def _grouped_pairs() -> Transform:
    def apply(value: Any, row: Mapping[str, Any]) -> list[Entity]:
        groups = _literal(value)
        if not isinstance(groups, Mapping):
            raise ValueError(f"grouped_pairs expects an object {{type: [texts]}}, got {type_name(groups)}")
        out = []
        for kind, texts in groups.items():
            for text in [texts] if isinstance(texts, (str, int, float)) else texts:
                out.append((str(text), str(kind)))
        return out

    return Transform("grouped_pairs", apply)


def _mapping_pairs() -> Transform:
    def apply(value: Any, row: Mapping[str, Any]) -> list[Entity]:
        mapping = _literal(value)
        if not isinstance(mapping, Mapping):
            raise ValueError(f"mapping_pairs expects an object {{text: type}}, got {type_name(mapping)}")
        return [(str(text), str(kind)) for text, kind in mapping.items()]

    return Transform("mapping_pairs", apply)


def _delimited_pairs(
    *, item_sep: str = ", ", pair_sep: str = " - ", none: Sequence[str] = ("No entities found", "None", "")
) -> Transform:
    none_forms = {n.casefold() for n in none}

    def apply(value: Any, row: Mapping[str, Any]) -> list[Entity]:
        if not isinstance(value, str):
            raise ValueError(f"delimited_pairs expects text like '[A - T, B - T]', got {type_name(value)}")
        text = value.strip()
        if text.casefold().rstrip(".") in none_forms:
            return []
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1].strip()
        out = []
        for item in text.split(item_sep) if text else []:
            name, sep, kind = item.rpartition(pair_sep)
            if not sep or not name.strip() or not kind.strip():
                raise ValueError(f"item {item!r} is not 'text{pair_sep}type'")
            out.append((name.strip(), kind.strip()))
        return out

    return Transform("delimited_pairs", apply)


def _number() -> Transform:
    from taskgrove.tasks.parsers import parse_number

    def apply(value: Any, row: Mapping[str, Any]) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        number = parse_number(str(value))
        if number is None:
            raise ValueError(f"no number in {str(value)[:80]!r}")
        return number

    return Transform("number", apply)


def type_name(value: Any) -> str:
    return type(value).__name__


_FACTORIES: dict[str, Callable[..., Transform]] = {
    "bio_entities": _bio_entities,
    "pairs": _pairs,
    "grouped_pairs": _grouped_pairs,
    "mapping_pairs": _mapping_pairs,
    "delimited_pairs": _delimited_pairs,
    "number": _number,
}


def available_transforms() -> list[str]:
    """The names :func:`get_transform` knows."""
    return sorted(_FACTORIES)


def get_transform(name: str, **options: Any) -> Transform:
    """The converter ``name`` with ``options`` bound; ``ValueError``/``TypeError`` for a bad name or option."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ValueError(f"unknown transform {name!r}; known: {', '.join(available_transforms())}")
    return factory(**options)
