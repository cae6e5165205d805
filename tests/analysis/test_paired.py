"""The paired-difference figure (`eapo.analysis.paired`): which points it draws, from `comparison_row` rows."""

from __future__ import annotations

import math

import pytest

from eapo.analysis.paired import paired_points, plot_paired
from eapo.evaluation.stats import comparison_row, t975


def _rows():
    grpo = {0: {"avg@8": 0.30}, 1: {"avg@8": 0.50}, 2: {"avg@8": 0.40}}
    eapo = {0: {"avg@8": 0.35}, 1: {"avg@8": 0.52}, 2: {"avg@8": 0.48}}  # d = (0.05, 0.02, 0.08)
    one = {1: {"avg@8": 0.60}}  # one seed: a difference, no interval
    return [
        {"method": "grpo", **comparison_row(grpo, None, ["avg@8"])},
        {"method": "eapo", **comparison_row(eapo, grpo, ["avg@8"])},
        {"method": "dapo", **comparison_row(one, grpo, ["avg@8"])},
        {"method": "lone", **comparison_row({5: {"avg@8": 0.1}}, grpo, ["avg@8"])},  # no seed in common
    ]


def test_points_are_the_paired_differences():
    points = paired_points(_rows(), "method", "avg@8", "grpo")
    assert [name for name, _, _ in points] == ["eapo", "dapo"]  # not the baseline, not the unpaired one
    (_, mean, half), (_, one_mean, one_half) = points
    assert mean == pytest.approx(0.05) and half == pytest.approx(t975(2) * 0.03 / math.sqrt(3))
    assert one_mean == pytest.approx(0.10) and one_half is None


def test_plot_writes_a_figure_only_when_something_is_paired(tmp_path):
    assert plot_paired(tmp_path / "p.png", _rows(), "method", ["avg@8"], "grpo") == tmp_path / "p.png"
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    alone = [{"method": "grpo", **comparison_row({0: {"avg@8": 0.3}}, None, ["avg@8"])}]
    assert plot_paired(tmp_path / "none.png", alone, "method", ["avg@8"], "grpo") is None
    assert not (tmp_path / "none.png").exists()
