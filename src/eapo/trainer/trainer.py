"""`EAPOTrainer`: TRL's `GRPOTrainer` with token-level entropy credit (written against TRL 1.16).

What it changes, and where:
- The method needs, for every sampled token, the entropy `H` of the sampling distribution (temperature
  applied, untruncated) and `log pi_old`. They come from a forward or a generation step that runs anyway:
  - one micro-batch per generation (`steps_per_generation == 1`, `num_iterations == 1`): the loss forward
    itself, before the policy moves (`_get_per_token_logps_and_entropies`);
  - when TRL runs its own no-grad `log pi_old` forward (vLLM importance-sampling correction, or
    `gradient_accumulation_steps` not a multiple of `steps_per_generation * num_iterations`, as with
    `num_iterations > 1` by default): that forward (`_score`);
  - otherwise, with transformers generation: recorded at every decoding step from the logits generation
    computes (`eapo.trainer.generation`, `_generate_single_turn`).
  Only where none applies (vLLM without TRL's forward, continuous batching, a custom `rollout_func`, tool
  calling) one extra no-grad forward after generation gives them (`_sampling_entropy`, logged once).
- Either way the batch is gathered over processes and put back in global order, so group statistics,
  quadrants and every method's advantages are computed on the whole generation batch: exact per
  prompt however it is split into micro-batches, accumulation steps or processes. The method's
  `(B, T)` advantages replace TRL's `(B,)` ones; TRL's clipped surrogate uses them as is.
- Training on chosen quadrants zeroes the advantage elsewhere: the same as multiplying the token loss
  by the quadrant indicator (the normaliser still counts every valid token).
- DAPO dynamic sampling regenerates on fresh prompts until the batch holds only groups with a
  learning signal (`_generate_with_dynamic_sampling`).
- KL-Cov and Clip-Cov replace the token loss (`_compute_token_loss`); everything else is TRL's loss.
- Guarded reward functions and atomic, resumable checkpoints come from `ReliableTrainerMixin`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
from trl import GRPOTrainer
from trl.models.utils import disable_gradient_checkpointing

from eapo.core.entropy import row_entropy_moments, stats_from_moments
from eapo.core.quadrants import QUADRANTS, labels_from_stats, quadrant_mask, quadrant_statistics
from eapo.methods import RolloutBatch, get_method
from eapo.trainer.config import EAPOConfig
from eapo.trainer.generation import SamplingRecorder, record_sampling
from eapo.trainer.reliability import ReliableTrainerMixin

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
                "EAPOConfig(**your_grpo_config.to_dict(), method=...)"
            )
        super().__init__(model, reward_funcs, args=args, **kwargs)
        self.method = get_method(args.method)
        self._restrict_quadrants = len(args.quadrant_set) < len(QUADRANTS)
        self._loss_generator = torch.Generator().manual_seed(args.seed)
        self._rewards_per_func: torch.Tensor | None = None
        self._deferred_inputs: dict[str, Any] | None = None
        self._capture_entropy = False
        self._captured_entropy: torch.Tensor | None = None
        self._record_generation = False  # record H and log pi_old in the next `_generate_single_turn`
        self._recorder: SamplingRecorder | None = None
        self._extra_forward_logged = False
        self.last_rollout: RolloutBatch | None = None  # the last generation batch, for diagnostics
        self.last_advantages: torch.Tensor | None = None  # (B, T) advantages the loss used for it
        if args.dynamic_sampling and not hasattr(self.train_dataset, "__getitem__"):
            raise ValueError(
                "dynamic_sampling draws fresh prompts by index and needs a map-style train_dataset "
                "(datasets.Dataset), not an IterableDataset: pass a Dataset or set dynamic_sampling=False"
            )

    # ----- generation side ---------------------------------------------------------------------------

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        # TRL returns the rewards of all processes; keep them, the methods need the raw reward.
        self._rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        return self._rewards_per_func

    def _global_rewards(self) -> torch.Tensor:
        """`(B_global,)` weighted total reward of the last scored batch, NaN where unscorable."""
        per_func = self._rewards_per_func
        weights = self.reward_weights.to(per_func.device).unsqueeze(0)
        total = (per_func * weights).nansum(dim=1)
        return torch.where(torch.isnan(per_func).all(dim=1), torch.full_like(total, math.nan), total)

    def _generate_and_score_completions(self, inputs):
        mode = "train" if self.model.training else "eval"
        if mode == "train" and self.args.dynamic_sampling:
            output, rewards = self._generate_with_dynamic_sampling(inputs)
        else:
            output = self._score(inputs)
            rewards = self._global_rewards()
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
        the method will run inside the loss forward (`_defer_to_loss`), nothing is recorded."""
        mode = "train" if self.model.training else "eval"
        self._capture_entropy = True
        self._record_generation = (
            self._generation_is_recordable() and not self._defer_to_loss(mode) and not self._trl_computes_old_logps()
        )
        try:
            output = super()._generate_and_score_completions(inputs)
        finally:
            self._capture_entropy = False
            self._record_generation = False
        captured, self._captured_entropy = self._captured_entropy, None
        recorder, self._recorder = self._recorder, None
        if captured is not None and "old_per_token_logps" in output:
            output["eapo_entropy"] = captured
        elif recorder is not None:
            entropy, logps = recorder.columns(output["completion_ids"].shape[1])
            output["eapo_entropy"], output["eapo_logps"] = entropy, logps
        return output

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
        if not self._record_generation:
            return super()._generate_single_turn(*args)
        with record_sampling(self.accelerator.unwrap_model(self.model_wrapped), self.temperature) as recorder:
            result = super()._generate_single_turn(*args)
        self._recorder = recorder
        return result

    def _defer_to_loss(self, mode: str) -> bool:
        """Whether the method can be applied inside the loss forward (one micro-batch per generation)."""
        return (
            mode == "train"
            and self.args.steps_per_generation == 1
            and self.num_iterations == 1
            and not (self.args.method == "forking" and self.args.forking_normalizer == "kept")
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
        # - while scoring (`_score`), TRL's first no-grad forward is the policy's `log pi_old` (the reference
        #   model's comes after it); `_score` keeps the entropies only if TRL did compute `log pi_old`;
        # - the first forward of a deferred loss: TRL reads `inputs["advantages"]` only after this call
        #   returns, so the method's (B, T) advantages computed here are the ones its loss uses.
        capture = self._capture_entropy and not torch.is_grad_enabled()
        deferred = None if capture else self._deferred_inputs
        if not capture and deferred is None:
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, *args, **kwargs
            )
        if capture:
            self._capture_entropy = False
        else:
            self._deferred_inputs = None
        wanted = kwargs.pop("compute_entropy", False)
        logps, entropy, aux = super()._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, logits_to_keep, *args, compute_entropy=True, **kwargs
        )
        if capture:
            self._captured_entropy = entropy.float()
        else:
            self._apply_method(deferred, entropy.detach().float(), logps.detach().float(), "train")
        return logps, (entropy if wanted else None), aux

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
        if self.use_vllm:
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

    def _apply_method(self, inputs: dict[str, Any], entropy: torch.Tensor, logps: torch.Tensor, mode: str) -> None:
        """Gather the batch over processes, run the method, write this process's `(L, T)` advantages."""
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
        advantages = update.advantages
        if self._restrict_quadrants:
            advantages = advantages * quadrant_mask(batch.labels, self.args.quadrants)
        self.last_rollout = batch
        self.last_advantages = advantages
        self._log_rollout_metrics(batch, advantages, update, mode)

        rows = inputs["eapo_row"]
        inputs["advantages"] = advantages[rows, :local_cols].contiguous()
        if update.loss_mask is not None:
            keep = update.loss_mask.to(mask.dtype)
            inputs["tool_mask"] = inputs.get("tool_mask", torch.ones_like(mask)) * keep[rows, :local_cols]
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

    def _log_rollout_metrics(self, batch: RolloutBatch, advantages: torch.Tensor, update, mode: str) -> None:
        valid = batch.mask.bool()
        n_valid = valid.sum().clamp(min=1)
        values: dict[str, torch.Tensor] = {
            "entropy/sampling_mean": batch.entropy[valid].sum() / n_valid,
            "entropy/group_std_mean": batch.entropy_std.mean(),
            "advantages/abs_mean": advantages.abs()[valid].sum() / n_valid,
        }
        if self.args.quadrant_metrics:
            values.update(quadrant_statistics(batch.labels, batch.entropy, advantages, batch.token_logps, batch.mask))
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
        """New prompts for a dynamic-sampling round: the same draw on every process, G rows per prompt."""
        group = self.num_generations
        total = local_rows * self.accelerator.num_processes
        seed = (self.args.seed * 1_000_003 + self.state.global_step * 1_009 + round_index) % (2**63)
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
        for rounds in range(1, self.args.dynamic_sampling_max_rounds + 1):
            batch_inputs = inputs if rounds == 1 else self._fresh_inputs(local_rows, rounds)
            last = self._gather_output(self._score(batch_inputs))
            last["rewards"] = self._global_rewards()
            informative = last["advantages"].view(-1, group).ne(0).any(dim=1)  # (groups,)
            generated += informative.numel()
            take = informative.nonzero().squeeze(1)[: needed - n_kept]
            if take.numel():
                rows = _group_rows(take, group)
                kept.append({k: v[rows] for k, v in last.items()})
                n_kept += take.numel()
            if n_kept >= needed:
                break
        if n_kept < needed:  # top up with groups that carry no signal (A = 0): batch shape stays fixed
            filler = (~informative).nonzero().squeeze(1)[: needed - n_kept]
            rows = _group_rows(filler, group)
            kept.append({k: v[rows] for k, v in last.items()})
        merged = self._concat_rows(kept)
        self._metrics["train"]["dynamic_sampling/rounds"].append(float(rounds))
        self._metrics["train"]["dynamic_sampling/informative_share"].append(n_kept / max(generated, 1))
        self._metrics["train"]["dynamic_sampling/filled_share"].append(min(n_kept, needed) / needed)
        return self._local_output(merged), merged.pop("rewards")

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
        local["num_items_in_batch"] = _loss_mask(merged).sum()
        return local

    # ----- loss side ---------------------------------------------------------------------------------

    def _compute_token_loss(self, model, inputs):
        """Loss of the methods that replace the token loss (KL-Cov, Clip-Cov), TRL's aggregation."""
        completion_ids, completion_mask = inputs["completion_ids"], inputs["completion_mask"]
        mask = _loss_mask(inputs)
        logps, _, _ = self._get_per_token_logps_and_entropies(
            model,
            torch.cat([inputs["prompt_ids"], completion_ids], dim=1),
            torch.cat([inputs["prompt_mask"], completion_mask], dim=1),
            completion_ids.size(1),
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
        return self._aggregate_loss(per_token_loss, mask, inputs, mode)

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
