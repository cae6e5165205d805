"""The registry of training methods (docs/method.md sections 7-8).

A method is one function plus one registration, which also declares the method's options (`MethodOption`: each
becomes an `EAPOConfig` field and an `eapo train` flag, with its default, help and range rule). The function
receives the whole generation batch (gathered over processes, so every statistic is exact per prompt) as a
`RolloutBatch` and the config, and returns the per-token advantages the clipped surrogate will use (and
optionally a loss mask that also changes the normaliser). A method may also replace the token loss (`token_loss`),
and names the GRPOConfig settings it implies (`preset`), e.g. DAPO's token-mean loss and clip-higher.

The registration declares what the method does, and the trainer and the config act on that declaration,
never on the method's name (`Method`): whether it returns a loss mask (`masks_tokens`), whether it trains
groups whose rewards are all equal (`signal_without_variance`, which rules out dynamic sampling), whether it
replaces the token loss (`token_loss`), which TRL settings follow from its options (`trl_settings`) and which
combinations of its options it refuses (`check`).

    @register_method("keep_even", summary="...", preset=DAPO_LOSS, masks_tokens=True,
                     options=(MethodOption("keep_even_scale", 1.0, ">= 0", "Scale of the kept tokens' advantage."),))
    def keep_even(batch: RolloutBatch, args) -> TokenUpdate:
        even = (torch.arange(batch.mask.shape[1]) % 2 == 0).expand_as(batch.mask)
        return TokenUpdate(args.keep_even_scale * batch.plain_advantages(), loss_mask=even & batch.mask.bool())

The help text of `eapo train` and the methods tables of README.md and docs/method.md are generated from this
registry: `python scripts/generate_docs.py` rewrites them (docs/method.md section 11).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from eapo.core.advantages import (
    broadcast_advantages,
    entroadv_advantages,
    shape_advantages,
    w_reinforce_advantages,
)
from eapo.core.losses import clip_cov_token_loss, kl_cov_token_loss
from eapo.core.masks import FORKING_SCOPES, forking_mask
from eapo.core.options import MethodOption
from eapo.core.quadrants import QUADRANTS, parse_quadrants, quadrant_mask


@dataclass
class RolloutBatch:
    """One generation batch, all processes' rows in order. `B` rows, `T` completion positions.

    Attributes:
        advantages: `(B,)` group-relative advantages `A` as TRL computed them.
        rewards: `(B,)` total (weighted) reward per completion, NaN if unscorable.
        entropy: `(B, T)` entropies `H` of the sampling distribution (temperature applied).
        token_logps: `(B, T)` `log pi_old(o_t)` of the sampled tokens.
        mask: `(B, T)` loss mask (completion mask times tool mask).
        group_index: `(B,)` prompt id of each row.
        entropy_mean, entropy_std: `(B,)` `mu_H(q)`, `sigma_H(q)` of each row's group.
        labels: `(B, T)` quadrant codes (`eapo.Quadrant`).
    """

    advantages: torch.Tensor
    rewards: torch.Tensor
    entropy: torch.Tensor
    token_logps: torch.Tensor
    mask: torch.Tensor
    group_index: torch.Tensor
    entropy_mean: torch.Tensor
    entropy_std: torch.Tensor
    labels: torch.Tensor

    def on_cpu(self) -> RolloutBatch:
        """A compact copy on the CPU, to keep between steps without holding GPU memory: `mask` as bool,
        `labels` as int8 (the codes are 0-4), every other tensor as it is."""
        fields = {f.name: getattr(self, f.name).detach().cpu() for f in dataclasses.fields(self)}
        fields["mask"] = fields["mask"].bool()
        fields["labels"] = fields["labels"].to(torch.int8)
        return RolloutBatch(**fields)

    def plain_advantages(self) -> torch.Tensor:
        """`A` broadcast to `(B, T)`, zero on padding."""
        return broadcast_advantages(self.advantages, self.mask)


@dataclass
class TokenUpdate:
    """What a method returns: `(B, T)` advantages and, optionally, a `(B, T)` bool loss mask.

    With a `loss_mask`, masked tokens are dropped from the loss *and* from its normaliser; to drop a
    token but keep it in the normaliser, zero its advantage instead.
    """

    advantages: torch.Tensor
    loss_mask: torch.Tensor | None = None
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)


AdvantageFn = Callable[[RolloutBatch, Any], TokenUpdate]
# (logps, old_logps, advantages, mask, args, generator) -> (per_token_loss, selected_mask)
TokenLossFn = Callable[..., tuple[torch.Tensor, torch.Tensor]]
# A declaration that may depend on the method's options: a constant, or a function of the config.
ArgsPredicate = bool | Callable[[Any], bool]


@dataclass(frozen=True)
class Method:
    """A registered method and what it declares; the trainer and the config read these, never the name.

    Attributes:
        dynamic_sampling: DAPO's dynamic sampling is on by default for it.
        token_loss: replaces TRL's token loss (TRL options that loss would drop are refused by the config).
        signal_without_variance: its advantages do not come from the group's reward variance, so a group whose
            rewards are all equal still trains (DAPO's dynamic sampling, which drops such groups, does not apply).
        masks_tokens: it may return `TokenUpdate.loss_mask` (for these options). TRL reads the loss mask before
            the loss forward, so such a method runs when the batch is generated, never inside the loss forward;
            a method that returns a mask without declaring it is an error, not a silent no-op.
        trl_settings: the GRPOConfig settings its options imply (e.g. Forking's `micro_batch` scope is TRL's
            `top_entropy_quantile`); set by the config, which refuses them from any other source.
        check: a combination of its options it refuses: returns the one-line problem and fix, or None.
        options: its hyperparameters (`MethodOption`): `EAPOConfig` fields and `eapo train` flags, checked
            by their range rules whatever the method.
    """

    name: str
    summary: str
    advantage_fn: AdvantageFn
    preset: Mapping[str, Any]
    dynamic_sampling: bool = False
    token_loss: TokenLossFn | None = None
    signal_without_variance: bool = False
    masks_tokens: ArgsPredicate = False
    trl_settings: Callable[[Any], Mapping[str, Any]] | None = None
    check: Callable[[Any], str | None] | None = None
    options: tuple[MethodOption, ...] = ()

    def returns_loss_mask(self, args: Any) -> bool:
        """Whether, with the options `args`, the method may return a loss mask (`masks_tokens`)."""
        return bool(self.masks_tokens(args) if callable(self.masks_tokens) else self.masks_tokens)

    def settings_for(self, args: Any) -> dict[str, Any]:
        """The GRPOConfig settings the method's options `args` imply (`trl_settings`)."""
        return dict(self.trl_settings(args)) if self.trl_settings is not None else {}

    def problem_with(self, args: Any) -> str | None:
        """What is wrong with the method's options `args` (`check`), or None."""
        return self.check(args) if self.check is not None else None


METHODS: dict[str, Method] = {}
# Called after every change of METHODS (`register_method`, `unregister_method`): EAPOConfig keeps its fields equal
# to the registered options. A listener refuses a registration by raising ValueError.
_LISTENERS: list[Callable[[], None]] = []

# GRPOConfig settings shared by the paper's DAPO-style runs: token-mean over the batch, clip-higher.
DAPO_LOSS: Mapping[str, Any] = {"loss_type": "dapo", "epsilon": 0.2, "epsilon_high": 0.28}


def register_method(
    name: str,
    *,
    summary: str,
    preset: Mapping[str, Any],
    dynamic_sampling: bool = False,
    token_loss: TokenLossFn | None = None,
    signal_without_variance: bool = False,
    masks_tokens: ArgsPredicate = False,
    trl_settings: Callable[[Any], Mapping[str, Any]] | None = None,
    check: Callable[[Any], str | None] | None = None,
    options: tuple[MethodOption, ...] = (),
) -> Callable[[AdvantageFn], AdvantageFn]:
    """Decorator registering an advantage function under `name` in `METHODS` (fields: see `Method`). A name or
    option name already taken (by a method or an `EAPOConfig` field) is a `ValueError`."""

    def decorator(fn: AdvantageFn) -> AdvantageFn:
        if name in METHODS:
            raise ValueError(f"method {name!r} is already registered")
        taken = {option.name: method.name for method in METHODS.values() for option in method.options}
        for option in options:
            if option.name in taken:
                owner = taken[option.name]
                raise ValueError(f"method {name!r}: option {option.name!r} is already declared by method {owner!r}")
            taken[option.name] = name
        METHODS[name] = Method(
            name,
            summary,
            fn,
            dict(preset),
            dynamic_sampling=dynamic_sampling,
            token_loss=token_loss,
            signal_without_variance=signal_without_variance,
            masks_tokens=masks_tokens,
            trl_settings=trl_settings,
            check=check,
            options=tuple(options),
        )
        try:
            _notify()
        except ValueError:
            del METHODS[name]
            _notify()
            raise
        return fn

    return decorator


def unregister_method(name: str) -> None:
    """Remove the method `name` and its options (its `EAPOConfig` fields and flags) from the registry."""
    get_method(name)
    del METHODS[name]
    _notify()


def on_registry_change(listener: Callable[[], None]) -> None:
    """Call `listener` now and after every registration or removal (`EAPOConfig` keeps its option fields so)."""
    _LISTENERS.append(listener)
    listener()


def _notify() -> None:
    for listener in _LISTENERS:
        listener()


def method_options() -> list[tuple[str, MethodOption]]:
    """(method name, option) of every registered option, in registration order."""
    return [(method.name, option) for method in METHODS.values() for option in method.options]


def options_of_other_methods(method: str, given: Any) -> list[tuple[str, str]]:
    """(option, its method) of each name in `given` that is another method's option: `method` does not read it
    (`--method grpo --eapo_alpha 0.5` trains plain GRPO)."""
    return [(option.name, owner) for owner, option in method_options() if owner != method and option.name in given]


def get_method(name: str) -> Method:
    """The registered method `name`; a `ValueError` listing the valid names otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}: valid methods are {', '.join(sorted(METHODS))}") from None


def _plain(batch: RolloutBatch, args: Any) -> TokenUpdate:
    return TokenUpdate(batch.plain_advantages())


register_method(
    "grpo",
    summary="GRPO: plain group-relative advantage, per-sequence mean then batch mean, clip 0.2.",
    preset={"loss_type": "grpo", "scale_rewards": "group", "epsilon": 0.2, "epsilon_high": None},
)(_plain)
# DAPO's soft overlong punishment: a buffer of the last 20% of the completion budget (the DAPO paper's
# 4,096 of 20,480 tokens), applied with TRL's own reward function (see `eapo.core.shaping`).
DAPO_OVERLONG: Mapping[str, Any] = {"overlong_buffer_ratio": 0.2}

register_method(
    "dapo",
    summary="DAPO: token-mean over the batch, clip-higher (0.2/0.28), dynamic sampling, overlong penalty.",
    preset={**DAPO_LOSS, **DAPO_OVERLONG},
    dynamic_sampling=True,
)(_plain)
register_method(
    "dr_grpo",
    summary="Dr. GRPO: no std normalisation of rewards, constant (max length) normaliser.",
    preset={"loss_type": "dr_grpo", "scale_rewards": "none"},
)(_plain)
register_method(
    "entropy_bonus",
    summary="Entropy regularisation: loss - entropy_coef * mean(H) (TRL's entropy_coef, default 0.001).",
    preset={**DAPO_LOSS, "entropy_coef": 1e-3},
)(_plain)


def _quadrant_list(value: str) -> None:
    """comma-separated quadrants among PHR, PLR, NLR, NHR, or 'all'."""
    parse_quadrants(value)


def _forking_at_loss_time(args: Any) -> bool:
    return args.forking_scope == "micro_batch"


def _forking_trl_settings(args: Any) -> Mapping[str, Any]:
    # TRL's own top_entropy_quantile masks each micro-batch by its current entropies, inside the loss.
    return {"top_entropy_quantile": args.forking_rho} if _forking_at_loss_time(args) else {}


def _forking_check(args: Any) -> str | None:
    if _forking_at_loss_time(args) and args.forking_normalizer == "kept":
        return (
            "forking_scope='micro_batch' uses TRL's top_entropy_quantile, which normalises over all tokens: "
            "use forking_normalizer='all', or forking_scope='batch' or 'sequence'"
        )
    return None


@register_method(
    "forking",
    summary="Forking tokens (80/20): loss only on tokens in the top forking_rho fraction by entropy.",
    preset=DAPO_LOSS,
    masks_tokens=lambda args: args.forking_normalizer == "kept" and not _forking_at_loss_time(args),
    trl_settings=_forking_trl_settings,
    check=_forking_check,
    options=(
        MethodOption("forking_rho", 0.2, "(0, 1]", "Fraction of highest-entropy tokens kept."),
        MethodOption(
            "forking_scope",
            "batch",
            (*FORKING_SCOPES, "micro_batch"),
            "Threshold scope: 'batch' (whole generation batch, all processes), 'sequence' (per completion) or "
            "'micro_batch' (TRL's top_entropy_quantile: per micro-batch, current entropies).",
        ),
        MethodOption(
            "forking_normalizer",
            "all",
            ("all", "kept"),
            "Loss normaliser: 'all' valid tokens (masked tokens count as 0) or 'kept' tokens.",
        ),
    ),
)
def forking(batch: RolloutBatch, args: Any) -> TokenUpdate:
    adv = batch.plain_advantages()
    if _forking_at_loss_time(args):  # delegated to TRL's top_entropy_quantile at loss time
        return TokenUpdate(adv)
    keep = forking_mask(batch.entropy, batch.mask, rho=args.forking_rho, scope=args.forking_scope)
    n_valid = batch.mask.sum().clamp(min=1)
    metrics = {"forking/kept_share": keep.sum() / n_valid}
    if args.forking_normalizer == "kept":
        return TokenUpdate(adv, loss_mask=keep, metrics=metrics)
    return TokenUpdate(adv * keep, metrics=metrics)


@register_method(
    "entroadv",
    summary="EntroAdv: A + min(entroadv_alpha * H, |A| / entroadv_kappa).",
    preset=DAPO_LOSS,
    options=(
        MethodOption("entroadv_alpha", 0.4, ">= 0", "Coefficient a in min(a*H, |A|/kappa)."),
        MethodOption(
            "entroadv_kappa", 2.0, "> 0", "Cap divisor kappa (> 1 keeps the sign).", note="the paper uses 2.0"
        ),
    ),
)
def entroadv(batch: RolloutBatch, args: Any) -> TokenUpdate:
    return TokenUpdate(
        entroadv_advantages(
            batch.advantages, batch.entropy, batch.mask, a=args.entroadv_alpha, kappa=args.entroadv_kappa
        )
    )


@register_method(
    "w_reinforce",
    summary="W-REINFORCE: no baseline; +w_reinforce_lambda for correct, -1 for wrong completions.",
    preset=DAPO_LOSS,
    signal_without_variance=True,
    options=(MethodOption("w_reinforce_lambda", 0.1, ">= 0", "Advantage of correct samples."),),
)
def w_reinforce(batch: RolloutBatch, args: Any) -> TokenUpdate:
    return TokenUpdate(w_reinforce_advantages(batch.rewards, batch.mask, lam=args.w_reinforce_lambda))


def _kl_cov_loss(logps, old_logps, advantages, mask, args, generator):
    return kl_cov_token_loss(logps, old_logps, advantages, mask, k_ratio=args.kl_cov_ratio, coef=args.kl_cov_coef)


def _clip_cov_loss(logps, old_logps, advantages, mask, args, generator):
    eps_high = args.epsilon_high if args.epsilon_high is not None else args.epsilon
    return clip_cov_token_loss(
        logps,
        old_logps,
        advantages,
        mask,
        epsilon_low=args.epsilon,
        epsilon_high=eps_high,
        k_ratio=args.clip_cov_ratio,
        cov_lb=args.clip_cov_lb,
        cov_ub=args.clip_cov_ub,
        generator=generator,
    )


register_method(
    "kl_cov",
    summary="KL-Cov: top kl_cov_ratio tokens by cov(A, log pi) get -A r + kl_cov_coef |log r|, others -A r.",
    preset=DAPO_LOSS,
    token_loss=_kl_cov_loss,
    options=(
        MethodOption("kl_cov_ratio", 2e-3, "(0, 1]", "Fraction of tokens penalised (the paper's 7B setting: 2e-3)."),
        MethodOption("kl_cov_coef", 1.0, ">= 0", "Weight c of |log r|."),
    ),
)(_plain)
register_method(
    "clip_cov",
    summary="Clip-Cov: a random clip_cov_ratio of tokens with clip_cov_lb < cov < clip_cov_ub get no gradient.",
    preset=DAPO_LOSS,
    token_loss=_clip_cov_loss,
    options=(
        MethodOption("clip_cov_ratio", 2e-4, "(0, 1]", "Fraction of tokens detached."),
        MethodOption("clip_cov_lb", 1.0, "< clip_cov_ub", "Lower covariance bound."),
        MethodOption("clip_cov_ub", 5.0, None, "Upper covariance bound."),
    ),
)(_plain)


@register_method(
    "eapo",
    summary="EAPO: A' = A + eapo_alpha * sign(A) * clip(z_H, -|A|/eapo_phi, |A|/eapo_phi), DAPO machinery.",
    preset=DAPO_LOSS,
    dynamic_sampling=True,
    options=(
        MethodOption(
            "eapo_alpha",
            0.2,
            ">= 0",
            "Shaping strength alpha (0 turns shaping off; the paper uses 0.2).",
            note="0 turns shaping off; the paper uses 0.2",
            warning=("> eapo_phi", "shaped advantages can flip sign"),
        ),
        MethodOption(
            "eapo_phi", 2.0, "> 0", "Clip divisor phi: |c| <= |A|/phi (the paper uses 2).", note="the paper uses 2.0"
        ),
        MethodOption("eapo_eps", 1e-6, "> 0", "eps added to sigma_H(q) in the entropy z-score.", note="e.g. 1e-6"),
        MethodOption(
            "eapo_shaped_quadrants",
            ",".join(q.name for q in QUADRANTS),
            _quadrant_list,
            "Quadrants whose tokens get the shaped advantage; the others keep A ('EAPO w/o X').",
        ),
    ),
)
def eapo(batch: RolloutBatch, args: Any) -> TokenUpdate:
    plain = batch.plain_advantages()
    shaped = shape_advantages(
        batch.advantages,
        batch.entropy,
        batch.mask,
        batch.entropy_mean,
        batch.entropy_std,
        alpha=args.eapo_alpha,
        phi=args.eapo_phi,
        eps=args.eapo_eps,
    )
    # "EAPO without quadrant X": X's tokens keep the plain advantage (docs/method.md section 7).
    return TokenUpdate(torch.where(quadrant_mask(batch.labels, args.eapo_shaped_quadrants), shaped, plain))
