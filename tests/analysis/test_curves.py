"""eapo.analysis.curves: per-seed curves from run folders and their mean over seeds."""

from __future__ import annotations

import json
from pathlib import Path

from eapo.analysis.curves import mean_curve, seed_curves


def _metrics(run_dir: Path, rows: list[dict]) -> Path:
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run_dir


def test_a_step_without_the_quadrants_tokens_is_no_value_and_the_mean_takes_the_seeds_that_have_it(tmp_path):
    """A quadrant's entropy_mean is logged as 0 at a step where it had no token (token_share 0): with `present`
    that step is left out of the seed's curve, and `every=False` averages each step over the seeds that have it
    (the default keeps the steps every seed has)."""
    key, share = "quadrant/PHR/entropy_mean", "quadrant/PHR/token_share"
    a = _metrics(tmp_path / "a", [{"step": 1, key: 0.8, share: 0.1}, {"step": 2, key: 0.0, share: 0.0},
                                  {"step": 3, key: 0.4, share: 0.2}])  # fmt: skip
    b = _metrics(tmp_path / "b", [{"step": 1, key: 0.6, share: 0.3}, {"step": 2, key: 0.5, share: 0.1},
                                  {"step": 3}])  # fmt: skip
    assert seed_curves([a, b], "metrics.jsonl", key) == [{1: 0.8, 2: 0.0, 3: 0.4}, {1: 0.6, 2: 0.5}]
    curves = seed_curves([a, b], "metrics.jsonl", key, present=share)
    assert curves == [{1: 0.8, 3: 0.4}, {1: 0.6, 2: 0.5}]
    steps, values = mean_curve(curves)
    assert steps == [1] and values == [0.7]
    steps, values = mean_curve(curves, every=False)
    assert steps == [1, 2, 3] and values == [0.7, 0.5, 0.4]
    assert mean_curve([]) == ([], []) and mean_curve([], every=False) == ([], [])
