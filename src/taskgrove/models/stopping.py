"""A transformers StoppingCriteria that ends each sequence once it contains a stop string."""

from __future__ import annotations

from typing import Any


def stop_criteria(tokenizer: Any, stops: tuple[str, ...], prompt_width: int) -> Any:
    """A ``StoppingCriteriaList`` marking a row done when its generated text holds any of ``stops``.

    transformers drops finished rows (EOS or this criterion) and stops when all are done.
    Only the last few tokens are decoded per step: enough to contain the longest stop string.
    """
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    tail = max(len(s) for s in stops) + 4

    class _StopStrings(StoppingCriteria):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
            generated = input_ids[:, prompt_width:][:, -tail:]
            texts = tokenizer.batch_decode(generated, skip_special_tokens=True)
            hits = [any(stop in text for stop in stops) for text in texts]
            return torch.tensor(hits, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]

    return StoppingCriteriaList([_StopStrings()])
