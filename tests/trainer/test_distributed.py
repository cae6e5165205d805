"""1 process vs 2 processes (torchrun, gloo on CPU): same group statistics, advantages, loss and update."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tiny import free_port

WORKER = Path(__file__).with_name("dist_worker.py")


def _run(cmd: list[str], cwd: Path) -> None:
    env = {**os.environ, "TRL_EXPERIMENTAL_SILENCE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["eapo", "forking"])
def test_two_processes_equal_one(method, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    _run([sys.executable, str(WORKER), str(one), method], tmp_path)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    _run(
        [*torchrun, "--master_addr", "127.0.0.1", "--master_port", str(free_port()), str(WORKER), str(two), method],
        tmp_path,
    )
    a, b = torch.load(one / "result.pt"), torch.load(two / "result.pt")
    assert (a["world"], b["world"]) == (1, 2)
    assert a["advantages"].abs().sum() > 0 and a["delta"].abs().sum() > 0
    for key in ("entropy_mean", "entropy_std", "advantages"):
        torch.testing.assert_close(b[key], a[key], rtol=1e-6, atol=1e-7)
    assert torch.equal(a["labels"], b["labels"])
    assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
    torch.testing.assert_close(b["delta"], a["delta"], rtol=1e-4, atol=1e-8)


RECORD_WORKER = Path(__file__).with_name("dist_record_worker.py")


@pytest.mark.slow
def test_two_processes_record_entropies_during_generation(tmp_path):
    """2 processes, the generation batch split over 2 micro-batches: each process records its completions'
    entropies during generation (no fallback forward); they equal a float64 forward over the same tokens, reach
    the method unchanged, and the gathered batch holds both processes' rows in global order, with group means
    over all of a group's tokens whichever process sampled them."""
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    port = str(free_port())
    _run([*torchrun, "--master_addr", "127.0.0.1", "--master_port", port, str(RECORD_WORKER), str(tmp_path)], tmp_path)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    batch_entropy, batch_mask = ranks[0]["batch_entropy"], ranks[0]["batch_mask"]
    reference = torch.zeros_like(batch_entropy, dtype=torch.float64)
    for r in ranks:
        assert r["world"] == 2 and r["steps_per_generation"] == 2 and not r["fallback_forward"]
        valid = r["completion_mask"].bool()
        assert valid.sum() > 0 and (~valid).any(), "the case needs padded positions (rows ending at EOS)"
        torch.testing.assert_close(r["recorded_entropy"][valid], r["reference_entropy"][valid].float(), atol=1e-5,
                                   rtol=0)  # fmt: skip
        torch.testing.assert_close(r["recorded_logps"][valid], r["reference_logps"][valid].float(), atol=1e-5, rtol=0)
        width = valid.shape[1]
        assert torch.equal(r["entropy_in_method"], r["recorded_entropy"])
        # the gathered batch: this process's rows, in global order, with its recorded values
        assert torch.equal(batch_entropy[r["rows"], :width], r["recorded_entropy"])
        assert torch.equal(batch_mask[r["rows"], :width].bool(), valid)
        reference[r["rows"], :width] = torch.where(valid, r["reference_entropy"], 0.0)
    assert sorted(torch.cat([r["rows"] for r in ranks]).tolist()) == list(range(batch_entropy.shape[0]))
    group = ranks[0]["group_index"]
    per_rank = [set(group[r["rows"]].tolist()) for r in ranks]
    assert per_rank[0] & per_rank[1], "the case needs a group sampled partly on each process"
    for g in group.unique():
        rows = group == g
        expected = reference[rows].sum() / batch_mask[rows].sum()
        assert ranks[0]["entropy_mean"][rows] == pytest.approx(float(expected), abs=1e-5)
