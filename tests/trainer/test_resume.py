"""Kill `eapo train` with SIGKILL (mid-run and mid-checkpoint), resume it, and get the uninterrupted run's metrics.

Only the runs that get killed are subprocesses; the reference runs and the resumes run in this process
(one thread, as the subprocesses) to keep the module fast.
"""

from __future__ import annotations

import functools
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
    # every save_steps (3) steps, rotation keeping 2; the final policy is model/, not another checkpoint
    assert {p.name for p in run_dir.glob("checkpoint-*")} == {"checkpoint-3", "checkpoint-6"}
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


def _wait_for_step(run_dir: Path, proc: subprocess.Popen, step: int) -> None:
    metrics = run_dir / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        lines = metrics.read_text().split("\n")[:-1] if metrics.exists() else []  # whole lines only
        if any(json.loads(line)["step"] >= step for line in lines):
            return
        time.sleep(0.05)


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_then_resume_matches_uninterrupted(tmp_path, reference, reference_dir, capsys):
    """SIGINT (Ctrl-C) mid-run: the step finishes, a checkpoint of it is saved, the process exits 130 within
    seconds with one line naming the resume command and no traceback; resuming gives the uninterrupted metrics."""
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        _cmd(*FLAGS, "--output_dir", str(run_dir)), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for_step(run_dir, proc, 4)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    sent = time.time()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and time.time() - sent < 15, err[-2000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("eapo train: interrupted at step ") and last.endswith(f"`eapo train --resume {run_dir}`")
    step = int(last.split("interrupted at step ")[1].split(";")[0])
    assert (run_dir / f"checkpoint-{step}").is_dir() and not (run_dir / "eval.json").exists()
    _resume_and_compare(run_dir, reference, capsys, reference_dir)


@pytest.mark.slow
def test_resume_falls_back_when_the_last_checkpoint_is_corrupt(tmp_path, reference, reference_dir, capsys):
    """The newest checkpoint truncated (a disk filled up, a bad copy): --resume says which one it skips and why,
    moves it aside (kept), resumes from the previous one and ends with the uninterrupted metrics."""
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        _cmd(*FLAGS, "--output_dir", str(run_dir), "--max_steps", "7"), env=ENV, capture_output=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace("max_steps: 7", "max_steps: 8"))  # as if killed after step 7
    (run_dir / "eval.json").unlink()
    # checkpoints every save_steps (3) steps only: step 7's policy is model/, the newest checkpoint is step 6's
    assert {p.name for p in run_dir.glob("checkpoint-*")} == {"checkpoint-3", "checkpoint-6"}
    weights = run_dir / "checkpoint-6" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    capsys.readouterr()
    assert train_main(["--resume", str(run_dir)]) == 0
    captured = capsys.readouterr()
    assert "resume: skipping checkpoint-6: model.safetensors is truncated" in captured.out
    assert "from checkpoint-3" in captured.out
    assert "missing keys" not in captured.err  # the tied lm_head is re-tied, not reported missing
    assert (run_dir / ".unusable" / "checkpoint-6" / "model.safetensors").stat().st_size == 1000
    lines = _metrics(run_dir)
    assert [line["step"] for line in lines] == list(range(1, 9))
    assert _comparable(lines) == _comparable(reference)
    assert _heldout(run_dir) == _heldout(reference_dir)


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


def _deepspeed_order(trainer) -> None:
    """Resume as transformers does under DeepSpeed: the weights come from `deepspeed_load_checkpoint`, so eapo's
    `_load_from_checkpoint` never runs; `_load_optimizer_and_scheduler` still does (as on every backend)."""
    from transformers import Trainer

    trainer._load_from_checkpoint = functools.partial(Trainer._load_from_checkpoint, trainer)


@pytest.mark.parametrize("backend", ["default", "deepspeed_order"])
@pytest.mark.parametrize("method", [dict(method="eapo"), RANDOM_CLIP_COV], ids=["eapo", "clip_cov"])
def test_resume_inside_a_generation_batch(tmp_path, method, backend):
    """steps_per_generation=2: a checkpoint after step 1 falls inside a generation batch; the resumed run
    must reuse the buffered batch (and Clip-Cov its RNG), as the uninterrupted run does.
    Before (deepspeed_order): eapo_state.pt was read only in `_load_from_checkpoint`, which transformers skips
    under DeepSpeed: the buffered batch and the RNG were lost."""
    common = dict(**method, max_steps=4, steps_per_generation=2, save_strategy="steps", save_steps=1)
    full = _trainer(tmp_path / "full", **common)
    full.train()
    resumed = _trainer(tmp_path / "resumed", **common)
    if backend == "deepspeed_order":
        _deepspeed_order(resumed)
    resumed.train(resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-1"))

    def steps(trainer) -> list[dict]:
        return _comparable([e for e in trainer.state.log_history if "loss" in e and e["step"] > 1])

    assert [e["step"] for e in steps(resumed)] == [2, 3, 4]
    assert steps(resumed) == steps(full)
    for a, b in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_method_state_loads_idempotently(tmp_path):
    """Loading eapo_state.pt twice (two restore hooks) leaves the trainer as one load does."""
    common = dict(**RANDOM_CLIP_COV, max_steps=1, steps_per_generation=2, save_strategy="steps", save_steps=1)
    _trainer(tmp_path / "full", **common).train()
    checkpoint = tmp_path / "full" / "checkpoint-1"
    once, twice = _trainer(tmp_path / "once", **common), _trainer(tmp_path / "twice", **common)
    once._load_method_state(checkpoint)
    twice._load_method_state(checkpoint)
    twice._load_method_state(checkpoint)
    assert torch.equal(once._loss_generator.get_state(), twice._loss_generator.get_state())
    assert once._step == twice._step == 1
    assert torch.equal(once._buffered_inputs[1]["advantages"], twice._buffered_inputs[1]["advantages"])


def test_resume_from_the_final_checkpoint_trains_no_further(tmp_path):
    full = _trainer(tmp_path / "full", method="grpo", max_steps=2, save_strategy="steps", save_steps=1)
    full.train()
    again = _trainer(tmp_path / "again", method="grpo", max_steps=2)
    again.train(resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-2"))
    assert again.state.global_step == 2 and not [e for e in again.state.log_history if e["step"] > 2]
    for a, b in zip(full.model.parameters(), again.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
