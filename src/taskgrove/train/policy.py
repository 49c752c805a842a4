"""A trainable policy behind the :class:`~taskgrove.core.Model` protocol, for RL from task rewards.

``generate`` samples (temperature > 0 by default) and returns a :class:`SampledChoice` that keeps
the exact prompt and completion token ids, so the update scores the tokens that were sampled.
Concurrent ``generate`` calls (a task's ``num_samples`` and several scenarios at once) are
gathered into one batched ``model.generate`` call.
"""

from __future__ import annotations

import asyncio
from typing import Any

from taskgrove.core import Choice, Message
from taskgrove.train.examples import chat_prompt, encode


class SampledChoice(Choice):
    """A Choice that also carries the token ids it was sampled as."""

    __slots__ = ("completion_ids", "prompt_ids")

    def __init__(self, content: str, *, prompt_ids: list[int], completion_ids: list[int], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.prompt_ids = prompt_ids
        self.completion_ids = completion_ids


class PolicyModel:
    """Samples from a (PEFT-wrapped) causal LM; see the module docstring."""

    def __init__(self, model: Any, tokenizer: Any, *, name: str = "policy", max_batch: int = 64) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.max_batch = max_batch
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
        eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        ids = eos if isinstance(eos, list) else [eos] if eos is not None else []
        self.eos_ids = sorted({int(i) for i in [*ids, tokenizer.eos_token_id] if i is not None})
        self._pending: list[tuple[Any, list[int], asyncio.Future[SampledChoice]]] = []
        self._flushing = False

    async def generate(
        self, messages: list[Message], *, tools: list[dict[str, Any]] | None = None, **sampling: Any
    ) -> SampledChoice:
        """Sample a reply to ``messages`` (``temperature``, ``top_p``, ``top_k``, ``max_tokens``, ``stop``)."""
        from taskgrove.models.sampling import Sampling

        params = Sampling.from_kwargs(sampling)
        prompt_ids = encode(self.tokenizer, chat_prompt(self.tokenizer, messages, tools))
        future: asyncio.Future[SampledChoice] = asyncio.get_running_loop().create_future()
        self._pending.append((params, prompt_ids, future))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        """Let every concurrent caller register, then run their requests in batches."""
        seen = -1
        while seen != len(self._pending):
            seen = len(self._pending)
            for _ in range(3):
                await asyncio.sleep(0)
        pending, self._pending, self._flushing = self._pending, [], False
        by_params: dict[Any, list[tuple[list[int], asyncio.Future[SampledChoice]]]] = {}
        for params, ids, future in pending:
            by_params.setdefault(params, []).append((ids, future))
        for params, requests in by_params.items():
            for start in range(0, len(requests), self.max_batch):
                chunk = requests[start : start + self.max_batch]
                try:
                    choices = self.sample(params, [ids for ids, _ in chunk])
                except Exception as exc:
                    for _, future in chunk:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), choice in zip(chunk, choices, strict=False):
                    if not future.done():
                        future.set_result(choice)

    def sample(self, params: Any, prompts: list[list[int]]) -> list[SampledChoice]:
        """Generate one completion per prompt (left-padded batch) with ``params``."""
        import torch

        from taskgrove.train.examples import TrainExample, collate

        batch = collate([TrainExample("", tuple(p), len(p) - 1) for p in prompts], self.pad_id)
        device = next(self.model.parameters()).device
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_tokens,
            "pad_token_id": self.pad_id,
            "eos_token_id": self.eos_ids,
        }
        if params.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or 0)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                output = self.model.generate(
                    input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device), **kwargs
                )
        finally:
            if was_training:
                self.model.train()
        width = batch["input_ids"].shape[1]
        choices = []
        for row, prompt in enumerate(prompts):
            generated = output[row, width:].tolist()
            end = next((i for i, t in enumerate(generated) if t in self.eos_ids), None)
            completion = generated if end is None else generated[: end + 1]  # the EOS is part of what was sampled
            text = self.tokenizer.decode(completion if end is None else completion[:-1], skip_special_tokens=True)
            for stop in params.stop:
                if stop in text:
                    text = text[: text.index(stop)]
            choices.append(
                SampledChoice(
                    text,
                    prompt_ids=list(prompt),
                    completion_ids=completion,
                    usage={"prompt_tokens": len(prompt), "completion_tokens": len(completion)},
                    finish_reason="stop" if end is not None else "length",
                )
            )
        return choices
