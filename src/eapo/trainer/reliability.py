"""What keeps a long `EAPOTrainer` run alive: guarded reward functions and atomic, resumable checkpoints.

- Reward functions (plain callables) are wrapped by `GuardedReward`: an exception, a NaN/inf value or
  the wrong number of values is, by default (`reward_error_policy="raise"`), a `RewardFunctionError`
  naming the function and the sample (index, prompt and completion excerpts); with
  `reward_error_policy="zero"` such samples score 0 and are counted in `rewards/invalid_count`. `None`
  keeps TRL's meaning (not applicable to this sample, NaN).
- Checkpoints are written into a staging folder and renamed into place (`eapo.trainer.checkpoint`), with the
  trainer's own state (`eapo_state.pt`: the loss-selection RNG) next to TRL's; rotation runs after. A resume
  restores that state in `_load_optimizer_and_scheduler`, which transformers calls on every backend (under
  DeepSpeed it never calls `_load_from_checkpoint`).
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerState
from transformers.trainer_utils import TrainOutput, rotate_checkpoints
from trl.trainer.utils import is_async_callable

from eapo.core.methods import get_method
from eapo.errors import RewardFunctionError
from eapo.io import publish
from eapo.trainer.checkpoint import FAULT_ENV, METHOD_STATE, STAGING

_NONE_LINK = "[None](https://huggingface.co/None)"  # what TRL's card template prints for a local base model
_GRADIENT_CHECKPOINTING_DEPRECATED = r"`is_gradient_checkpointing` is deprecated"


def _excerpt(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    return repr(text[:width] + ("..." if len(text) > width else ""))


def _problem(values: Any, n: int) -> str | None:
    """Why `values` is not `n` finite rewards (None allowed), or None when it is. Like TRL, any sized
    iterable of numbers is accepted: a list or tuple, a 1-d numpy array or torch tensor, numpy scalars."""
    if isinstance(values, str | bytes | Mapping) or not (hasattr(values, "__len__") and hasattr(values, "__iter__")):
        return f"returned {type(values).__name__}, not a list of {n} floats"
    if getattr(values, "ndim", 1) != 1:
        return f"returned a {values.ndim}-d array, not a list of {n} floats"
    if len(values) != n:
        return f"returned {len(values)} values for {n} completions"
    for value in values:
        if value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            return f"returned {_excerpt(value, 30)}, not a float"
        if not math.isfinite(number):
            return f"returned {number}"
    return None


class GuardedReward:
    """A TRL reward function that never lets a bad value through silently (see the module docstring)."""

    def __init__(self, func: Callable[..., Any], name: str, policy: str):
        self.func, self.name, self.policy = func, name, policy
        self.__name__ = name
        self.invalid = 0  # samples scored 0 under policy "zero" since the last reset

    def __call__(self, prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float | None]:
        n = len(completions)
        try:
            values = self.func(prompts=prompts, completions=completions, **kwargs)
            problem = _problem(values, n)
        except Exception as err:  # noqa: BLE001 - any failure of user code is reported with its sample
            problem = f"raised {type(err).__name__}: {err}"
        if problem is None:
            return [None if v is None else float(v) for v in values]
        return self._per_sample(prompts, completions, kwargs, batch_problem=problem)

    def _one(self, i: int, prompts: list[Any], completions: list[Any], kwargs: dict[str, Any], n: int):
        """(value, problem) of sample `i` scored alone: list arguments are sliced to that sample."""
        sliced = {k: v[i : i + 1] if isinstance(v, list) and len(v) == n else v for k, v in kwargs.items()}
        try:
            values = self.func(prompts=prompts[i : i + 1], completions=completions[i : i + 1], **sliced)
            problem = _problem(values, 1)
        except Exception as err:  # noqa: BLE001
            return None, f"raised {type(err).__name__}: {err}"
        return (None, problem) if problem else (None if values[0] is None else float(values[0]), None)

    def _fail(self, problem: str, i: int | None, prompts: list[Any], completions: list[Any]) -> None:
        where = ""
        if i is not None:
            where = f" on sample {i} (prompt {_excerpt(prompts[i])}, completion {_excerpt(completions[i])})"
        first_line = problem.splitlines()[0] if problem else problem
        raise RewardFunctionError(
            f"reward function {self.name!r}{where} {first_line}: fix the function, or set "
            "reward_error_policy='zero' (eapo train: --reward_error_policy zero) to score such samples 0 "
            "(counted in rewards/invalid_count)"
        )

    def _per_sample(self, prompts, completions, kwargs, batch_problem: str) -> list[float | None]:
        """Score each sample alone to find (and name, or zero) the bad ones."""
        n = len(completions)
        results: list[float | None] = []
        culprits = 0
        for i in range(n):
            value, problem = self._one(i, prompts, completions, kwargs, n)
            if problem is not None:
                if self.policy == "raise":
                    self._fail(problem, i, prompts, completions)
                culprits += 1
                value = 0.0
            results.append(value)
        if culprits == 0:  # fine one at a time, wrong as a batch: nothing to single out
            if self.policy == "raise":
                self._fail(batch_problem, None, prompts, completions)
            culprits, results = n, [0.0] * n
        self.invalid += culprits
        return results


class ReliableTrainerMixin:
    """Reward guards and atomic, resumable checkpoints for a `GRPOTrainer` subclass (see module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any):
        # TRL 1.16 reads transformers 5's deprecated `model.is_gradient_checkpointing` at every generation; code that
        # enters `warnings.catch_warnings()` resets Python's once-per-location memory (the "once" filter's too), so
        # the FutureWarning came back at every held-out evaluation. It is about TRL's code, not the user's: ignored.
        warnings.filterwarnings("ignore", message=_GRADIENT_CHECKPOINTING_DEPRECATED, category=FutureWarning)
        super().__init__(*args, **kwargs)
        policy = getattr(self.args, "reward_error_policy", "raise")
        self.invalid_rewards_total = 0
        self._staging = False
        for i, func in enumerate(self.reward_funcs):
            if not isinstance(func, torch.nn.Module) and not is_async_callable(func):
                self.reward_funcs[i] = GuardedReward(func, self.reward_func_names[i], policy)

    # ----- rewards -----------------------------------------------------------------------------------

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        guards = [f for f in self.reward_funcs if isinstance(f, GuardedReward)]
        for guard in guards:
            guard.invalid = 0
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        local = torch.tensor([float(sum(g.invalid for g in guards))], device=self.accelerator.device)
        invalid = self.accelerator.gather(local).sum().item()
        self.invalid_rewards_total += int(invalid)
        self._metrics["train" if self.model.training else "eval"]["rewards/invalid_count"].append(invalid)
        return rewards

    # ----- checkpoints -------------------------------------------------------------------------------

    def train(self, resume_from_checkpoint=None, *args: Any, **kwargs: Any):
        """Transformers' `train`, except that resuming from a checkpoint at or past `max_steps` only loads
        it (Transformers would run one more step)."""
        if isinstance(resume_from_checkpoint, str | os.PathLike) and self.args.max_steps > 0:
            state_file = Path(resume_from_checkpoint) / "trainer_state.json"
            state = TrainerState.load_from_json(str(state_file)) if state_file.exists() else None
            if state is not None and state.global_step >= self.args.max_steps:
                self._load_from_checkpoint(str(resume_from_checkpoint))
                self._load_method_state(resume_from_checkpoint)
                self.state = state
                return TrainOutput(state.global_step, 0.0, {})
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def _get_output_dir(self, trial):
        out = super()._get_output_dir(trial)
        return os.path.join(out, STAGING) if self._staging else out

    def _issue_warnings_after_load(self, load_result: Any) -> None:
        """Transformers' warning after loading a checkpoint, without the tied weights that safetensors checkpoints
        leave out by design (e.g. `lm_head.weight` tied to the embeddings): those are re-tied, not missing."""
        tied = tuple(getattr(self.model, "all_tied_weights_keys", None) or ())
        missing = [k for k in load_result.missing_keys if not any(k == t or k.endswith("." + t) for t in tied)]
        if len(missing) < len(load_result.missing_keys):
            self.model.tie_weights()
        super()._issue_warnings_after_load(load_result._replace(missing_keys=missing))

    def create_model_card(self, model_name: str | None = None, dataset_name: str | None = None, tags: Any = None):
        """TRL's model card, naming the base model when it is a local folder (TRL writes "[None]" then)."""
        super().create_model_card(model_name=model_name, dataset_name=dataset_name, tags=tags)
        card = Path(self.args.output_dir) / "README.md"
        if not self.is_world_process_zero() or not card.is_file():
            return
        base = str(getattr(self.model.config, "_name_or_path", "") or "") or "a model built in memory"
        if os.path.isdir(base):
            base = f"the local model folder `{base}`"
        text = card.read_text().replace(_NONE_LINK, base)
        # TRL's template names its own trainer (GRPO) and, with no Hub id, `pipeline(model="None")`.
        saved = getattr(self, "model_card_path", None) or Path(self.args.output_dir)
        text = text.replace('model="None"', f'model="{Path(saved).resolve()}"')
        method = getattr(self.args, "method", None)
        if method is not None:
            ours = f"eapo's EAPOTrainer, method `{method}` ({get_method(method).summary}), on TRL's GRPOTrainer"
            trl_line = "This model was trained with GRPO, a method introduced in"
            text = text.replace(trl_line, f"This model was trained with {ours}; GRPO was introduced in")
        card.write_text(text)

    def _save_checkpoint(self, model, trial):
        run_dir = Path(self._get_output_dir(trial))
        staging = run_dir / STAGING
        if self.args.should_save:
            shutil.rmtree(staging, ignore_errors=True)  # a half-written checkpoint of a killed run
        self._staging = True
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging = False
        name = f"checkpoint-{self.state.global_step}"
        (staging / name).mkdir(parents=True, exist_ok=True)
        torch.save(self._method_state(), staging / name / self._method_state_file())
        self.accelerator.wait_for_everyone()  # every process has written its part (RNG, method state)
        if self.args.should_save:
            publish(staging / name, run_dir / name)
            shutil.rmtree(staging, ignore_errors=True)
            best = self.state.best_model_checkpoint
            if best is not None and Path(best).parent == staging:
                self.state.best_model_checkpoint = str(run_dir / Path(best).name)
            rotate_checkpoints(str(run_dir), self.args.save_total_limit, self.state.best_model_checkpoint)
        self.accelerator.wait_for_everyone()

    def _save_rng_state(self, output_dir):
        if os.environ.get(FAULT_ENV) == str(self.state.global_step):  # test hook: die mid-checkpoint
            os.kill(os.getpid(), signal.SIGKILL)
        super()._save_rng_state(output_dir)

    def _method_state_file(self) -> str:
        """`eapo_state.pt`, or `eapo_state_{rank}.pt` with several processes (each keeps its own batch)."""
        if self.accelerator.num_processes == 1:
            return METHOD_STATE
        return METHOD_STATE.replace(".pt", f"_{self.accelerator.process_index}.pt")

    def _method_state(self) -> dict[str, Any]:
        """What the trainer carries across steps: its loss RNG and, when a checkpoint falls inside a
        generation batch (`steps_per_generation > 1`), TRL's micro-step counter and buffered batch."""
        generator = getattr(self, "_loss_generator", None)
        generate_every = self.args.steps_per_generation * self.num_iterations
        mid_batch = self._step % generate_every != 0
        return {
            "loss_generator": generator.get_state() if generator is not None else None,
            "trl_step": self._step,
            "buffered_inputs": self._buffered_inputs if mid_batch else None,
        }

    def _load_optimizer_and_scheduler(self, checkpoint):
        # Transformers calls this on every backend when it resumes, DeepSpeed included (which loads the weights
        # with `deepspeed_load_checkpoint` and never calls `_load_from_checkpoint`): the method state goes here.
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is not None:
            self._load_method_state(checkpoint)

    def _load_method_state(self, checkpoint: str | os.PathLike) -> None:
        """Restore what `_method_state` saved in `checkpoint` (nothing when it has no such file). Idempotent:
        it only sets state from the file, so loading it again gives the same trainer."""
        path = Path(checkpoint) / self._method_state_file()
        if not path.exists():
            return
        state = torch.load(path, weights_only=True, map_location=self.accelerator.device)
        generator = getattr(self, "_loss_generator", None)
        if generator is not None and state.get("loss_generator") is not None:
            generator.set_state(state["loss_generator"].cpu())
        if state.get("buffered_inputs") is not None:
            self._step, self._buffered_inputs = state["trl_step"], state["buffered_inputs"]
