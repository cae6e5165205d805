"""`eapo.core.advantages` (EAPO's shaped advantage, EntroAdv, W-REINFORCE) against slow references."""

from __future__ import annotations

import math
import random

import pytest
import torch

from eapo.core import (
    broadcast_advantages,
    eapo_advantages,
    entroadv_advantages,
    group_entropy_stats,
    shape_advantages,
    w_reinforce_advantages,
)
from reference import (
    adv_at,
    adv_kind_param,
    assert_matches,
    batch_param,
    dtype_param,
    fixed_batches,
    lst,
    pick_adv,
    ref_eapo,
    ref_shaped,
)

# --------------------------------------------------------------------------------------------------
# 3-4. EAPO shaped advantage
# --------------------------------------------------------------------------------------------------

EAPO_PARAMS = [(0.2, 2.0, 1e-6), (0.4, 1.0, 1e-3), (0.7, 0.5, 1e-6)]


@adv_kind_param
@dtype_param
@batch_param
def test_eapo_advantages_matches_reference(batch, dtype, adv_kind):
    A, H = pick_adv(batch, adv_kind).to(dtype), batch.entropy.to(dtype)
    for alpha, phi, eps in EAPO_PARAMS:
        out = eapo_advantages(A, H, batch.mask, batch.group_index, alpha=alpha, phi=phi, eps=eps)
        assert out.dtype == torch.float32 and out.shape == (batch.B, batch.T)
        ref = ref_eapo(lst(A), lst(H), lst(batch.mask), lst(batch.group_index), alpha, phi, eps)
        assert_matches(out, ref, dtype)
        assert (out[batch.mask == 0] == 0).all()


def test_eapo_default_arguments_are_the_papers():
    b = fixed_batches()[0]
    ref = ref_eapo(lst(b.adv_row), lst(b.entropy), lst(b.mask), lst(b.group_index), 0.2, 2.0, 1e-6)
    assert_matches(eapo_advantages(b.adv_row, b.entropy, b.mask, b.group_index), ref)


@adv_kind_param
@batch_param
def test_eapo_properties(batch, adv_kind):
    A, H, M, G = pick_adv(batch, adv_kind).float(), batch.entropy.float(), batch.mask, batch.group_index
    base = broadcast_advantages(A, M)
    valid = M.bool()
    for alpha, phi in [(0.2, 2.0), (0.5, 1.0), (0.99, 1.0), (0.1, 0.3)]:
        out = eapo_advantages(A, H, M, G, alpha=alpha, phi=phi)
        # sign never flips; zero stays zero
        assert torch.equal(torch.sign(out), torch.sign(base))
        assert (out[base == 0] == 0).all()
        lo, hi = (1 - alpha / phi) * base.abs(), (1 + alpha / phi) * base.abs()
        assert (out.abs() >= lo - 1e-6 * (1 + lo)).all() and (out.abs() <= hi + 1e-6 * (1 + hi)).all()
    # alpha = 0: A broadcast and masked, exactly
    out0 = eapo_advantages(A, H, M, G, alpha=0.0)
    assert torch.equal(out0, torch.where(valid, base, torch.zeros_like(base)))
    assert torch.equal(out0[valid], (A.unsqueeze(1).expand(M.shape) if A.dim() == 1 else A)[valid])


@adv_kind_param
@batch_param
def test_eapo_permutation_and_relabel_invariance(batch, adv_kind):
    A, H, M, G = pick_adv(batch, adv_kind).float(), batch.entropy.float(), batch.mask, batch.group_index
    out = eapo_advantages(A, H, M, G)
    torch.manual_seed(batch.B * 31 + batch.T)
    for _ in range(3):
        perm = torch.randperm(batch.B)
        permuted = eapo_advantages(A[perm], H[perm], M[perm], G[perm])
        torch.testing.assert_close(permuted, out[perm], atol=1e-6, rtol=1e-6)
    relabelled = eapo_advantages(A, H, M, 1000 - 7 * G)  # any injective relabelling of the prompts
    torch.testing.assert_close(relabelled, out, atol=1e-6, rtol=1e-6)


@adv_kind_param
@dtype_param
@batch_param
def test_shape_advantages_consistency(batch, dtype, adv_kind):
    A, H, M, G = pick_adv(batch, adv_kind).to(dtype), batch.entropy.to(dtype), batch.mask, batch.group_index
    mean, std = group_entropy_stats(H, M, G)
    torch.testing.assert_close(shape_advantages(A, H, M, mean, std), eapo_advantages(A, H, M, G))
    # arbitrary statistics (e.g. the batch-level scope): the same formula with those mu, sigma
    torch.manual_seed(batch.B + 17 * batch.T)
    mean2 = torch.rand(batch.B) * 3
    std2 = torch.rand(batch.B) * 2
    std2[0] = 0.0
    out = shape_advantages(A, H, M, mean2, std2, alpha=0.3, phi=1.5, eps=1e-4)
    ref = ref_shaped(lst(A), lst(H), lst(M), lst(mean2), lst(std2), 0.3, 1.5, 1e-4)
    assert_matches(out, ref, dtype)


@dtype_param
@batch_param
def test_broadcast_advantages_matches_reference(batch, dtype):
    for A in (batch.adv_row.to(dtype), batch.adv_tok.to(dtype)):
        out = broadcast_advantages(A, batch.mask)
        assert out.dtype == torch.float32
        L, M = lst(A), lst(batch.mask)
        ref = [[adv_at(L, b, t) if M[b][t] else 0.0 for t in range(batch.T)] for b in range(batch.B)]
        assert_matches(out, ref, atol=0, rtol=0)


# --------------------------------------------------------------------------------------------------
# 7-8. EntroAdv, W-REINFORCE
# --------------------------------------------------------------------------------------------------


@adv_kind_param
@dtype_param
@batch_param
def test_entroadv_matches_reference(batch, dtype, adv_kind):
    A, H, M = pick_adv(batch, adv_kind).to(dtype), batch.entropy.to(dtype), batch.mask
    LA, LH, LM = lst(A), lst(H), lst(M)
    for a, kappa in [(0.4, 2.0), (1.0, 0.5), (0.05, 4.0)]:
        out = entroadv_advantages(A, H, M, a=a, kappa=kappa)
        ref = [
            [
                adv_at(LA, b, t) + min(a * LH[b][t], abs(adv_at(LA, b, t)) / kappa) if LM[b][t] else 0.0
                for t in range(batch.T)
            ]
            for b in range(batch.B)
        ]
        assert out.dtype == torch.float32
        assert_matches(out, ref, dtype)
        if (a, kappa) == (0.4, 2.0):
            torch.testing.assert_close(entroadv_advantages(A, H, M), out)


@pytest.mark.parametrize("lam", [0.1, 0.5])
@dtype_param
@batch_param
def test_w_reinforce_matches_reference(batch, dtype, lam):
    rng = random.Random(batch.B * 13 + batch.T)
    rewards = [rng.choice([1.0, 0.0, -1.0, 0.5, -0.25, float("nan"), 2.0]) for _ in range(batch.B)]
    r = torch.tensor(rewards, dtype=torch.float64).to(dtype)
    out = w_reinforce_advantages(r, batch.mask, lam=lam)
    M = lst(batch.mask)

    def per_row(x: float) -> float:
        if math.isnan(x):
            return 0.0
        return lam if x > 0 else -1.0

    ref = [[per_row(rewards[b]) if M[b][t] else 0.0 for t in range(batch.T)] for b in range(batch.B)]
    assert out.dtype == torch.float32
    assert_matches(out, ref, atol=1e-7, rtol=1e-6)
    if lam == 0.1:
        torch.testing.assert_close(w_reinforce_advantages(r, batch.mask), out)
