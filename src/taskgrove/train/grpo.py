"""The GRPO objective of ``taskgrove rl``: clipped policy ratio, KL to a frozen reference.

For every sampled reply token t of reply i (advantage A_i, the group-relative reward)::

    ratio   = exp(log pi(t) - log pi_old(t))                      pi_old: the weights that sampled
    surr    = min(ratio * A_i, clip(ratio, 1 - eps, 1 + eps) * A_i)
    kl      = exp(log ref(t) - log pi(t)) - (log ref(t) - log pi(t)) - 1     (k3 estimator, >= 0)
    loss    = sum_t (-surr + beta * kl) / (sampled tokens of the step)

as TRL's ``GRPOTrainer`` defines it (``loss_type="grpo"`` aside from its per-sequence averaging).
With LoRA the reference is the base model: the same network with the adapters disabled, so no
second copy is held. ``updates_per_step`` optimizer steps reuse one batch of samples; from the
second on, the ratio moves away from 1 and the clipping bounds the update (PPO's trust region).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Row = tuple[list[int], list[int], float]
"""(prompt ids, sampled completion ids, advantage) of one reply."""


@dataclass
class UpdateStats:
    """What one RL step's update did (per sampled token)."""

    loss: float = 0.0
    kl: float = 0.0
    clipped: float = 0.0
    tokens: int = 0


def token_logprobs(model: Any, rows: list[Row], pad_id: int) -> tuple[Any, Any, Any]:
    """(log-prob of each sampled token [B, T], its mask [B, T], advantages [B]) for a micro-batch."""
    import torch

    from taskgrove.train.examples import IGNORE, TrainExample, collate

    batch = collate([TrainExample("", tuple(p + c), len(p)) for p, c, _ in rows], pad_id)
    device = next(model.parameters()).device
    keep = int(batch["keep"])
    out = model(
        input_ids=batch["input_ids"].to(device),
        attention_mask=batch["attention_mask"].to(device),
        position_ids=batch["position_ids"].to(device),
        logits_to_keep=keep,
        use_cache=False,
    )
    width = batch["input_ids"].shape[1]
    targets = batch["labels"][:, width - keep + 1 :].to(device)
    logprobs = torch.log_softmax(out.logits[:, :-1].float(), dim=-1)
    mask = (targets != IGNORE).to(logprobs.dtype)
    picked = logprobs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    advantages = torch.tensor([a for _, _, a in rows], dtype=logprobs.dtype, device=device)
    return picked, mask, advantages


def grpo_terms(
    new: Any, old: Any, ref: Any | None, mask: Any, advantages: Any, *, clip: float, kl_coef: float
) -> tuple[Any, Any, Any]:
    """(summed loss, summed KL, number of clipped tokens) of one micro-batch; see the module docstring."""
    import torch

    ratio = torch.exp(new - old)
    adv = advantages.unsqueeze(-1)
    unclipped, clipped = ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv
    per_token = -torch.min(unclipped, clipped)
    kl = torch.zeros_like(new)
    if ref is not None:
        delta = ref - new
        kl = torch.exp(delta) - delta - 1
        per_token = per_token + kl_coef * kl
    was_clipped = ((clipped < unclipped).to(mask.dtype) * mask).sum()
    return (per_token * mask).sum(), (kl * mask).sum(), was_clipped


def update(model: Any, optimizer: Any, rows: list[Row], pad_id: int, config: Any) -> UpdateStats:
    """``config.updates_per_step`` optimizer steps on one batch of sampled replies."""
    import torch

    stats = UpdateStats()
    if not rows:
        return stats
    rows = sorted(rows, key=lambda r: len(r[0]) + len(r[1]))
    chunks = [rows[i : i + config.micro_batch_size] for i in range(0, len(rows), config.micro_batch_size)]
    total = sum(len(c) for _, c, _ in rows)
    use_ref = config.kl_coef > 0
    # The sampling policy is the current one: its log-probs are the first update's own (detached),
    # as TRL's GRPOTrainer takes them, which saves a forward pass over the batch.
    old: list[Any] = [None] * len(chunks)
    with torch.no_grad():
        ref: list[Any] = [None] * len(chunks)
        if use_ref:
            if not hasattr(model, "disable_adapter"):
                raise TypeError("the KL reference needs a PEFT model (the base is the model with adapters disabled)")
            with model.disable_adapter():
                ref = [token_logprobs(model, chunk, pad_id)[0] for chunk in chunks]
    params = [p for p in model.parameters() if p.requires_grad]
    for _ in range(config.updates_per_step):
        loss_sum = kl_sum = clipped_sum = 0.0
        for index, (chunk, ref_lp) in enumerate(zip(chunks, ref, strict=True)):
            new, mask, advantages = token_logprobs(model, chunk, pad_id)
            if old[index] is None:
                old[index] = new.detach()
            old_lp = old[index]
            loss, kl, clipped = grpo_terms(
                new, old_lp, ref_lp, mask, advantages, clip=config.clip_epsilon, kl_coef=config.kl_coef
            )
            (loss / total).backward()
            loss_sum += float(loss.detach())
            kl_sum += float(kl.detach())
            clipped_sum += float(clipped)
        if config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        stats = UpdateStats(loss_sum / total, kl_sum / total, clipped_sum / total, total)
    return stats
