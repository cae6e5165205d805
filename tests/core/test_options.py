"""`MethodOption`: a method's hyperparameter declared with its registration; its range rule in words and as a check."""

from __future__ import annotations

import pytest

from eapo.core.options import MethodOption
from eapo.core.quadrants import parse_quadrants


def _quadrants(value):
    """comma-separated quadrants."""
    parse_quadrants(value)


@pytest.mark.parametrize(
    ("rule", "good", "bad", "message"),
    [
        (">= 0", [0.0, 3.0], -0.5, "x=-0.5 is invalid: use a value >= 0"),
        ("> 0", [1e-9], 0.0, "x=0.0 is invalid: use a value > 0"),
        ("< 1", [0.5], 1.0, "x=1.0 is invalid: use a value < 1"),
        ("(0, 1]", [1.0, 0.5], 0.0, "x=0.0 is invalid: use a fraction in (0, 1]"),
        ("[0, 1)", [0.0], 1.0, "x=1.0 is invalid: use a fraction in [0, 1)"),
        ("[1, 10]", [1.0, 10.0], 10.5, "x=10.5 is invalid: use a value in [1, 10]"),
        (("a", "b", "c"), ["a", "c"], "d", "x='d' is invalid: use 'a', 'b' or 'c'"),
        (_quadrants, ["PHR,NHR", "all"], "PXR", "x: unknown quadrant 'PXR'"),
    ],
)
def test_a_rule_accepts_its_values_and_refuses_others_with_one_line(rule, good, bad, message):
    option = MethodOption("x", good[0], rule, "An option.")
    assert all(option.problem(value, {}) is None for value in good)
    problem = option.problem(bad, {})
    assert problem.startswith(message) and len(problem.splitlines()) == 1


def test_a_rule_may_compare_with_another_option_and_warn():
    lower = MethodOption("lb", 1.0, "< ub", "Lower bound.", warning=("> half", "risky"))
    assert lower.references() == ("ub",) and lower.rule_text() == "< ub"
    assert lower.problem(1.0, {"ub": 2.0}) is None
    assert lower.problem(3.0, {"ub": 2.0}) == "lb=3.0 is invalid: it must be below ub=2.0"
    assert lower.warning_for(1.0, {"half": 0.5}) == "lb=1.0 > half=0.5: risky"
    assert lower.warning_for(0.1, {"half": 0.5}) is None


def test_the_note_follows_the_fix_and_the_help_names_method_and_rule():
    option = MethodOption("eapo_phi", 2.0, "> 0", "Clip divisor phi.", note="the paper uses 2.0")
    assert option.problem(-1.0, {}) == "eapo_phi=-1.0 is invalid: use a value > 0 (the paper uses 2.0)"
    assert option.field_help("eapo") == "eapo: Clip divisor phi. Valid: > 0."
    assert MethodOption("x", "a", ("a", "b"), "X.").rule_text() == "'a' or 'b'"
    assert MethodOption("x", 1.0, None, "X.").rule_text() == "any float"
    assert MethodOption("x", "PHR", _quadrants, "X.").rule_text() == "comma-separated quadrants"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("bad name", 1.0, None, "X."), "a Python identifier"),
        (("x", [1.0], None, "X."), "bool, int, float or str"),
        (("x", 1.0, "at least 0", "X."), "is not a comparison"),
        (("x", -1.0, ">= 0", "X."), "breaks its own rule"),
        (("x", 1.0, 3, "X."), "rule must be"),
    ],
)
def test_a_bad_declaration_fails_when_the_method_is_registered(args, message):
    with pytest.raises(ValueError, match=message):
        MethodOption(*args)
