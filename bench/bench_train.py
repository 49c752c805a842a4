"""Training speed: taskgrove's SFT loop against a plain transformers + PEFT loop, same data and settings.

Both train the same LoRA (same rank, targets, seed and initial weights) on the same tokenised
examples for one epoch, with the same batch size and optimizer, and count the same tokens (every
non-padding token of every example). The plain loop is what one writes by hand: random batches,
right padding, ``model(input_ids, attention_mask, labels=labels).loss``. taskgrove's loop groups
batches by length and left-pads them, so it computes logits only for the answer positions.

    python bench/bench_train.py                         # two BIG-bench tasks (offline), else fixtures
    python bench/bench_train.py --limit 64 --repeats 3 --rank 8 --batch-size 8

Prints tokens/s of each loop (best of ``--repeats``, which alternate) and the ratio.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TASKS = ["bigbench/domain_specific/sports_understanding", "bigbench/logical_reasoning/navigate"]
FIXTURE_TASKS = ["trainfix/similar/parity", "trainfix/similar/animal", "trainfix/dissimilar/echo"]


def examples_for(tasks: list[str], limit: int, tokenizer: Any) -> tuple[list[Any], list[str]]:
    from taskgrove.tasks.builtin import build_registry
    from taskgrove.train.data import build_tasks, task_examples

    registry = build_registry([ROOT / "tests" / "fixtures" / "train" / "tasks.py"])
    try:
        built = build_tasks(registry, registry.resolve(tasks))
        examples = [
            e
            for t in built.values()
            for e in task_examples(t, tokenizer, split="train", limit=limit, max_seq_length=1024)[0]
        ]
    except Exception as exc:  # BIG-bench files not fetched: use the fixture tasks
        print(f"({tasks} unavailable: {type(exc).__name__}: {exc}; using fixture tasks)", file=sys.stderr)
        tasks = FIXTURE_TASKS
        built = build_tasks(registry, tasks)
        examples = [
            e
            for t in built.values()
            for e in task_examples(t, tokenizer, split="train", limit=limit, max_seq_length=1024)[0]
        ]
    return examples, tasks


def fresh_lora(config: Any) -> tuple[Any, Any]:
    import torch

    from taskgrove.train.sft import load_base, prepare_model

    model, tokenizer = load_base(config.base_model)
    torch.manual_seed(config.seed)
    return prepare_model(model, config), tokenizer


def run_taskgrove(config: Any, examples: list[Any]) -> tuple[int, float]:
    from taskgrove.train.sft import SFTTrainer

    model, tokenizer = fresh_lora(config)
    trainer = SFTTrainer(config, model, tokenizer, examples, Path("/nonexistent"), save=False)
    result = trainer.train()
    return result.tokens, result.seconds


def run_plain(config: Any, examples: list[Any]) -> tuple[int, float]:
    """The hand-written baseline: shuffled batches, right padding, the model's own loss."""
    import math

    import torch
    from transformers import get_scheduler

    model, tokenizer = fresh_lora(config)
    pad = tokenizer.pad_token_id
    order = list(range(len(examples)))
    random.Random(config.seed).shuffle(order)
    batches = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
    steps = math.ceil(len(batches) / config.gradient_accumulation_steps)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.learning_rate, weight_decay=config.weight_decay
    )
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=0, num_training_steps=steps)
    micro = config.micro_batch_size or min(config.batch_size, 8)
    tokens = 0
    began = time.perf_counter()
    for step in range(steps):
        group = batches[step * config.gradient_accumulation_steps : (step + 1) * config.gradient_accumulation_steps]
        chunks = [[examples[i] for i in b[j : j + micro]] for b in group for j in range(0, len(b), micro)]
        for chunk in chunks:
            width = max(len(e) for e in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            labels = torch.full((len(chunk), width), -100, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, e in enumerate(chunk):
                ids[row, : len(e)] = torch.tensor(e.input_ids)
                labels[row, : len(e)] = torch.tensor(e.labels)
                mask[row, : len(e)] = 1
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            (loss / len(chunks)).backward()
            tokens += sum(len(e) for e in chunk)
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    return tokens, time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=DEFAULT_TASKS)
    parser.add_argument("--limit", type=int, default=32, help="training examples per task")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from taskgrove.train.presets import TrainConfig
    from taskgrove.train.sft import load_base

    _, tokenizer = load_base("default")
    examples, tasks = examples_for(args.tasks, args.limit, tokenizer)
    config = TrainConfig(
        method="lora",
        lora_rank=args.rank,
        batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum,
        learning_rate=2e-4,
        weight_decay=0.01,
        num_epochs=1,
        logging_steps=10_000,
        seed=0,
    )
    lengths = [len(e) for e in examples]
    print(
        f"{len(examples)} examples from {', '.join(tasks)}; {sum(lengths)} tokens (length {min(lengths)}-{max(lengths)}); "
        f"LoRA r={args.rank} q/v, batch {args.batch_size} x accum {args.grad_accum}, one epoch"
    )
    best = {"plain": 0.0, "taskgrove": 0.0}
    for repeat in range(args.repeats):
        for name, runner in (
            (("plain", run_plain), ("taskgrove", run_taskgrove))
            if repeat % 2 == 0
            else (("taskgrove", run_taskgrove), ("plain", run_plain))
        ):
            tokens, seconds = runner(config, examples)
            rate = tokens / seconds
            best[name] = max(best[name], rate)
            print(f"  {name:<10} {tokens} tokens in {seconds:6.1f}s = {rate:7.1f} tok/s")
    ratio = best["taskgrove"] / best["plain"]
    print(f"best: plain {best['plain']:.1f} tok/s, taskgrove {best['taskgrove']:.1f} tok/s; ratio {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
