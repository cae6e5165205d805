"""`eapo.core` checked against slow, obviously-correct references (method.md sections 2-8).

Every reference below is a plain Python loop over rows and tokens on Python floats (float64), written
from the spec and not from the vectorised code under test. Inputs are random small batches
(B in 1..8, T in 1..12, V in 2..50) with empty rows, groups whose rows are all empty, single-token
groups, groups of size 1 and non-contiguous, unsorted group ids, in float32 and bfloat16. Padding
positions always hold finite garbage, so a function that forgets the mask fails.

bf16 inputs are compared with the float64 reference computed on the same (rounded) input values.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from fractions import Fraction

import pytest
import torch

from eapo.core import (
    QUADRANTS,
    Quadrant,
    broadcast_advantages,
    clip_cov_token_loss,
    eapo_advantages,
    entroadv_advantages,
    forking_mask,
    group_entropy_stats,
    kl_cov_token_loss,
    labels_from_stats,
    parse_quadrants,
    quadrant_labels,
    quadrant_mask,
    quadrant_statistics,
    row_entropy_moments,
    shape_advantages,
    stats_from_moments,
    token_covariance,
    token_entropy,
    w_reinforce_advantages,
)

DTYPES = [torch.float32, torch.bfloat16]
DTYPE_IDS = ["f32", "bf16"]
RANDOM_SEEDS = list(range(10))
GARBAGE = 1234.5  # value put on padding positions; a function that forgets the mask picks it up


def tol(dtype: torch.dtype) -> dict[str, float]:
    if dtype == torch.bfloat16:
        return {"atol": 2e-2, "rtol": 2e-2}
    return {"atol": 1e-5, "rtol": 1e-5}


def assert_matches(actual: torch.Tensor, reference, dtype: torch.dtype = torch.float32, **kw) -> None:
    """`actual` against a nested-list float64 `reference`, with the tolerance of the input dtype."""
    ref = torch.tensor(reference, dtype=torch.float64)
    assert tuple(actual.shape) == tuple(ref.shape), (tuple(actual.shape), tuple(ref.shape))
    torch.testing.assert_close(actual.detach().double(), ref, **{**tol(dtype), **kw})


def lst(t: torch.Tensor) -> list:
    return t.detach().double().tolist()


def sign(x: float) -> float:
    return 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)


# --------------------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------------------


@dataclass
class Batch:
    name: str
    mask: torch.Tensor  # (B, T) int64 0/1
    group_index: torch.Tensor  # (B,) int64
    entropy: torch.Tensor  # (B, T) float64, GARBAGE on padding
    adv_row: torch.Tensor  # (B,) float64, some exact zeros
    adv_tok: torch.Tensor  # (B, T) float64, some exact zeros, GARBAGE on padding

    @property
    def B(self) -> int:
        return self.mask.shape[0]

    @property
    def T(self) -> int:
        return self.mask.shape[1]


def _random_mask(rng: random.Random, B: int, T: int) -> list[list[int]]:
    rows = []
    for _ in range(B):
        u = rng.random()
        if u < 0.2:  # empty completion
            row = [0] * T
        elif u < 0.35:  # single valid token somewhere
            row = [0] * T
            row[rng.randrange(T)] = 1
        elif u < 0.7:  # right padding
            n = rng.randint(1, T)
            row = [1] * n + [0] * (T - n)
        else:  # arbitrary (non-contiguous) mask
            row = [int(rng.random() < 0.6) for _ in range(T)]
        rows.append(row)
    return rows


def random_batch(seed: int, quantize: bool = False) -> Batch:
    rng = random.Random(seed)
    torch.manual_seed(seed)
    B, T = rng.randint(1, 8), rng.randint(1, 12)
    labels = rng.sample(range(-3, 40), rng.randint(1, B))  # non-contiguous, unsorted, maybe negative
    group_index = [rng.choice(labels) for _ in range(B)]
    mask = _random_mask(rng, B, T)
    if rng.random() < 0.4:  # a group whose rows are all empty
        g = rng.choice(group_index)
        mask = [[0] * T if group_index[b] == g else mask[b] for b in range(B)]
    m = torch.tensor(mask, dtype=torch.long)
    entropy = torch.rand(B, T, dtype=torch.float64) * 4.0
    if quantize:  # a coarse grid: exact in bf16/f32/f64 and many ties with the group mean
        entropy = torch.round(entropy * 4.0) / 4.0
    entropy = torch.where(m.bool(), entropy, torch.full_like(entropy, GARBAGE))
    adv_row = torch.randn(B, dtype=torch.float64) * 1.5
    adv_row[torch.rand(B) < 0.25] = 0.0
    adv_tok = torch.randn(B, T, dtype=torch.float64) * 1.5
    adv_tok[torch.rand(B, T) < 0.15] = 0.0
    adv_tok = torch.where(m.bool(), adv_tok, torch.full_like(adv_tok, GARBAGE))
    return Batch(f"seed{seed}", m, torch.tensor(group_index), entropy, adv_row, adv_tok)


def _fixed(name, mask, group_index, entropy, adv_row) -> Batch:
    m = torch.tensor(mask, dtype=torch.long)
    h = torch.tensor(entropy, dtype=torch.float64)
    h = torch.where(m.bool(), h, torch.full_like(h, GARBAGE))
    a = torch.tensor(adv_row, dtype=torch.float64)
    a_tok = torch.where(m.bool(), a.unsqueeze(1).expand_as(h) * (1.0 + 0.1 * h.clamp(max=4)), GARBAGE)
    return Batch(name, m, torch.tensor(group_index), h, a, a_tok)


def fixed_batches() -> list[Batch]:
    return [
        # group 9: all rows empty; group 2: one valid token overall; group 5: ordinary.
        _fixed(
            "spec_example",
            [[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 1, 1], [0, 0, 0, 0], [0, 1, 0, 0]],
            [5, 2, 5, 9, 2],
            [[0.5, 2.0, 9, 9], [9, 9, 9, 9], [1.0, 9, 3.0, 0.25], [9, 9, 9, 9], [9, 1.5, 9, 9]],
            [1.0, -0.5, -1.0, 0.7, 2.0],
        ),
        _fixed("single_token", [[1]], [7], [[0.3]], [1.0]),
        _fixed("single_padding", [[0]], [7], [[0.3]], [1.0]),
        _fixed("all_empty", [[0, 0, 0], [0, 0, 0]], [1, 3], [[1, 2, 3], [4, 5, 6]], [1.0, -1.0]),
        # constant entropy in a group: sigma = 0, z must be 0, not NaN/inf
        _fixed("constant_group", [[1, 1, 0], [1, 0, 1]], [4, 4], [[0.75, 0.75, 3], [0.75, 3, 0.75]], [1.0, -2.0]),
        # mean is exactly a token's entropy (1,2,3 -> 2): tests H >= mu (not >)
        _fixed("mean_tie", [[1, 1, 1], [1, 1, 1]], [0, 0], [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], [1.5, -1.5]),
        # two groups interleaved, one row each empty
        _fixed(
            "interleaved",
            [[1, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]],
            [11, 3, 3, 11],
            [[0.1, 0.2, 3.5, 9], [9, 9, 9, 9], [2.25, 9, 9, 9], [1.0, 1.5, 0.0, 2.0]],
            [0.0, 1.0, -1.0, 2.0],
        ),
    ]


ALL_BATCHES = fixed_batches() + [random_batch(s) for s in RANDOM_SEEDS]
QUANT_BATCHES = fixed_batches() + [random_batch(100 + s, quantize=True) for s in RANDOM_SEEDS]
batch_param = pytest.mark.parametrize("batch", ALL_BATCHES, ids=lambda b: b.name)
qbatch_param = pytest.mark.parametrize("batch", QUANT_BATCHES, ids=lambda b: b.name)
dtype_param = pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
adv_kind_param = pytest.mark.parametrize("adv_kind", ["row", "token"])


def pick_adv(batch: Batch, adv_kind: str) -> torch.Tensor:
    return batch.adv_row if adv_kind == "row" else batch.adv_tok


def adv_at(A: list, b: int, t: int) -> float:
    """A (B,) or (B, T) nested list -> A_{b,t}."""
    return A[b][t] if isinstance(A[b], list) else A[b]


# --------------------------------------------------------------------------------------------------
# References (plain loops over python floats)
# --------------------------------------------------------------------------------------------------


def ref_entropy_row(row: list[float], temperature: float) -> float:
    x = [v / temperature for v in row]
    m = max(x)
    e = [math.exp(v - m) for v in x]
    log_z = math.log(sum(e))
    h = 0.0
    for v, ev in zip(x, e, strict=True):
        p = ev / sum(e)
        if p > 0.0:
            h -= p * ((v - m) - log_z)
    return h


def ref_group_values(H: list, M: list, G: list, b: int) -> list[float]:
    """Entropies of all valid tokens of all rows in row b's group."""
    return [H[r][t] for r in range(len(G)) if G[r] == G[b] for t in range(len(M[r])) if M[r][t]]


def ref_mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 0.0
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / len(values)  # population, ddof = 0
    return mean, math.sqrt(var)


def ref_group_stats(H: list, M: list, G: list) -> tuple[list[float], list[float]]:
    stats = [ref_mean_std(ref_group_values(H, M, G, b)) for b in range(len(G))]
    return [s[0] for s in stats], [s[1] for s in stats]


def ref_shaped(A, H, M, mean, std, alpha, phi, eps) -> list[list[float]]:
    out = []
    for b in range(len(M)):
        row = []
        for t in range(len(M[b])):
            if not M[b][t]:
                row.append(0.0)
                continue
            a = adv_at(A, b, t)
            z = (H[b][t] - mean[b]) / (std[b] + eps)
            c = min(max(z, -abs(a) / phi), abs(a) / phi)
            row.append(a + alpha * sign(a) * c)
        out.append(row)
    return out


def ref_eapo(A, H, M, G, alpha=0.2, phi=2.0, eps=1e-6) -> list[list[float]]:
    mean, std = ref_group_stats(H, M, G)
    return ref_shaped(A, H, M, mean, std, alpha, phi, eps)


def ref_label(a: float, h: float, mu: float, valid: bool) -> int:
    if not valid or a == 0:
        return int(Quadrant.NONE)
    if a > 0:
        return int(Quadrant.PHR) if h >= mu else int(Quadrant.PLR)
    return int(Quadrant.NHR) if h >= mu else int(Quadrant.NLR)


def ref_quadrant_stats(labels, H, A, LP, M) -> dict[str, float]:
    cells = [(b, t) for b in range(len(M)) for t in range(len(M[b])) if M[b][t]]
    n_valid = len(cells)
    signal = {c: abs(adv_at(A, *c)) * (1.0 - math.exp(LP[c[0]][c[1]])) for c in cells}
    total = sum(signal.values())
    out = {}
    for q in (*QUADRANTS, Quadrant.NONE):
        in_q = [c for c in cells if labels[c[0]][c[1]] == int(q)]
        out[f"quadrant/{q.name}/token_share"] = len(in_q) / n_valid if n_valid else 0.0
        if q is Quadrant.NONE:
            continue
        n = len(in_q)
        out[f"quadrant/{q.name}/entropy_mean"] = sum(H[b][t] for b, t in in_q) / n if n else 0.0
        out[f"quadrant/{q.name}/abs_adv_mean"] = sum(abs(adv_at(A, b, t)) for b, t in in_q) / n if n else 0.0
        out[f"quadrant/{q.name}/grad_share"] = sum(signal[c] for c in in_q) / total if total > 0 else 0.0
    return out


def ref_cov(A, LP, M) -> list[list[float]]:
    cells = [(b, t) for b in range(len(M)) for t in range(len(M[b])) if M[b][t]]
    n = len(cells)
    a_mean = sum(A[b][t] for b, t in cells) / n if n else 0.0
    lp_mean = sum(LP[b][t] for b, t in cells) / n if n else 0.0
    return [
        [(A[b][t] - a_mean) * (LP[b][t] - lp_mean) if M[b][t] else -math.inf for t in range(len(M[b]))]
        for b in range(len(M))
    ]


def ceil_rho_n(rho: float, n: int) -> int:
    """ceil(rho * n) with rho read as the decimal the user wrote (no float artefacts)."""
    return math.ceil(Fraction(repr(rho)) * n)


def ref_top_fraction(values: list[float], rho: float) -> float | None:
    if not values:
        return None
    k = min(len(values), max(1, ceil_rho_n(rho, len(values))))
    return sorted(values, reverse=True)[k - 1]


def ref_forking(H, M, rho, scope) -> list[list[bool]]:
    if scope == "batch":
        thr = ref_top_fraction([H[b][t] for b in range(len(M)) for t in range(len(M[b])) if M[b][t]], rho)
        thrs = [thr] * len(M)
    else:
        thrs = [ref_top_fraction([H[b][t] for t in range(len(M[b])) if M[b][t]], rho) for b in range(len(M))]
    return [
        [bool(M[b][t]) and thrs[b] is not None and H[b][t] >= thrs[b] for t in range(len(M[b]))] for b in range(len(M))
    ]


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
# 5-6. Four Quadrant Decomposition
# --------------------------------------------------------------------------------------------------


@adv_kind_param
@dtype_param
@qbatch_param
def test_quadrant_labels_matches_reference(batch, dtype, adv_kind):
    A, H = pick_adv(batch, adv_kind).to(dtype), batch.entropy.to(dtype)
    labels = quadrant_labels(A, H, batch.mask, batch.group_index)
    assert labels.dtype == torch.int64
    LA, LH, M = lst(A), lst(H), lst(batch.mask)
    mean, _ = ref_group_stats(LH, M, lst(batch.group_index))
    ref = [
        [ref_label(adv_at(LA, b, t), LH[b][t], mean[b], bool(M[b][t])) for t in range(batch.T)] for b in range(batch.B)
    ]
    assert labels.tolist() == ref
    # labels_from_stats with arbitrary thresholds
    thr = torch.tensor([round(x * 4) / 4 for x in torch.rand(batch.B).mul(4).tolist()])
    ref2 = [
        [ref_label(adv_at(LA, b, t), LH[b][t], thr[b].item(), bool(M[b][t])) for t in range(batch.T)]
        for b in range(batch.B)
    ]
    assert labels_from_stats(A, H, batch.mask, thr).tolist() == ref2


def test_quadrant_labels_tie_with_mean_is_high():
    b = next(x for x in fixed_batches() if x.name == "mean_tie")
    labels = quadrant_labels(b.adv_row, b.entropy, b.mask, b.group_index)
    P, Q, N, R = Quadrant.PHR, Quadrant.PLR, Quadrant.NLR, Quadrant.NHR
    assert labels.tolist() == [[Q, P, P], [R, R, N]]


def test_quadrant_mask_and_parse():
    labels = torch.tensor([[0, 1, 2, 3, 4], [3, 3, 0, 4, 1]])
    expect = [[True, False, False, True, False], [True, True, True, False, False]]
    assert quadrant_mask(labels, "PHR,NHR").tolist() == expect
    assert quadrant_mask(labels, ["PHR", "NHR"]).tolist() == expect
    assert quadrant_mask(labels, [Quadrant.NHR, "phr"]).tolist() == expect
    assert quadrant_mask(labels, " phr , nhr ").tolist() == expect
    assert quadrant_mask(labels, "all").tolist() == (labels != Quadrant.NONE).tolist()
    assert quadrant_mask(labels, "PLR").tolist() == (labels == Quadrant.PLR).tolist()
    assert parse_quadrants("all") == QUADRANTS
    assert parse_quadrants("ALL") == QUADRANTS
    assert parse_quadrants("nhr,phr,PHR") == (Quadrant.PHR, Quadrant.NHR)
    with pytest.raises(ValueError) as err:
        parse_quadrants("PHR,XYZ")
    msg = str(err.value)
    assert "XYZ" in msg and all(q.name in msg for q in QUADRANTS)
    with pytest.raises(ValueError):
        quadrant_mask(labels, ["NONE"])
    with pytest.raises(ValueError):
        parse_quadrants("")


def _check_stats(out: dict, ref: dict, dtype) -> None:
    assert set(out) == set(ref)
    for key, value in ref.items():
        assert out[key].dim() == 0, key
        torch.testing.assert_close(out[key].double(), torch.tensor(value, dtype=torch.float64), **tol(dtype))


@adv_kind_param
@dtype_param
@qbatch_param
def test_quadrant_statistics_matches_reference(batch, dtype, adv_kind):
    A, H, M = pick_adv(batch, adv_kind).to(dtype), batch.entropy.to(dtype), batch.mask
    torch.manual_seed(batch.B * 7 + batch.T)
    logps = -torch.rand(batch.B, batch.T, dtype=torch.float64) * 3
    logps = torch.where(M.bool(), logps, torch.full_like(logps, 5.0)).to(dtype)  # 1 - exp(5) on padding
    labels = quadrant_labels(A, H, M, batch.group_index)
    out = quadrant_statistics(labels, H, A, logps, M)
    ref = ref_quadrant_stats(lst(labels), lst(H), lst(A), lst(logps), lst(M))
    _check_stats(out, ref, dtype)
    n_valid = int(M.sum())
    shares = sum(out[f"quadrant/{q.name}/token_share"].item() for q in Quadrant)
    assert math.isclose(shares, 1.0 if n_valid else 0.0, abs_tol=1e-6)
    grad = sum(out[f"quadrant/{q.name}/grad_share"].item() for q in QUADRANTS)
    total = sum(
        abs(adv_at(lst(A), b, t)) * (1 - math.exp(lst(logps)[b][t]))
        for b in range(batch.B)
        for t in range(batch.T)
        if M[b, t]
    )
    assert math.isclose(grad, 1.0 if total > 0 else 0.0, abs_tol=1e-5)
    # arbitrary labels, padding labelled as a real quadrant: the mask must still rule
    rand_labels = torch.randint(0, 5, (batch.B, batch.T))
    out2 = quadrant_statistics(rand_labels, H, A, logps, M)
    _check_stats(out2, ref_quadrant_stats(lst(rand_labels), lst(H), lst(A), lst(logps), lst(M)), dtype)


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


# --------------------------------------------------------------------------------------------------
# 9. Forking (top-rho entropy) mask
# --------------------------------------------------------------------------------------------------


def _distinct_entropy(batch: Batch) -> torch.Tensor:
    torch.manual_seed(batch.B * 5 + batch.T)
    h = (torch.randperm(batch.B * batch.T).double() / 8).reshape(batch.B, batch.T)  # exact in bf16
    return torch.where(batch.mask.bool(), h, torch.full_like(h, GARBAGE))


@pytest.mark.parametrize("scope", ["batch", "sequence"])
@dtype_param
@batch_param
def test_forking_mask_matches_reference(batch, dtype, scope):
    H = _distinct_entropy(batch).to(dtype)
    M = batch.mask
    for rho in (0.05, 0.2, 0.3, 0.5, 1.0):
        out = forking_mask(H, M, rho=rho, scope=scope)
        assert out.dtype == torch.bool
        assert out.tolist() == ref_forking(lst(H), lst(M), rho, scope), rho
        assert not (out & ~M.bool()).any()
        # distinct entropies: exactly ceil(rho * n) kept (per batch or per row)
        counts = [int(M.sum())] if scope == "batch" else [int(n) for n in M.sum(1)]
        kept = [int(out.sum())] if scope == "batch" else [int(k) for k in out.sum(1)]
        assert kept == [min(n, max(1, ceil_rho_n(rho, n))) if n else 0 for n in counts], rho
    assert forking_mask(H, M).tolist() == ref_forking(lst(H), lst(M), 0.2, "batch")  # defaults


@pytest.mark.parametrize("scope", ["batch", "sequence"])
def test_forking_mask_ties_are_kept(scope):
    H = torch.tensor([[3.0, 2.0, 2.0, 2.0, 1.0, 9.0], [2.0, 2.0, 0.5, 0.5, 0.5, 0.5]])
    M = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]])
    for rho in (0.2, 0.4, 0.5, 0.75):
        out = forking_mask(H, M, rho=rho, scope=scope)
        assert out.tolist() == ref_forking(lst(H), lst(M), rho, scope), rho
    # batch, rho 0.2: n = 11, k = 3, third largest = 2.0 -> 3.0 and all five 2.0s kept
    assert int(forking_mask(H, M, rho=0.2, scope="batch").sum()) == 6


@pytest.mark.parametrize("scope", ["batch", "sequence"])
def test_forking_mask_empty_and_errors(scope):
    H = torch.rand(3, 4)
    assert not forking_mask(H, torch.zeros(3, 4), rho=0.2, scope=scope).any()
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError):
            forking_mask(H, torch.ones(3, 4), rho=bad, scope=scope)
    with pytest.raises(ValueError):
        forking_mask(H, torch.ones(3, 4), rho=0.2, scope="token")


# (rho, n) pairs where rho * n in floating point lands just above an integer: 0.15 * 100 is 15.0000006 in
# float32, 0.07 * 100 is 7.000000000000001 in float64. The spec's ceil(rho * n) means 15 and 7.
FLOAT_ARTEFACT_CASES = [(0.15, 100), (0.3, 50), (0.6, 25), (0.07, 100), (0.2, 10), (0.25, 8)]


@pytest.mark.parametrize("scope", ["batch", "sequence"])
@pytest.mark.parametrize("rho,n", FLOAT_ARTEFACT_CASES)
def test_forking_mask_count_is_exact_ceil(rho, n, scope):
    torch.manual_seed(n)
    H = torch.randperm(n).float().unsqueeze(0)
    out = forking_mask(H, torch.ones(1, n), rho=rho, scope=scope)
    assert int(out.sum()) == ceil_rho_n(rho, n)


# --------------------------------------------------------------------------------------------------
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
