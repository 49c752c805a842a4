"""Benchmark: multiple-choice log-likelihood scoring, one prefill per context vs a full pass per choice.

Same model (the embedded SmolLM2-135M-Instruct, float32, CPU), same chat-templated prompts, same
continuations, batches of 16 sequences. Each variant runs as its own process, timed whole
(imports, model load, scoring):

  (a) full     the local backend with ``shared_prefix=False``: one forward pass over context +
               continuation per choice (the code path before shared-prefix scoring)
  (b) shared   the local backend as shipped: each context prefilled once, every choice scored
               against its KV cache
  (c) lmeval   lm-evaluation-harness's ``HFLM.loglikelihood`` on the same (context, continuation)
               strings (skipped with a note when lm-eval is not installed)

Cases:

  2way   snarks-like items in BIG-bench snarks' format ("Which statement is sarcastic?" with
         options (A) and (B), continuations "(A)" / "(B)"), 3-shot, built from the sarcastic and
         plain headlines of OpenAI evals' ``sarcasm`` data (shipped in the ``evals`` package; the
         BIG-bench task files are a 358 MB download, see ``scripts/fetch_bigbench.py``): each
         item pairs one headline of each kind.
  77way  the 10 items of OpenAI evals' ``banking77`` (its system prompt lists the 77 intents);
         the 77 intent names are the continuations.

    python bench/bench_mc.py [--repeat 3] [--cases 2way 77way] [--items-2way 32] [--items-77way 2]

Variants run interleaved, ``--repeat`` times; medians are compared (the machine is shared and
noisy). Every variant must pick the same choice for every item (asserted); (a) and (b) must
agree within 1e-3 on every log-likelihood. lm-eval moves the context's trailing newline into
the continuation, so its scores differ from ours by the same amount for every choice of an item
(the newline's log-prob): the report gives the largest spread of that difference within an item.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BATCH = 16
SHOTS = 3
QUESTION = "Which statement is sarcastic?"
Item = tuple[list[dict[str, str]], list[str], int]  # (messages, choices, index of the gold choice)


# --- items ---------------------------------------------------------------------------------------
def evals_data(name: str) -> Path:
    """``<evals package>/registry/data/<name>`` (the package is located, never imported)."""
    spec = importlib.util.find_spec("evals")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the benchmark data comes from the evals package: pip install --no-deps evals==3.0.1.post1")
    return Path(next(iter(spec.submodule_search_locations))) / "registry" / "data" / name


def sarcasm_pairs() -> list[tuple[str, str, int]]:
    """[(statement A, statement B, index of the sarcastic one)] from evals' sarcasm headlines."""
    rows = [json.loads(line) for line in (evals_data("sarcasm") / "samples.jsonl").open(encoding="utf-8")]
    sarcastic = [r["input"][-1]["content"] for r in rows if r["ideal"] == "1"][:500]
    plain = [r["input"][-1]["content"] for r in rows if r["ideal"] == "0"][:500]
    return [(s, p, 0) if i % 2 == 0 else (p, s, 1) for i, (s, p) in enumerate(zip(sarcastic, plain, strict=True))]


def question(first: str, second: str) -> str:
    return f"{QUESTION}\nOptions:\n(A) {first}\n(B) {second}"


def items_2way(count: int) -> tuple[str, list[Item]]:
    pairs = sarcasm_pairs()
    shots, pool = pairs[:SHOTS], pairs[SHOTS : SHOTS + count]
    demos: list[dict[str, str]] = []
    for first, second, gold in shots:
        demos += [
            {"role": "user", "content": question(first, second)},
            {"role": "assistant", "content": ("(A)", "(B)")[gold]},
        ]
    source = f"OpenAI evals sarcasm headlines ({evals_data('sarcasm')}) paired as snarks-like items, {SHOTS}-shot"
    return source, [
        ([*demos, {"role": "user", "content": question(a, b)}], ["(A)", "(B)"], gold) for a, b, gold in pool
    ]


def items_77way(count: int) -> tuple[str, list[Item]]:
    path = evals_data("banking77") / "samples.jsonl"
    rows = [json.loads(line) for line in path.open(encoding="utf-8")][:count]
    system = rows[0]["input"][0]["content"]
    labels = [line[3:].strip() for line in system.splitlines() if line.startswith(" - ")]
    if len(labels) != 77:
        raise SystemExit(f"{path}: expected 77 intents in the system prompt, found {len(labels)}")
    return f"OpenAI evals banking77 ({path})", [(r["input"], labels, labels.index(r["ideal"])) for r in rows]


def load_items(case: str, counts: dict[str, int]) -> tuple[str, list[Item]]:
    return items_2way(counts["2way"]) if case == "2way" else items_77way(counts["77way"])


# --- children: each scores every item and writes {"scores": [[...]], ...} -------------------------
def child_backend(items: list[Item], shared: bool) -> dict[str, Any]:
    """(a) / (b): the local backend, every item's loglikelihood call in flight at once."""
    import asyncio

    sys.path.insert(0, str(ROOT / "src"))
    from taskgrove.models.local import LocalModel

    started = time.perf_counter()
    model = LocalModel.load("default", batch_size=BATCH, shared_prefix=shared)
    loaded = time.perf_counter()

    async def main() -> list[list[float]]:
        try:
            return list(
                await asyncio.gather(*(model.loglikelihood(messages, choices) for messages, choices, _ in items))
            )
        finally:
            await model.aclose()

    scores = asyncio.run(main())
    stats = model.prefix_stats
    return {
        "scores": scores,
        "load_s": loaded - started,
        "score_s": time.perf_counter() - loaded,
        "batches": model.stats.batches,
        "fallback_rows": stats.fallback_rows,
        "prefilled_tokens": stats.prefilled_tokens,
    }


def child_lmeval(items: list[Item]) -> dict[str, Any]:
    """(c): lm-evaluation-harness's HFLM on the same chat-templated contexts and continuations."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    started = time.perf_counter()
    lm = HFLM(pretrained=model_dir(), device="cpu", dtype="float32", batch_size=BATCH)
    loaded = time.perf_counter()
    requests, shape = [], []
    for messages, choices, _ in items:
        context = lm.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        shape.append(len(choices))
        for choice in choices:
            requests.append(
                Instance(request_type="loglikelihood", doc={}, arguments=(context, choice), idx=len(requests))
            )
    flat = [float(logprob) for logprob, _ in lm.loglikelihood(requests, disable_tqdm=True)]
    scores, start = [], 0
    for n in shape:
        scores.append(flat[start : start + n])
        start += n
    return {"scores": scores, "load_s": loaded - started, "score_s": time.perf_counter() - loaded}


def model_dir() -> str:
    """The converted safetensors dir of the embedded model (converting it if needed)."""
    sys.path.insert(0, str(ROOT / "src"))
    from taskgrove.models.loading import default_gguf, ensure_converted
    from taskgrove.models.paths import cache_root

    return str(ensure_converted(default_gguf(), cache_root()))


# --- driver --------------------------------------------------------------------------------------
def argmaxes(scores: list[list[float]]) -> list[int]:
    return [max(range(len(row)), key=row.__getitem__) for row in scores]


def compare(case: str, items: list[Item], results: dict[str, dict[str, Any]], times: dict[str, list[float]]) -> None:
    """Print the side-by-side table of one case and assert that the variants agree."""
    print(f"\n== {case}: {len(items)} items x {len(items[0][1])} choices ==")
    for name, values in times.items():
        inner = results[name]
        print(
            f"{name:<8} median {statistics.median(values):8.2f}s  runs {', '.join(f'{v:.2f}' for v in values)}"
            f"  [load {inner['load_s']:.2f}s, score {inner['score_s']:.2f}s]"
        )
    picks = {name: argmaxes(r["scores"]) for name, r in results.items()}
    for name, chosen in picks.items():
        assert chosen == picks["b_shared"], f"{case}: {name} picks {chosen}, b_shared picks {picks['b_shared']}"
    gold = [g for _, _, g in items]
    print(
        f"identical choices in all variants: {len(gold)}/{len(gold)}; accuracy {sum(p == g for p, g in zip(picks['b_shared'], gold, strict=True))}/{len(gold)}"
    )
    shared = results["b_shared"]
    print(f"b_shared: {shared['fallback_rows']} full-pass fallback rows, {shared['prefilled_tokens']} prefilled tokens")
    b = statistics.median(times["b_shared"])
    if "a_full" in results:
        diff = max(
            abs(x - y)
            for r, s in zip(results["a_full"]["scores"], shared["scores"], strict=True)
            for x, y in zip(r, s, strict=True)
        )
        print(f"max |a_full - b_shared| log-likelihood: {diff:.2e} (nats)")
        assert diff <= 1e-3, f"{case}: shared-prefix scores differ from full-pass scores by {diff}"
        print(f"ratio a_full / b_shared (median wall time): {statistics.median(times['a_full']) / b:.2f}x")
    if "c_lmeval" in results:
        spread = max(
            max(d) - min(d)
            for d in (
                [x - y for x, y in zip(r, s, strict=True)]
                for r, s in zip(results["c_lmeval"]["scores"], shared["scores"], strict=True)
            )
        )
        print(
            f"lm-eval minus ours, largest spread within an item: {spread:.2e} nats (a shared offset: its extra newline token)"
        )
        print(f"ratio c_lmeval / b_shared (median wall time): {statistics.median(times['c_lmeval']) / b:.2f}x")
        score = results["c_lmeval"]["score_s"] / results["b_shared"]["score_s"]
        print(f"ratio c_lmeval / b_shared (scoring phase of the last round, load excluded): {score:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant (medians are compared)")
    parser.add_argument("--cases", nargs="+", choices=["2way", "77way"], default=["2way", "77way"])
    parser.add_argument("--items-2way", type=int, default=32, help="snarks-like items (after the 3 demonstrations)")
    parser.add_argument("--items-77way", type=int, default=2, help="banking77 items (at most 10)")
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=["full", "shared", "lmeval"],
        default=["full", "shared", "lmeval"],
        help="which variants run (shared always does; without full the 1e-3 agreement check is skipped)",
    )
    parser.add_argument("--omp-wait-policy", default="PASSIVE", help="OMP_WAIT_POLICY for every variant")
    parser.add_argument("--child", choices=["full", "shared", "lmeval"], help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=["2way", "77way"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    counts = {"2way": args.items_2way, "77way": args.items_77way}
    if args.child:
        _, items = load_items(args.case, counts)
        result = child_lmeval(items) if args.child == "lmeval" else child_backend(items, shared=args.child == "shared")
        args.out.write_text(json.dumps(result))
        return

    print(f"model dir: {model_dir()} (conversion done before timing)")
    variants = [v for v in ("full", "shared") if v in args.variants or v == "shared"]
    if importlib.util.find_spec("lm_eval") is None:
        print("lm-eval is not installed: variant (c) skipped (pip install lm-eval==0.4.13)")
    elif "lmeval" in args.variants:
        variants.append("lmeval")
    names = {"full": "a_full", "shared": "b_shared", "lmeval": "c_lmeval"}
    env = {**os.environ, "OMP_WAIT_POLICY": args.omp_wait_policy, "TOKENIZERS_PARALLELISM": "false"}
    me = [sys.executable, str(Path(__file__).resolve())]
    sizes = ["--items-2way", str(args.items_2way), "--items-77way", str(args.items_77way)]
    for case in args.cases:
        source, items = load_items(case, counts)
        print(f"\n{case}: {source}")
        times: dict[str, list[float]] = {}
        results: dict[str, dict[str, Any]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for round_ in range(args.repeat):
                for variant in variants:
                    name = names[variant]
                    out = Path(tmp) / f"{name}.json"
                    command = [*me, "--child", variant, "--case", case, "--out", str(out), *sizes]
                    started = time.perf_counter()
                    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True, cwd=tmp)
                    if done.returncode != 0:
                        raise SystemExit(f"{name} ({case}) failed:\n{done.stderr[-3000:]}")
                    times.setdefault(name, []).append(time.perf_counter() - started)
                    results[name] = json.loads(out.read_text())
                    print(
                        f"round {round_ + 1}: {name:<8} {times[name][-1]:8.2f}s  [score {results[name]['score_s']:.2f}s]"
                        f"  (load avg {os.getloadavg()[0]:.1f})",
                        flush=True,
                    )
        compare(case, items, results, times)


if __name__ == "__main__":
    main()
