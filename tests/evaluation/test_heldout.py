"""Held-out accuracy over steps: the heldout.jsonl contract, and that the periodic evaluation leaves the
training's randomness (hence every training metric) unchanged."""

from __future__ import annotations

import json
import random
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import TrainerCallback

from eapo import EAPOConfig, EAPOTrainer
from eapo.cli.train import parse_args, train
from eapo.evaluation.heldout import HeldoutEvalCallback, preserved_rng
from eapo.evaluation.sampling import sample_completions
from eapo.io import read_jsonl
from tiny import cpu_config_kwargs, digit_reward, tiny_dataset, tiny_model, tiny_tokenizer

warnings.filterwarnings("ignore")
TIMING_KEYS = {"step_time"}


def _draws() -> tuple[list[float], float, float]:
    return torch.rand(3).tolist(), random.random(), float(np.random.rand())


def test_preserved_rng_restores_torch_python_and_numpy():
    torch.manual_seed(1), random.seed(1), np.random.seed(1)
    expected = _draws()
    torch.manual_seed(1), random.seed(1), np.random.seed(1)
    with preserved_rng():
        _draws()
        torch.manual_seed(99), random.seed(99), np.random.seed(99)
    assert _draws() == expected


def test_callback_writes_the_contract_lines_on_rank_zero_only(tmp_path):
    model = torch.nn.Linear(2, 2)

    def evaluate_fn(m):
        m.eval()  # a sampler that leaves the model in eval mode
        torch.rand(5)
        return {"avg@4": 0.25, "pass@1": 0.25, "pass@4": 0.5}

    path = tmp_path / "heldout.jsonl"
    callback = HeldoutEvalCallback(path, evaluate_fn, every=2, k=4)
    state = SimpleNamespace(global_step=0, max_steps=3, is_world_process_zero=True)
    callback.on_train_begin(None, state, None, model=model)
    for step in (1, 2, 3):
        state.global_step = step
        callback.on_step_end(None, state, None, model=model)
        assert model.training
    lines = read_jsonl(path)
    assert [line["step"] for line in lines] == [0, 2, 3]  # step 0, every 2, and the last step
    assert lines[0] == {"step": 0, "k": 4, "avg@4": 0.25, "pass@1": 0.25, "pass@4": 0.5}

    other = HeldoutEvalCallback(tmp_path / "rank1.jsonl", evaluate_fn, every=1, k=4)
    rank1 = SimpleNamespace(global_step=0, max_steps=3, is_world_process_zero=False)
    other.on_train_begin(None, rank1, None, model=model)
    assert not (tmp_path / "rank1.jsonl").exists()
    with pytest.raises(ValueError, match="every >= 1"):
        HeldoutEvalCallback(path, evaluate_fn, every=0, k=4)


class _UnprotectedEval(TrainerCallback):
    """What the periodic evaluation must not be: sampling that reseeds the global generators."""

    def __init__(self, evaluate_fn):
        self.evaluate_fn = evaluate_fn

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.evaluate_fn(model)


def _train_logs(tmp_path, name, callbacks):
    tokenizer = tiny_tokenizer()
    args = EAPOConfig(**cpu_config_kwargs(tmp_path / name, method="grpo", max_steps=3))
    trainer = EAPOTrainer(
        model=tiny_model(len(tokenizer)),
        reward_funcs=digit_reward,
        args=args,
        train_dataset=tiny_dataset(),
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    trainer.train()
    logs = [{k: v for k, v in e.items() if k not in TIMING_KEYS} for e in trainer.state.log_history if "loss" in e]
    params = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    return logs, params


def test_periodic_eval_leaves_training_unchanged(tmp_path):
    tokenizer = tiny_tokenizer()

    def evaluate_fn(model):  # real sampling (it reseeds torch) plus Python and NumPy draws
        samples = sample_completions(model, tokenizer, ["1+2=", "3+4="], k=4, max_new_tokens=4, seed=123)
        random.seed(5), np.random.seed(5), torch.manual_seed(5)
        return {"avg@4": sum(s[:1].isdigit() for group in samples for s in group) / 8, "pass@4": 1.0}

    plain_logs, plain_params = _train_logs(tmp_path, "plain", [])
    path = tmp_path / "heldout.jsonl"
    eval_logs, eval_params = _train_logs(tmp_path, "eval", [HeldoutEvalCallback(path, evaluate_fn, every=1, k=4)])
    assert [line["step"] for line in read_jsonl(path)] == [0, 1, 2, 3]
    assert eval_logs == plain_logs
    torch.testing.assert_close(eval_params, plain_params, rtol=0, atol=0)
    # the control: the same evaluation without the forked generators changes the training
    control_logs, _ = _train_logs(tmp_path, "control", [_UnprotectedEval(evaluate_fn)])
    assert control_logs != plain_logs


TINY_RUN = ["--per_device_train_batch_size", "16", "--num_generations", "4", "--max_steps", "2"]
TINY_EVAL = ["--eval_problems", "4", "--eval_k", "2", "--heldout_eval_problems", "4", "--heldout_eval_k", "2"]


@pytest.mark.slow
def test_train_heldout_curve_matches_a_run_without_it(tmp_path):
    """`eapo train` flags (the CLI parser) with --quadrants PHR,NHR, periodic evaluation off and on."""
    common = [*TINY_RUN, *TINY_EVAL, "--save_strategy", "no", "--disable_tqdm", "true", "--method", "grpo"]
    common += ["--quadrants", "PHR,NHR"]
    train(*parse_args([*common, "--output_dir", str(tmp_path / "off"), "--heldout_eval_steps", "0"]))
    train(*parse_args([*common, "--output_dir", str(tmp_path / "on"), "--heldout_eval_steps", "1"]))
    assert not (tmp_path / "off" / "heldout.jsonl").exists()
    lines = read_jsonl(tmp_path / "on" / "heldout.jsonl")
    assert [line["step"] for line in lines] == [0, 1, 2]
    keys = {"step", "k", "problems", "avg@2", "pass@1", "pass@2", "maj@2", "format_rate", "accuracy",
            "accuracy_formatted"}  # fmt: skip
    assert all(set(line) == keys and line["k"] == 2 and line["problems"] == 4 for line in lines)
    assert all(0.0 <= line["avg@2"] <= line["pass@2"] <= 1.0 for line in lines)

    def metrics(name):
        rows = read_jsonl(tmp_path / name / "metrics.jsonl")
        return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in rows]

    assert metrics("on") == metrics("off")
    assert json.loads((tmp_path / "on" / "config.json").read_text())["quadrants"] == "PHR,NHR"
    for row in metrics("on"):  # only the chosen quadrants carry gradient
        assert row["quadrant/PLR/grad_share"] == 0.0 and row["quadrant/NLR/grad_share"] == 0.0
        assert row["quadrant/PHR/grad_share"] + row["quadrant/NHR/grad_share"] == pytest.approx(1.0)


def test_bad_heldout_flags_are_clear_errors(tmp_path):
    config, run = parse_args(["--output_dir", str(tmp_path / "run"), "--heldout_eval_steps", "-1"])
    with pytest.raises(SystemExit, match="heldout_eval_steps=-1.*use heldout_eval_steps >= 0"):
        train(config, run)
    config, run = parse_args(["--output_dir", str(tmp_path / "run"), "--heldout_eval_k", "0"])
    with pytest.raises(SystemExit, match="heldout_eval_k=0.*heldout_eval_k, heldout_eval_problems >= 1") as err:
        train(config, run)
    assert err.value.code == 2 and not (tmp_path / "run").exists()  # checked before anything is written
    off = ["--output_dir", str(tmp_path / "run"), "--heldout_eval_k", "0", "--heldout_eval_steps", "0"]
    config, run = parse_args(off)
    assert run.heldout_eval_steps == 0  # off: its k is not used, so not checked


def test_evaluation_samples_end_at_the_tasks_stop_strings_as_in_training():
    """sample_completions with stop strings: each text is the stop-free sample cut after its first stop (same
    seed, same draws up to the stop: the rows are stopped, not resampled), so no text holds a stop but at its end."""
    model, tokenizer = tiny_model(len(tiny_tokenizer())), tiny_tokenizer()
    prompts = ["1+2=", "3+4=", "5+6="]
    free = sample_completions(model, tokenizer, prompts, k=8, max_new_tokens=12, seed=7)
    stopped = sample_completions(model, tokenizer, prompts, k=8, max_new_tokens=12, seed=7, stop_strings=("a",))
    cut = 0
    for texts, cuts in zip(free, stopped, strict=True):
        for text, short in zip(texts, cuts, strict=True):
            expected = text[: text.index("a") + 1] if "a" in text else text
            assert short == expected
            cut += short != text
    assert cut > 0  # some samples held a stop
