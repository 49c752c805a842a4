"""FLaME's inference CSV files as stored samples, so ``evaluate --file_name x.csv`` scores them.

FLaME (gtfintechlab/FLaME) writes one CSV per task run, one row per test item in the order of the
dataset's test split, with the model's reply and the gold value in columns that differ by task
(``llm_responses``/``actual_labels`` for most; ``response``/``actual_label`` for FinQA and
ConvFinQA; ``response``/``actual_answer`` for TAT-QA; ``predicted_tags``/``actual_tags`` for causal
detection; ``<FEATURE>_response``/``<FEATURE>_actual_label`` per feature for SubjECTive-QA).
Each row becomes a sample record of the matching ``finance/<task>``: the reply as the stored
output and the gold computed by the task itself from the CSV's gold value (as the row field
the dataset has), so FLaME's results are scored exactly as taskgrove scores its own runs.

CSV cells hold what pandas wrote: lists and dicts as Python literals (read back with
:func:`ast.literal_eval`), numbers as text, a missing reply as an empty cell (unparsable).
"""

from __future__ import annotations

import ast
import csv
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskgrove.errors import ConfigError

#: FLaME task -> (reply column, gold column, the dataset field the gold is, extra columns -> fields)
COLUMNS: dict[str, tuple[str, str, str, dict[str, str]]] = {
    "banking77": ("llm_responses", "actual_labels", "label", {}),
    "causal_classification": ("llm_responses", "actual_labels", "label", {}),
    "causal_detection": ("predicted_tags", "actual_tags", "tags", {"tokens": "tokens"}),
    "convfinqa": ("response", "actual_label", "answer_1", {}),
    "ectsum": ("llm_responses", "actual_labels", "response", {}),
    "finentity": ("llm_responses", "actual_labels", "annotations", {}),
    "finer": ("llm_responses", "actual_labels", "tags", {"sentences": "tokens"}),
    "finqa": ("response", "actual_label", "answer", {}),
    "fnxl": ("llm_responses", "actual_labels", "numerals-tags", {}),
    "fomc": ("llm_responses", "actual_labels", "label", {}),
    "numclaim": ("llm_responses", "actual_labels", "response", {}),
    "refind": ("llm_responses", "actual_labels", "rel_group", {}),
    "tatqa": ("response", "actual_answer", "answer", {}),
}
#: SubjECTive-QA: one reply and gold column per feature, in FLaME's (and the task's) order.
SUBJECTIVEQA_FEATURES = ("RELEVANT", "SPECIFIC", "CAUTIOUS", "ASSERTIVE", "CLEAR", "OPTIMISTIC")


def flame_task(task_name: str) -> str | None:
    """The FLaME task a taskgrove task reproduces (``finance/fomc`` -> ``fomc``), or ``None``."""
    group, _, short = task_name.partition("/")
    if group != "finance" or (short not in COLUMNS and short != "subjectiveqa"):
        return None
    return short


def _cell(value: str) -> Any:
    """A CSV cell as the value pandas wrote: a literal (list, dict, number) when it reads as
    one, else the text."""
    text = value.strip()
    if not text:
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return value


@dataclass
class FlameCsv:
    """A FLaME result CSV standing in for a task's stored samples in evaluate mode."""

    path: Path
    task_name: str

    def __post_init__(self) -> None:
        if flame_task(self.task_name) is None:
            known = ", ".join(f"finance/{t}" for t in sorted([*COLUMNS, "subjectiveqa"]))
            raise ConfigError(f"{self.path}: FLaME result CSVs can be scored for FLaME's tasks only ({known})")
        with self.path.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
        short = flame_task(self.task_name)
        if short == "subjectiveqa":
            needed = [f"{f}_{kind}" for f in SUBJECTIVEQA_FEATURES for kind in ("response", "actual_label")]
        else:
            reply, gold, _, extra = COLUMNS[str(short)]
            needed = [reply, gold, *extra]
        missing = [c for c in needed if c not in header]
        if missing:
            raise ConfigError(
                f"{self.path}: not a FLaME {short} result file: no column(s) {', '.join(missing)} "
                f"(it has {', '.join(sorted(header)) or 'none'})"
            )

    def _rows(self) -> list[dict[str, str]]:
        csv.field_size_limit(sys.maxsize)
        with self.path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            return list(reader)

    def records(self, task: Any) -> list[dict[str, Any]]:
        """One stored-sample record per reply, the gold as ``task`` computes it from the CSV's gold."""
        short = flame_task(self.task_name)
        rows = self._rows()
        out = []
        for index, row in enumerate(rows):
            if short == "subjectiveqa":
                for feature in SUBJECTIVEQA_FEATURES:
                    fields = {feature: _cell(row[f"{feature}_actual_label"])}
                    reference = self._gold(task, fields, index, feature)
                    out.append(
                        self._record(f"{index}/{feature}", index, row[f"{feature}_response"], reference, feature)
                    )
                continue
            reply, gold, field, extra = COLUMNS[str(short)]
            fields = {field: _cell(row[gold])}
            fields.update({name: _cell(row[column]) for column, name in extra.items()})
            out.append(self._record(str(index), index, row[reply], self._gold(task, fields, index, None), None))
        return out

    def _gold(self, task: Any, fields: dict[str, Any], index: int, value: Any) -> Any:
        try:
            return task.reference_of(fields, value, str(index))
        except Exception as exc:  # the task's DataError, with the CSV row named
            raise ConfigError(
                f"{self.path}, row {index + 1}: gold value does not fit {self.task_name}: {exc}"
            ) from None

    def _record(self, sample_id: str, index: int, reply: str, reference: Any, feature: str | None) -> dict[str, Any]:
        scenario: dict[str, Any] = {"id": sample_id, "reference": reference}
        if feature is not None:
            scenario["feature"] = feature
        content = reply if reply.strip() else None  # FLaME writes a failed call as an empty cell
        return {
            "id": sample_id,
            "index": index,
            "input": [],
            "outputs": [{"messages": [{"role": "assistant", "content": content, "choice": {}}]}],
            "reference": reference,
            "reward": None,
            "metrics": {},
            "error": None,
            "usage": {},
            "timing": {"started": 0.0, "seconds": 0.0},
            "scenario": scenario,
            "source": {"flame_csv": str(self.path), "row": index},
        }
