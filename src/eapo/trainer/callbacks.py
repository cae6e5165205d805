"""Trainer callbacks of `eapo train`: the per-step metrics log, the run's wall clock over its sessions, Ctrl-C
handling, the console, and the no-learning-signal warning.

`NoLearningSignalCallback` says once, in one line, when every group of several consecutive steps had
uniform rewards (TRL's `frac_reward_zero_std` = 1): such steps give every token a zero advantage, so
the policy does not change, for every method. The line says what to change, read from the same logs
(the mean reward and share of cut-off completions over those steps):

- mean reward 0 and most completions cut off (`completions/clipped_ratio` >= 0.5): completions end at
  `max_completion_length` before their answer: raise it;
- mean reward 0 otherwise: the reward never fires: the task is too hard for this model, or its answers
  are not in the form the reward reads;
- mean reward at its maximum: the task is too easy (every completion is rewarded);
- rewards that differ between groups but not within one: more completions per group or a higher
  temperature.

With dynamic sampling `frac_reward_zero_std` describes the batch trained on, so a step counts as uniform
only when no round found a group with a learning signal.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState, PrinterCallback, ProgressCallback

from eapo.io import append_jsonl, atomic_write_text, read_jsonl


class MetricsJsonl(TrainerCallback):
    """Appends one JSON line per logged training step to `path`, flushed and fsynced."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and "loss" in logs:
            append_jsonl(self.path, {"step": state.global_step, **logs})


class RunClock(TrainerCallback):
    """The wall time of a run over all the sessions that trained it (`RUN_DIR/wall.json`: `seconds`, `sessions`).

    A session counts from `started` (`time.monotonic()` when `eapo train` began, model loading included) and adds
    to what the file held when the clock was made (a resumed run's earlier sessions; a fresh run's folder has no
    file). `tick()` writes the total, after each optimizer step (the periodic held-out evaluation of that step
    included when this callback comes after it), after each evaluation and when a session stops on an error or
    Ctrl-C, so a session killed mid-run has its time up to the last tick on record (the work after its checkpoint
    is lost, its time is not)."""

    def __init__(self, path: Path, started: float):
        self.path, self.started = path, started
        saved = json.loads(path.read_text()) if path.is_file() else {}
        self.earlier, self.sessions = float(saved.get("seconds", 0.0)), int(saved.get("sessions", 0)) + 1

    def seconds(self) -> float:
        return self.earlier + time.monotonic() - self.started

    def tick(self) -> float:
        """Write the run's total so far; returns it."""
        total = self.seconds()
        atomic_write_text(self.path, json.dumps({"seconds": round(total, 3), "sessions": self.sessions}) + "\n")
        return total

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.tick()


class StopOnInterrupt(TrainerCallback):
    """Ctrl-C (SIGINT) during training: the first one lets the current optimizer step finish, saves a checkpoint
    of it (whatever `save_strategy` says) and stops training; a second one interrupts at once
    (`KeyboardInterrupt`, the newest complete checkpoint stays the resume point).

    Use as a context manager around `trainer.train()`: it installs the handler on entry and restores the
    previous one on exit. `interrupted` tells afterwards whether training was stopped by Ctrl-C."""

    def __init__(self, say: Any = print):
        self.say = say
        self.requested = False
        self.interrupted = False
        self._previous: Any = None

    def __enter__(self) -> StopOnInterrupt:
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.say("\nCtrl-C: stopping after this step and saving a checkpoint (press Ctrl-C again to stop now)")

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested:
            control.should_save = True
            control.should_training_stop = True
            self.interrupted = True
        return control


class TrainTimeLimit(TrainerCallback, ExportableState):
    """Stops training once its optimizer steps have taken `minutes` of wall time in all (`--max_train_minutes`):
    generation, scoring, the loss and the update of each step count, the periodic held-out evaluations between
    steps do not (they run after this callback's `on_step_end`), so a budget means the same whatever the
    evaluation sizes. The step that crosses the budget finishes; `max_steps` still caps the run.

    The time spent is saved in each checkpoint (`trainer_state.json`, `stateful_callbacks`) and read back when
    the run is resumed, so an interrupted run trains for the rest of its budget, not for a new one."""

    def __init__(self, minutes: float, elapsed: float = 0.0):
        if minutes <= 0:
            raise ValueError(f"TrainTimeLimit needs minutes > 0, got {minutes}")
        self.minutes, self.elapsed = minutes, elapsed
        self._step_start: float | None = None

    def state(self) -> dict[str, Any]:
        return {"args": {"minutes": self.minutes}, "attributes": {"elapsed": self.elapsed}}

    def on_train_begin(self, args, state, control, **kwargs):
        saved = (state.stateful_callbacks or {}).get(type(self).__name__)
        if isinstance(saved, dict):  # a resumed run: the time its checkpoint had already spent
            self.elapsed = float(saved.get("attributes", {}).get("elapsed", self.elapsed))

    def on_step_begin(self, args, state, control, **kwargs):
        self._step_start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self._step_start is not None:
            self.elapsed += time.monotonic() - self._step_start
            self._step_start = None
        if self.elapsed >= 60 * self.minutes:
            control.should_training_stop = True
        return control


class CheckpointEverySaveSteps(TrainerCallback):
    """Checkpoints at multiples of `save_steps` only, as `eapo train` documents them. Transformers also writes one
    at the last step, whatever `save_steps` says; `eapo train` saves the final policy as `RUN_DIR/model` instead, so
    a run whose last step is not a multiple of `save_steps` (a 2-step smoke run with save_steps 50) writes no
    second copy of the weights with the optimizer state (for a 135M-parameter model: 0.5 GB + 1.1 GB of Adam state).
    Such a run resumes from its last periodic checkpoint; Ctrl-C still saves one (`StopOnInterrupt`, added after
    this callback, has the last word)."""

    def on_step_end(self, args, state, control, **kwargs):
        periodic = args.save_strategy == "steps" and state.save_steps > 0 and state.global_step % state.save_steps == 0
        if state.global_step >= state.max_steps and control.should_save and not periodic:
            control.should_save = False
        return control


def _progress_fields(logs: dict[str, Any], heldout: Any) -> dict[str, str]:
    """The few numbers a person watches while training: reward, sampling entropy, last held-out accuracy."""
    fields = {}
    for key, name in (("reward", "reward"), ("entropy/sampling_mean", "entropy")):
        if isinstance(logs.get(key), (int, float)):
            fields[name] = f"{logs[key]:.3f}"
    last = heldout() if heldout is not None else None
    if last:
        fields[last[0]] = f"{last[1]:.3f}"
    return fields


def last_heldout(path: Path) -> Any:
    """A function returning ("held-out avg@k", value) of the newest line of a heldout.jsonl, or None."""

    def read() -> tuple[str, float] | None:
        if not path.is_file():
            return None
        lines = read_jsonl(path)
        if not lines or "k" not in lines[-1]:
            return None
        k = lines[-1]["k"]
        value = lines[-1].get(f"avg@{k}")
        return (f"held-out avg@{k}", float(value)) if isinstance(value, (int, float)) else None

    return read


class ConsoleProgress(ProgressCallback):
    """Transformers' training progress bar with step, reward, entropy and the last held-out accuracy as its
    postfix, instead of the full metrics dict printed under it at every logging step (the full metrics go to
    metrics.jsonl and the `report_to` trackers).

    The bar is closed at the last step's log, before the checkpoint's own bars: closed at the end of training
    (transformers' way), it was drawn a second time under them."""

    def __init__(self, heldout: Any = None):
        super().__init__()
        self.heldout = heldout

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not (state.is_world_process_zero and self.training_bar is not None and logs):
            return
        fields = _progress_fields(logs, self.heldout)
        last = "loss" in logs and state.global_step >= state.max_steps
        if fields:
            self.training_bar.set_postfix(fields, refresh=last)
        if last:
            self.training_bar.close()
            self.training_bar = None

    def on_step_end(self, args, state, control, **kwargs):
        if self.training_bar is not None:
            super().on_step_end(args, state, control, **kwargs)

    def on_train_end(self, args, state, control, **kwargs):
        if self.training_bar is not None:
            super().on_train_end(args, state, control, **kwargs)


class ConsoleLines(TrainerCallback):
    """With `--disable_tqdm`: one short line every `every` steps (and at the last step) instead of the full
    metrics dict at every logging step."""

    def __init__(self, every: int, heldout: Any = None):
        self.every = max(1, every)
        self.heldout = heldout

    def on_log(self, args, state, control, logs=None, **kwargs):
        step = state.global_step
        if not (state.is_world_process_zero and logs and "loss" in logs):
            return
        if step % self.every == 0 or step == state.max_steps:
            fields = _progress_fields(logs, self.heldout)
            print(f"step {step}/{state.max_steps} " + " ".join(f"{k} {v}" for k, v in fields.items()), flush=True)


def use_console(trainer: Any, heldout_file: Path | None) -> None:
    """Replace the trainer's console callbacks (progress bar or printer) with eapo's short ones."""
    heldout = last_heldout(heldout_file) if heldout_file is not None else None
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    if trainer.args.disable_tqdm:
        trainer.add_callback(ConsoleLines(max(1, trainer.args.max_steps // 20), heldout))
    else:
        trainer.add_callback(ConsoleProgress(heldout))


logger = logging.getLogger(__name__)

ZERO_STD_KEY = "frac_reward_zero_std"
CLIPPED_KEY = "completions/clipped_ratio"
REWARD_KEY = "reward"
_EPS = 1e-6


def no_signal_advice(reward_mean: float, clipped_ratio: float | None, max_reward: float = 1.0) -> str:
    """What to change when all groups are uniform, from the mean reward and the share of cut-off completions."""
    if reward_mean <= _EPS:
        if clipped_ratio is not None and clipped_ratio >= 0.5:
            return (
                f"completions cut off: {clipped_ratio:.0%} of them reach max_completion_length before an answer; "
                "raise --max_completion_length"
            )
        return (
            "the reward never fires: the task is too hard for this model or the reward does not read its "
            "answers (check the answer format and --reward, or use an easier task)"
        )
    if reward_mean >= max_reward - _EPS:
        return "every completion is rewarded: the task is too easy for this model; use harder problems"
    return "rewards differ between prompts but never within a group: raise --num_generations or --temperature"


class NoLearningSignalCallback(TrainerCallback):
    """Warns once when `patience` consecutive logged steps had all groups uniform (no learning signal).

    Args:
        patience: consecutive uniform steps before the warning (>= 1).
        max_reward: the reward of a fully correct completion (1 for the shipped tasks).
        emit: where the one-line message goes (default: this module's logger, level WARNING).
    """

    def __init__(self, patience: int = 3, max_reward: float = 1.0, emit: Callable[[str], None] | None = None):
        if patience < 1:
            raise ValueError(f"NoLearningSignalCallback needs patience >= 1, got {patience}")
        self.patience, self.max_reward = patience, max_reward
        self.emit = emit if emit is not None else logger.warning
        self.streak = 0
        self.warned = False
        self.rewards: list[float] = []  # of the current streak of uniform steps
        self.clipped: list[float] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any):
        if not logs or ZERO_STD_KEY not in logs or self.warned or not state.is_world_process_zero:
            return
        if logs[ZERO_STD_KEY] < 1 - _EPS:
            self.streak, self.rewards, self.clipped = 0, [], []
            return
        self.streak += 1
        self.rewards.append(float(logs.get(REWARD_KEY, 0.0)))
        if CLIPPED_KEY in logs:
            self.clipped.append(float(logs[CLIPPED_KEY]))
        if self.streak < self.patience:
            return
        self.warned = True
        clipped = sum(self.clipped) / len(self.clipped) if self.clipped else None
        advice = no_signal_advice(sum(self.rewards) / len(self.rewards), clipped, self.max_reward)
        self.emit(
            f"no learning signal: every group had equal rewards for {self.streak} steps (up to step "
            f"{state.global_step}), so no token gets an advantage: {advice}"
        )
