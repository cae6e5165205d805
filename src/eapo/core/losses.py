"""Token losses of the covariance baselines (docs/method.md section 8: KL-Cov, Clip-Cov).

Both select tokens by the centred covariance `cov_t = (A_t - mean A)(log pi_t - mean log pi)` over the
valid tokens of the batch they are given (the trainer gives them one micro-batch, as verl does), and
return an unreduced `(B, T)` loss; aggregation is the trainer's (`loss_type`).
"""

from __future__ import annotations

import torch


def token_covariance(advantages: torch.Tensor, logps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`(A_t - mean A)(log pi_t - mean log pi)` per token, means over valid tokens; `-inf` on padding.

    Detached: the covariance only selects tokens.
    """
    valid = mask.bool()
    a, lp = advantages.detach().float(), logps.detach().float()
    n = valid.sum().clamp(min=1)
    a_mean = a[valid].sum() / n
    lp_mean = lp[valid].sum() / n
    cov = (a - a_mean) * (lp - lp_mean)
    return cov.masked_fill(~valid, float("-inf"))


def kl_cov_token_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    k_ratio: float = 2e-3,
    coef: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """KL-Cov: the top `k_ratio` fraction of valid tokens by covariance get `-A r + coef |log r|`,
    all others the unclipped `-A r`, with `r = exp(logps - old_logps)`.

    Args:
        logps: `(B, T)` `log pi_theta(o_t)` (carries the gradient).
        old_logps: `(B, T)` `log pi_old(o_t)`.
        advantages: `(B, T)` advantages.
        mask: `(B, T)` valid-token mask.
        k_ratio: fraction of valid tokens penalised (at least one when there is any).
        coef: weight of `|log r|`.

    Returns:
        `(per_token_loss, selected)`: `(B, T)` loss (unmasked) and the bool mask of penalised tokens.
    """
    log_ratio = logps - old_logps
    ratio = torch.exp(log_ratio)
    loss = -advantages * ratio
    valid = mask.bool()
    n_valid = int(valid.sum())
    selected = torch.zeros_like(valid)
    if n_valid > 0:
        k = min(n_valid, max(1, int(n_valid * k_ratio)))
        cov = token_covariance(advantages, logps, mask)
        top = torch.topk(cov.flatten(), k).indices
        selected.view(-1)[top] = True
    loss = torch.where(selected, loss + coef * log_ratio.abs(), loss)
    return loss, selected


def clip_cov_token_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.28,
    k_ratio: float = 2e-4,
    cov_lb: float = 1.0,
    cov_ub: float = 5.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clip-Cov: the clipped surrogate, except that `max(1, int(k_ratio * n_valid))` tokens drawn at
    random among those with `cov_lb < cov < cov_ub` (and not already clipped) get zero loss.

    Args:
        logps, old_logps, advantages, mask: as in `kl_cov_token_loss`.
        epsilon_low, epsilon_high: clip range of the ratio.
        k_ratio: number of detached tokens as a fraction of the valid tokens (as in the reference
            implementation; fewer when fewer are eligible).
        cov_lb, cov_ub: covariance band of the eligible tokens.
        generator: random source of the draw (seed it for reproducible runs).

    Returns:
        `(per_token_loss, detached)`: `(B, T)` loss (unmasked) and the bool mask of zeroed tokens.
    """
    ratio = torch.exp(logps - old_logps)
    loss1 = -advantages * ratio
    loss2 = -advantages * torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    valid = mask.bool()
    clipped = (loss2 > loss1) & valid
    cov = token_covariance(advantages, logps, mask)
    eligible = (cov > cov_lb) & (cov < cov_ub) & valid & ~clipped
    candidates = eligible.flatten().nonzero().squeeze(1)
    detached = torch.zeros_like(valid)
    n_valid = int(valid.sum())
    if n_valid > 0 and candidates.numel() > 0:
        k = max(1, int(k_ratio * n_valid))
        order = torch.randperm(candidates.numel(), generator=generator, device="cpu").to(candidates.device)
        detached.view(-1)[candidates[order[:k]]] = True
    loss = torch.maximum(loss1, loss2)
    return torch.where(detached, torch.zeros_like(loss), loss), detached
