"""Tokenised training examples with the loss on the answer tokens only, and their batching.

An example is the prompt exactly as the local backend sends it at inference (the chat template
with ``add_generation_prompt=True``, tokenised without special tokens) followed by the gold
answer's tokens and the end-of-sequence token. Labels are -100 on the prompt, so the loss
counts only what the model should have generated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from taskgrove.core import Message
from taskgrove.errors import ConfigError

IGNORE = -100


@dataclass(frozen=True, slots=True)
class TrainExample:
    """One tokenised conversation: ``input_ids`` = prompt + answer + EOS; the first ``prompt_len`` are masked."""

    task: str
    input_ids: tuple[int, ...]
    prompt_len: int

    @property
    def labels(self) -> list[int]:
        """``input_ids`` with the prompt replaced by -100."""
        return [IGNORE] * self.prompt_len + list(self.input_ids[self.prompt_len :])

    @property
    def answer_len(self) -> int:
        return len(self.input_ids) - self.prompt_len

    def __len__(self) -> int:
        return len(self.input_ids)


def chat_prompt(tokenizer: Any, messages: Sequence[Message], tools: list[dict[str, Any]] | None = None) -> str:
    """The prompt text the local backend generates from (chat template + generation prompt)."""
    plain = [{**m, "content": m.get("content") or ""} for m in messages]
    return tokenizer.apply_chat_template(plain, tools=tools, add_generation_prompt=True, tokenize=False)


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids of ``text`` without added special tokens (as the local backend encodes)."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def eos_id(tokenizer: Any) -> int:
    """The id that ends an assistant turn (the tokenizer's EOS, ``<|im_end|>`` for SmolLM2)."""
    if tokenizer.eos_token_id is None:
        raise ConfigError("the tokenizer defines no end-of-sequence token; cannot mark where answers end")
    return int(tokenizer.eos_token_id)


def split_conversation(task: str, messages: Sequence[Message] | None) -> tuple[list[Message], str]:
    """(prompt messages, gold answer) of a task's ``training_messages``; errors name the task."""
    if messages is None:
        raise ConfigError(
            f"task {task} cannot be used for supervised training: its training_messages() returns None "
            "(implement Task.training_messages, or train it with `taskgrove rl`)"
        )
    if not messages or messages[-1].get("role") != "assistant":
        raise ConfigError(f"task {task}: training_messages() must end with the gold assistant reply")
    answer = messages[-1].get("content")
    if not isinstance(answer, str) or not answer:
        raise ConfigError(f"task {task}: the gold assistant reply is empty")
    if len(messages) < 2:
        raise ConfigError(f"task {task}: training_messages() has no prompt before the answer")
    return list(messages[:-1]), answer


def encode_example(
    tokenizer: Any, task: str, messages: Sequence[Message] | None, *, max_seq_length: int
) -> TrainExample | None:
    """The example of one conversation, or ``None`` when it does not fit ``max_seq_length``."""
    prompt, answer = split_conversation(task, messages)
    prompt_ids = encode(tokenizer, chat_prompt(tokenizer, prompt))
    answer_ids = [*encode(tokenizer, answer), eos_id(tokenizer)]
    if len(prompt_ids) + len(answer_ids) > max_seq_length:
        return None
    return TrainExample(task, tuple(prompt_ids + answer_ids), len(prompt_ids))


def collate(examples: Sequence[TrainExample], pad_id: int) -> dict[str, Any]:
    """A left-padded batch: ``input_ids``, ``attention_mask``, ``position_ids``, ``labels`` and
    ``keep`` (how many final positions hold every answer, so logits are needed only there)."""
    import torch

    width = max(len(e) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        start = width - len(example)
        input_ids[row, start:] = torch.tensor(example.input_ids, dtype=torch.long)
        labels[row, start:] = torch.tensor(example.labels, dtype=torch.long)
        attention_mask[row, start:] = 1
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    keep = min(width, max(e.answer_len for e in examples) + 1)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "position_ids": position_ids,
        "labels": labels,
        "keep": keep,
    }


def answer_loss(model: Any, batch: dict[str, Any]) -> tuple[Any, int]:
    """(sum of token cross-entropies over answer tokens, number of answer tokens) of one batch.

    Logits are computed only for the last ``keep`` positions (left padding puts every answer
    there), which skips most of the vocabulary projection for long prompts.
    """
    import torch

    keep = int(batch["keep"])
    out = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        position_ids=batch["position_ids"],
        logits_to_keep=keep,
        use_cache=False,
    )
    logits = out.logits[:, :-1]
    width = batch["input_ids"].shape[1]
    targets = batch["labels"][:, width - keep + 1 :]
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=IGNORE, reduction="sum"
    )
    return loss, int((targets != IGNORE).sum())
