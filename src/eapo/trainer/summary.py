"""What a run of `EAPOTrainer` does differently from TRL's GRPO, in one line, said once per process.

`method_line(args)` reads the method's declaration (`eapo.core.methods.Method`: its summary names the
hyperparameters it uses, its preset the GRPOConfig fields it sets) and the resolved config: loss type, clip
range (clip-higher when `epsilon_high > epsilon`), dynamic sampling and its cap on generation rounds, DAPO's
overlong penalty, the quadrants trained on, and the method's own hyperparameters with their values
(e.g. `eapo_alpha 0.2, eapo_phi 2`). `announce_method` logs it once when the run departs from plain GRPO
(`EAPOTrainer` calls it; `eapo train` prints it in its start line instead and marks it said).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from eapo.core.methods import get_method

logger = logging.getLogger("eapo.trainer")
_SAID: set[str] = set()


def _hyperparameters(args: Any) -> list[str]:
    """The config fields the method's summary names (e.g. eapo_alpha, eapo_phi), with their values."""
    names = dict.fromkeys(re.findall(r"\b[a-z]+_[a-z_]+\b", get_method(args.method).summary))
    return [f"{n} {getattr(args, n):g}" for n in names if isinstance(getattr(args, n, None), int | float)]


def method_line(args: Any) -> str:
    """`method M (hyperparameters): loss_type ..., clip [lo, hi], dynamic sampling ...` for an `EAPOConfig`."""
    params = _hyperparameters(args)
    head = f"method {args.method}" + (f" ({', '.join(params)})" if params else "")
    high = args.epsilon_high if args.epsilon_high is not None else args.epsilon
    clip = f"clip [{1 - args.epsilon:g}, {1 + high:g}]" + (" (clip-higher)" if high > args.epsilon else "")
    if args.dynamic_sampling:
        sampling = (
            f"dynamic sampling (groups with equal rewards replaced by fresh prompts, up to "
            f"{args.dynamic_sampling_max_rounds} generation rounds per batch)"
        )
    else:
        sampling = "no dynamic sampling"
    parts = [f"loss_type {args.loss_type}", clip, sampling]
    if args.overlong_buffer_ratio > 0:
        parts.append(f"overlong penalty over the last {args.overlong_buffer_ratio:.0%} of max_completion_length")
    if len(args.quadrant_set) < 4:
        parts.append(f"gradient only on {args.quadrants} tokens")
    return f"{head}: {', '.join(parts)}"


def departs_from_grpo(args: Any) -> bool:
    """Whether `args` trains differently from TRL's GRPOTrainer with the grpo preset."""
    grpo = get_method("grpo").preset
    differs = any(getattr(args, k) != v for k, v in grpo.items())
    return args.method != "grpo" or bool(args.dynamic_sampling) or differs or len(args.quadrant_set) < 4


def mark_announced(args: Any) -> None:
    """Record the method line of `args` as said (a caller printed it itself)."""
    _SAID.add(method_line(args))


def announce_method(args: Any, emit: Callable[[str], None] | None = None) -> None:
    """Say once per process (per distinct line) what the run changes compared with GRPO, when it changes anything."""
    line = method_line(args)
    if line in _SAID or not departs_from_grpo(args):
        return
    _SAID.add(line)
    (emit or logger.warning)(f"EAPOTrainer differs from TRL's GRPOTrainer here: {line}")


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.1f} GB" if n_bytes >= 1e8 else f"{n_bytes / 1e6:.0f} MB"


def run_cost(
    *,
    steps: int,
    completions_per_step: int,
    max_rounds: int,
    completion_tokens: int,
    eval_completions: int,
    eval_tokens: int,
    parameters: int | None,
    micro_batch_rows: int,
    vocab_size: int | None,
    checkpoints: int,
) -> str:
    """A rough cost of a run in one phrase: sampled completions (training, up to `max_rounds` generation rounds
    per step with dynamic sampling, and evaluation), memory (float32 weights, gradients and Adam's two states,
    16 bytes a parameter, plus about three copies of a micro-batch's logits) and disk (the final model and
    `checkpoints` checkpoints of weights and optimizer state, 4 + 8 bytes a parameter)."""
    train = steps * completions_per_step
    sampled = f"{train:,}" if max_rounds == 1 else f"{train:,} to {train * max_rounds:,}"
    text = f"{sampled} training completions of up to {completion_tokens} tokens"
    if eval_completions:
        text += f", {eval_completions:,} evaluation completions of up to {eval_tokens} tokens"
    if parameters:
        logits = 3 * 4 * micro_batch_rows * completion_tokens * (vocab_size or 0)
        text += f"; memory about {_gb(16 * parameters + logits)}"
        plural = "s" if checkpoints != 1 else ""
        kept = f" + {checkpoints} checkpoint{plural} with optimizer state" if checkpoints else ""
        text += f", disk about {_gb(4 * parameters * (1 + 3 * checkpoints))} (model{kept})"
    return text
