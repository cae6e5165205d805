"""Token masks of the baselines that select tokens by entropy (docs/method.md section 8, Forking / 80-20)."""

from __future__ import annotations

import math

import torch

FORKING_SCOPES = ("batch", "sequence")


def top_fraction_threshold(values: torch.Tensor, rho: float) -> torch.Tensor | None:
    """The `ceil(rho * n)`-th largest of the 1-D `values` (None when `values` is empty).

    `kthvalue` is used instead of `torch.quantile`, which refuses inputs above 2**24 elements
    (a 1.5B-model batch of 64 x 16 x 24k tokens is larger).
    """
    n = values.numel()
    if n == 0:
        return None
    k = min(n, max(1, math.ceil(rho * n - 1e-9)))  # - 1e-9: 0.07 * 100 is 7.000000000000001, keep 7
    return torch.kthvalue(values.float(), n - k + 1).values


def forking_mask(entropy: torch.Tensor, mask: torch.Tensor, rho: float = 0.2, scope: str = "batch") -> torch.Tensor:
    """Keep the tokens whose entropy is in the top `rho` fraction ("forking tokens").

    Args:
        entropy: `(B, T)` token entropies.
        mask: `(B, T)` valid-token mask.
        rho: fraction kept (paper: 0.2). At least one token per scope is kept when the scope has any.
        scope: `"batch"`: one threshold over all valid tokens of the batch you pass (the trainer
            passes the whole generation batch, gathered over processes); `"sequence"`: one
            threshold per row.

    Returns:
        `(B, T)` bool, `True` for kept tokens (`H >= threshold`; ties at the threshold are kept),
        never on padding.
    """
    if not 0.0 < rho <= 1.0:
        raise ValueError(f"rho must be in (0, 1], got {rho}")
    valid = mask.bool()
    h = torch.where(valid, entropy.float(), torch.zeros((), device=entropy.device))
    if scope == "batch":
        thr = top_fraction_threshold(h[valid], rho)
        if thr is None:
            return torch.zeros_like(valid)
        return (h >= thr) & valid
    if scope == "sequence":
        n = valid.sum(-1)  # (B,)
        k = torch.clamp(torch.ceil(rho * n.double() - 1e-9).long(), min=1)
        ranked = h.masked_fill(~valid, float("-inf")).sort(dim=-1, descending=True).values
        thr = ranked.gather(1, (k - 1).clamp(max=h.shape[1] - 1).unsqueeze(1))  # (B, 1)
        return (h >= thr) & valid & (n > 0).unsqueeze(1)
    raise ValueError(f"unknown forking scope {scope!r}: valid scopes are {', '.join(FORKING_SCOPES)}")
