"""`EAPOConfig`: TRL's `GRPOConfig` plus the method, EAPO's and the baselines' hyperparameters.

The methods' hyperparameters are not written here: each is a `MethodOption` declared with its method's registration
(`eapo.core.methods`), and `EAPOConfig` has one field per registered option (with its default, help and range rule),
kept so when a method is registered or removed later (`_sync_option_fields`).
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from dataclasses import dataclass, field
from typing import Any

from trl import GRPOConfig

from eapo.core.methods import METHODS, get_method, method_options, on_registry_change
from eapo.core.options import nonfinite_field
from eapo.core.quadrants import QUADRANTS, parse_quadrants
from eapo.errors import ConfigError

ALL_QUADRANTS = ",".join(q.name for q in QUADRANTS)
COV_LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")
REWARD_ERROR_POLICIES = ("raise", "zero")


# (field, check, what to do instead) for every EAPOConfig field with a restricted range or set of values, apart from
# the methods' options (their rules are declared with them: `MethodOption.rule`).
_FIELD_RULES: tuple[tuple[str, Any, str], ...] = (
    ("entropy_stats_scope", lambda x: x in ("group", "batch"), "use 'group' or 'batch'"),
    ("dynamic_sampling_max_rounds", lambda x: x >= 1, "use at least 1"),
    ("overlong_buffer_ratio", lambda x: 0.0 <= x < 1.0, "use a fraction in [0, 1) (0 turns it off; DAPO: 0.2)"),
    ("num_generations", lambda x: x is None or x >= 2, "use at least 2 completions per prompt (a group's baseline)"),
    ("reward_error_policy", lambda x: x in REWARD_ERROR_POLICIES, "use 'raise' (stop, naming the sample) or 'zero'"),
    # TRL's and transformers' options they accept unchecked (a sampler or optimizer that fails at the first step,
    # or trains on nothing)
    ("temperature", lambda x: x > 0, "use a value > 0 (1.0 samples the policy as it is)"),
    ("top_p", lambda x: 0 < x <= 1, "use a fraction in (0, 1] (1.0 turns it off)"),
    ("top_k", lambda x: x is None or x >= 0, "use a value >= 0 (0 turns it off)"),
    ("min_p", lambda x: x is None or 0 <= x <= 1, "use a fraction in [0, 1], or leave it out"),
    ("repetition_penalty", lambda x: x > 0, "use a value > 0 (1.0 turns it off)"),
    ("beta", lambda x: x >= 0, "use a value >= 0 (0: no KL term)"),
    ("epsilon", lambda x: x > 0, "use a value > 0 (the clip range; GRPO: 0.2)"),
    ("epsilon_high", lambda x: x is None or x > 0, "use a value > 0 (DAPO: 0.28), or leave it out"),
    ("weight_decay", lambda x: x >= 0, "use a value >= 0"),
    ("adam_beta1", lambda x: 0 <= x < 1, "use a fraction in [0, 1) (default 0.9)"),
    ("adam_beta2", lambda x: 0 <= x < 1, "use a fraction in [0, 1) (default 0.999)"),
    ("adam_epsilon", lambda x: x > 0, "use a value > 0 (default 1e-08)"),
    ("max_grad_norm", lambda x: x is None or x >= 0, "use a value >= 0 (0 turns clipping off)"),
    ("num_train_epochs", lambda x: x > 0, "use a value > 0 (max_steps, when set, decides the length)"),
    ("warmup_steps", lambda x: x >= 0, "use a value >= 0 (steps, or a fraction of the steps below 1)"),
    ("logging_steps", lambda x: x > 0, "use a value > 0 (steps, or a fraction of the steps below 1)"),
)


def _help(text: str) -> dict[str, str]:
    return {"help": text}


def _records_explicit_fields(cls: type) -> type:
    """Wrap the dataclass `__init__` of `cls` so that each instance remembers the fields its caller passed
    (by keyword or by position), before `__post_init__` runs: presets apply only to the others."""
    init = cls.__init__
    names = [f.name for f in dataclasses.fields(cls) if f.init]

    @functools.wraps(init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        object.__setattr__(self, "_explicit_fields", frozenset(names[: len(args)]) | frozenset(kwargs))
        init(self, *args, **kwargs)

    cls.__init__ = __init__
    return cls


@dataclass
class EAPOConfig(GRPOConfig):
    """Configuration of `EAPOTrainer`: every `GRPOConfig` field, plus the fields below, plus one field per option of
    every registered method (`eapo.core.methods.method_options()`: `eapo_alpha`, `forking_rho`, ...).

    `method` picks a registered method (`eapo.METHODS`). Each method names the settings it implies (its
    preset, e.g. `loss_type="dapo"`, `epsilon_high=0.28` for DAPO and EAPO). A preset value is applied
    only to fields the caller did not pass to the constructor (`explicit_fields`), so anything you pass
    wins, even a value equal to TRL's default (`method="grpo", loss_type="dapo"` keeps `"dapo"`). Set
    `apply_method_preset=False` to keep every field exactly as given. The applied values are recorded in
    `applied_preset`.

    Copies: `copy.deepcopy` and pickling keep `explicit_fields` and `applied_preset` as they are.
    `dataclasses.replace(config, ...)` and `EAPOConfig(**config.to_dict())` pass every field, so the copy
    has exactly the source's resolved values (plus the changes) and every field counts as explicit: no
    preset is applied again. To switch `method` and get the new method's preset, build a new config
    from the fields you chose.
    """

    method: str = field(default="eapo", metadata=_help(f"Training method, one of: {', '.join(sorted(METHODS))}."))
    apply_method_preset: bool = field(
        default=True,
        metadata=_help(
            "Apply the method's GRPOConfig settings (loss_type, clip range, ...) to fields left at default."
        ),
    )
    quadrants: str = field(
        default=ALL_QUADRANTS,
        metadata=_help("Train only on tokens of these quadrants (comma-separated PHR,PLR,NLR,NHR or 'all')."),
    )
    entropy_stats_scope: str = field(
        default="group",
        metadata=_help("Scope of mu_H, sigma_H: 'group' (per prompt, the paper's) or 'batch' (whole batch)."),
    )
    quadrant_metrics: bool = field(
        default=True, metadata=_help("Log per-quadrant token share, entropy, |A| and gradient share every step.")
    )
    dynamic_sampling: bool | None = field(
        default=None,
        metadata=_help(
            "DAPO dynamic sampling: drop groups whose rewards are all equal and sample new prompts until the "
            "batch is full. Default: on for the methods that use it in the paper (dapo, eapo), off otherwise."
        ),
    )
    dynamic_sampling_max_rounds: int = field(
        default=8,
        metadata=_help(
            "Dynamic sampling: most generation rounds per batch; if the batch is still not full then, it "
            "is topped up with zero-advantage groups (no gradient) and the shortfall is logged."
        ),
    )
    overlong_buffer_ratio: float = field(
        default=0.0,
        metadata=_help(
            "DAPO's soft overlong punishment (TRL's get_soft_overlong_punishment, added to the rewards): the "
            "last round(ratio * max_completion_length) tokens of the budget are the buffer L_cache, a completion "
            "of length L in it gets -(L - (max_completion_length - L_cache)) / L_cache, -1 at the budget. "
            "0 = off (the default); the dapo preset sets 0.2 (the DAPO paper's 4,096 of 20,480 tokens)."
        ),
    )
    reward_error_policy: str = field(
        default="raise",
        metadata=_help(
            "A reward function that raises, returns NaN/inf or the wrong number of values: 'raise' stops with "
            "an error naming the function and the sample; 'zero' scores such samples 0 and counts them in "
            "the metric rewards/invalid_count."
        ),
    )

    def __post_init__(self) -> None:
        spec = get_method(self.method)
        self.applied_preset: dict[str, Any] = {}
        if self.apply_method_preset:
            for name, value in spec.preset.items():
                if not self._is_explicit(name) and getattr(self, name) != value:
                    setattr(self, name, value)
                    self.applied_preset[name] = value
        if self.dynamic_sampling is None:
            self.dynamic_sampling = spec.dynamic_sampling
        self._check_eapo_fields()
        for name, value in spec.settings_for(self).items():  # e.g. Forking at loss time: TRL's top_entropy_quantile
            current = getattr(self, name)
            if current != value and current != EAPOConfig.__dataclass_fields__[name].default:
                raise ConfigError(
                    f"{name}={current} would be replaced by method {self.method}'s own setting ({value}, from its "
                    f"options): leave {name} out and set the method's option (see `eapo methods`)"
                )
            setattr(self, name, value)
        # A copy (dataclasses.replace, a to_dict() round trip) passes both of these as TRL resolved them,
        # which TRL refuses: derive one from the other and refuse only when they disagree.
        both = self.steps_per_generation is not None and self.generation_batch_size is not None
        given, self.generation_batch_size = self.generation_batch_size, None if both else self.generation_batch_size
        super().__post_init__()
        if both and self.generation_batch_size != given:
            raise ConfigError(
                f"generation_batch_size={given} disagrees with steps_per_generation={self.steps_per_generation} "
                f"(which gives {self.generation_batch_size}): set only one of them"
            )
        self._check_combinations()

    def _check_eapo_fields(self) -> None:
        if (problem := nonfinite_field(self)) is not None:
            raise ConfigError(problem)
        options = [option for _, option in method_options()]
        for name in ("quadrants", *(o.name for o in options if o.type is str)):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):  # accept a list from Python or YAML
                setattr(self, name, ",".join(str(v) for v in value))
        try:
            parse_quadrants(self.quadrants)
        except ValueError as err:
            raise ConfigError(f"quadrants: {err}") from None
        for option in options:  # every method's options, whatever the method: each is a field of every config
            problem = option.problem(getattr(self, option.name), self)
            if problem:
                raise ConfigError(problem)
        for name, is_valid, fix in _FIELD_RULES:
            if not is_valid(getattr(self, name)):
                raise ConfigError(f"{name}={getattr(self, name)!r} is invalid: {fix}")
        for option in options:
            warning = option.warning_for(getattr(self, option.name), self)
            if warning:
                warnings.warn(warning, stacklevel=3)

    def _check_combinations(self) -> None:
        spec = get_method(self.method)
        problem = spec.problem_with(self)
        if problem:
            raise ConfigError(problem)
        if self.top_entropy_quantile < 1.0 and "top_entropy_quantile" not in spec.settings_for(self):
            sets_it = ", ".join(sorted(m.name for m in METHODS.values() if m.trl_settings is not None))
            raise ConfigError(
                f"top_entropy_quantile={self.top_entropy_quantile} masks tokens on top of method={self.method!r}: "
                f"use a method that sets it from its own options ({sets_it}), or leave top_entropy_quantile at 1.0"
            )
        if self.dynamic_sampling and spec.signal_without_variance:
            raise ConfigError(
                f"method={self.method!r} trains groups whose rewards are all equal, which dynamic sampling drops "
                "(and its filler rows would leave the normaliser): set dynamic_sampling=False"
            )
        if spec.token_loss is not None:
            problems = []
            if self.loss_type not in COV_LOSS_TYPES:
                problems.append(f"loss_type={self.loss_type!r} (use one of {', '.join(COV_LOSS_TYPES)})")
            if self.importance_sampling_level != "token":
                problems.append("importance_sampling_level must be 'token'")
            if self.beta != 0.0:
                problems.append("beta must be 0 (no KL-to-reference term)")
            if self.entropy_coef != 0.0 or self.use_adaptive_entropy:
                problems.append("the entropy bonus must be off (entropy_coef=0)")
            if self.delta is not None:
                problems.append("TRL's two-sided clipping must be off (delta=None)")
            if self.off_policy_mask_threshold is not None:
                problems.append("TRL's off-policy sequence mask must be off (off_policy_mask_threshold=None)")
            if problems:
                raise ConfigError(f"method={self.method!r} replaces the token loss and needs: " + "; ".join(problems))

    @property
    def explicit_fields(self) -> frozenset[str]:
        """Names of the fields the caller passed to the constructor (by keyword or position)."""
        return getattr(self, "_explicit_fields", frozenset())

    def _is_explicit(self, name: str) -> bool:
        explicit = getattr(self, "_explicit_fields", None)
        if explicit is None:  # a dataclass subclass with its own generated __init__: fall back to defaults
            return getattr(self, name) != EAPOConfig.__dataclass_fields__[name].default
        return name in explicit

    @property
    def quadrant_set(self) -> tuple[Any, ...]:
        """The quadrants trained on, as `Quadrant`s."""
        return parse_quadrants(self.quadrants)

    @classmethod
    def from_grpo_config(cls, config: GRPOConfig, method: str = "eapo", **fields: Any) -> EAPOConfig:
        """An `EAPOConfig` for `method` with the fields of a TRL `config` that differ from `GRPOConfig`'s defaults
        (and `fields`); the method's preset fills every other field. (`EAPOConfig(**config.to_dict(), ...)` passes
        every field, so no preset would apply.) A field set to a value equal to TRL's default counts as unset."""
        defaults = {f.name: _default_of(f) for f in dataclasses.fields(GRPOConfig) if f.init}
        changed = {k: getattr(config, k) for k, v in defaults.items() if _plain(getattr(config, k)) != _plain(v)}
        return cls(**{**changed, "method": method, **fields})

    def resolved(self) -> dict[str, Any]:
        """The config as a plain dict (as written to a run folder), with the applied preset."""
        out = self.to_dict()
        out["applied_preset"] = dict(self.applied_preset)
        return out


def _default_of(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _plain(value: Any) -> Any:
    """A default as `to_dict()` writes it (enums as their values)."""
    return getattr(value, "value", value)


# Rebuilding the dataclass regenerates these; dataclass() leaves in place whatever the class already defines.
_GENERATED = ("__init__", "__repr__", "__eq__", "__match_args__", "__replace__")


def _sync_option_fields(cls: type = EAPOConfig) -> None:
    """Give `cls` exactly one field per registered method option (`method_options()`), after the fields written
    above, and rebuild its dataclass methods (`__init__`, ...) in place, so that `EAPOConfig(NAME=...)`, YAML and
    `--NAME` work for a method registered at any time. An option named like another field is a `ValueError`."""
    options = {option.name: (method, option) for method, option in method_options()}
    own = cls.__dict__["__annotations__"]
    before = cls.__dict__.get("_option_fields")  # None before the first call
    if before == options:
        return
    before = before or {}
    for name in before.keys() - options.keys():
        del own[name]
        if name in cls.__dict__:
            delattr(cls, name)
    clash = sorted(n for n in options.keys() - before.keys() if n in cls.__dataclass_fields__)
    if clash:
        raise ValueError(f"method option {clash[0]!r} is already a field of {cls.__name__}: rename it")
    for f in cls.__dataclass_fields__.values():  # the written fields keep their Field (help, default)
        if f.name in own and f.name not in options:
            setattr(cls, f.name, f)
    for name, (method, option) in options.items():
        own[name] = option.type
        setattr(cls, name, field(default=option.default, metadata=_help(option.field_help(method))))
    cls.method = field(default="eapo", metadata=_help(f"Training method, one of: {', '.join(sorted(METHODS))}."))
    for name in _GENERATED:
        if name in cls.__dict__:
            delattr(cls, name)
    dataclass(cls)
    _records_explicit_fields(cls)
    cls._option_fields = options


on_registry_change(_sync_option_fields)
