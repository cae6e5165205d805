"""The shipped tiny world, 2 steps: 1 process vs 2 processes (torchrun, gloo on CPU) give the same group
statistics, shaped advantages, quadrants and loss at every step."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tiny import free_port

WORKER = Path(__file__).with_name("dist_world_worker.py")


@pytest.mark.slow
def test_tiny_world_two_processes_equal_one(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    port = str(free_port())
    env = {**os.environ, "TRL_EXPERIMENTAL_SILENCE": "1", "OMP_NUM_THREADS": "1"}
    runs = [  # both layouts at once: most of their time is start-up
        subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for cmd in ([sys.executable, str(WORKER), str(one)],
                    [*torchrun, "--master_addr", "127.0.0.1", "--master_port", port, str(WORKER), str(two)])
    ]  # fmt: skip
    for proc in runs:
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output[-4000:]
    a, b = torch.load(one / "result.pt"), torch.load(two / "result.pt")
    assert (a["world"], b["world"]) == (1, 2)
    assert len(a["steps"]) == len(b["steps"]) == 2
    for step_a, step_b in zip(a["steps"], b["steps"], strict=True):
        assert torch.equal(step_a["rewards"], step_b["rewards"])
        for key in ("entropy_mean", "entropy_std", "advantages"):
            torch.testing.assert_close(step_b[key], step_a[key], rtol=1e-5, atol=1e-6)
        assert torch.equal(step_a["labels"], step_b["labels"])
    # a real signal: some groups have mixed rewards, so the shaped advantages are not all zero
    assert any(s["advantages"].abs().sum() > 0 for s in a["steps"])
    assert b["losses"] == pytest.approx(a["losses"], rel=1e-4, abs=1e-7)
