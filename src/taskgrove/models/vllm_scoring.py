"""Log-likelihood through a vLLM server: the completions endpoint with ``echo`` and ``logprobs``
returns every prompt token's log-prob; the continuation's tokens are those ending after the
chat-templated context (as the local backend counts them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from taskgrove.core import Message
from taskgrove.models.errors import ModelError

if TYPE_CHECKING:
    import httpx


def chat_prefix(tokenizer: Any, context: list[Message]) -> str:
    """The chat-templated context with the generation prompt, as the model sees it."""
    plain = [{**m, "content": m.get("content") or ""} for m in context]
    return str(tokenizer.apply_chat_template(plain, add_generation_prompt=True, tokenize=False))


def continuation_logprob(data: dict[str, Any], prefix_chars: int) -> float:
    """Sum of the log-probs of prompt tokens that end after ``prefix_chars`` (the last entry is
    the one generated token, which is not part of the prompt)."""
    try:
        logprobs = data["choices"][0]["logprobs"]
        offsets = list(logprobs["text_offset"])
        values = list(logprobs["token_logprobs"])
    except (KeyError, IndexError, TypeError) as exc:
        raise ModelError(f"vLLM completions: no prompt logprobs in the response ({exc})") from None
    total = 0.0
    for i in range(len(values) - 1):
        if offsets[i + 1] > prefix_chars:
            if values[i] is None:
                raise ModelError("vLLM completions: a continuation token has no log-prob (is it the first token?)")
            total += float(values[i])
    return total


async def score(
    client: httpx.AsyncClient, base_url: str, served: str, prefix: str, continuations: list[str]
) -> list[float]:
    """One echo request per continuation; their log-likelihoods in order."""
    scores = []
    for continuation in continuations:
        payload = {
            "model": served,
            "prompt": prefix + continuation,
            "max_tokens": 1,
            "temperature": 0.0,
            "echo": True,
            "logprobs": 0,
            "add_special_tokens": False,
        }
        response = await client.post(f"{base_url}/completions", json=payload)
        if response.status_code != 200:
            raise ModelError(f"vLLM completions: HTTP {response.status_code}: {response.text[:300]}")
        scores.append(continuation_logprob(response.json(), len(prefix)))
    return scores
