"""`eapo.core.masks` (Forking's top-rho entropy mask) against slow references."""

from __future__ import annotations

import pytest
import torch

from eapo.core import (
    forking_mask,
)
from reference import (
    GARBAGE,
    Batch,
    batch_param,
    ceil_rho_n,
    dtype_param,
    lst,
    ref_forking,
)

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
