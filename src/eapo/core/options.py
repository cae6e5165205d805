"""A method's options: the hyperparameters it declares next to its registration (`eapo.core.methods`).

Each `MethodOption` becomes an `EAPOConfig` field, an `eapo train --NAME` flag and a row of the methods table in the
docs, all generated from the declaration. Its range rule is checked when the config is built and refused with one
line naming the option and the fix. A rule is one of:

- a comparison with a number or another option: `">= 0"`, `"> 0"`, `"< clip_cov_ub"`;
- an interval: `"(0, 1]"`, `"[0, 1)"`;
- a tuple of the allowed values: `("all", "kept")`;
- a function that raises `ValueError` for a bad value (its docstring's first line describes the valid values);
- None: any value of the option's type.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# A rule as a function: raises ValueError (its message says what is wrong) for a bad value.
RuleFn = Callable[[Any], Any]
Rule = str | tuple[Any, ...] | RuleFn | None

_COMPARE = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
_WORDS = {">=": "at least", ">": "above", "<=": "at most", "<": "below"}
_COMPARISON = re.compile(r"^(>=|>|<=|<)\s*(\S+)$")
_INTERVAL = re.compile(r"^([\[(])\s*([^,\s]+)\s*,\s*([^,\s]+)\s*([\])])$")
_TYPES = (bool, int, float, str)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class MethodOption:
    """One hyperparameter of a method: an `EAPOConfig` field and an `eapo train` flag of the same name.

    Attributes:
        name: the field's name, prefixed by the method's (`eapo_alpha`); unique over all methods and config fields.
        default: its default; its type (bool, int, float or str) is the field's, so write `1.0` for a float.
        rule: the values it accepts (see the module docstring).
        help: what it is, in a sentence (the flag's help and the table's meaning).
        note: appended to the fix when a value is refused, e.g. "the paper uses 0.2".
        warning: (a comparison, what follows) for a value that is valid but risky: a warning when the config is
            built, e.g. `("> eapo_phi", "shaped advantages can flip sign")`.
    """

    name: str
    default: Any
    rule: Rule
    help: str
    note: str = ""
    warning: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"option {self.name!r}: a name must be a Python identifier")
        if type(self.default) not in _TYPES:
            raise ValueError(f"option {self.name!r}: the default must be a bool, int, float or str")
        rule = self.rule
        if isinstance(rule, str) and not (_COMPARISON.match(rule) or self._interval()):
            raise ValueError(f"option {self.name!r}: rule {rule!r} is not a comparison ('>= 0') or interval ('(0, 1]')")
        if not (rule is None or isinstance(rule, (str, tuple)) or callable(rule)):
            raise ValueError(f"option {self.name!r}: rule must be a string, a tuple of values, a function or None")
        if self.warning is not None and not _COMPARISON.match(self.warning[0]):
            raise ValueError(f"option {self.name!r}: warning {self.warning[0]!r} is not a comparison ('> eapo_phi')")
        if self.problem(self.default, {}) is not None:
            raise ValueError(f"option {self.name!r}: the default {self.default!r} breaks its own rule {rule!r}")

    @property
    def type(self) -> type:
        return type(self.default)

    def references(self) -> tuple[str, ...]:
        """The other options the rule compares with (`"< clip_cov_ub"`: `("clip_cov_ub",)`)."""
        match = _COMPARISON.match(self.rule) if isinstance(self.rule, str) else None
        return (match.group(2),) if match and _number(match.group(2)) is None else ()

    def rule_text(self) -> str:
        """The valid values in words, for the help and the docs: `>= 0`, `in (0, 1]`, `'all' or 'kept'`."""
        rule = self.rule
        if rule is None:
            return f"any {self.type.__name__}"
        if isinstance(rule, tuple):
            return _alternatives(rule)
        if callable(rule):
            return (rule.__doc__ or rule.__name__).strip().splitlines()[0].rstrip(".")
        return rule if _COMPARISON.match(rule) else f"in {rule}"

    def field_help(self, method: str) -> str:
        """The `EAPOConfig` field's help (and `eapo train --NAME`'s)."""
        return f"{method}: {self.help.rstrip('.')}. Valid: {self.rule_text()}."

    def problem(self, value: Any, config: Any) -> str | None:
        """The one-line refusal of `value` (other options read from `config`), or None if the rule accepts it."""
        rule, note = self.rule, f" ({self.note})" if self.note else ""
        if isinstance(value, float) and not math.isfinite(value):  # inf passes a comparison, NaN none
            return f"{self.name}={value!r} is invalid: use a finite number"
        if rule is None:
            return None
        if isinstance(rule, tuple):
            return None if value in rule else f"{self.name}={value!r} is invalid: use {_alternatives(rule)}{note}"
        if callable(rule):
            try:
                rule(value)
            except ValueError as err:
                return f"{self.name}: {err}"
            return None
        match = _COMPARISON.match(rule)
        if match:
            op, bound = match.groups()
            limit = _number(bound)
            if limit is None:  # another option
                other = _get(config, bound)
                if other is None or _COMPARE[op](value, other):
                    return None
                return f"{self.name}={value!r} is invalid: it must be {_WORDS[op]} {bound}={other!r}{note}"
            return None if _COMPARE[op](value, limit) else f"{self.name}={value!r} is invalid: use a value {rule}{note}"
        low_closed, low, high, high_closed = self._interval()
        inside = (value >= low if low_closed else value > low) and (value <= high if high_closed else value < high)
        kind = "a fraction" if 0 <= low and high <= 1 else "a value"
        return None if inside else f"{self.name}={value!r} is invalid: use {kind} in {rule}{note}"

    def warning_for(self, value: Any, config: Any) -> str | None:
        """The warning `value` calls for (`warning`; other options read from `config`), or None."""
        if self.warning is None:
            return None
        condition, consequence = self.warning
        op, bound = _COMPARISON.match(condition).groups()
        limit = _number(bound)
        other = _get(config, bound) if limit is None else limit
        if other is None or not _COMPARE[op](value, other):
            return None
        shown = f"{bound}={other}" if limit is None else bound
        return f"{self.name}={value} {op} {shown}: {consequence}"

    def _interval(self) -> tuple[bool, float, float, bool] | None:
        match = _INTERVAL.match(self.rule) if isinstance(self.rule, str) else None
        if not match or _number(match.group(2)) is None or _number(match.group(3)) is None:
            return None
        return match.group(1) == "[", float(match.group(2)), float(match.group(3)), match.group(4) == "]"


def _get(config: Any, name: str) -> Any:
    return config.get(name) if isinstance(config, dict) else getattr(config, name, None)


def _alternatives(values: tuple[Any, ...]) -> str:
    shown = [repr(v) for v in values]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


def nonfinite_field(obj: Any) -> str | None:
    """The one-line refusal of the first float field of the dataclass `obj` that is NaN or infinite (inf passes
    most range rules, NaN every `not x < 0`), or None."""
    import dataclasses

    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name, None)
        if f.init and isinstance(value, float) and not math.isfinite(value):
            return f"{f.name}={value!r} is invalid: use a finite number"
    return None
