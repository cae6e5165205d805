"""benchmarks/entropy_control.py: the positive control's pre-registered sequential rule and its table, on
hand-made run statistics (no training)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from eapo.evaluation.stats import paired_t_p_value

BENCH = Path(__file__).parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))  # entropy_control imports findings
_SPEC = importlib.util.spec_from_file_location("entropy_control", BENCH / "entropy_control.py")
control = sys.modules.setdefault("entropy_control", importlib.util.module_from_spec(_SPEC))
_SPEC.loader.exec_module(control)

GRPO = [0.060, 0.065, 0.070, 0.062, 0.068]
BONUS_UP = [0.050, 0.052, 0.049, 0.051, 0.048]  # entropy_coef 0.1: clearly more entropy
NOISE = [0.001, -0.002, 0.003, -0.001, 0.0]  # no effect


def _runs(shift: list[float]) -> dict[int, dict[str, float]]:
    return {s: {"entropy": g + d, "avg@64": 0.4, "pass@16": 0.7 + d, "pass@64": 0.8} for s, (g, d) in
            enumerate(zip(GRPO, shift, strict=True))}  # fmt: skip


def _names(variants) -> list[str]:
    return [v.name for v in variants]


def test_stage_one_is_grpo_and_each_ladders_strongest_setting():
    assert _names(control.next_variants({}, 5)) == ["grpo", "entropy_bonus-entropy_coef0.1", "eapo-eapo_alpha8"]
    partial = {"grpo": _runs([0.0] * 5), "entropy_bonus-entropy_coef0.1": dict(list(_runs(BONUS_UP).items())[:4])}
    assert _names(control.next_variants(partial, 5)) == ["entropy_bonus-entropy_coef0.1", "eapo-eapo_alpha8"]
    flags = control.ladder_variant("eapo", "8").flags
    assert flags == ("--method", "eapo", "--eapo_alpha", "8")


def test_a_ladder_goes_down_only_while_its_last_setting_differs_and_holm_spans_the_control():
    results = {"grpo": _runs([0.0] * 5), "entropy_bonus-entropy_coef0.1": _runs(BONUS_UP),
               "eapo-eapo_alpha8": _runs(NOISE)}  # fmt: skip
    tested = control.tested(results, 5)
    bonus, eapo = tested["entropy_bonus-entropy_coef0.1"], tested["eapo-eapo_alpha8"]
    assert bonus.mean == pytest.approx(0.05) and bonus.differs and not eapo.differs
    p_bonus, p_eapo = bonus.p, eapo.p
    assert p_bonus < p_eapo  # Holm over two: the smaller p doubled, the larger kept (at least the first)
    assert bonus.holm == pytest.approx(2 * p_bonus) and eapo.holm == pytest.approx(max(2 * p_bonus, p_eapo))
    import statistics

    assert p_eapo == pytest.approx(paired_t_p_value(statistics.fmean(NOISE), statistics.stdev(NOISE), 5))
    # entropy_bonus differs: its next weaker setting; eapo does not: its ladder stops
    assert _names(control.next_variants(results, 5)) == ["entropy_bonus-entropy_coef0.03"]
    results["entropy_bonus-entropy_coef0.03"] = _runs(NOISE)
    assert control.next_variants(results, 5) == []
    verdicts = control.ladder_verdicts(results, 5)
    assert verdicts["entropy_bonus"] == "differs from grpo down to entropy_coef 0.1"
    assert verdicts["eapo"].startswith("no setting differs from grpo (strongest eapo_alpha 8)")


def test_the_table_says_what_differs_and_never_writes_runs_csv(tmp_path):
    results = {"grpo": _runs([0.0] * 5), "entropy_bonus-entropy_coef0.1": _runs(BONUS_UP),
               "eapo-eapo_alpha8": _runs(NOISE)}  # fmt: skip
    written = control.write_tables(results, 5, tmp_path)
    assert sorted(p.name for p in written) == ["stress-control.csv", "stress-control.md"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stress-control.csv", "stress-control.md"]
    md = (tmp_path / "stress-control.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| entropy_bonus-entropy_coef0.1 |"))
    assert "| +0.0500 ± 0.0020 |" in row and "| yes |" in row and "| +0.050 ± 0.002 |" in row  # Δ pass@16 too
    assert "| no |" in next(line for line in md.splitlines() if line.startswith("| eapo-eapo_alpha8 |"))
    assert "(the ladder goes on: not final)" in md  # entropy_coef 0.03 is still to run
