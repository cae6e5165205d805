"""Shared fixtures of the `eapo.core` tests: random and hand-built batches, and slow references.

`eapo.core` checked against slow, obviously-correct references (method.md sections 2-8).

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
