"""The Four Quadrant Decomposition (docs/method.md sections 4 and 6).

Every valid token with a non-zero advantage falls in one quadrant, by polarity (sign of `A`) and entropy
level (`H >= mu_H(q)` is high): PHR, PLR, NLR, NHR. Padding and `A = 0` tokens are NONE.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum

import torch

from eapo.core.advantages import broadcast_advantages
from eapo.core.entropy import group_entropy_stats, masked_entropy


class Quadrant(IntEnum):
    """Quadrant codes used in label tensors. The four real quadrants are 0..3, so they index arrays."""

    PHR = 0  # positive advantage, high entropy
    PLR = 1  # positive advantage, low entropy
    NLR = 2  # negative advantage, low entropy
    NHR = 3  # negative advantage, high entropy
    NONE = 4  # padding or zero advantage: in no quadrant, carries no gradient


QUADRANTS: tuple[Quadrant, ...] = (Quadrant.PHR, Quadrant.PLR, Quadrant.NLR, Quadrant.NHR)


def parse_quadrants(spec: str | Iterable[str | Quadrant]) -> tuple[Quadrant, ...]:
    """`"PHR,NHR"` or `["PHR", "NHR"]` -> `(Quadrant.PHR, Quadrant.NHR)`; `"all"` -> all four.

    Raises `ValueError` naming the bad entry and the valid names.
    """
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[Quadrant] = []
    for item in items:
        if isinstance(item, Quadrant):
            name = item.name
        else:
            name = str(item).strip().upper()
        if name == "":
            continue
        if name == "ALL":
            out.extend(QUADRANTS)
            continue
        if name not in {q.name for q in QUADRANTS}:
            raise ValueError(f"unknown quadrant {item!r}: valid quadrants are PHR, PLR, NLR, NHR (or 'all')")
        out.append(Quadrant[name])
    if not out:
        raise ValueError("no quadrant given: name at least one of PHR, PLR, NLR, NHR (or 'all')")
    return tuple(sorted(set(out)))


def labels_from_stats(
    advantages: torch.Tensor, entropy: torch.Tensor, mask: torch.Tensor, mean: torch.Tensor
) -> torch.Tensor:
    """Quadrant labels `(B, T)` int64 given each row's group mean entropy `mean` `(B,)`."""
    adv = broadcast_advantages(advantages, mask)
    high = masked_entropy(entropy, mask) >= mean.float().unsqueeze(1)
    pos, neg = adv > 0, adv < 0
    labels = torch.full(mask.shape, int(Quadrant.NONE), dtype=torch.long, device=mask.device)
    labels[pos & high] = Quadrant.PHR
    labels[pos & ~high] = Quadrant.PLR
    labels[neg & ~high] = Quadrant.NLR
    labels[neg & high] = Quadrant.NHR
    labels[mask == 0] = Quadrant.NONE
    return labels


def quadrant_labels(
    advantages: torch.Tensor, entropy: torch.Tensor, mask: torch.Tensor, group_index: torch.Tensor
) -> torch.Tensor:
    """Quadrant of every token, as `Quadrant` codes.

    Args:
        advantages: `(B,)` or `(B, T)` advantages `A` (polarity is their sign).
        entropy: `(B, T)` token entropies `H`.
        mask: `(B, T)` valid-token mask.
        group_index: `(B,)` prompt id of each row (high entropy means `H >= mu_H(q)` of that prompt).

    Returns:
        `(B, T)` int64 tensor of `Quadrant` values; `Quadrant.NONE` on padding and where `A = 0`.
    """
    mean, _ = group_entropy_stats(entropy, mask, group_index)
    return labels_from_stats(advantages, entropy, mask, mean)


def quadrant_mask(labels: torch.Tensor, quadrants: str | Iterable[str | Quadrant]) -> torch.Tensor:
    """Boolean `(B, T)` mask of the tokens whose label is in `quadrants` (names or `Quadrant`s)."""
    chosen = torch.tensor([int(q) for q in parse_quadrants(quadrants)], device=labels.device)
    return torch.isin(labels, chosen)


def quadrant_statistics(
    labels: torch.Tensor,
    entropy: torch.Tensor,
    advantages: torch.Tensor,
    token_logps: torch.Tensor,
    mask: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Per-quadrant diagnostics of one update (docs/method.md sections 4 and 6), as 0-d float tensors.

    Args:
        labels: `(B, T)` quadrant codes (`quadrant_labels`).
        entropy: `(B, T)` token entropies.
        advantages: `(B,)` or `(B, T)` advantages whose magnitude is reported (pass the advantage the
            loss actually uses to see where the gradient goes).
        token_logps: `(B, T)` `log pi(o_t)` of the sampled tokens.
        mask: `(B, T)` valid-token mask.

    Returns keys `quadrant/{Q}/token_share` (of all valid tokens; also for NONE), `.../entropy_mean`,
    `.../abs_adv_mean` and `.../grad_share`: the quadrant's share of the gradient-signal proxy
    `|A| (1 - pi(o_t))` summed over all valid tokens. A quadrant with no token gets 0 for its means.
    """
    valid = mask.bool()
    entropy = masked_entropy(entropy, mask)
    adv = broadcast_advantages(advantages, mask).abs()
    signal = adv * (1.0 - token_logps.detach().float().exp())
    n_valid = valid.sum().clamp(min=1).float()
    total_signal = signal[valid].sum()
    out: dict[str, torch.Tensor] = {}
    for q in (*QUADRANTS, Quadrant.NONE):
        in_q = (labels == q) & valid
        n = in_q.sum().float()
        out[f"quadrant/{q.name}/token_share"] = n / n_valid
        if q is Quadrant.NONE:
            continue
        denom = n.clamp(min=1.0)
        out[f"quadrant/{q.name}/entropy_mean"] = entropy[in_q].sum() / denom
        out[f"quadrant/{q.name}/abs_adv_mean"] = adv[in_q].sum() / denom
        share = signal[in_q].sum() / total_signal if total_signal > 0 else torch.zeros((), device=mask.device)
        out[f"quadrant/{q.name}/grad_share"] = share
    return out
