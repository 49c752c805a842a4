"""Training speed and loss: taskgrove's SFT, TRL's ``SFTTrainer`` alone and a plain transformers +
PEFT loop, same data and settings.

taskgrove's SFT runs on TRL's ``SFTTrainer`` (train/sft_engine.py) with taskgrove's data order
(seeded, length-grouped batches), step hooks and log; the ``trl`` row is TRL's trainer as a user
would call it (its own random order), so the two rows measure what taskgrove adds on top of TRL.
The choice of engine followed this bench: taskgrove's earlier hand-written loop measured
196.1 tok/s against TRL's 195.1 (1.01x, same final loss within 0.15), not measurably better, so
SFT moved to TRL.

All three train the same LoRA (same rank, targets, seed and initial weights) on the same tokenised
examples (the task's own prompt, answer-only loss) for one epoch, with the same batch size,
optimizer (AdamW), linear schedule and gradient clipping, and count the same tokens (every
non-padding token of every example). The plain loop is what one writes by hand: random batches,
right padding, ``model(input_ids, attention_mask, labels=labels).loss``.

After training, each model's **final loss** is measured the same way for all three: the mean
answer-token cross-entropy over all training examples (one no-grad pass), so "same loss" compares
what was learned, not the engines' own logging.

    python bench/bench_train.py                         # two BIG-bench tasks (offline), else fixtures
    python bench/bench_train.py --limit 64 --repeats 3 --rank 8 --batch-size 8
    python bench/bench_train.py --engines taskgrove trl

Prints tokens/s and final loss of each engine (best of ``--repeats``, which alternate the order)
and the ratios to taskgrove.
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


def run_taskgrove(config: Any, examples: list[Any]) -> tuple[int, float, Any]:
    import tempfile

    from taskgrove.train.sft import SFTTrainer

    model, tokenizer = fresh_lora(config)
    with tempfile.TemporaryDirectory() as scratch:
        trainer = SFTTrainer(config, model, tokenizer, examples, Path(scratch), save=False)
        result = trainer.train()
    return result.tokens, result.seconds, trainer.model


def run_plain(config: Any, examples: list[Any]) -> tuple[int, float, Any]:
    """The hand-written baseline: shuffled batches, right padding, the model's own loss."""
    import math

    import torch
    from transformers import get_scheduler

    from taskgrove.train.batches import micro_batch_size

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
    micro = micro_batch_size(config)
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
    return tokens, time.perf_counter() - began, model


def run_trl(config: Any, examples: list[Any]) -> tuple[int, float, Any]:
    """TRL's SFTTrainer on the pre-tokenised examples (its own order, padding and loss)."""
    import tempfile

    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from taskgrove.train.batches import micro_batch_size

    model, tokenizer = fresh_lora(config)
    micro = micro_batch_size(config)
    data = Dataset.from_dict(
        {"input_ids": [list(e.input_ids) for e in examples], "labels": [e.labels for e in examples]}
    )
    with tempfile.TemporaryDirectory() as scratch:
        args = SFTConfig(
            output_dir=scratch,
            per_device_train_batch_size=micro,
            gradient_accumulation_steps=max(1, config.batch_size // micro) * config.gradient_accumulation_steps,
            learning_rate=config.learning_rate,
            weight_decay=config.weight_decay,
            num_train_epochs=1,
            lr_scheduler_type="linear",
            warmup_steps=0,
            max_grad_norm=1.0,
            max_length=None,
            packing=False,
            save_strategy="no",
            report_to=[],
            logging_steps=10_000,
            seed=config.seed,
            use_cpu=True,
            dataloader_num_workers=0,
            disable_tqdm=True,
            gradient_checkpointing=False,  # TRL turns it on by default; the other loops do not recompute
        )
        trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
        began = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - began
    return sum(len(e) for e in examples), seconds, model


def final_loss(model: Any, examples: list[Any], pad_id: int) -> float:
    """Mean answer-token cross-entropy over ``examples`` (no grad; the same code for every engine)."""
    import torch

    from taskgrove.train.examples import answer_loss, collate

    model.eval()
    total, count = 0.0, 0
    ordered = sorted(examples, key=len)
    with torch.no_grad():
        for start in range(0, len(ordered), 8):
            loss, tokens = answer_loss(model, collate(ordered[start : start + 8], pad_id))
            total, count = total + float(loss), count + tokens
    return total / max(count, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=DEFAULT_TASKS)
    parser.add_argument("--limit", type=int, default=32, help="training examples per task")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--engines", nargs="+", default=["taskgrove", "trl", "plain"], choices=sorted(ENGINES))
    args = parser.parse_args()

    from taskgrove.train.presets import TrainConfig
    from taskgrove.train.sft import load_base

    _, tokenizer = load_base("default")
    pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
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
        group_by_length=True,
    )
    lengths = [len(e) for e in examples]
    print(
        f"{len(examples)} examples from {', '.join(tasks)}; {sum(lengths)} tokens (length {min(lengths)}-{max(lengths)}); "
        f"LoRA r={args.rank} q/v, batch {args.batch_size} x accum {args.grad_accum}, one epoch, lr 2e-4"
    )
    print(f"  loss before training: {final_loss(fresh_lora(config)[0], examples, pad_id):.4f}")
    best = dict.fromkeys(args.engines, 0.0)
    losses: dict[str, list[float]] = {name: [] for name in args.engines}
    for repeat in range(args.repeats):
        order = args.engines if repeat % 2 == 0 else list(reversed(args.engines))
        for name in order:
            tokens, seconds, model = ENGINES[name](config, examples)
            rate = tokens / seconds
            best[name] = max(best[name], rate)
            losses[name].append(final_loss(model, examples, pad_id))
            print(
                f"  {name:<10} {tokens} tokens in {seconds:6.1f}s = {rate:7.1f} tok/s; final loss {losses[name][-1]:.4f}"
            )
    print("best tokens/s and final loss (mean over repeats):")
    reference = best.get("taskgrove")
    for name in args.engines:
        mean_loss = sum(losses[name]) / len(losses[name])
        ratio = f"; taskgrove/{name} {reference / best[name]:.2f}x" if reference and name != "taskgrove" else ""
        print(f"  {name:<10} {best[name]:7.1f} tok/s  loss {mean_loss:.4f}{ratio}")
    return 0


ENGINES = {"taskgrove": run_taskgrove, "trl": run_trl, "plain": run_plain}


if __name__ == "__main__":
    raise SystemExit(main())
