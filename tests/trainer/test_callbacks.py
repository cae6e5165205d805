"""The no-learning-signal warning: once, when all groups are uniform for several steps, with the right advice."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from eapo.trainer import EAPOConfig, EAPOTrainer
from eapo.trainer.callbacks import NoLearningSignalCallback, no_signal_advice
from tiny import cpu_config_kwargs, digit_reward, tiny_dataset, tiny_model, tiny_tokenizer

UNIFORM_ZERO = {"loss": 0.0, "reward": 0.0, "frac_reward_zero_std": 1.0, "completions/clipped_ratio": 0.1}
MIXED = {"loss": 0.1, "reward": 0.4, "frac_reward_zero_std": 0.5, "completions/clipped_ratio": 0.1}


def feed(callback, logs_per_step):
    """Log one step per entry, numbering steps on from the callback's previous calls."""
    for logs in logs_per_step:
        callback.step = getattr(callback, "step", 0) + 1
        state = SimpleNamespace(global_step=callback.step, is_world_process_zero=True)
        callback.on_log(None, state, None, logs=logs)


def test_warns_once_after_patience_uniform_steps():
    lines = []
    callback = NoLearningSignalCallback(patience=3, emit=lines.append)
    feed(callback, [UNIFORM_ZERO, UNIFORM_ZERO])
    assert lines == []
    feed(callback, [UNIFORM_ZERO] * 5)
    assert len(lines) == 1 and "\n" not in lines[0]
    assert lines[0].startswith("no learning signal: every group had equal rewards for 3 steps (up to step 3)")
    assert "the reward never fires" in lines[0]


def test_advice_reads_the_whole_streak():
    lines = []
    callback = NoLearningSignalCallback(patience=3, emit=lines.append)
    feed(callback, [{**UNIFORM_ZERO, "completions/clipped_ratio": c} for c in (0.9, 0.8, 0.1)])  # mean 0.6
    assert "completions cut off: 60% of them" in lines[0]


def test_a_step_with_signal_resets_the_count():
    lines = []
    callback = NoLearningSignalCallback(patience=3, emit=lines.append)
    feed(callback, [UNIFORM_ZERO, UNIFORM_ZERO, MIXED, UNIFORM_ZERO, UNIFORM_ZERO, MIXED, MIXED])
    assert lines == []
    almost = {**UNIFORM_ZERO, "frac_reward_zero_std": 0.875}  # one group of 8 had signal
    feed(callback, [almost] * 6)
    assert lines == []


@pytest.mark.parametrize(
    "reward, clipped, expected",
    [
        (0.0, 0.1, "the reward never fires"),
        (0.0, None, "the reward never fires"),
        (0.0, 0.9, "completions cut off: 90% of them"),
        (1.0, 0.0, "too easy"),
        (0.5, 0.0, "never within a group"),
    ],
)
def test_advice_follows_reward_and_clipping(reward, clipped, expected):
    assert expected in no_signal_advice(reward, clipped)


def test_patience_must_be_positive():
    with pytest.raises(ValueError, match="patience >= 1"):
        NoLearningSignalCallback(patience=0)


def _train(reward, tmp_path, method):
    lines = []
    tokenizer = tiny_tokenizer()
    args = EAPOConfig(
        **cpu_config_kwargs(
            tmp_path, method=method, max_steps=3, dynamic_sampling_max_rounds=2, max_completion_length=32
        )
    )
    trainer = EAPOTrainer(
        model=tiny_model(len(tokenizer)),
        reward_funcs=reward,
        args=args,
        train_dataset=tiny_dataset(),
        processing_class=tokenizer,
        callbacks=[NoLearningSignalCallback(patience=3, emit=lines.append)],
    )
    trainer.train()
    return lines


def never_fires(completions, **kwargs):
    return [0.0 for _ in completions]


@pytest.mark.parametrize("method", ["grpo", "eapo"])  # eapo: dynamic sampling, several rounds per step
def test_training_warns_when_the_reward_never_fires_and_not_otherwise(method, tmp_path):
    lines = _train(never_fires, tmp_path / "zero", method)
    assert len(lines) == 1 and "the reward never fires" in lines[0]
    assert _train(digit_reward, tmp_path / "mixed", method) == []


def test_the_final_progress_bar_is_drawn_once(tmp_path, capsys):
    """Issue 26, point 11: the training bar is finished at the last step's log, not redrawn under the bars of the
    checkpoint written after it (transformers closes it only at the end of training)."""
    import sys

    from transformers import TrainerControl, TrainerState

    from eapo.trainer.callbacks import ConsoleProgress

    bar, args = ConsoleProgress(), EAPOConfig(**cpu_config_kwargs(tmp_path, disable_tqdm=False))
    state, control = TrainerState(max_steps=2, is_world_process_zero=True), TrainerControl()
    bar.on_train_begin(args, state, control)
    for step in (1, 2):
        state.global_step = step
        bar.on_step_end(args, state, control)
        bar.on_log(args, state, control, logs={"loss": 0.1, "reward": 0.5})
    print("Writing model shards: 100%", file=sys.stderr)  # the last checkpoint's own bar
    bar.on_log(args, state, control, logs={"train_runtime": 1.0})
    bar.on_train_end(args, state, control)
    after = capsys.readouterr().err.split("Writing model shards")[1]
    assert "2/2" not in after


# ----- the training time limit (--max_train_minutes) ------------------------------------------------------


def _timed_steps(callback, seconds_per_step, steps, monkeypatch):
    """Run `steps` optimizer steps of `seconds_per_step` each through the callback's hooks on a fake clock; returns
    the step after which it asked training to stop (None: never)."""
    from transformers import TrainerControl

    from eapo.trainer import callbacks as module

    clock = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: clock[0])
    for step in range(1, steps + 1):
        control = TrainerControl()
        callback.on_step_begin(None, None, control)
        clock[0] += seconds_per_step
        callback.on_step_end(None, None, control)
        clock[0] += 100.0  # a periodic evaluation between steps: not counted
        if control.should_training_stop:
            return step
    return None


def test_time_limit_counts_step_time_only_and_stops_at_the_crossing_step(monkeypatch):
    from eapo.trainer.callbacks import TrainTimeLimit

    callback = TrainTimeLimit(minutes=1.0)  # 60 s: steps of 25 s cross it at step 3 (75 s), evaluations ignored
    assert _timed_steps(callback, 25.0, 10, monkeypatch) == 3
    assert callback.elapsed == pytest.approx(75.0)
    with pytest.raises(ValueError, match="minutes > 0"):
        TrainTimeLimit(minutes=0)


def test_time_limit_continues_the_budget_of_a_resumed_run(monkeypatch):
    from eapo.trainer.callbacks import TrainTimeLimit

    saved = TrainTimeLimit(minutes=1.0, elapsed=50.0).state()  # what a checkpoint's trainer_state.json holds
    callback = TrainTimeLimit(minutes=1.0)
    callback.on_train_begin(None, SimpleNamespace(stateful_callbacks={"TrainTimeLimit": saved}), None)
    assert callback.elapsed == 50.0
    assert _timed_steps(callback, 25.0, 10, monkeypatch) == 1  # 10 s of budget left
    fresh = TrainTimeLimit(minutes=1.0)
    fresh.on_train_begin(None, SimpleNamespace(stateful_callbacks={}), None)
    assert fresh.elapsed == 0.0


def test_max_train_minutes_stops_a_run_and_is_saved_in_its_checkpoint(tmp_path):
    import json

    from eapo.pipeline import train, train_options

    config, run = train_options(
        output_dir=str(tmp_path / "run"), max_steps=6, max_train_minutes=1e-6, eval_problems=2, eval_k=1,
        heldout_eval_steps=0, report=False, save_strategy="steps", save_steps=1, per_device_train_batch_size=8,
        disable_tqdm=True,
    )  # fmt: skip
    result = train(config, run)
    assert result.steps == 1  # the first step crosses a budget of 60 microseconds
    state = json.loads((tmp_path / "run" / "checkpoint-1" / "trainer_state.json").read_text())
    assert state["stateful_callbacks"]["TrainTimeLimit"]["attributes"]["elapsed"] > 0


def test_a_resumed_run_continues_the_time_spent(tmp_path):
    import json

    from eapo.cli.train import parse_args, train

    out = str(tmp_path / "run")
    train(*parse_args([
        "--max_steps", "2", "--output_dir", out, "--max_train_minutes", "10", "--eval_problems", "2", "--eval_k", "1",
        "--heldout_eval_steps", "0", "--report", "false", "--save_strategy", "steps", "--save_steps", "1",
        "--save_total_limit", "5", "--per_device_train_batch_size", "8", "--disable_tqdm", "true",
    ]))  # fmt: skip
    first = json.loads((tmp_path / "run" / "wall.json").read_text())
    assert first["sessions"] == 1 and first["seconds"] > 0
    train(*parse_args(["--resume", out, "--max_steps", "3"]))

    def elapsed(step: int) -> float:
        state = json.loads((tmp_path / "run" / f"checkpoint-{step}" / "trainer_state.json").read_text())
        return state["stateful_callbacks"]["TrainTimeLimit"]["attributes"]["elapsed"]

    assert 0 < elapsed(1) < elapsed(2) < elapsed(3)  # step 3, after the resume, adds to steps 1-2's time
    wall = json.loads((tmp_path / "run" / "wall.json").read_text())
    summary = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert wall["sessions"] == 2 and summary["wall_seconds"] == pytest.approx(wall["seconds"], abs=1e-3)
    # the first session's seconds, then the second one's steps and more (its loading and evaluations)
    assert summary["wall_seconds"] > first["seconds"] + summary["train_seconds"]


def test_the_run_clock_adds_each_session_to_the_earlier_ones(tmp_path, monkeypatch):
    """Hand-timed: a first session from t=100 ticks at 130 and is killed at 150 (no tick: 30 s on record); a
    resumed one from t=500 ticks at 520 and 545; a step's tick is what `on_step_end` writes."""
    import json

    import eapo.trainer.callbacks as callbacks

    now = [0.0]
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: now[0])
    path = tmp_path / "wall.json"
    first = callbacks.RunClock(path, started=100.0)
    now[0] = 130.0
    first.on_step_end(None, SimpleNamespace(is_world_process_zero=True), None)
    now[0] = 150.0  # killed here: nothing written
    assert json.loads(path.read_text()) == {"seconds": 30.0, "sessions": 1}
    second = callbacks.RunClock(path, started=500.0)
    now[0] = 520.0
    assert second.tick() == 50.0 and json.loads(path.read_text()) == {"seconds": 50.0, "sessions": 2}
    now[0] = 545.0
    second.on_step_end(None, SimpleNamespace(is_world_process_zero=False), None)  # another process writes nothing
    assert json.loads(path.read_text())["seconds"] == 50.0
    assert second.tick() == 75.0
    fresh = callbacks.RunClock(tmp_path / "other.json", started=540.0)  # a fresh run's folder has no file
    assert fresh.tick() == 5.0 and json.loads((tmp_path / "other.json").read_text())["sessions"] == 1
