"""Kill `eapo train` with SIGKILL (mid-run and mid-checkpoint), resume it, and get the uninterrupted run's metrics.

Only the runs that get killed are subprocesses; the reference runs and the resumes run in this process
(one thread, as the subprocesses) to keep the module fast.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from eapo.cli.train import main as train_main
from eapo.trainer.checkpoint import FAULT_ENV

TIMING = {"step_time"}  # wall-clock fields: the only ones allowed to differ between runs
FLAGS = [
    "--max_steps", "8", "--save_steps", "3", "--save_total_limit", "2",
    "--per_device_train_batch_size", "16", "--num_generations", "4",
    "--eval_problems", "4", "--eval_k", "1", "--disable_tqdm", "true", "--report", "false",
    "--heldout_eval_steps", "2", "--heldout_eval_problems", "4", "--heldout_eval_k", "2",
]  # fmt: skip
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "eapo", "train", *args]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the subprocesses (OMP_NUM_THREADS=1): same float reduction order
    yield
    torch.set_num_threads(threads)


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _heldout(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "heldout.jsonl").read_text().splitlines()]


def _comparable(lines: list[dict]) -> list[dict]:
    return [{k: v for k, v in line.items() if k not in TIMING} for line in lines]


@pytest.fixture(scope="module")
def reference_dir(tmp_path_factory) -> Path:
    """The run folder of an uninterrupted run (seed 0)."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    assert train_main([*FLAGS, "--output_dir", str(run_dir)]) == 0
    assert [line["step"] for line in _heldout(run_dir)] == [0, 2, 4, 6, 8]
    return run_dir


@pytest.fixture(scope="module")
def reference(reference_dir) -> list[dict]:
    """Metrics of an uninterrupted run (seed 0)."""
    run_dir = reference_dir
    lines = _metrics(run_dir)
    assert [line["step"] for line in lines] == list(range(1, 9))
    assert {p.name for p in run_dir.glob("checkpoint-*")} == {"checkpoint-6", "checkpoint-8"}  # rotation kept 2
    return lines


def _resume_and_compare(run_dir: Path, reference: list[dict], capsys, reference_dir: Path) -> None:
    capsys.readouterr()
    assert train_main(["--resume", str(run_dir)]) == 0
    assert "resuming" in capsys.readouterr().out
    lines = _metrics(run_dir)
    assert [line["step"] for line in lines] == list(range(1, 9)), "missing or repeated steps"
    assert _comparable(lines) == _comparable(reference)
    assert _heldout(run_dir) == _heldout(reference_dir)  # the held-out curve: no lost or repeated evaluation
    assert not (run_dir / ".staging").exists()
    assert json.loads((run_dir / "eval.json").read_text())["steps"] == 8


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_matches_uninterrupted(tmp_path, reference, reference_dir, capsys):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        _cmd(*FLAGS, "--output_dir", str(run_dir)), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    metrics = run_dir / "metrics.jsonl"
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            lines = metrics.read_text().split("\n")[:-1] if metrics.exists() else []  # whole lines only
            if any(json.loads(line)["step"] >= 4 for line in lines):
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert (run_dir / "checkpoint-3").is_dir() and not (run_dir / "eval.json").exists()
    _resume_and_compare(run_dir, reference, capsys, reference_dir)


@pytest.mark.slow
def test_sigkill_mid_checkpoint_resumes_from_the_previous_one(tmp_path, reference, reference_dir, capsys):
    run_dir = tmp_path / "run"
    cmd = _cmd(*FLAGS, "--output_dir", str(run_dir))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**ENV, FAULT_ENV: "6"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    # The half-written checkpoint-6 is only in the staging folder; checkpoint-3 is untouched.
    assert {p.name for p in run_dir.glob("checkpoint-*")} == {"checkpoint-3"}
    assert (run_dir / ".staging" / "checkpoint-6" / "model.safetensors").exists()
    assert not (run_dir / ".staging" / "checkpoint-6" / "trainer_state.json").exists()
    # Determinism: another process with the same seed logged the same steps 1-6 (4-6 will be redone).
    assert _comparable(_metrics(run_dir)) == _comparable(reference[:6])
    _resume_and_compare(run_dir, reference, capsys, reference_dir)


@pytest.mark.slow
def test_same_seed_same_metrics_other_seed_differs(tmp_path, reference):
    short = [*FLAGS, "--max_steps", "3", "--save_strategy", "no"]
    assert train_main([*short, "--output_dir", str(tmp_path / "same")]) == 0
    assert train_main([*short, "--output_dir", str(tmp_path / "other"), "--seed", "1"]) == 0
    assert _comparable(_metrics(tmp_path / "same")) == _comparable(reference[:3])
    assert _comparable(_metrics(tmp_path / "other")) != _comparable(reference[:3])


def _trainer(out_dir: Path, **overrides):
    from eapo import EAPOConfig, EAPOTrainer
    from tiny import cpu_config_kwargs, digit_reward, tiny_dataset, tiny_model, tiny_tokenizer

    tokenizer = tiny_tokenizer()
    args = EAPOConfig(**cpu_config_kwargs(out_dir, **overrides))
    return EAPOTrainer(
        model=tiny_model(len(tokenizer)),
        reward_funcs=digit_reward,
        args=args,
        train_dataset=tiny_dataset(),
        processing_class=tokenizer,
    )


# Clip-Cov detaching a random half of all tokens: its loss depends on the trainer's own RNG.
RANDOM_CLIP_COV = dict(method="clip_cov", clip_cov_ratio=0.5, clip_cov_lb=-1e6, clip_cov_ub=1e6)


@pytest.mark.parametrize("method", [dict(method="eapo"), RANDOM_CLIP_COV], ids=["eapo", "clip_cov"])
def test_resume_inside_a_generation_batch(tmp_path, method):
    """steps_per_generation=2: a checkpoint after step 1 falls inside a generation batch; the resumed run
    must reuse the buffered batch (and Clip-Cov its RNG), as the uninterrupted run does."""
    common = dict(**method, max_steps=4, steps_per_generation=2, save_strategy="steps", save_steps=1)
    full = _trainer(tmp_path / "full", **common)
    full.train()
    resumed = _trainer(tmp_path / "resumed", **common)
    resumed.train(resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-1"))

    def steps(trainer) -> list[dict]:
        return _comparable([e for e in trainer.state.log_history if "loss" in e and e["step"] > 1])

    assert [e["step"] for e in steps(resumed)] == [2, 3, 4]
    assert steps(resumed) == steps(full)
    for a, b in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_resume_from_the_final_checkpoint_trains_no_further(tmp_path):
    full = _trainer(tmp_path / "full", method="grpo", max_steps=2, save_strategy="steps", save_steps=1)
    full.train()
    again = _trainer(tmp_path / "again", method="grpo", max_steps=2)
    again.train(resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-2"))
    assert again.state.global_step == 2 and not [e for e in again.state.log_history if e["step"] > 2]
    for a, b in zip(full.model.parameters(), again.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
