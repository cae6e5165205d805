"""`eapo.core.quadrants` (the Four Quadrant Decomposition) against slow references."""

from __future__ import annotations

import math

import pytest
import torch

from eapo.core import (
    QUADRANTS,
    Quadrant,
    labels_from_stats,
    parse_quadrants,
    quadrant_labels,
    quadrant_mask,
    quadrant_statistics,
)
from reference import (
    adv_at,
    adv_kind_param,
    dtype_param,
    fixed_batches,
    lst,
    pick_adv,
    qbatch_param,
    ref_group_stats,
    ref_label,
    ref_quadrant_stats,
    tol,
)

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
