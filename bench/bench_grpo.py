"""RL speed and reward: taskgrove's GRPO (``taskgrove rl``, train/rl.py) vs TRL's ``GRPOTrainer``,
same task, model, reward and settings.

The task is ``rl/short_answer`` (examples/rl_short_answer.py: 15 trivia questions, reward
min(1, 3 / words) for a reply that contains the answer). Both engines train a LoRA (rank 16,
alpha 32, q/v, no dropout) on the embedded SmolLM2-135M-Instruct, each step on ``--scenarios``
questions x ``--samples`` sampled replies (temperature 1, at most ``--max-tokens`` tokens), with
the same GRPO objective: group-normalised advantages, token-level loss over the step's tokens,
ratio clipping 0.2, KL (k3) to the base model (the adapter disabled) weighted by ``--beta``, one
AdamW update per batch of samples at ``--lr``. TRL gets the same prompts (system + question,
its chat template) and the task's own reward function (``short_answer_reward``).

    python bench/bench_grpo.py                      # 10 steps, 4 questions x 4 samples
    python bench/bench_grpo.py --steps 20 --engines trl

Prints steps/s (training loop only, model loading excluded) and the mean reward of each step
of both engines side by side.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "rl_short_answer.py"
SYSTEM = "Answer with a single word."


def run_taskgrove(args: argparse.Namespace, output: Path) -> tuple[float, list[float]]:
    """(seconds, mean reward per step) of ``train_rl`` on rl/short_answer."""
    from taskgrove.tasks.builtin import build_registry
    from taskgrove.train.rl import RLConfig, train_rl

    registry = build_registry([EXAMPLE])
    config = RLConfig(
        tasks=["rl/short_answer"],
        name="bench",
        output_dir=str(output),
        steps=args.steps,
        scenarios_per_step=args.scenarios,
        samples_per_scenario=args.samples,
        max_tokens=args.max_tokens,
        learning_rate=args.lr,
        kl_coef=args.beta,
        lora_rank=16,
        save_steps=10_000,
        seed=args.seed,
    )
    result = train_rl(config, registry, log=lambda r: print(f"  taskgrove step {r['step']}: {r['mean_reward']:.3f}"))
    return result.seconds, [float(r["mean_reward"]) for r in result.curve]


def run_trl(args: argparse.Namespace, output: Path) -> tuple[float, list[float]]:
    """(seconds, mean reward per step) of TRL's ``GRPOTrainer`` on the same questions and reward."""
    import importlib.util

    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import GRPOConfig, GRPOTrainer

    from taskgrove.train.sft import load_base

    spec = importlib.util.spec_from_file_location("rl_short_answer_bench", EXAMPLE)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    train = module.QUESTIONS[:15]  # the task's train split
    data = Dataset.from_list(
        [
            {"prompt": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}], "answer": a}
            for q, a in train
        ]
    )

    def reward(completions: list[Any], answer: list[str], **_: Any) -> list[float]:
        return [module.short_answer_reward(c[0]["content"], a) for c, a in zip(completions, answer, strict=True)]

    torch.manual_seed(args.seed)
    model, tokenizer = load_base("default")
    config = GRPOConfig(
        output_dir=str(output),
        max_steps=args.steps,
        per_device_train_batch_size=args.scenarios * args.samples,  # completions per step
        gradient_accumulation_steps=1,
        num_generations=args.samples,
        max_completion_length=args.max_tokens,
        temperature=1.0,
        learning_rate=args.lr,
        lr_scheduler_type="constant",
        weight_decay=0.0,
        max_grad_norm=1.0,
        beta=args.beta,
        epsilon=0.2,
        num_iterations=1,
        loss_type="dapo",
        scale_rewards="group",
        use_cpu=True,
        bf16=False,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=args.seed,
        disable_tqdm=True,
        gradient_checkpointing=False,  # as taskgrove (and generation keeps its KV cache)
    )
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward,
        args=config,
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=lora,
    )
    began = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - began
    rewards = [float(entry["reward"]) for entry in trainer.state.log_history if "reward" in entry]
    return seconds, rewards


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--scenarios", type=int, default=4, help="questions per step")
    parser.add_argument("--samples", type=int, default=4, help="sampled replies per question")
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--beta", type=float, default=0.04, help="KL weight")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engines", nargs="+", default=["taskgrove", "trl"], choices=["taskgrove", "trl"])
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    results: dict[str, tuple[float, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for engine in args.engines:
            print(f"{engine}: {args.steps} steps x {args.scenarios} questions x {args.samples} samples", flush=True)
            run = run_taskgrove if engine == "taskgrove" else run_trl
            results[engine] = run(args, Path(tmp) / engine)
    print(
        f"\n| engine | steps | seconds | steps/s | mean reward, first {min(5, args.steps)} / last {min(5, args.steps)} steps |"
    )
    print("|---|---|---|---|---|")
    for engine, (seconds, rewards) in results.items():
        head, tail = rewards[:5], rewards[-5:]
        mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
        print(
            f"| {engine} | {len(rewards)} | {seconds:.1f} | {len(rewards) / seconds:.3f} | {mean(head):.3f} / {mean(tail):.3f} |"
        )
    print("\nmean reward per step:")
    print("| step | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for step in range(max(len(r) for _, r in results.values())):
        cells = [f"{r[step]:.3f}" if step < len(r) else "" for _, r in results.values()]
        print(f"| {step + 1} | " + " | ".join(cells) + " |")
    if len(results) == 2:
        (_, (s_a, r_a)), (_, (s_b, r_b)) = results.items()
        print(f"\nsteps/s ratio {args.engines[0]} / {args.engines[1]}: {(len(r_a) / s_a) / (len(r_b) / s_b):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
