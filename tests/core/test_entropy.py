"""`eapo.core.entropy` (token entropy, group statistics) against slow references; padding never matters."""

from __future__ import annotations

import math
import random

import pytest
import torch

from eapo.core import (
    eapo_advantages,
    entroadv_advantages,
    group_entropy_stats,
    quadrant_labels,
    row_entropy_moments,
    stats_from_moments,
    token_entropy,
)
from reference import (
    RANDOM_SEEDS,
    assert_matches,
    batch_param,
    dtype_param,
    lst,
    ref_entropy_row,
    ref_group_stats,
    ref_group_values,
)

# --------------------------------------------------------------------------------------------------
# 1. token_entropy
# --------------------------------------------------------------------------------------------------


def _random_logits(seed: int, dtype: torch.dtype) -> tuple[torch.Tensor, float]:
    rng = random.Random(seed)
    torch.manual_seed(seed)
    B, T, V = rng.randint(1, 8), rng.randint(1, 12), rng.randint(2, 50)
    scale = rng.choice([0.3, 2.0, 8.0])
    logits = (torch.randn(B, T, V) * scale + rng.uniform(-5, 5)).to(dtype)
    return logits, rng.choice([1.0, 0.6, 1.7])


@dtype_param
@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_token_entropy_matches_reference(seed, dtype):
    logits, temperature = _random_logits(seed, dtype)
    B, T, V = logits.shape
    L = lst(logits)
    ref = [[ref_entropy_row(L[b][t], temperature) for t in range(T)] for b in range(B)]
    out = token_entropy(logits.clone(), temperature=temperature)  # clone: input mutation has its own test
    assert out.dtype == torch.float32
    assert not out.requires_grad
    # the result is float32 arithmetic on exactly-known inputs (bf16 values are exact in f64)
    assert_matches(out, ref, atol=3e-5, rtol=1e-5)
    assert (out >= -1e-6).all() and (out <= math.log(V) + 1e-5).all()
    # plain temperature 1 as well
    ref1 = [[ref_entropy_row(L[b][t], 1.0) for t in range(T)] for b in range(B)]
    assert_matches(token_entropy(logits.clone()), ref1, atol=3e-5, rtol=1e-5)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64], ids=["f32", "bf16", "f64"])
def test_token_entropy_does_not_modify_its_input(dtype, temperature):
    """The caller's logits are used again (log-probs, loss): computing the entropy must not touch them."""
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 9).to(dtype)
    before = logits.clone()
    version = logits._version
    token_entropy(logits, temperature=temperature)
    token_entropy(logits, temperature=temperature, chunk_elements=7)
    assert torch.equal(logits, before)
    assert logits._version == version


@pytest.mark.parametrize("seed", RANDOM_SEEDS[:5])
@pytest.mark.parametrize("chunk_elements", [1, 7, 50, 101])
def test_token_entropy_chunking_is_invisible(seed, chunk_elements):
    logits, temperature = _random_logits(seed, torch.float32)
    full = token_entropy(logits.clone(), temperature=temperature)
    chunked = token_entropy(logits.clone(), temperature=temperature, chunk_elements=chunk_elements)
    torch.testing.assert_close(chunked, full, atol=1e-6, rtol=1e-6)


def test_token_entropy_shapes_and_grad():
    torch.manual_seed(0)
    x = torch.randn(7, requires_grad=True)
    h = token_entropy(x.clone())
    assert h.shape == () and not h.requires_grad
    assert math.isclose(h.item(), ref_entropy_row(lst(x), 1.0), abs_tol=1e-5)
    x2 = torch.randn(3, 5, dtype=torch.float64)
    h2 = token_entropy(x2, temperature=0.5, chunk_elements=7)
    assert h2.shape == (3,) and h2.dtype == torch.float32
    assert_matches(h2, [ref_entropy_row(r, 0.5) for r in lst(x2)])
    # uniform distribution: log V, whatever the temperature
    assert math.isclose(token_entropy(torch.zeros(2, 50), temperature=3.0)[0].item(), math.log(50), rel_tol=1e-6)


def test_token_entropy_extreme_logits():
    torch.manual_seed(1)
    rand_extreme = (torch.rand(4, 30) * 2 - 1) * 1e4
    special = torch.tensor(
        [
            [1e4] + [0.0] * 29,  # one-hot-like: entropy 0
            [-1e4] * 29 + [1e4],  # one-hot-like at the end
            [1e4, 1e4] + [-1e4] * 28,  # two-way tie: log 2
            [1e4, 1e4 - 1.0] + [-1e4] * 28,  # shift must be exact: binary entropy of sigmoid(1)
        ]
    )
    logits = torch.cat([rand_extreme, special])
    for chunk in (7, 1 << 24):
        for temperature in (1.0, 0.5, 100.0):
            out = token_entropy(logits.clone(), temperature=temperature, chunk_elements=chunk)
            assert torch.isfinite(out).all()
            assert_matches(out, [ref_entropy_row(r, temperature) for r in lst(logits)], atol=1e-5, rtol=1e-5)
    out = token_entropy(logits.clone())
    assert abs(out[4].item()) < 1e-6 and abs(out[5].item()) < 1e-6
    assert math.isclose(out[6].item(), math.log(2), rel_tol=1e-6)
    p = 1 / (1 + math.exp(-1))
    assert math.isclose(out[7].item(), -(p * math.log(p) + (1 - p) * math.log(1 - p)), rel_tol=1e-5)
    out_bf16 = token_entropy(special.to(torch.bfloat16))
    assert torch.isfinite(out_bf16).all() and abs(out_bf16[0].item()) < 1e-6


def test_token_entropy_neg_inf_logits_mean_zero_probability():
    """A -inf logit is a token of probability 0; it contributes 0 * log 0 = 0 to the entropy."""
    logits = torch.tensor([[0.0, float("-inf"), 0.0], [1.0, float("-inf"), float("-inf")]])
    out = token_entropy(logits)
    assert torch.isfinite(out).all(), out
    torch.testing.assert_close(out, torch.tensor([math.log(2), 0.0]), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("temperature", [0.0, -1.0, -1e-9])
def test_token_entropy_rejects_non_positive_temperature(temperature):
    with pytest.raises(ValueError):
        token_entropy(torch.randn(2, 5), temperature=temperature)


# --------------------------------------------------------------------------------------------------
# 2. group entropy statistics (and the moment helpers)
# --------------------------------------------------------------------------------------------------


@dtype_param
@batch_param
def test_group_entropy_stats_matches_reference(batch, dtype):
    H = batch.entropy.to(dtype)
    mean, std = group_entropy_stats(H, batch.mask, batch.group_index)
    ref_mean, ref_std = ref_group_stats(lst(H), lst(batch.mask), lst(batch.group_index))
    assert mean.shape == std.shape == (batch.B,)
    assert torch.isfinite(mean).all() and torch.isfinite(std).all()
    assert_matches(mean, ref_mean, dtype)
    assert_matches(std, ref_std, dtype)
    # groups without any valid token: exactly 0, 0
    for b in range(batch.B):
        if not ref_group_values(lst(H), lst(batch.mask), lst(batch.group_index), b):
            assert mean[b].item() == 0.0 and std[b].item() == 0.0


def test_group_entropy_stats_population_std_and_single_token():
    H = torch.tensor([[1.0, 3.0], [5.0, 7.0], [2.0, 0.0]])
    M = torch.tensor([[1, 1], [0, 0], [1, 0]])
    mean, std = group_entropy_stats(H, M, torch.tensor([8, 8, 2]))
    torch.testing.assert_close(mean, torch.tensor([2.0, 2.0, 2.0]))
    torch.testing.assert_close(std, torch.tensor([1.0, 1.0, 0.0]))  # ddof=0: 1, not sqrt(2)
    assert not torch.isnan(std).any()


@batch_param
def test_row_entropy_moments_matches_reference(batch):
    mom = row_entropy_moments(batch.entropy.float(), batch.mask)
    H, M = lst(batch.entropy.float()), lst(batch.mask)
    ref = [
        [
            float(sum(M[b])),
            sum(H[b][t] for t in range(batch.T) if M[b][t]),
            sum(H[b][t] ** 2 for t in range(batch.T) if M[b][t]),
        ]
        for b in range(batch.B)
    ]
    assert mom.dtype == torch.float64
    assert_matches(mom, ref, atol=1e-9, rtol=1e-9)


@batch_param
def test_group_stats_split_invariance(batch):
    """Stats are the same however the rows are split over micro-batches or processes."""
    H, M, G = batch.entropy.float(), batch.mask, batch.group_index
    mean, std = group_entropy_stats(H, M, G)
    for cut in range(0, batch.B + 1):
        parts = [(H[:cut], M[:cut], G[:cut]), (H[cut:], M[cut:], G[cut:])]
        moments = torch.cat([row_entropy_moments(h, m) for h, m, _ in parts])
        m2, s2 = stats_from_moments(moments, torch.cat([g for _, _, g in parts]))
        torch.testing.assert_close(m2, mean, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(s2, std, atol=1e-6, rtol=1e-6)
        # each part reduced to one pseudo-row per group (what a process would all-reduce), then combined
        pseudo_moments, pseudo_groups = [], []
        for h, m, g in parts:
            mom = row_entropy_moments(h, m)
            for gid in sorted(set(g.tolist())):
                pseudo_moments.append(mom[g == gid].sum(0))
                pseudo_groups.append(gid)
        pm, ps = stats_from_moments(torch.stack(pseudo_moments), torch.tensor(pseudo_groups))
        lookup = {gid: (pm[i].item(), ps[i].item()) for i, gid in enumerate(pseudo_groups)}
        for b in range(batch.B):
            assert math.isclose(lookup[G[b].item()][0], mean[b].item(), rel_tol=1e-6, abs_tol=1e-6)
            assert math.isclose(lookup[G[b].item()][1], std[b].item(), rel_tol=1e-6, abs_tol=1e-6)


# --------------------------------------------------------------------------------------------------
# Padding content must not matter, even when it is not finite
# --------------------------------------------------------------------------------------------------


@batch_param
def test_non_finite_padding_entropy_is_ignored(batch):
    """Padding positions have no entropy (method.md section 2): NaN/inf there must change nothing."""
    if bool(batch.mask.all()):
        pytest.skip("no padding")
    H, M, G = batch.entropy.float(), batch.mask, batch.group_index
    A = batch.adv_row.float()
    for fill in (float("nan"), float("inf")):
        Hn = H.masked_fill(~M.bool(), fill)
        for got, want in [
            (group_entropy_stats(Hn, M, G), group_entropy_stats(H, M, G)),
            ((eapo_advantages(A, Hn, M, G),), (eapo_advantages(A, H, M, G),)),
            ((entroadv_advantages(A, Hn, M),), (entroadv_advantages(A, H, M),)),
            ((quadrant_labels(A, Hn, M, G),), (quadrant_labels(A, H, M, G),)),
        ]:
            for g, w in zip(got, want, strict=True):
                torch.testing.assert_close(g, w, msg=lambda m, f=fill: f"padding entropy {f}: {m}")


def test_entropy_and_token_logprob_reuses_the_buffers_it_is_given():
    """With a `buffers` list, the two chunk buffers are allocated on the first call and reused by the next ones
    (the same storage), refilled when the vocabulary changes; the values equal those of a call without it."""
    from eapo.core.entropy import entropy_and_token_logprob

    gen = torch.Generator().manual_seed(0)
    buffers: list[torch.Tensor] = []
    pointers = []
    for vocab in (50, 50, 50, 70):
        logits = torch.randn(9, vocab, generator=gen) * 3
        tokens = torch.randint(0, vocab, (9,), generator=gen)
        got = entropy_and_token_logprob(logits, tokens, 0.7, chunk_elements=4 * vocab, buffers=buffers)
        want = entropy_and_token_logprob(logits, tokens, 0.7, chunk_elements=4 * vocab)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
        assert len(buffers) == 2 and buffers[0].shape == (4, vocab)  # 4 rows a chunk, 3 chunks
        pointers.append(buffers[0].data_ptr())
    assert pointers[0] == pointers[1] == pointers[2] != pointers[3]
