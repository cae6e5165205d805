"""Token-level advantages: EAPO's shaped advantage (docs/method.md section 7) and the baselines of section 8
that act by changing the advantage (EntroAdv, W-REINFORCE).

All functions take `advantages` either `(B,)` (one value per completion, broadcast to its tokens) or
`(B, T)`, and return `(B, T)` float32 that is exactly zero on padding.
"""

from __future__ import annotations

import torch

from eapo.core.entropy import group_entropy_stats, masked_entropy

# eps added to sigma_H(q). The paper leaves it open; 1e-6 keeps z finite for a group whose tokens all
# have the same entropy (sigma_H = 0 gives z = 0) without changing z measurably otherwise.
DEFAULT_SIGMA_EPS = 1e-6


# TRL counts a group as zero-std when `torch.isclose(std, 0)`, i.e. `std <= 1e-8` (isclose's default atol).
ZERO_STD_ATOL = 1e-8


def zero_std_groups(rewards: torch.Tensor, group_size: int, atol: float = ZERO_STD_ATOL) -> torch.Tensor:
    """Groups whose rewards carry no learning signal: every column's std within the group is `<= atol`.

    TRL's own test, `isclose(std, 0)` on the group's reward std, taken in float64: `G` equal float32
    rewards (0.7, say) then have std exactly 0, whereas in float32 the group mean is off by an ulp and
    TRL finds std ~6e-8 for G = 8 or 16, above its tolerance, and hands out advantages of about +-6e-4.

    Args:
        rewards: `(B,)` or `(B, K)` rewards `r` (NaN = unscorable), the `G = group_size` rows of a group
            contiguous; with `K` columns (one per reward function) a group has a signal if any column varies.
        group_size: `G`.
        atol: tolerance on the (Bessel-corrected) std.

    Returns:
        `(B // G,)` bool. A group with fewer than two scorable rewards in a column has no std there and
        counts as zero-std (TRL gives such rows advantage 0).
    """
    r = rewards.double()
    r = r.unsqueeze(1) if r.dim() == 1 else r
    grouped = r.reshape(-1, group_size, r.shape[1])  # (groups, G, K)
    count = (~torch.isnan(grouped)).sum(dim=1)  # (groups, K)
    mean = torch.nansum(grouped, dim=1, keepdim=True) / count.unsqueeze(1).clamp(min=1)
    var = torch.nansum((grouped - mean) ** 2, dim=1) / (count - 1).clamp(min=1)
    return ((var.sqrt() <= atol) | (count < 2)).all(dim=1)


def broadcast_advantages(advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`(B,)` or `(B, T)` advantages as `(B, T)` float32, zero on padding."""
    adv = advantages.float()
    if adv.dim() == 1:
        adv = adv.unsqueeze(1)
    return torch.where(mask.bool(), adv.expand(mask.shape), torch.zeros((), device=adv.device))


def shape_advantages(
    advantages: torch.Tensor,
    entropy: torch.Tensor,
    mask: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    alpha: float = 0.2,
    phi: float = 2.0,
    eps: float = DEFAULT_SIGMA_EPS,
) -> torch.Tensor:
    """EAPO's shaped advantage `A'` given precomputed group statistics.

        z  = (H - mu_H) / (sigma_H + eps)
        c  = clip(z, -|A| / phi, +|A| / phi)
        A' = A + alpha * sign(A) * c

    Args:
        advantages: `(B,)` or `(B, T)` group-relative advantages `A_{i,t}`.
        entropy: `(B, T)` token entropies `H_{i,t}` (treated as constants: no gradient flows).
        mask: `(B, T)` valid-token mask.
        mean, std: `(B,)` `mu_H(q)` and `sigma_H(q)` of each row's group.
        alpha: shaping strength (paper: 0.2). phi: clip divisor (paper: 2); `|A'|` stays in
            `[(1 - alpha/phi)|A|, (1 + alpha/phi)|A|]`, so the sign never flips while `alpha < phi`.

    Returns:
        `(B, T)` float32, zero on padding and wherever `A = 0`.
    """
    adv = broadcast_advantages(advantages, mask)
    z = (masked_entropy(entropy.detach(), mask) - mean.float().unsqueeze(1)) / (std.float().unsqueeze(1) + eps)
    bound = adv.abs() / phi
    c = torch.minimum(torch.maximum(z, -bound), bound)
    return (adv + alpha * torch.sign(adv) * c) * mask.float()


def eapo_advantages(
    advantages: torch.Tensor,
    entropy: torch.Tensor,
    mask: torch.Tensor,
    group_index: torch.Tensor,
    alpha: float = 0.2,
    phi: float = 2.0,
    eps: float = DEFAULT_SIGMA_EPS,
) -> torch.Tensor:
    """EAPO's shaped advantage (docs/method.md section 7) with group statistics over `group_index`.

    Args:
        advantages: `(B,)` or `(B, T)` advantages `A`.
        entropy: `(B, T)` token entropies `H`.
        mask: `(B, T)` valid-token mask.
        group_index: `(B,)` prompt id of each row; `mu_H`, `sigma_H` are taken over all valid tokens
            of the rows sharing it.
        alpha, phi, eps: see `shape_advantages`.

    Returns:
        `(B, T)` float32 shaped advantages `A'`, zero on padding.
    """
    mean, std = group_entropy_stats(entropy, mask, group_index)
    return shape_advantages(advantages, entropy, mask, mean, std, alpha=alpha, phi=phi, eps=eps)


def entroadv_advantages(
    advantages: torch.Tensor,
    entropy: torch.Tensor,
    mask: torch.Tensor,
    a: float = 0.4,
    kappa: float = 2.0,
) -> torch.Tensor:
    """EntroAdv: `A + min(a * stopgrad(H), |A| / kappa)`, zero on padding.

    The bonus is added whatever the sign of `A`; it is at most `|A| / kappa`, so for `kappa > 1` a
    negative advantage stays negative, and `A = 0` stays 0.
    """
    adv = broadcast_advantages(advantages, mask)
    bonus = torch.minimum(a * masked_entropy(entropy.detach(), mask), adv.abs() / kappa)
    return (adv + bonus) * mask.float()


def w_reinforce_advantages(rewards: torch.Tensor, mask: torch.Tensor, lam: float = 0.1) -> torch.Tensor:
    """W-REINFORCE: no baseline; `+lam` on every token of a correct completion, `-1` on a wrong one.

    Args:
        rewards: `(B,)` scalar rewards; a completion is correct when its reward is > 0 (this covers
            both the 1/0 and the +1/-1 conventions). A NaN reward (unscorable) gets advantage 0.
        mask: `(B, T)` valid-token mask.
        lam: weight of the positive samples (paper: 0.1).
    """
    r = rewards.float()
    per_row = torch.where(r > 0, torch.full_like(r, lam), torch.full_like(r, -1.0))
    per_row = torch.where(torch.isnan(r), torch.zeros_like(r), per_row)
    return broadcast_advantages(per_row, mask)
