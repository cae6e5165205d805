"""`EAPOTrainer`: TRL's `GRPOTrainer` with token-level entropy credit (written against TRL 1.16).

What it changes, and where:
- The method needs, for every sampled token, the entropy `H` of the sampling distribution (temperature
  applied, untruncated) and `log pi_old`. They come from a forward or a generation step that runs anyway:
  - one micro-batch per generation (`steps_per_generation == 1`, `num_iterations == 1`): the loss forward
    itself, before the policy moves (`_get_per_token_logps_and_entropies`), unless the method declares a loss
    mask (`Method.masks_tokens`: TRL reads the mask before that forward, so such a method runs at generation);
  - when TRL runs its own no-grad `log pi_old` forward (vLLM importance-sampling correction, or
    `gradient_accumulation_steps` not a multiple of `steps_per_generation * num_iterations`, as with
    `num_iterations > 1` by default): that forward (`_score`);
  - otherwise, with transformers generation: recorded at every decoding step from the logits generation
    computes (`eapo.trainer.generation`, `_generate_single_turn`).
  Only where none applies (vLLM without TRL's forward, continuous batching, a custom `rollout_func`, tool
  calling), or where the recorded decoding steps do not match the completions (`SamplingRecorder.mismatch`:
  beams or several tokens per step through `generation_kwargs`), one extra no-grad forward after generation
  gives them (`_sampling_entropy`, logged once).
- Either way the batch is gathered over processes and put back in global order, so group statistics,
  quadrants and every method's advantages are computed on the whole generation batch: exact per
  prompt however it is split into micro-batches, accumulation steps or processes. The method's
  `(B, T)` advantages replace TRL's `(B,)` ones; TRL's clipped surrogate uses them as is.
- Training on chosen quadrants zeroes the advantage elsewhere: the same as multiplying the token loss
  by the quadrant indicator (the normaliser still counts every valid token).
- A group whose rewards are all equal (`eapo.core.zero_std_groups`: TRL's zero-std test, in float64)
  gets advantage exactly 0, so its tokens are in no quadrant and carry no gradient; TRL's float32 std
  leaves about +-6e-4 for equal non-binary rewards such as 0.7. `frac_reward_zero_std` uses the same test.
- Quadrant labels (the metrics and `quadrants=`) describe the gradient actually applied: they come from the
  method's final advantages and its loss mask (Forking's dropped tokens, W-REINFORCE's own advantages).
- DAPO dynamic sampling regenerates on fresh prompts until the batch holds only groups with a
  learning signal (`_generate_with_dynamic_sampling`). Decisions:
  * a group is kept when its rewards, the overlong penalty left out, are not all equal (DAPO filters on
    accuracy); each fresh draw is seeded by (seed, optimizer step, micro-step, round), so the micro-steps
    of one optimizer step draw different prompts;
  * `reward`, `reward_std`, `frac_reward_zero_std` and `rewards/<func>/{mean,std}` describe the batch
    trained on (kept groups plus any filler); the same figures over every generated round are logged as
    `dynamic_sampling/all_rounds/<name>`. So does `entropy/sampling_mean`; `entropy/generated_mean`, logged
    for every method wherever transformers generates, is the mean sampling entropy of every completion
    generated (all rounds), recorded at generation (`_log_generated_entropy`): the entropy figure to compare
    across methods with and without dynamic sampling, whose selection keeps the groups with mixed rewards;
  * the zero-advantage filler of a shortfall stays in the batch (its tokens are NONE, in the entropy
    statistics) but is not counted in the token-mean normaliser `num_items_in_batch` (loss_type "dapo",
    the paper's): a shortfall does not shrink the step on the informative tokens. Per-row or
    per-micro-batch normalisers (loss_type "grpo", "bnpo") still count it;
  * each group keeps the advantages TRL computed in its round: with `scale_rewards="batch"` that is the
    round's std over all its groups, dropped ones included (the paper's settings scale per group).
- DAPO's overlong penalty (`overlong_buffer_ratio`, on in the dapo preset) is TRL's
  `get_soft_overlong_punishment`, added as one more reward function (`eapo.core.shaping`).
- KL-Cov and Clip-Cov replace the token loss (`_compute_token_loss`), with an MoE model's load-balancing loss
  added as TRL adds it; everything else is TRL's loss. The config refuses TRL options they would drop.
- Guarded reward functions and atomic, resumable checkpoints come from `ReliableTrainerMixin`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import torch
from trl import GRPOTrainer
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.utils import nanstd

from eapo.core.advantages import zero_std_groups
from eapo.core.entropy import row_entropy_moments, stats_from_moments
from eapo.core.methods import RolloutBatch, get_method
from eapo.core.quadrants import QUADRANTS, Quadrant, labels_from_stats, quadrant_mask, quadrant_statistics
from eapo.core.shaping import overlong_buffer_len, overlong_reward, unscored_without_shaping
from eapo.tasks.rewards import format_scores
from eapo.trainer.config import EAPOConfig
from eapo.trainer.generation import (
    GenerationPositions,
    SamplingRecorder,
    cut_at_stop,
    record_sampling,
    stop_criteria,
    stopping_at,
    takes_generation_positions,
)
from eapo.trainer.reliability import ReliableTrainerMixin
from eapo.trainer.summary import announce_method

logger = logging.getLogger(__name__)

# Keys of TRL's generation output that carry per-row data, and how to pad them: (side, pad value).
# `None` as pad value means "the tokenizer's pad token".
_ROW_KEYS: dict[str, tuple[str, float | None]] = {
    "prompt_ids": ("left", None),
    "prompt_mask": ("left", 0),
    "completion_ids": ("right", None),
    "completion_mask": ("right", 0),
    "tool_mask": ("right", 1),
    "old_per_token_logps": ("right", 0.0),
    "sampling_per_token_logps": ("right", 0.0),
    "ref_per_token_logps": ("right", 0.0),
    "importance_sampling_ratio": ("right", 1.0),
    "eapo_entropy": ("right", 0.0),
    "eapo_logps": ("right", 0.0),
}
# Metrics logged once per dynamic-sampling round that are counts or extremes: reduced to one value per batch.
_ROUND_REDUCTIONS: dict[str, Any] = {
    "rewards/invalid_count": sum,
    "completions/max_length": max,
    "completions/max_terminated_length": max,
    "completions/min_length": min,
    "completions/min_terminated_length": min,
}
_FORWARD_KEYS = (
    "pixel_values",
    "image_grid_thw",
    "num_images",
    "pixel_attention_mask",
    "spatial_shapes",
    "num_tiles",
    "image_sizes",
    "token_type_ids",
    "mm_token_type_ids",
    "image_position_ids",
)


def _loss_mask(batch: dict[str, Any]) -> torch.Tensor:
    """TRL's loss mask: the completion mask times the tool mask when there is one."""
    mask = batch["completion_mask"]
    return mask * batch["tool_mask"] if "tool_mask" in batch else mask


def _group_rows(groups: torch.Tensor, group_size: int) -> torch.Tensor:
    """Row indices of the given group indices, rows of a group being contiguous."""
    return (groups.unsqueeze(1) * group_size + torch.arange(group_size, device=groups.device)).flatten()


def _pad_cols(t: torch.Tensor, width: int, side: str, value: float) -> torch.Tensor:
    """Pad a `(B, W)` tensor to `(B, width)` on `side`."""
    extra = width - t.shape[1]
    if extra <= 0:
        return t
    pad = torch.full((t.shape[0], extra), value, dtype=t.dtype, device=t.device)
    return torch.cat([pad, t] if side == "left" else [t, pad], dim=1)


class EAPOTrainer(ReliableTrainerMixin, GRPOTrainer):
    """A drop-in `GRPOTrainer` whose `args` is an `EAPOConfig`; see the module docstring."""

    def __init__(self, model: Any, reward_funcs: Any = None, args: EAPOConfig | None = None, **kwargs: Any):
        if args is None:
            name = model if isinstance(model, str) else getattr(model.config, "_name_or_path", "model")
            args = EAPOConfig(f"{str(name).rstrip('/').split('/')[-1]}-EAPO")
        if not isinstance(args, EAPOConfig):
            raise TypeError(
                f"EAPOTrainer needs an EAPOConfig, got {type(args).__name__}: build it with "
                '`EAPOConfig.from_grpo_config(args, method="eapo")` (your changed fields kept, the method\'s preset '
                "applied to the others), or EAPOConfig(...) directly"
            )
        super().__init__(model, reward_funcs, args=args, **kwargs)
        self.method = get_method(args.method)
        announce_method(args)  # once: what this run changes compared with GRPO (dynamic sampling, clip-higher, ...)
        self._restrict_quadrants = len(args.quadrant_set) < len(QUADRANTS)
        self._loss_generator = torch.Generator().manual_seed(args.seed)
        self._rewards_per_func: torch.Tensor | None = None
        self._deferred_inputs: dict[str, Any] | None = None
        self._capture_entropy = False
        self._captured: list[tuple[torch.Tensor, torch.Tensor]] = []  # (log pi, H) of the policy's no-grad forwards
        self._zero_std: torch.Tensor | None = None  # (groups,) of the last scored batch
        self._shaping_columns = self._add_overlong_reward(args)
        self._record_generation = False  # record H and log pi_old in the next `_generate_single_turn`
        self._generated_entropy: list[torch.Tensor] = []  # (sum of H, tokens) of each generation since the last log
        self._recorder: SamplingRecorder | None = None
        self._extra_forward_logged = False
        self._recorder_problem: str | None = None  # why the last recording did not match TRL's completions
        # A task's answer extractor (text -> answer or None): when set, every step also logs the share of
        # completions with an answer and the accuracy among them (`answers/format_rate`, `.../accuracy_formatted`).
        self.answer_extractor: Callable[[str], Any] | None = None
        # A task's stop strings: transformers generation ends each completion at the first of them, kept in it
        # (`eapo.trainer.generation.stop_criteria`, `cut_at_stop`); with vLLM, pass them as `generation_kwargs`.
        self.stop_strings: tuple[str, ...] = ()
        # The last generation batch, for diagnostics, on the CPU (`RolloutBatch.on_cpu`: bool mask, int8 labels):
        self.last_rollout: RolloutBatch | None = None
        self.last_advantages: torch.Tensor | None = None  # (B, T) float32 advantages the loss used for it
        self.last_labels: torch.Tensor | None = None  # (B, T) int8 quadrants of the gradient applied to it
        if args.dynamic_sampling and not hasattr(self.train_dataset, "__getitem__"):
            raise ValueError(
                "dynamic_sampling draws fresh prompts by index and needs a map-style train_dataset "
                "(datasets.Dataset), not an IterableDataset: pass a Dataset or set dynamic_sampling=False"
            )

    def _add_overlong_reward(self, args: EAPOConfig) -> list[int]:
        """Append TRL's soft overlong punishment to the reward functions (weight 1), as TRL itself appends
        environment rewards; returns the reward columns that are shaping, not task reward."""
        buffer = overlong_buffer_len(args.max_completion_length, args.overlong_buffer_ratio)
        if buffer == 0:
            return []
        func = overlong_reward(args.max_completion_length, buffer)
        self.reward_funcs.append(func)
        self.reward_func_names.append(func.__name__)
        self.reward_processing_classes.append(None)
        self.reward_weights = torch.cat([self.reward_weights, torch.ones(1)])
        return [len(self.reward_funcs) - 1]

    # ----- generation side ---------------------------------------------------------------------------

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        # TRL returns the rewards of all processes; keep them, the methods need the raw reward. An unscorable
        # completion gets no overlong penalty either, so TRL gives it advantage 0 (`unscored_without_shaping`).
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._rewards_per_func = unscored_without_shaping(rewards, self._shaping_columns)
        if self.answer_extractor is not None:
            self._log_answer_metrics(completions, self._rewards_per_func)
        return self._rewards_per_func

    def _log_answer_metrics(self, completions: list[Any], rewards: torch.Tensor) -> None:
        """`answers/format_rate` and `answers/accuracy_formatted` of this process's completions, by the rule of
        held-out evaluation (`eapo.tasks.rewards.format_scores`): a completion is well formatted when
        `answer_extractor` reads an answer, correct when its task reward (the shaping columns left out) is at
        least 1."""
        start = self.accelerator.process_index * len(completions)
        task = [i for i in range(rewards.shape[1]) if i not in self._shaping_columns]
        local = torch.nan_to_num(rewards[start : start + len(completions)][:, task].float(), nan=0.0)
        correct = (local.sum(dim=1) >= 1.0 - 1e-9).tolist()
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        formatted = [self.answer_extractor(t) is not None for t in texts]
        scores = format_scores([formatted], [correct])
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["answers/format_rate"].append(scores["format_rate"])
        if scores["accuracy_formatted"] is not None:
            self._metrics[mode]["answers/accuracy_formatted"].append(scores["accuracy_formatted"])

    def _global_rewards(self) -> torch.Tensor:
        """`(B_global,)` weighted total reward of the last scored batch, NaN where unscorable."""
        per_func = self._rewards_per_func
        weights = self.reward_weights.to(per_func.device).unsqueeze(0)
        total = (per_func * weights).nansum(dim=1)
        return torch.where(torch.isnan(per_func).all(dim=1), torch.full_like(total, math.nan), total)

    def _signal_columns(self, per_func: torch.Tensor, shaping: bool = True) -> torch.Tensor:
        """The rewards whose group std decides whether a group has a learning signal: `(B, 1)` weighted
        total (TRL's sum_then_normalize) or `(B, K)` weighted per function (normalize_then_sum); NaN
        where unscorable. `shaping=False` leaves out the overlong penalty (dynamic sampling's filter)."""
        weighted = per_func.double() * self.reward_weights.to(per_func.device).double()
        if not shaping and self._shaping_columns:
            keep = [i for i in range(weighted.shape[1]) if i not in self._shaping_columns]
            weighted = weighted[:, keep]
        if self.multi_objective_aggregation == "normalize_then_sum":
            return weighted
        total = weighted.nansum(dim=1, keepdim=True)
        return torch.where(torch.isnan(weighted).all(dim=1, keepdim=True), math.nan, total)

    def _generate_and_score_completions(self, inputs):
        mode = "train" if self.model.training else "eval"
        if mode == "train" and self.args.dynamic_sampling:
            output, rewards = self._generate_with_dynamic_sampling(inputs)
        else:
            output = self._score(inputs)
            rewards = self._global_rewards()
        self._log_generated_entropy(mode)
        local_rows = output["completion_ids"].shape[0]
        start = self.accelerator.process_index * local_rows
        device = output["completion_ids"].device
        # Each row's place in the global batch and its reward travel with it through TRL's shuffle and split.
        output["eapo_row"] = torch.arange(start, start + local_rows, device=device)
        output["eapo_reward"] = rewards[start : start + local_rows].float().to(device)
        if "eapo_entropy" not in output and self._defer_to_loss(mode):
            # This micro-batch is the whole local generation batch: the loss forward gives the same
            # entropies (the policy has not moved yet), so no extra forward (see `_get_per_token_logps_and_entropies`).
            output["eapo_deferred"] = torch.tensor(True)
            return output
        entropy, logps = self._sampling_entropy(output)
        self._apply_method(output, entropy, logps, mode)
        return output

    def _score(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        """TRL's generation and scoring, plus the entropies (`eapo_entropy`) and, when recorded, `log pi_old`
        (`eapo_logps`) of the completion tokens, from whatever already computes the logits: TRL's own no-grad
        `log pi_old` forward when it runs one, else transformers generation (`_generate_single_turn`). When
        the method will run inside the loss forward (`_defer_to_loss`), nothing is recorded for it; transformers
        generation is recorded all the same, for `entropy/generated_mean` (`_note_generated_entropy`)."""
        mode = "train" if self.model.training else "eval"
        self._capture_entropy, self._captured = True, []
        # recorded whenever transformers generates: `entropy/generated_mean` reads every completion; the method
        # reads the recording only where no forward that runs anyway gives the entropies (module docstring)
        self._record_generation = self._generation_is_recordable()
        for_method = not self._defer_to_loss(mode) and not self._trl_computes_old_logps()
        try:
            output = super()._generate_and_score_completions(inputs)
        finally:
            self._capture_entropy = False
            self._record_generation = False
        captured, self._captured = self._captured, []
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            self._note_generated_entropy(recorder, _loss_mask(output))
        old = output.get("old_per_token_logps")
        for logps, entropy in captured:  # the policy forward whose log-probs TRL kept as log pi_old
            if logps is old:
                output["eapo_entropy"] = entropy
        if "eapo_entropy" not in output and recorder is not None and for_method:
            self._recorder_problem = recorder.mismatch(output["completion_mask"])
            if self._recorder_problem is None:  # else `_sampling_entropy` runs the forward instead
                entropy, logps = recorder.columns(output["completion_ids"].shape[1])
                output["eapo_entropy"], output["eapo_logps"] = entropy, logps
        self._zero_signal_groups(output)
        return output

    def _note_generated_entropy(self, recorder: SamplingRecorder, mask: torch.Tensor) -> None:
        """Add this generation's completions to `entropy/generated_mean`'s sums (nothing where the recorded steps
        are not the completions' columns, `SamplingRecorder.mismatch`)."""
        total = torch.zeros(2, device=mask.device)
        if recorder.mismatch(mask) is None:
            entropy, _ = recorder.columns(mask.shape[1])
            valid = mask.bool()
            total = torch.stack([entropy.to(mask.device)[valid].sum(), valid.sum().float()])
        self._generated_entropy.append(total)

    def _log_generated_entropy(self, mode: str) -> None:
        """`entropy/generated_mean`: the mean sampling entropy over every completion generated for this batch, on
        every process, before any selection (all of dynamic sampling's rounds), from the generation's own
        distribution: the same figure for methods with and without dynamic sampling, whose
        `entropy/sampling_mean` reads only the groups kept for the update. Not logged where generation is not
        recorded (vLLM, continuous batching, a custom `rollout_func`, tool calling)."""
        parts, self._generated_entropy = self._generated_entropy, []
        if not parts:
            return
        total, tokens = self.accelerator.reduce(torch.stack(parts).sum(dim=0), reduction="sum").tolist()
        if tokens > 0:
            self._metrics[mode]["entropy/generated_mean"].append(total / tokens)

    def _zero_signal_groups(self, output: dict[str, Any]) -> None:
        """Zero the advantages of groups whose rewards are all equal, and log their share as TRL's
        `frac_reward_zero_std` (see `eapo.core.zero_std_groups`)."""
        mode = "train" if self.model.training else "eval"
        group = self.num_generations if mode == "train" else self.num_generations_eval
        self._zero_std = zero_std_groups(self._signal_columns(self._rewards_per_func), group)
        self._metrics[mode]["frac_reward_zero_std"][-1] = self._zero_std.float().mean().item()
        local = output["advantages"].shape[0]
        start = self.accelerator.process_index * local
        rows = self._zero_std.repeat_interleave(group)[start : start + local].to(output["advantages"].device)
        output["advantages"] = output["advantages"].masked_fill(rows, 0.0)

    def _generation_is_recordable(self) -> bool:
        """Whether completions come from one transformers `generate` call, whose logits can be recorded."""
        return not (
            self.use_vllm or self.use_transformers_continuous_batching or self.rollout_func is not None or self.tools
        )

    def _trl_computes_old_logps(self) -> bool:
        """TRL 1.16's condition for its own no-grad `log pi_old` forward in `_generate_and_score_completions`."""
        generate_every = self.args.steps_per_generation * self.num_iterations
        return self.args.gradient_accumulation_steps % generate_every != 0 or (
            self.use_vllm and self.vllm_importance_sampling_correction
        )

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        args = (prompt_ids, images, multimodal_fields, num_generations, has_tool_images)
        model = self.accelerator.unwrap_model(self.model_wrapped)
        stops = () if self.use_vllm else self.stop_strings
        with stopping_at(model, stop_criteria(self._tokenizer, stops)):
            if not self._record_generation:
                result = super()._generate_single_turn(*args)
            else:
                with record_sampling(model, self.temperature) as recorder:
                    result = super()._generate_single_turn(*args)
                self._recorder = recorder
        if stops:  # rows stopped by a stop string were padded after it: TRL only cuts at EOS
            result = ([cut_at_stop(list(ids), self._tokenizer, stops) for ids in result[0]], *result[1:])
        return result

    def _defer_to_loss(self, mode: str) -> bool:
        """Whether the method can be applied inside the loss forward (one micro-batch per generation). Not when it
        declares a loss mask (`Method.masks_tokens`): TRL reads the mask before that forward."""
        return (
            mode == "train"
            and self.args.steps_per_generation == 1
            and self.num_iterations == 1
            and not self.method.returns_loss_mask(self.args)
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if inputs.pop("eapo_deferred", None) is not None:
            self._deferred_inputs = inputs
        if self.method.token_loss is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if return_outputs:
            raise ValueError("EAPOTrainer does not support returning outputs")
        return self._compute_token_loss(model, inputs)

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, *args, **kwargs):
        # Two forwards of TRL's also yield the entropies EAPO needs, so EAPO adds no forward of its own:
        # - while scoring (`_score`), every no-grad forward of the policy also returns its entropies, and
        #   `_score` keeps those of the forward whose log-probs TRL kept as `log pi_old`, if it ran one (the
        #   reference model's forward, `beta != 0`, has no entropy head and is left alone, whatever the order);
        # - the first forward of a deferred loss: TRL reads `inputs["advantages"]` only after this call
        #   returns, so the method's (B, T) advantages computed here are the ones its loss uses.
        # Every forward also numbers positions as `generate` did (`GenerationPositions`): in bf16 the loss forward
        # and the generation recorder then agree on left-padded rows too (docs/method.md section 2).
        capture = self._capture_entropy and not torch.is_grad_enabled() and model is self.model
        deferred = None if capture else self._deferred_inputs
        forward_model = self._with_generation_positions(model, kwargs)
        if not capture and deferred is None:
            return super()._get_per_token_logps_and_entropies(
                forward_model, input_ids, attention_mask, logits_to_keep, *args, **kwargs
            )
        if not capture:
            self._deferred_inputs = None
        wanted = kwargs.pop("compute_entropy", False)
        logps, entropy, aux = super()._get_per_token_logps_and_entropies(
            forward_model, input_ids, attention_mask, logits_to_keep, *args, compute_entropy=True, **kwargs
        )
        if capture:
            self._captured.append((logps, entropy.float()))
        else:
            self._apply_method(deferred, entropy.detach().float(), logps.detach().float(), "train", in_loss=True)
        return logps, (entropy if wanted else None), aux

    def _with_generation_positions(self, model: Any, forward_kwargs: dict[str, Any]) -> Any:
        """`model` wrapped to get `generate`'s position ids, for a text-only forward of a model whose `generate`
        passes them (`takes_generation_positions`); `model` itself otherwise (multimodal inputs included)."""
        if any(forward_kwargs.get(k) is not None for k in _FORWARD_KEYS):
            return model
        if not takes_generation_positions(self.accelerator.unwrap_model(model)):
            return model
        return GenerationPositions(model)

    @torch.no_grad()
    def _sampling_entropy(self, output: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Entropy and `log pi_old` of the local completion tokens, `(L, T)` each."""
        if "eapo_entropy" in output:  # recorded in generation or captured from TRL's log pi_old forward (`_score`)
            entropy, logps = output.pop("eapo_entropy"), output.pop("eapo_logps", None)
            return entropy, (output["old_per_token_logps"] if logps is None else logps).float()
        self._log_extra_forward()
        input_ids = torch.cat([output["prompt_ids"], output["completion_ids"]], dim=1)
        attention_mask = torch.cat([output["prompt_mask"], output["completion_mask"]], dim=1)
        forward_kwargs = {k: output[k] for k in _FORWARD_KEYS if k in output}
        device = self.accelerator.device
        # fork_rng: dropout in this extra forward must not shift the random stream TRL's sampling uses.
        devices = [device] if device.type == "cuda" else []
        with (
            torch.random.fork_rng(devices=devices),
            disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs),
        ):
            logps, entropy, _ = self._get_per_token_logps_and_entropies(
                self.model,
                input_ids,
                attention_mask,
                output["completion_ids"].size(1),
                batch_size=self.args.per_device_train_batch_size,
                compute_entropy=True,
                **forward_kwargs,
            )
        return entropy.float(), logps.float()

    def _log_extra_forward(self) -> None:
        if self._extra_forward_logged:
            return
        self._extra_forward_logged = True
        if self._recorder_problem is not None:
            source = f"generation whose decoding steps do not match the completions ({self._recorder_problem})"
        elif self.use_vllm:
            source = "vLLM generation without TRL's log pi_old forward (vllm_importance_sampling_correction=False)"
        elif self.use_transformers_continuous_batching:
            source = "transformers continuous batching"
        elif self.rollout_func is not None:
            source = "a custom rollout_func"
        elif self.tools:
            source = "tool-calling generation"
        else:
            source = "this configuration (TRL ran no log pi_old forward where one was expected)"
        logger.warning(
            "EAPO: with %s the entropies are not read during generation: one extra no-grad forward over each "
            "generation batch gives them (about the cost of TRL's log pi_old forward, a third of a training "
            "forward+backward on the same tokens)",
            source,
        )

    def _gather_cols(self, t: torch.Tensor, pad: float = 0.0) -> torch.Tensor:
        """Gather `(L, T_local)` tensors of all processes into `(B, T_max)` (right-padded)."""
        return self.accelerator.gather(self.accelerator.pad_across_processes(t, dim=1, pad_index=pad))

    def _apply_method(
        self, inputs: dict[str, Any], entropy: torch.Tensor, logps: torch.Tensor, mode: str, in_loss: bool = False
    ) -> None:
        """Gather the batch over processes, run the method, write this process's `(L, T)` advantages (and its loss
        mask). `in_loss`: called inside the loss forward, where a loss mask would come too late for TRL."""
        mask = _loss_mask(inputs)
        local_cols = mask.shape[1]
        order = torch.argsort(self.accelerator.gather(inputs["eapo_row"]))  # back to global batch order
        mask_g = self._gather_cols(mask.float())[order]
        batch = self._rollout_batch(
            advantages=self.accelerator.gather(inputs["advantages"].float())[order],
            rewards=self.accelerator.gather(inputs["eapo_reward"])[order],
            entropy=self._gather_cols(entropy)[order],
            token_logps=self._gather_cols(logps)[order],
            mask=mask_g,
            group_size=self.num_generations if mode == "train" else self.num_generations_eval,
        )
        update = self.method.advantage_fn(batch, self.args)
        if in_loss and update.loss_mask is not None:
            raise ValueError(
                f"method {self.method.name!r} returned a loss_mask but does not declare masks_tokens: register it with "
                "masks_tokens=True (or a function of the config), so that it runs before TRL reads the loss mask"
            )
        advantages = update.advantages
        # Quadrants of the gradient actually applied: the method's own advantages on the tokens it trains.
        trained = batch.mask if update.loss_mask is None else batch.mask * update.loss_mask.to(batch.mask.dtype)
        labels = labels_from_stats(advantages, batch.entropy, trained, batch.entropy_mean)
        if self._restrict_quadrants:
            chosen = quadrant_mask(labels, self.args.quadrants)
            advantages = advantages * chosen
            labels = labels.masked_fill(~chosen, int(Quadrant.NONE))
        # Kept for diagnostics on the CPU, compact: gathered (B, T) tensors on every GPU would hold memory all step.
        self.last_rollout = batch.on_cpu()
        self.last_advantages = advantages.detach().cpu()
        self.last_labels = labels.to(torch.int8).cpu()
        self._log_rollout_metrics(batch, labels, advantages * trained, update, mode)

        rows = inputs["eapo_row"]
        inputs["advantages"] = advantages[rows, :local_cols].contiguous()
        if update.loss_mask is not None:
            keep = update.loss_mask.to(mask.dtype)
            inputs["tool_mask"] = inputs.get("tool_mask", torch.ones_like(mask)) * keep[rows, :local_cols]
            if "eapo_filler" in inputs:  # dynamic sampling's filler: not in the token-mean normaliser
                keep = keep * ~self.accelerator.gather(inputs["eapo_filler"])[order].unsqueeze(1)
            inputs["num_items_in_batch"] = (mask_g * keep).sum()

    def _rollout_batch(self, *, advantages, rewards, entropy, token_logps, mask, group_size) -> RolloutBatch:
        rows = advantages.shape[0]
        if self.args.entropy_stats_scope == "batch":
            group_index = torch.zeros(rows, dtype=torch.long, device=mask.device)
        else:
            group_index = torch.arange(rows, device=mask.device) // group_size
        mean, std = stats_from_moments(row_entropy_moments(entropy, mask), group_index)
        return RolloutBatch(
            advantages=advantages,
            rewards=rewards.to(advantages.device),
            entropy=entropy,
            token_logps=token_logps,
            mask=mask,
            group_index=group_index,
            entropy_mean=mean,
            entropy_std=std,
            labels=labels_from_stats(advantages, entropy, mask, mean),
        )

    def _log_rollout_metrics(self, batch: RolloutBatch, labels, applied: torch.Tensor, update, mode: str) -> None:
        """Entropy, advantage and quadrant metrics; `labels` and `applied` `(B, T)` are the quadrants and the
        advantages of the gradient actually applied (zero on tokens the method's loss mask drops)."""
        valid = batch.mask.bool()
        n_valid = valid.sum().clamp(min=1)
        values: dict[str, torch.Tensor] = {
            "entropy/sampling_mean": batch.entropy[valid].sum() / n_valid,
            "entropy/group_std_mean": batch.entropy_std.mean(),
            "advantages/abs_mean": applied.abs()[valid].sum() / n_valid,
        }
        if self.args.quadrant_metrics:
            values.update(quadrant_statistics(labels, batch.entropy, applied, batch.token_logps, batch.mask))
        values.update(update.metrics)
        stacked = torch.stack([v.float().reshape(()) for v in values.values()]).tolist()  # one sync
        for key, value in zip(values, stacked, strict=True):
            self._metrics[mode][key].append(value)

    # ----- dynamic sampling --------------------------------------------------------------------------

    def _gather_output(self, output: dict[str, Any]) -> dict[str, torch.Tensor]:
        """All processes' rows of a TRL generation output, padded to common widths."""
        unknown = sorted(k for k in output if k not in _ROW_KEYS and k not in ("advantages", "num_items_in_batch"))
        if unknown:
            raise ValueError(
                f"dynamic_sampling does not support generation outputs with {unknown} (multimodal or custom "
                "rollouts): set dynamic_sampling=False"
            )
        out: dict[str, torch.Tensor] = {"advantages": self.accelerator.gather(output["advantages"])}
        for key, (side, _) in _ROW_KEYS.items():
            if key not in output:
                continue
            t = output[key]
            if t.dim() == 2:
                t = self.accelerator.pad_across_processes(
                    t, dim=1, pad_index=self._pad_value(key), pad_first=side == "left"
                )
            out[key] = self.accelerator.gather(t)
        return out

    def _pad_value(self, key: str) -> float:
        value = _ROW_KEYS[key][1]
        return self._tokenizer.pad_token_id if value is None else value

    def _concat_rows(self, parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        merged: dict[str, torch.Tensor] = {}
        for key in parts[0]:
            tensors = [p[key] for p in parts]
            if tensors[0].dim() == 2 and key in _ROW_KEYS:
                width = max(t.shape[1] for t in tensors)
                tensors = [_pad_cols(t, width, _ROW_KEYS[key][0], self._pad_value(key)) for t in tensors]
            merged[key] = torch.cat(tensors, dim=0)
        return merged

    def _fresh_inputs(self, local_rows: int, round_index: int) -> list[dict[str, Any]]:
        """New prompts for a dynamic-sampling round: the same draw on every process, G rows per prompt.

        Seeded by (seed, optimizer step, micro-step within it, round): a generation per micro-step
        (`steps_per_generation < gradient_accumulation_steps`) draws its own prompts. TRL's micro-step
        counter restarts at 0 on resume at a step boundary (and is restored mid-batch), so its remainder
        is the same as in an uninterrupted run."""
        group = self.num_generations
        total = local_rows * self.accelerator.num_processes
        micro_step = self._step % self.args.gradient_accumulation_steps
        # (the CPU generator keeps the low 32 bits of its seed: every term must reach them)
        seed = self.args.seed * 1_000_003 + self.state.global_step * 1_009 + round_index + micro_step * 1_000_000_007
        seed %= 2**63
        picks = torch.randint(len(self.train_dataset), (total // group,), generator=torch.Generator().manual_seed(seed))
        rows = picks.repeat_interleave(group)
        start = self.accelerator.process_index * local_rows
        return [self.train_dataset[int(i)] for i in rows[start : start + local_rows]]

    def _generate_with_dynamic_sampling(self, inputs: list[dict[str, Any]]) -> tuple[dict[str, Any], torch.Tensor]:
        group = self.num_generations
        local_rows = len(inputs)
        needed = local_rows * self.accelerator.num_processes // group  # groups in the global batch
        kept: list[dict[str, torch.Tensor]] = []
        n_kept, rounds, generated = 0, 0, 0
        last: dict[str, torch.Tensor] = {}
        marks = {key: len(self._metrics["train"][key]) for key in self._reward_stat_keys()}
        count_marks = {key: len(self._metrics["train"][key]) for key in _ROUND_REDUCTIONS}
        for rounds in range(1, self.args.dynamic_sampling_max_rounds + 1):
            batch_inputs = inputs if rounds == 1 else self._fresh_inputs(local_rows, rounds)
            last = self._gather_output(self._score(batch_inputs))
            last["rewards"] = self._global_rewards()
            last["rewards_per_func"] = self._rewards_per_func
            # DAPO keeps the groups whose (task) rewards differ: decided on the rewards, the overlong penalty aside
            informative = ~zero_std_groups(self._signal_columns(self._rewards_per_func, shaping=False), group)
            generated += informative.numel()
            take = informative.nonzero().squeeze(1)[: needed - n_kept]
            if take.numel():
                rows = _group_rows(take, group)
                kept.append({k: v[rows] for k, v in last.items()})
                n_kept += take.numel()
            if n_kept >= needed:
                break
        if n_kept < needed:  # top up with groups that carry no signal: batch shape stays fixed
            filler = (~informative).nonzero().squeeze(1)[: needed - n_kept]
            rows = _group_rows(filler, group)
            part = {k: v[rows] for k, v in last.items()}
            part["advantages"] = torch.zeros_like(part["advantages"])  # no overlong-penalty signal either
            kept.append(part)
        merged = self._concat_rows(kept)
        # The filler is not counted in the token-mean normaliser (module docstring).
        rows = torch.arange(merged["advantages"].shape[0], device=merged["advantages"].device)
        merged["eapo_filler"] = rows >= n_kept * group
        self._log_trained_reward_stats(merged, marks)
        self._reduce_round_counts(count_marks)
        self._metrics["train"]["dynamic_sampling/rounds"].append(float(rounds))
        self._metrics["train"]["dynamic_sampling/informative_share"].append(n_kept / max(generated, 1))
        self._metrics["train"]["dynamic_sampling/filled_share"].append(min(n_kept, needed) / needed)
        merged.pop("rewards_per_func")
        return self._local_output(merged), merged.pop("rewards")

    def _reduce_round_counts(self, marks: dict[str, int]) -> None:
        """One value per batch for the counts and extremes TRL logs once per generation round (`_ROUND_REDUCTIONS`):
        logging averages a key's values, and an average over rounds is neither a count nor a maximum."""
        metrics = self._metrics["train"]
        for key, start in marks.items():
            values = [v for v in metrics[key][start:] if not math.isnan(v)]
            if len(metrics[key]) - start > 1:
                metrics[key][start:] = [_ROUND_REDUCTIONS[key](values) if values else math.nan]

    def _reward_stat_keys(self) -> list[str]:
        """TRL's reward metrics, logged once per generation round."""
        per_func = [f"rewards/{name}/{stat}" for name in self.reward_func_names for stat in ("mean", "std")]
        return ["reward", "reward_std", "frac_reward_zero_std", *per_func]

    def _log_trained_reward_stats(self, merged: dict[str, torch.Tensor], marks: dict[str, int]) -> None:
        """Move the per-round reward metrics to `dynamic_sampling/all_rounds/...` and log, under TRL's names,
        those of the batch trained on."""
        metrics = self._metrics["train"]
        for key, start in marks.items():
            metrics[f"dynamic_sampling/all_rounds/{key}"].extend(metrics[key][start:])
            del metrics[key][start:]
        per_func, total = merged["rewards_per_func"], merged["rewards"]
        zero_std = zero_std_groups(self._signal_columns(per_func), self.num_generations)
        values = {"reward": torch.nanmean(total), "reward_std": nanstd(total)}
        values["frac_reward_zero_std"] = zero_std.float().mean()
        for i, name in enumerate(self.reward_func_names):
            values[f"rewards/{name}/mean"] = torch.nanmean(per_func[:, i])
            values[f"rewards/{name}/std"] = nanstd(per_func[:, i])
        for key, value in zip(values, torch.stack([v.float() for v in values.values()]).tolist(), strict=True):
            metrics[key].append(value)

    def _local_output(self, merged: dict[str, torch.Tensor]) -> dict[str, Any]:
        """This process's rows of a merged global batch, trimmed of all-padding columns."""
        rows_per_process = merged["advantages"].shape[0] // self.accelerator.num_processes
        start = self.accelerator.process_index * rows_per_process
        local = {k: v[start : start + rows_per_process] for k, v in merged.items() if k != "rewards"}
        prompt_cols = int(local["prompt_mask"].sum(dim=1).max().item())
        completion_cols = max(int(local["completion_mask"].sum(dim=1).max().item()), 1)
        for key in list(local):
            if key in _ROW_KEYS and local[key].dim() == 2 and local[key].shape[1] > 1:
                side = _ROW_KEYS[key][0]
                keep = prompt_cols if key.startswith("prompt") else completion_cols
                local[key] = local[key][:, -keep:] if side == "left" else local[key][:, :keep]
        local["num_items_in_batch"] = (_loss_mask(merged) * ~merged["eapo_filler"].unsqueeze(1)).sum()
        return local

    # ----- loss side ---------------------------------------------------------------------------------

    def _compute_token_loss(self, model, inputs):
        """Loss of the methods that replace the token loss (KL-Cov, Clip-Cov), TRL's aggregation, plus an MoE
        model's load-balancing loss as TRL adds it (`_router_aux_term`)."""
        completion_ids, completion_mask = inputs["completion_ids"], inputs["completion_mask"]
        mask = _loss_mask(inputs)
        logps, _, aux_loss = self._get_per_token_logps_and_entropies(
            model,
            torch.cat([inputs["prompt_ids"], completion_ids], dim=1),
            torch.cat([inputs["prompt_mask"], completion_mask], dim=1),
            completion_ids.size(1),
            compute_aux_loss=self.aux_loss_enabled,
            **{k: inputs.get(k) for k in _FORWARD_KEYS},
        )
        old = inputs.get("old_per_token_logps")
        old = logps.detach() if old is None else old
        advantages = inputs["advantages"]
        if advantages.dim() == 1:
            advantages = advantages.unsqueeze(1).expand_as(logps)
        per_token_loss, selected = self.method.token_loss(logps, old, advantages, mask, self.args, self._loss_generator)
        if "importance_sampling_ratio" in inputs:
            per_token_loss = per_token_loss * inputs["importance_sampling_ratio"]
        mode = "train" if self.model.training else "eval"
        share = selected.float().sum() / mask.sum().clamp(min=1)
        self._metrics[mode][f"{self.method.name}/selected_share"].append(self.accelerator.gather(share).mean().item())
        loss = self._aggregate_loss(per_token_loss, mask, inputs, mode)
        return loss if aux_loss is None else loss + self._router_aux_term(aux_loss, mode)

    def _router_aux_term(self, aux_loss: torch.Tensor, mode: str) -> torch.Tensor:
        """TRL 1.16's MoE load-balancing term: `router_aux_loss_coef * aux_loss`, scaled for accumulation as the
        policy loss is, and logged as `aux_loss`."""
        accumulation = self.current_gradient_accumulation_steps if mode == "train" else 1.0
        self._metrics[mode]["aux_loss"].append(self.accelerator.gather_for_metrics(aux_loss).mean().item())
        return self.router_aux_loss_coef * aux_loss / accumulation

    def _aggregate_loss(self, per_token_loss, mask, inputs, mode: str) -> torch.Tensor:
        """TRL 1.16's aggregation for loss_type grpo, bnpo, dr_grpo and dapo."""
        accumulation = self.current_gradient_accumulation_steps if mode == "train" else 1.0
        loss_type = self.loss_type
        if loss_type == "grpo":
            loss = ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean() / accumulation
        elif loss_type == "bnpo":
            loss = (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0) / accumulation
        elif loss_type == "dr_grpo":
            loss = (per_token_loss * mask).sum() / (per_token_loss.size(0) * self.max_completion_length)
            loss = loss / accumulation
        else:  # dapo: normalise by the active tokens of the whole accumulation window, all processes
            normalizer = inputs["num_items_in_batch"].clamp(min=1.0) / self.accelerator.num_processes
            if mode == "train":
                normalizer = normalizer * self.current_gradient_accumulation_steps / self.args.steps_per_generation
            loss = (per_token_loss * mask).sum() / normalizer
        return loss
