"""Benchmark: dynamic batching in the local backend vs a plain transformers script.

Same 100 chat prompts, greedy, at most 16 new tokens, batches of 16, embedded SmolLM2-135M.
Each variant runs as its own process and is timed whole (imports, model load, generation):

  (a) plain   a script calling ``model.generate`` on length-sorted batches of 16
  (b) backend ``taskgrove.models`` driven by 100 concurrent ``generate`` calls
  (c) run     the whole ``taskgrove run`` command on a task tree made of the same prompts (by
              default 4 tasks, one per instruction: ``--split 1`` makes it one task): executor,
              results store, scoring, through the dynamic-batching backend, every task's samples
              scheduled onto the model at once (the issue's target: c within 1.05x of a)

    python bench/bench_local_model.py [--repeat 3] [--split 4]

Besides the times and ratios it prints, for (a), (b) and (c), the padding waste (the share of
pad tokens in the batches' prompts) and the batch fill (mean batch size / the batch size 16);
(c) reports them in its run.json (``batching``).

Timings on a small shared machine are noisy: variants run interleaved, ``--repeat`` times; the
best time of each is compared, and so is each round's ratio (its runs are back to back), whose
median is the steadier figure when the machine's speed drifts. Both get the same environment, including
``OMP_WAIT_POLICY`` (the backend would otherwise default it to PASSIVE on its own).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_NEW_TOKENS = 16
BATCH = 16

SENTENCES = [
    "The central bank raised interest rates by 50 basis points to curb inflation.",
    "Quarterly revenue rose 12% year over year, beating analyst estimates.",
    "The company announced layoffs affecting 8% of its workforce.",
    "Bond yields fell sharply after the weak jobs report.",
    "Oil prices surged as supply disruptions hit the market.",
    "The firm cut its full-year guidance citing soft demand.",
    "Shares jumped after the merger was approved by regulators.",
    "Unemployment held steady at 3.9% in March.",
    "The committee signalled that further tightening may be appropriate.",
    "Net income declined due to higher interest expenses.",
    "The startup raised $40 million in a Series B round.",
    "Inflation expectations remain well anchored, officials said.",
    "The retailer reported record holiday sales.",
    "Credit card delinquencies climbed to a ten-year high.",
    "The dollar weakened against the euro on Friday.",
    "Management expects margins to improve next year.",
    "The bank set aside more reserves for loan losses.",
    "Housing starts dropped for the third straight month.",
    "The board approved a $2 billion share buyback.",
    "Gold hit an all-time high amid geopolitical tension.",
    "The Fed kept rates unchanged and dropped its easing bias.",
    "Copper demand is softening as construction slows.",
    "The insurer's combined ratio improved to 94%.",
    "Consumer confidence fell to its lowest level since 2020.",
    "The company will pay a special dividend of $1 per share.",
]

INSTRUCTIONS = [
    "Classify the sentiment of this financial sentence as positive, negative or neutral: {s}",
    "Is this statement hawkish, dovish or neutral? Answer in one word. {s}",
    "Summarize in at most five words: {s}",
    "Which economic sector does this sentence concern? {s}",
]


def prompts() -> list[list[dict[str, str]]]:
    """The 100 chat prompts (25 sentences x 4 instructions)."""
    return [[{"role": "user", "content": i.format(s=s)}] for i in INSTRUCTIONS for s in SENTENCES]


RUN_TASK = """\
name: bench/prompts_{part}
source: file:{data}
id_field: id
input: "{{{{ prompt }}}}"
reference: reference
fewshot: null
metrics: [squad_f1]
"""


def parts(split: int) -> list[list[int]]:
    """The prompt indices of each task of the `taskgrove run` variant (consecutive slices)."""
    count = len(prompts())
    size = -(-count // split)
    return [list(range(start, min(start + size, count))) for start in range(0, count, size)]


def variants(out: Path, split: int) -> dict[str, list[str]]:
    """name -> command; each leaves ``{"outputs": [...100 texts], "<phase>_s": seconds}`` in
    ``out/<name>.json`` (for the `taskgrove run` variant, :func:`collect_run` writes it)."""
    me = [sys.executable, str(Path(__file__).resolve())]
    tasks = out / "tasks"
    tasks.mkdir()
    all_prompts = prompts()
    for part, indices in enumerate(parts(split)):
        data = out / f"prompts_{part}.jsonl"
        data.write_text(
            "".join(
                json.dumps({"id": i, "prompt": all_prompts[i][0]["content"], "reference": ""}) + "\n" for i in indices
            )
        )
        (tasks / f"prompts_{part}.yaml").write_text(RUN_TASK.format(data=data, part=part))
    run = [
        sys.executable,
        "-m",
        "taskgrove",
        "run",
        "--include-path",
        str(tasks),
        "--tasks",
        *(f"bench/prompts_{part}" for part in range(len(parts(split)))),
        "--max-tokens",
        str(MAX_NEW_TOKENS),
        "--temperature",
        "0",
        "--batch-size",
        str(BATCH),
        "--concurrency",
        "100",
        "--no-cache",
        "--no-progress",
        "--output-dir",
        str(out / "results"),
        "--run-id",
        "bench",
    ]
    return {
        "a_plain": [*me, "--child", "plain", "--out", str(out / "a_plain.json")],
        "b_backend": [*me, "--child", "backend", "--out", str(out / "b_backend.json")],
        "c_run": run,
    }


def collect_run(out: Path) -> None:
    """The outputs of the `taskgrove run` variant, in prompt order, from its samples files, and
    its batching report from run.json."""
    run_dir = out / "results" / "bench"
    texts = {}
    for samples in sorted((run_dir / "bench").glob("*/samples.jsonl")):
        for line in samples.read_text().splitlines():
            record = json.loads(line)
            texts[int(record["id"])] = record["outputs"][0]["messages"][-1]["content"]
    status = json.loads((run_dir / "run.json").read_text())
    (out / "c_run.json").write_text(
        json.dumps(
            {
                "outputs": [texts[i] for i in range(len(texts))],
                "tasks_s": status["seconds"],
                "batching": status.get("batching", {}),
            }
        )
    )
    shutil.rmtree(out / "results")


# --- children ----------------------------------------------------------------------------------
def child_plain(out: Path) -> None:
    """(a): transformers only, the way a careful script would do it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    directory = model_dir()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(directory).eval()
    loaded = time.perf_counter()
    texts = [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts()]
    order = sorted(range(len(texts)), key=lambda i: len(tokenizer(texts[i], add_special_tokens=False)["input_ids"]))
    outputs: dict[int, str] = {}
    real = padded = batches = 0
    for start in range(0, len(order), BATCH):
        chunk = order[start : start + BATCH]
        enc = tokenizer([texts[i] for i in chunk], return_tensors="pt", padding=True, add_special_tokens=False)
        real += int(enc["attention_mask"].sum())
        padded += enc["attention_mask"].numel()
        batches += 1
        with torch.inference_mode():
            generated = model.generate(
                **enc, max_new_tokens=MAX_NEW_TOKENS, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
        for row, i in enumerate(chunk):
            outputs[i] = tokenizer.decode(generated[row, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    timing = {"load_s": loaded - started, "generate_s": time.perf_counter() - loaded}
    batching = {"batches": batches, "fill": len(texts) / batches / BATCH, "padding_waste": 1 - real / padded}
    out.write_text(json.dumps({"outputs": [outputs[i] for i in range(len(texts))], **timing, "batching": batching}))


def child_backend(out: Path) -> None:
    """(b): the dynamic-batching backend, 100 concurrent requests."""
    import asyncio

    sys.path.insert(0, str(ROOT / "src"))
    from taskgrove.models import create_model

    timing: dict[str, float] = {}
    report: dict[str, float] = {}

    async def main() -> list[str]:
        started = time.perf_counter()
        model = create_model("local", batch_size=BATCH, cache=False)
        loaded = time.perf_counter()
        timing["load_s"] = loaded - started
        try:
            choices = await asyncio.gather(
                *(model.generate(p, max_tokens=MAX_NEW_TOKENS, temperature=0) for p in prompts())
            )
            timing["generate_s"] = time.perf_counter() - loaded
        finally:
            report.update(model.batch_report())
            await model.aclose()
        return [c.content for c in choices]

    outputs = asyncio.run(main())
    out.write_text(json.dumps({"outputs": outputs, **timing, "batching": report}))


def model_dir() -> str:
    """The converted safetensors dir of the embedded model (converting it if needed)."""
    sys.path.insert(0, str(ROOT / "src"))
    from taskgrove.models.loading import default_gguf, ensure_converted
    from taskgrove.models.paths import cache_root

    return str(ensure_converted(default_gguf(), cache_root()))


# --- driver ------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant (best time counts)")
    parser.add_argument("--split", type=int, default=4, help="tasks the prompts are split into for (c)")
    parser.add_argument("--omp-wait-policy", default="PASSIVE", help="OMP_WAIT_POLICY for every variant")
    parser.add_argument("--child", choices=["plain", "backend"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "plain":
        child_plain(args.out)
        return
    if args.child == "backend":
        child_backend(args.out)
        return

    print(f"model dir: {model_dir()} (conversion done before timing)")
    env = {**os.environ, "OMP_WAIT_POLICY": args.omp_wait_policy, "TOKENIZERS_PARALLELISM": "false"}
    # `python -m taskgrove` runs this checkout's code, not whichever taskgrove is installed
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        commands = variants(Path(tmp), args.split)
        for round_ in range(args.repeat):
            for name, command in commands.items():
                started = time.perf_counter()
                subprocess.run(
                    command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp
                )
                elapsed = time.perf_counter() - started
                if name == "c_run":
                    collect_run(Path(tmp))
                times.setdefault(name, []).append(elapsed)
                report = json.loads((Path(tmp) / f"{name}.json").read_text())
                inner = ", ".join(f"{k} {v:.2f}s" for k, v in report.items() if k.endswith("_s"))
                print(
                    f"round {round_ + 1}: {name:<10} {elapsed:7.2f}s  [{inner}]  (load avg {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
        reports = {name: json.loads((Path(tmp) / f"{name}.json").read_text()) for name in commands}
        outputs = {name: report["outputs"] for name, report in reports.items()}
    print()
    for name, values in times.items():
        print(
            f"{name:<10} best {min(values):7.2f}s  median {statistics.median(values):7.2f}s  runs {', '.join(f'{v:.2f}' for v in values)}"
        )
    a, b, c = (min(times[name]) for name in ("a_plain", "b_backend", "c_run"))
    # on a shared machine whose speed drifts by 10-20% over minutes, the ratio within each round
    # (three runs back to back) is steadier than the ratio of bests taken from different rounds
    for name in ("b_backend", "c_run"):
        paired = [x / y for x, y in zip(times[name], times["a_plain"], strict=True)]
        print(
            f"paired {name[0]}/a per round: {', '.join(f'{r:.3f}' for r in paired)}; median {statistics.median(paired):.3f}"
        )
    print(f"ratio b/a (best): {b / a:.3f}   backend alone")
    print(
        f"ratio c/a (best): {c / a:.3f}   whole `taskgrove run`, {args.split} task(s) (target <= 1.05; lm-evaluation-harness ~1.3, Inspect ~1.5 here)"
    )
    for name in ("a_plain", "b_backend", "c_run"):
        stats = reports[name]["batching"]
        print(
            f"{name:<10} padding waste {stats['padding_waste']:.3f}  batch fill {stats['fill']:.3f}  ({stats['batches']} batches)"
        )
    for name in ("b_backend", "c_run"):
        same = sum(x == y for x, y in zip(outputs["a_plain"], outputs[name], strict=True))
        print(f"identical outputs a vs {name}: {same}/{len(outputs['a_plain'])}")


if __name__ == "__main__":
    main()
