"""benchmarks/entropy_footing.py: eapo's and grpo's entropy over every completion generated, on hand-made run folders
(no training): the final-entropy window, the paired test with Holm over the two settings, the verdicts and the
selection figure."""

from __future__ import annotations

import importlib.util
import json
import statistics
import sys
from pathlib import Path

import pytest

from eapo.evaluation import stats

BENCH = Path(__file__).parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))  # entropy_footing imports findings
_SPEC = importlib.util.spec_from_file_location("entropy_footing", BENCH / "entropy_footing.py")
footing = sys.modules.setdefault("entropy_footing", importlib.util.module_from_spec(_SPEC))
_SPEC.loader.exec_module(footing)


def _run(run_dir: Path, generated: float, kept: float, steps: int = 30) -> None:
    """A finished run whose last 10 steps log `generated` and `kept` (the 20 before them 1.0 and 2.0: outside the
    window)."""
    run_dir.mkdir(parents=True)
    lines = [{"step": s, "loss": 0.1, footing.GENERATED: 1.0, footing.ENTROPY_KEY: 2.0} for s in range(1, steps - 9)]
    lines += [{"step": s, "loss": 0.1, footing.GENERATED: generated, footing.ENTROPY_KEY: kept}
              for s in range(steps - 9, steps + 1)]  # fmt: skip
    (run_dir / "metrics.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    (run_dir / "eval.json").write_text("{}")


GRPO = [0.100, 0.105, 0.098, 0.102, 0.101]


def _write(root: Path, setting: str, eapo_shift: list[float], selection: float) -> None:
    for seed, (g, d) in enumerate(zip(GRPO, eapo_shift, strict=True)):
        _run(root / setting / f"grpo-seed{seed}", g, g)  # no selection: kept = generated
        _run(root / setting / f"eapo-seed{seed}", g + d, g + d + selection)


def test_footing_table_pairs_by_seed_and_corrects_over_the_settings(tmp_path):
    lower = [-0.012, -0.010, -0.013, -0.011, -0.012]  # default: eapo generates less entropy than grpo
    noise = [0.002, -0.003, 0.001, 0.0, -0.001]  # stress: no difference
    _write(tmp_path, "default", lower, selection=0.012)
    _write(tmp_path, "stress", noise, selection=0.005)
    (tmp_path / "stress" / "eapo-seed9").mkdir()  # unfinished: left out
    _run(tmp_path / "default" / "grpo-seed7", 0.5, 0.5)  # no eapo seed 7: in no pair, nor in the means
    results = footing.collect(tmp_path)
    assert results["default"]["eapo"][0] == pytest.approx({"generated": 0.088, "kept": 0.100, "steps": 30.0})
    rows = {row["setting"]: row for row in footing.footing_rows(results)}
    p = {s: stats.paired_t_p_value(statistics.fmean(d), statistics.stdev(d), 5) for s, d in
         (("default", lower), ("stress", noise))}  # fmt: skip
    holm = stats.holm_adjusted([p["default"], p["stress"]])
    assert rows["default"]["d"].mean == pytest.approx(-0.0116) and rows["default"]["holm"] == pytest.approx(holm[0])
    assert rows["stress"]["holm"] == pytest.approx(holm[1])
    assert rows["default"]["verdict"] == "fails" and rows["stress"]["verdict"] == "not resolved"
    # the selection within eapo: kept - generated, +0.012 on every seed; section 3's measure: kept - kept
    assert rows["default"]["selection"].mean == pytest.approx(0.012) and rows["default"]["selection"].half < 1e-9
    assert rows["default"]["section3"].mean == pytest.approx(-0.0116 + 0.012)
    written = footing.write_tables(results, tmp_path / "docs")
    table = written[0].read_text()
    assert "| default | 5 | 0.1012 | 0.0896 | -0.0116 ± 0.0014 |" in table and "| **fails** |" in table
    assert "| +0.0120 ± 0.0000 | +0.0004 ± 0.0014 |" in table
    assert written[1].read_text().count("\n") == 1 + 21  # header + 2 settings x 2 variants x 5 seeds + seed 7


def test_a_run_without_the_generated_entropy_is_named(tmp_path, capsys):
    run = tmp_path / "default" / "eapo-seed0"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text(json.dumps({"step": 1, footing.ENTROPY_KEY: 0.1}) + "\n")
    (run / "eval.json").write_text("{}")
    with pytest.raises(ValueError, match="no step logs entropy/generated_mean"):
        footing.collect(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        footing.main(["tables", "--runs", str(tmp_path), "--docs", str(tmp_path / "docs")])
    assert exit_.value.code == 2 and not (tmp_path / "docs").exists()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "eapo-seed0: no step logs entropy/generated_mean" in err
