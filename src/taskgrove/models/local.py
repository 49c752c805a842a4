"""The local transformers backend: dynamic batching of concurrent requests on one worker thread.

``generate`` and ``loglikelihood`` tokenise on the caller's side (so a bad request fails alone
and its length is known for grouping) and hand the token ids to a :class:`DynamicBatcher`,
whose worker thread runs ``model.generate`` / one forward pass per batch with left padding.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskgrove.core import Choice, Message
from taskgrove.models.batching import BatchStats, DynamicBatcher
from taskgrove.models.errors import ModelError
from taskgrove.models.loading import LoadedModel, load_local
from taskgrove.models.paths import cache_root
from taskgrove.models.sampling import Sampling
from taskgrove.models.scoring import ItemPlan, PrefixStats, Row, full_pass_scores, plan_item, score_items
from taskgrove.models.scoring import left_pad as _left_pad
from taskgrove.models.tool_calls import parse_reply, prompt_messages, validate_tools

_LOGLIKELIHOOD = "loglikelihood"


@dataclass(frozen=True, slots=True)
class _GenerateRequest:
    prompt_ids: list[int]
    submitted: float


@dataclass(frozen=True, slots=True)
class _ScoreRequest:
    rows: list[Row]  # (context + continuation ids, number of continuation tokens)
    plan: ItemPlan | None  # how the rows share one prefill of the context (None: full passes)


class LocalModel:
    """A transformers causal LM on this machine (``local:...`` specs).

    ``batch_size`` caps the sequences per batch; ``gather_s`` is how long the dispatcher waits
    for company after a request arrives at an idle worker. With ``shared_prefix`` (the default)
    ``loglikelihood`` runs each context once (and the prefix common to a batch's contexts once)
    and scores all its continuations against the context's KV cache, so a batch holds up to
    ``batch_size`` contexts; without it, every continuation gets a full forward pass and counts
    as one sequence of the batch.

    ``schedules_whole_run``: the executor hands this model every pending sample of the run at
    once (all tasks together), so its batcher sorts the whole run's requests by length.
    """

    schedules_whole_run = True

    def __init__(
        self, loaded: LoadedModel, *, batch_size: int = 10, gather_s: float = 0.005, shared_prefix: bool = True
    ) -> None:
        self._loaded = loaded
        self.name = loaded.name
        self.cache_identity = loaded.identity
        self.device = loaded.device
        self.tokenizer = loaded.tokenizer
        self.hf_model = loaded.model
        self.batch_size = batch_size
        self.shared_prefix = shared_prefix
        self.prefix_stats = PrefixStats()
        self._eos_ids = _eos_ids(loaded)
        self._pad_id = int(loaded.tokenizer.pad_token_id)
        self._batcher: DynamicBatcher[Any, Any] = DynamicBatcher(
            self._run_batch, max_rows=batch_size, gather_s=gather_s, name=self.name
        )

    @classmethod
    def load(
        cls,
        target: str = "default",
        adapter: str | None = None,
        *,
        batch_size: int = 10,
        gather_s: float = 0.005,
        models_root: str | Path | None = None,
        shared_prefix: bool = True,
    ) -> LocalModel:
        """Load ``target`` (``default``, a dir, a .gguf file or a hub id), optionally with a PEFT adapter.

        GGUF files are converted once into ``<models_root>/models/`` (default: the cache root).
        """
        loaded = load_local(target, adapter, cache_root(models_root))
        return cls(loaded, batch_size=batch_size, gather_s=gather_s, shared_prefix=shared_prefix)

    def __repr__(self) -> str:
        return f"LocalModel(name={self.name!r}, device={self.device!r}, batch_size={self.batch_size})"

    @property
    def stats(self) -> BatchStats:
        """How many batches (and rows) the worker has run."""
        return self._batcher.stats

    def batch_report(self) -> dict[str, float | int]:
        """Batches run so far, their fill (mean sequences per batch / ``batch_size``) and padding waste."""
        return self._batcher.stats.report(self.batch_size)

    # --- public API ---------------------------------------------------------------------------
    async def generate(
        self, messages: list[Message], *, tools: list[dict[str, Any]] | None = None, **sampling: Any
    ) -> Choice:
        """Generate a reply; concurrent calls with equal sampling settings share batches.

        With ``tools``, tool-call text in the reply (in the chat template's format) becomes
        ``tool_calls``; text that opens a call but holds no valid one stays content, with the
        reason in ``choice.metadata["tool_call_parse_note"]``.
        """
        params = Sampling.from_kwargs(sampling)
        checked = validate_tools(tools)
        prompt = self._chat_text(messages, checked)
        prompt_ids = self._encode(prompt)
        request = _GenerateRequest(prompt_ids, time.perf_counter())
        choice: Choice = await self._batcher.submit(params, request, length=len(prompt_ids))
        if checked:
            parsed = parse_reply(choice.content, checked, tokenizer=self.tokenizer, prefix=prompt)
            choice["content"] = parsed.content
            if parsed.tool_calls:
                choice["tool_calls"] = parsed.tool_calls
            if parsed.note:
                choice.metadata["tool_call_parse_note"] = parsed.note
        return choice

    async def loglikelihood(self, context: list[Message], continuations: list[str]) -> list[float]:
        """Sum of log-probs of each continuation's tokens after the chat-templated ``context``.

        Context and continuation are tokenised together and split where they stop agreeing with
        the context tokenised alone (a context token merged with the continuation's first one
        counts as continuation).
        """
        if not continuations:
            return []
        prefix = self._chat_text(context, None)
        prefix_ids = self._encode(prefix)
        rows = []
        for continuation in continuations:
            full = self._encode(prefix + continuation)
            shared = _common_prefix(prefix_ids, full)
            rows.append((full, min(len(full) - shared, len(full) - 1)))
        plan = plan_item(prefix_ids, rows) if self.shared_prefix else None
        sequences = len(rows) if plan is None else 1  # shared: one context; its choices are chunked by memory
        return await self._batcher.submit(
            _LOGLIKELIHOOD, _ScoreRequest(rows, plan), rows=sequences, length=max(len(ids) for ids, _ in rows)
        )

    async def loglikelihood_text(self, context: str, continuations: list[str]) -> list[float]:
        """Sum of log-probs of each continuation's tokens after the plain-text ``context`` (no chat
        template: completion-style prompts). Tokens are split as lm-evaluation-harness splits
        them: trailing whitespace of the context moves to the continuation, the continuation's
        tokens are those of ``context + continuation`` after the context's own tokens."""
        if not continuations:
            return []
        stripped = context.rstrip()
        moved = context[len(stripped) :]
        context_ids = self._encode(stripped)
        if not context_ids:
            raise ModelError(f"{self.name}: an empty context cannot be scored", model=self.name)
        rows = []
        for continuation in continuations:
            full = self._encode(stripped + moved + continuation)
            rows.append((full, len(full) - len(context_ids)))
        request = _ScoreRequest(rows, None)  # full passes: the token split must stay lm-eval's exactly
        return await self._batcher.submit(
            _LOGLIKELIHOOD, request, rows=len(rows), length=max(len(ids) for ids, _ in rows)
        )

    async def aclose(self) -> None:
        """Stop batching and free the weights."""
        await self._batcher.aclose()
        self.hf_model = None
        self._loaded.model = None

    # --- tokenisation (caller's thread) -------------------------------------------------------
    def _chat_text(self, messages: list[Message], tools: list[dict[str, Any]] | None) -> str:
        plain = prompt_messages(messages, tools, getattr(self.tokenizer, "chat_template", None))
        try:
            return self.tokenizer.apply_chat_template(plain, tools=tools, add_generation_prompt=True, tokenize=False)
        except Exception as exc:
            raise ModelError(
                f"{self.name}: cannot apply the chat template: {type(exc).__name__}: {exc}", model=self.name
            ) from exc

    def _chat_ids(self, messages: list[Message], tools: list[dict[str, Any]] | None) -> list[int]:
        return self._encode(self._chat_text(messages, tools))

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # --- worker thread ------------------------------------------------------------------------
    def _run_batch(self, key: Any, payloads: list[Any]) -> list[Any]:
        if key == _LOGLIKELIHOOD:
            return self._score_batch(payloads)
        return self._generate_batch(key, payloads)

    def _generate_batch(self, params: Sampling, requests: list[_GenerateRequest]) -> list[Choice]:
        import torch

        model = self._require_model()
        input_ids, attention_mask = _left_pad([r.prompt_ids for r in requests], self._pad_id, self.device)
        width = input_ids.shape[1]
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_tokens,
            "pad_token_id": self._pad_id,
            "eos_token_id": self._eos_ids,
        }
        if params.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=params.top_k)
            if params.seed is not None:
                torch.manual_seed(params.seed)
        if params.repetition_penalty != 1.0:
            kwargs["repetition_penalty"] = params.repetition_penalty
        if params.stop:
            from taskgrove.models.stopping import stop_criteria

            kwargs["stopping_criteria"] = stop_criteria(self.tokenizer, params.stop, width)
        if params.logprobs:
            kwargs.update(output_logits=True, return_dict_in_generate=True)
        with torch.inference_mode():
            output = model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        done = time.perf_counter()
        sequences = output.sequences if params.logprobs else output
        choices = []
        for row, request in enumerate(requests):
            generated = sequences[row, width:].tolist()
            count = next(
                (i for i, token in enumerate(generated) if token in self._eos_ids or token == self._pad_id), None
            )
            ended = count is not None
            tokens = generated if count is None else generated[:count]
            # like vLLM, logprobs end with the end-of-turn token that stopped the reply (an RL
            # trainer such as ART's learns to stop from it); the text and usage leave it out
            scored = [*tokens, generated[count]] if count is not None and generated[count] in self._eos_ids else tokens
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            cut = _first_stop(text, params.stop)
            if cut is not None:
                text, ended = text[:cut], True
            choices.append(
                Choice(
                    text,
                    usage={"prompt_tokens": len(request.prompt_ids), "completion_tokens": len(tokens)},
                    latency_s=done - request.submitted,
                    finish_reason="stop" if ended else "length",
                    logprobs=self._token_logprobs(output.logits, row, scored) if params.logprobs else None,
                )
            )
        return choices

    def _token_logprobs(self, logits: Any, row: int, tokens: list[int]) -> list[dict[str, Any]]:
        """Each generated token's log-probability under the model (raw logits, before sampling warpers)."""
        import torch

        entries = []
        for step, token in enumerate(tokens):
            logprob = torch.log_softmax(logits[step][row].float(), dim=-1)[token]
            entries.append({"token": self.tokenizer.decode([token]), "logprob": float(logprob), "token_id": token})
        return entries

    def _score_batch(self, requests: list[_ScoreRequest]) -> list[list[float]]:
        model = self._require_model()
        results: list[list[float]] = [[] for _ in requests]
        planned = [i for i, request in enumerate(requests) if request.plan is not None]
        if planned:  # chat-templated items with a shared context: one prefill each
            plans = [plan for plan in (requests[i].plan for i in planned) if plan is not None]
            scored = score_items(
                model, [requests[i].rows for i in planned], plans, self._pad_id, self.device, self.prefix_stats
            )
            for i, scores in zip(planned, scored, strict=True):
                results[i] = scores
        whole = [i for i, request in enumerate(requests) if request.plan is None]
        if whole:  # no plan (sharing off, or completion-style text): a full pass per row
            sums = full_pass_scores(model, [row for i in whole for row in requests[i].rows], self._pad_id, self.device)
            start = 0
            for i in whole:
                results[i] = sums[start : start + len(requests[i].rows)]
                start += len(requests[i].rows)
        return results

    def _require_model(self) -> Any:
        if self.hf_model is None:
            raise ModelError(f"{self.name}: the model is closed", model=self.name)
        return self.hf_model


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(hits) if hits else None


def _eos_ids(loaded: LoadedModel) -> list[int]:
    eos = loaded.model.generation_config.eos_token_id
    ids = eos if isinstance(eos, list) else [eos] if eos is not None else []
    if loaded.tokenizer.eos_token_id is not None:
        ids.append(loaded.tokenizer.eos_token_id)
    if not ids:
        raise ModelError(f"{loaded.name}: the model defines no end-of-sequence token")
    return sorted({int(i) for i in ids})
