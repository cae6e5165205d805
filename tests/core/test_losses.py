"""`eapo.core.losses` (KL-Cov, Clip-Cov) against slow references."""

from __future__ import annotations

import math
import random

import pytest
import torch

from eapo.core import (
    clip_cov_token_loss,
    kl_cov_token_loss,
    token_covariance,
)
from reference import (
    RANDOM_SEEDS,
    _random_mask,
    assert_matches,
    dtype_param,
    lst,
    ref_cov,
    sign,
)

# 10-11. KL-Cov, Clip-Cov
# --------------------------------------------------------------------------------------------------


def loss_inputs(seed: int, dtype: torch.dtype, min_tokens: int = 1):
    """(logps, old_logps, advantages (B, T), mask) with per-row advantages and some token variation."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    while True:
        B, T = rng.randint(1, 8), rng.randint(1, 12)
        mask = torch.tensor(_random_mask(rng, B, T))
        if int(mask.sum()) >= min_tokens:
            break
    logps = -torch.rand(B, T, dtype=torch.float64) * 4
    old = logps + torch.randn(B, T, dtype=torch.float64) * 0.3
    adv = (torch.randn(B, 1, dtype=torch.float64) * 2).expand(B, T).clone()
    adv[torch.rand(B, T) < 0.3] += torch.randn(1, dtype=torch.float64).item()
    # padding holds finite garbage (the loss is documented unmasked; it must not leak into selection)
    pad = ~mask.bool()
    logps, old, adv = logps.masked_fill(pad, 3.0), old.masked_fill(pad, -3.0), adv.masked_fill(pad, 50.0)
    return logps.to(dtype), old.to(dtype), adv.to(dtype), mask


@dtype_param
@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_token_covariance_matches_reference(seed, dtype):
    logps, _, adv, mask = loss_inputs(seed, dtype)
    logps.requires_grad_(True)
    cov = token_covariance(adv, logps, mask)
    assert not cov.requires_grad
    ref = ref_cov(lst(adv), lst(logps), lst(mask))
    valid = mask.bool()
    assert (cov[~valid] == -math.inf).all()
    flat_ref = [ref[b][t] for b in range(mask.shape[0]) for t in range(mask.shape[1]) if mask[b, t]]
    torch.testing.assert_close(cov[valid].double(), torch.tensor(flat_ref, dtype=torch.float64), atol=1e-5, rtol=1e-5)


def _check_top_k(selected: torch.Tensor, ref_cov_: list, mask: torch.Tensor, k: int) -> None:
    assert int(selected.sum()) == k
    assert not (selected & ~mask.bool()).any()
    sel = [ref_cov_[b][t] for b, t in selected.nonzero().tolist()]
    rest = [ref_cov_[b][t] for b, t in (~selected & mask.bool()).nonzero().tolist()]
    if sel and rest:
        assert min(sel) >= max(rest) - 1e-5, (sel, rest)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64], ids=["f32", "bf16", "f64"])
@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_kl_cov_matches_reference(seed, dtype):
    logps, old, adv, mask = loss_inputs(seed, dtype)
    LP, LO, LA, LM = lst(logps), lst(old), lst(adv), lst(mask)
    cov = ref_cov(LA, LP, LM)
    n_valid = int(mask.sum())
    for k_ratio, coef in [(2e-3, 1.0), (0.1, 1.0), (0.5, 0.3), (1.0, 2.0), (3.0, 1.0)]:
        loss, selected = kl_cov_token_loss(logps, old, adv, mask, k_ratio=k_ratio, coef=coef)
        k = min(n_valid, max(1, int(n_valid * k_ratio))) if n_valid else 0
        _check_top_k(selected, cov, mask, k)
        sel = selected.tolist()
        ref = [
            -LA[b][t] * math.exp(LP[b][t] - LO[b][t]) + (coef * abs(LP[b][t] - LO[b][t]) if sel[b][t] else 0.0)
            for b, t in mask.nonzero().tolist()
        ]
        assert_matches(loss[mask.bool()], ref, dtype)


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_kl_cov_gradient(seed):
    logps, old, adv, mask = loss_inputs(seed, torch.float64)
    logps.requires_grad_(True)
    loss, selected = kl_cov_token_loss(logps, old, adv, mask, k_ratio=0.3, coef=0.7)
    (loss * mask).sum().backward()
    LP, LO, LA = lst(logps), lst(old), lst(adv)
    ref = [
        [
            (-LA[b][t] * math.exp(LP[b][t] - LO[b][t]) + (0.7 * sign(LP[b][t] - LO[b][t]) if selected[b, t] else 0))
            if mask[b, t]
            else 0.0
            for t in range(mask.shape[1])
        ]
        for b in range(mask.shape[0])
    ]
    assert_matches(logps.grad, ref, atol=1e-10, rtol=1e-10)


def test_kl_cov_inert_on_policy():
    logps, _, adv, mask = loss_inputs(3, torch.float64, min_tokens=3)
    loss, selected = kl_cov_token_loss(logps, logps.clone(), adv, mask, k_ratio=0.5)
    assert selected.any()
    torch.testing.assert_close(loss[mask.bool()], -adv[mask.bool()])


def clip_cov_inputs(seed: int, dtype: torch.dtype):
    """Inputs with at least 3 tokens clearly eligible (1 < cov < 5, not clipped) and some clipped ones."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    for _ in range(1000):
        B, T = rng.randint(2, 8), rng.randint(4, 12)
        mask = torch.tensor(_random_mask(rng, B, T))
        adv = torch.randn(B, T, dtype=torch.float64) * 2.5
        logps = -torch.rand(B, T, dtype=torch.float64) * 4
        # ratios well inside the clip range, or well outside it (|log r| > 0.5)
        delta = torch.where(torch.rand(B, T) < 0.7, torch.rand(B, T) * 0.2 - 0.1, torch.randn(B, T).sign() * 0.6)
        old = logps - delta
        pad = ~mask.bool()
        logps, old, adv = logps.masked_fill(pad, 3.0), old.masked_fill(pad, -3.0), adv.masked_fill(pad, 50.0)
        logps, old, adv = logps.to(dtype), old.to(dtype), adv.to(dtype)
        strict, _ = ref_clip_cov_eligible(logps, old, adv, mask, 0.2, 0.28, 1.0, 5.0)
        if sum(map(sum, strict)) >= 3:
            return logps, old, adv, mask
    raise AssertionError("could not build clip-cov inputs")


def ref_clip_cov_eligible(logps, old, adv, mask, el, eh, lb, ub, margin=1e-3):
    """(surely eligible, possibly eligible) per token: eligible = valid, lb < cov < ub and not clipped
    (not -A clip(r) > -A r). The margin absorbs float32/bf16 rounding at the edges of each condition."""
    LP, LO, LA, M = lst(logps), lst(old), lst(adv), lst(mask)
    cov = ref_cov(LA, LP, M)
    strict = [[False] * len(row) for row in M]
    loose = [[False] * len(row) for row in M]
    for b, t in [(i, j) for i in range(len(M)) for j in range(len(M[i])) if M[i][j]]:
        r = math.exp(LP[b][t] - LO[b][t])
        gap = -LA[b][t] * min(max(r, 1 - el), 1 + eh) - (-LA[b][t] * r)  # > 0 means clipped
        scale = margin * (1 + abs(LA[b][t]) * r)
        surely_unclipped = gap < -scale or 1 - el + margin < r < 1 + eh - margin
        strict[b][t] = lb + margin < cov[b][t] < ub - margin and surely_unclipped
        loose[b][t] = lb - margin < cov[b][t] < ub + margin and gap < scale
    return strict, loose


@dtype_param
@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_clip_cov_matches_reference(seed, dtype):
    logps, old, adv, mask = clip_cov_inputs(seed, dtype)
    for k_ratio in (2e-4, 0.1, 0.3, 1.0):
        _check_clip_cov(seed, dtype, k_ratio, logps, old, adv, mask)


def _check_clip_cov(seed, dtype, k_ratio, logps, old, adv, mask):
    el, eh, lb, ub = 0.2, 0.28, 1.0, 5.0
    margin = 1e-3 if dtype != torch.bfloat16 else 2e-2
    strict, loose = ref_clip_cov_eligible(logps, old, adv, mask, el, eh, lb, ub, margin)
    gen = torch.Generator().manual_seed(seed)
    loss, detached = clip_cov_token_loss(
        logps, old, adv, mask, epsilon_low=el, epsilon_high=eh, k_ratio=k_ratio, cov_lb=lb, cov_ub=ub, generator=gen
    )
    n_valid = int(mask.sum())
    k = max(1, int(k_ratio * n_valid))
    n_strict, n_loose = sum(map(sum, strict)), sum(map(sum, loose))
    assert min(k, n_strict) <= int(detached.sum()) <= min(k, n_loose)
    for b, t in detached.nonzero().tolist():
        assert loose[b][t], (b, t)
    LP, LO, LA, det = lst(logps), lst(old), lst(adv), detached.tolist()
    ref = []
    for b, t in mask.nonzero().tolist():
        r = math.exp(LP[b][t] - LO[b][t])
        ref.append(0.0 if det[b][t] else max(-LA[b][t] * r, -LA[b][t] * min(max(r, 1 - el), 1 + eh)))
    assert_matches(loss[mask.bool()], ref, dtype)
    assert (loss[detached] == 0).all()
    # the same generator seed gives the same selection; other seeds eventually give another one
    _, again = clip_cov_token_loss(
        logps, old, adv, mask, el, eh, k_ratio, lb, ub, generator=torch.Generator().manual_seed(seed)
    )
    assert torch.equal(again, detached)
    if k < n_strict:
        draws = {
            tuple(
                clip_cov_token_loss(
                    logps, old, adv, mask, el, eh, k_ratio, lb, ub, generator=torch.Generator().manual_seed(s)
                )[1]
                .flatten()
                .tolist()
            )
            for s in range(20)
        }
        assert len(draws) > 1


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_clip_cov_gradient(seed):
    el, eh = 0.2, 0.28
    logps, old, adv, mask = clip_cov_inputs(seed, torch.float64)
    logps.requires_grad_(True)
    loss, detached = clip_cov_token_loss(
        logps, old, adv, mask, el, eh, 0.3, 1.0, 5.0, generator=torch.Generator().manual_seed(seed)
    )
    (loss * mask).sum().backward()
    LP, LO, LA = lst(logps), lst(old), lst(adv)
    ref = []
    for b in range(mask.shape[0]):
        row = []
        for t in range(mask.shape[1]):
            r = math.exp(LP[b][t] - LO[b][t])
            clipped = -LA[b][t] * min(max(r, 1 - el), 1 + eh) > -LA[b][t] * r
            row.append(0.0 if (not mask[b, t] or detached[b, t] or clipped) else -LA[b][t] * r)
        ref.append(row)
    assert_matches(logps.grad, ref, atol=1e-10, rtol=1e-10)


def test_clip_cov_nothing_eligible():
    logps, old, adv, mask = loss_inputs(0, torch.float32)
    loss, detached = clip_cov_token_loss(logps, old, adv, mask, cov_lb=1e6, cov_ub=2e6)
    assert not detached.any()
    ratio = torch.exp(logps - old)
    ref = torch.maximum(-adv * ratio, -adv * ratio.clamp(0.8, 1.28))
    torch.testing.assert_close(loss[mask.bool()], ref[mask.bool()])
    _, none = clip_cov_token_loss(logps, old, adv, torch.zeros_like(mask))
    assert not none.any()
