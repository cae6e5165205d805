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
