"""benchmarks/findings.py: the paper's claims as one-sided tests over seeds, on hand-made run statistics and a
hand-made run folder (the verdict rule itself is tested in tests/evaluation/test_stats.py)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

from eapo.evaluation import stats

_SPEC = importlib.util.spec_from_file_location("findings", Path(__file__).parents[2] / "benchmarks" / "findings.py")
findings = sys.modules.setdefault("findings", importlib.util.module_from_spec(_SPEC))  # dataclasses look it up
_SPEC.loader.exec_module(findings)


def _runs(values: dict[str, list[dict[str, float]]]) -> dict[str, dict[int, dict[str, float]]]:
    return {variant: dict(enumerate(by_seed)) for variant, by_seed in values.items()}


START = {"before_avg": 0.30, "before_pass16": 0.80, "before_pass64": 0.90}
# grpo: entropy ratios 0.30, 0.35, 0.40 (mean 0.35 ± 4.303 * 0.05 / sqrt 3 = ± 0.124: upper end 0.474 < 0.5)
GRPO = [
    {"entropy_ratio": 0.30, "entropy_last": 0.060, "pass16": 0.70, "pass64": 0.80, "avg": 0.40, **START},
    {"entropy_ratio": 0.35, "entropy_last": 0.065, "pass16": 0.69, "pass64": 0.78, "avg": 0.41, **START},
    {"entropy_ratio": 0.40, "entropy_last": 0.070, "pass16": 0.71, "pass64": 0.79, "avg": 0.39, **START},
]
# eapo: collapses too (ratios 0.40, 0.41, 0.42) though it keeps a little more entropy than grpo on each seed
EAPO = [
    {"entropy_ratio": 0.40, "entropy_last": 0.070, "pass16": 0.70, "pass64": 0.80, "avg": 0.45},
    {"entropy_ratio": 0.41, "entropy_last": 0.075, "pass16": 0.69, "pass64": 0.78, "avg": 0.47},
    {"entropy_ratio": 0.42, "entropy_last": 0.081, "pass16": 0.71, "pass64": 0.80, "avg": 0.44},
]
DAPO = [{"avg": 0.46, "pass64": 0.79}, {"avg": 0.45, "pass64": 0.80}, {"avg": 0.47, "pass64": 0.79}]


def _by_name(claims):
    return {c.name: c for c in claims}


def test_claims_verdicts_on_hand_made_statistics():
    claims = _by_name(findings.paper_claims(_runs({"grpo": GRPO, "eapo": EAPO, "dapo": DAPO})))
    collapse = claims["Plain GRPO collapses entropy and loses pass@k at large k"]
    # entropy ratio - 0.5: (-0.20, -0.15, -0.10); pass@16 - 0.80: (-0.10, -0.11, -0.09); pass@64 - 0.90: all below
    assert [p.differences() for p in collapse.parts][0] == pytest.approx([-0.20, -0.15, -0.10])
    half = stats.t975(2) * 0.05 / math.sqrt(3)
    assert stats.difference_statistics(collapse.parts[0].differences()).half == pytest.approx(half)
    assert collapse.verdict == stats.HOLDS
    # eapo keeps more entropy than grpo (+0.010, +0.010, +0.011) but still collapses: the claim fails
    stable = claims["EAPO keeps entropy stable where GRPO collapses it"]
    assert [stats.verdict(stats.difference_statistics(p.differences()), p.direction) for p in stable.parts] == [
        stats.FAILS,
        stats.HOLDS,
    ]
    assert stable.verdict == stats.FAILS
    # avg@64 eapo - grpo: (0.05, 0.06, 0.05) resolved above 0; eapo - dapo: (-0.01, 0.02, -0.03) not resolved
    assert claims["EAPO beats grpo (avg@64)"].verdict == stats.HOLDS
    assert claims["EAPO beats dapo (avg@64)"].verdict == stats.NOT_RESOLVED
    # pass@64 eapo - grpo: (0, 0, 0.01): not resolved, never "holds" from a zero difference
    assert claims["EAPO beats grpo (pass@64)"].verdict == stats.NOT_RESOLVED


def test_claims_pair_by_seed_and_wait_for_missing_runs():
    # dapo has no seed 1: the pairing uses seeds 0 and 2 only, matched by seed and not by position
    dapo = {0: {"avg": 0.40}, 2: {"avg": 0.30}}
    runs = _runs({"grpo": GRPO, "eapo": EAPO}) | {"dapo": dapo}
    part = _by_name(findings.paper_claims(runs))["EAPO beats dapo (avg@64)"].parts[0]
    assert part.differences() == pytest.approx([0.05, 0.14])
    text = findings.claims_markdown("stress", findings.paper_claims(runs))
    assert "| EAPO beats dapo (avg@64) | **not resolved** | eapo: avg@64 | 0.453 ± 0.038 | dapo, same seed |" in text
    # d = (0.05, 0.14): sd 0.0636, half 12.71 * 0.0636 / sqrt 2 = 0.572; seeds needed: t_{0.975,n-1} * 0.0636 /
    # sqrt(n) < 0.095 first at n = 5 (2.776 * 0.0636 / 2.236 = 0.079; n = 4: 3.182 * 0.0636 / 2 = 0.101)
    assert "+0.095 ± 0.572 | 2 | not resolved | 5 |" in text
    # the quadrant and alpha claims need runs that do not exist: listed as not measured, no verdict row
    assert "| PLR collapses" not in text and "Not measured yet" in text and "PLR collapses entropy" in text


def test_a_claims_table_reads_back_part_by_part():
    claims = findings.paper_claims(_runs({"grpo": GRPO, "eapo": EAPO, "dapo": DAPO}))
    parts = findings.read_claims_table("Some text first.\n\n" + findings.claims_markdown("stress", claims))
    written = [(c.name, c.verdict, p) for c in claims if all(q.differences() for q in c.parts) for p in c.parts]
    assert len(parts) == len(written) == 9  # collapse 3 parts, keeps entropy 2, eapo beats grpo / dapo x 2 metrics
    for row, (name, verdict, part) in zip(parts, written, strict=True):
        d = stats.difference_statistics(part.differences())
        assert (row["claim"], row["verdict"], row["part"], row["against"]) == (name, verdict, part.label, part.against)
        assert row["delta"] == stats.format_interval(d.mean, d.half, sign=True) and row["seeds"] == "3"
        assert row["part_verdict"] == stats.verdict(d, part.direction)
    # the collapse claim's second and third parts carry its name and verdict down from its first row
    assert [r["part"] for r in parts[:3]] == ["grpo: entropy, last / first 10 steps", "grpo: pass@16", "grpo: pass@64"]
    assert {r["claim"] for r in parts[:3]} == {"Plain GRPO collapses entropy and loses pass@k at large k"}
    assert parts[4]["part_verdict"] == "holds" and parts[3]["part_verdict"] == "fails"  # eapo: more entropy, collapses
    assert findings.read_claims_table("no table here\n") == []


def test_quadrant_claims_use_the_mean_of_two_quadrants():
    quadrants = {
        "grpo-PHR": [{"avg": 0.40}, {"avg": 0.42}],
        "grpo-NHR": [{"avg": 0.38}, {"avg": 0.40}],
        "grpo-PLR": [{"avg": 0.30}, {"avg": 0.33}],
        "grpo-NLR": [{"avg": 0.36}, {"avg": 0.35}],
    }
    claims = _by_name(findings.paper_claims(_runs({"grpo": GRPO, **quadrants})))
    part = claims["Gains concentrate in the high-entropy quadrants (PHR, NHR over PLR, NLR; avg@64)"].parts[0]
    assert part.value == pytest.approx({0: 0.39, 1: 0.41}) and part.reference == pytest.approx({0: 0.33, 1: 0.34})
    assert part.differences() == pytest.approx([0.06, 0.07])
    text = findings.claims_markdown("stress", list(claims.values()))
    waiting = text.split("Not measured yet")[1]  # these runs have no entropy: that claim waits, no verdict row
    assert "PLR ends with less entropy than PHR" in waiting and "| PLR ends with less entropy" not in text


def test_run_statistics_of_a_run_folder(tmp_path):
    after = {"avg@4": 0.5, "pass@1": 0.5, "pass@16": 0.7, "pass@64": 0.8}
    before = {"avg@4": 0.3, "pass@1": 0.3, "pass@16": 0.6, "pass@64": 0.9}
    (tmp_path / "eval.json").write_text(json.dumps({"k": 4, "after": after, "before": before}))
    entropies = [0.2] * 10 + [0.15] * 5 + [0.05] * 10  # first 10 steps 0.2, last 10 steps 0.05
    lines = [{"step": i + 1, findings.ENTROPY_KEY: h} for i, h in enumerate(entropies)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    heldout = [{"step": s, "k": 8, "avg@8": a} for s, a in ((0, 0.1), (10, 0.3), (20, 0.5))]
    (tmp_path / "heldout.jsonl").write_text("".join(json.dumps(line) + "\n" for line in heldout))
    got = findings.run_statistics(tmp_path)
    assert got["avg"] == 0.5 and got["pass64"] == 0.8 and got["before_avg"] == 0.3 and got["before_pass64"] == 0.9
    assert got["entropy_first"] == pytest.approx(0.2) and got["entropy_last"] == pytest.approx(0.05)
    assert got["entropy_ratio"] == pytest.approx(0.25)
    assert got["heldout_mean"] == pytest.approx(0.4)  # step 0 (the start) is not part of the learning curve


def _mechanics_run(tmp_path, name, quadrants, lines, final):
    from safetensors.torch import save_file

    run = tmp_path / name
    (run / "model").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"quadrants": quadrants, "max_grad_norm": 0.015}))
    (run / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    save_file(final, str(run / "model" / "model.safetensors"))
    return run


def test_run_mechanics_of_a_run_folder(tmp_path):
    import torch

    start = {"a": torch.zeros(2, 2), "b": torch.ones(3)}
    final = {"a": torch.tensor([[3.0, 0.0], [0.0, 0.0]]), "b": torch.tensor([1.0, 1.0, 5.0])}  # moved by (3, 4)
    # 150 steps: rewards 0.2 for the first 100, then 0.8; PLR's token share 0.3, then 0.1; a last line without a
    # reward (the trainer's summary line) is not a step
    lines = [
        {"step": i + 1, "reward": 0.2 if i < 100 else 0.8, "grad_norm": 0.01 * (i % 3),
         "quadrant/PLR/token_share": 0.3 if i < 100 else 0.1, "quadrant/PHR/token_share": 0.0}
        for i in range(150)
    ] + [{"train_runtime": 9.0}]  # fmt: skip
    got = findings.run_mechanics(_mechanics_run(tmp_path, "grpo-PLR-seed0", "PLR", lines, final), start)
    assert got["distance"] == pytest.approx(5.0)
    assert got["grad_norm"] == pytest.approx(0.01 * (0 + 1 + 2) / 3)  # 150 steps cycle 0, 0.01, 0.02
    assert got["clipped"] == pytest.approx(1 / 3)  # only 0.02 is above max_grad_norm 0.015
    assert got["reward_first"] == pytest.approx(0.2)
    assert got["reward_last"] == pytest.approx(0.8 * 50 / 100 + 0.2 * 50 / 100)  # steps 51-150
    assert got["trained_first"] == pytest.approx(0.3) and got["trained_last"] == pytest.approx(0.2)
    # a run on all four quadrants has no "trained tokens" share; a model that is not the start's is refused
    allq = findings.run_mechanics(_mechanics_run(tmp_path, "grpo-seed0", "PHR,PLR,NLR,NHR", lines, final), start)
    assert "trained_first" not in allq and allq["distance"] == pytest.approx(5.0)
    (tmp_path / "grpo-seed0" / "model" / "model.safetensors").unlink()  # the other figures stay
    kept = {"grad_norm", "clipped", "reward_first", "reward_last"}
    assert set(findings.run_mechanics(tmp_path / "grpo-seed0", start)) == kept
    with pytest.raises(ValueError, match="not the starting policy's"):
        findings.run_mechanics(_mechanics_run(tmp_path, "x-seed0", "", lines, {"a": final["a"]}), start)


def test_mechanics_table_rows(tmp_path):
    rows = {"grpo-PLR": [{"grad_norm": 0.02, "distance": 4.0}, {"grad_norm": 0.04, "distance": 5.0}],
            "grpo": [{"grad_norm": 1.0, "distance": 4.5}]}  # fmt: skip
    text = findings.mechanics_markdown("stress", rows, 54.5)
    lines = [line for line in text.splitlines() if line.startswith("| grpo")]
    assert lines[0].startswith("| grpo | 1 | 1.000 ± n/a") and lines[1].startswith("| grpo-PLR | 2 |")
    half = stats.t975(1) * math.sqrt(0.0002) / math.sqrt(2)  # sd of (0.02, 0.04) is sqrt(0.0002)
    assert f"0.030 ± {half:.3f}" in lines[1] and "‖θ₀‖ = 54.5" in text


# ----- resolved.md: every comparison, from runs.csv alone ------------------------------------------------

METRICS = ["avg@64", "pass@4", "pass@16", "pass@64"]
CSV_FIELDS = ["setting", "variant", "seed", *METRICS, "pass@1", "entropy", "steps_to_target", "eval_se",
              *(f"before_{m}" for m in METRICS)]  # fmt: skip
# per seed: avg@64, pass@4, pass@16, pass@64, entropy, steps_to_target ("" = not reached)
CSV_RUNS = {
    "grpo": [(0.40, 0.6, 0.70, 0.80, 0.060, 100), (0.41, 0.6, 0.69, 0.78, 0.065, 200),
             (0.39, 0.6, 0.71, 0.79, 0.070, "")],
    "eapo": [(0.45, 0.6, 0.70, 0.80, 0.070, 100), (0.47, 0.6, 0.69, 0.78, 0.075, 100),
             (0.44, 0.6, 0.71, 0.80, 0.081, 100)],
    "dapo": [(0.46, 0.6, 0.70, 0.79, 0.060, 100), (0.45, 0.6, 0.69, 0.80, 0.066, 100),
             (0.47, 0.6, 0.71, 0.79, 0.070, 100)],
}  # fmt: skip


def _write_runs_csv(path: Path) -> Path:
    import csv

    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_FIELDS)
        for variant, seeds in CSV_RUNS.items():
            for seed, (avg, p4, p16, p64, entropy, steps) in enumerate(seeds):
                start = [0.30, 0.55, 0.80, 0.90] if variant == "grpo" else ["", "", "", ""]  # only grpo has them
                writer.writerow(["stress", variant, seed, avg, p4, p16, p64, avg, entropy, steps, 0.003, *start])
    return path


def _row(text: str, comparison: str, metric: str) -> str:
    rows = [line for line in text.splitlines() if line.startswith(f"| {comparison} | {metric} |")]
    assert len(rows) == 1, (comparison, metric, rows)
    return rows[0]


def test_resolved_lists_every_comparison_with_holm_and_power(tmp_path):
    out, runs_csv = tmp_path / "resolved.md", _write_runs_csv(tmp_path / "runs.csv")
    # from runs.csv alone: no run folder exists here
    assert findings.main(["resolved", "--runs_csv", str(runs_csv), "--out", str(out)]) == 0
    text = out.read_text()
    text, alpha = text.split("### alpha")  # eapo - grpo is in both experiments; alpha has eapo (0.2) alone here
    assert "| eapo - grpo | avg@64 |" in alpha and "(each alpha vs grpo, avg@64 (1))" in alpha
    assert "## stress setting" in text and "## default setting" not in text and "grpo-PHR" not in text
    # eapo - grpo, avg@64: d = (0.05, 0.06, 0.05), mean 0.0533, sd 0.00577, t = 16.0; df 2: p = 1 - t / sqrt(2 + t^2)
    t = (0.16 / 3) * math.sqrt(3) / (0.01 / math.sqrt(3))
    p_eapo = 1 - t / math.sqrt(2 + t * t)
    # dapo - grpo: d = (0.06, 0.04, 0.08), mean 0.06, sd 0.02, t = 3 sqrt 3
    p_dapo = 1 - math.sqrt(27) / math.sqrt(29)
    half = stats.t975(2) * 0.01 / math.sqrt(3) / math.sqrt(3)
    row = _row(text, "eapo - grpo", "avg@64")
    assert f"| +0.0533 | {0.16 / 3 - half:+.4f} to {0.16 / 3 + half:+.4f} | 3 | {p_eapo:.2g} |" in row
    # Holm within "each method vs grpo, avg@64" (2 tested: eapo, dapo): 2 p_eapo, then max(2 p_eapo, p_dapo)
    assert f"**{2 * p_eapo:.2g}** (each method vs grpo, avg@64 (2))" in row
    assert f"**{p_dapo:.2g}** (each method vs grpo, avg@64 (2))" in _row(text, "dapo - grpo", "avg@64")
    # in "EAPO beats X", only eapo - grpo and eapo - dapo on avg@64 and pass@64 can be tested: a family of 4
    assert f"**{4 * p_eapo:.2g}** (EAPO beats X (the ten claim parts) (4))" in row
    # a null result: eapo - dapo avg@64, d = (-0.01, 0.02, -0.03); its MDE at 80% power over 3 seeds
    d = stats.difference_statistics([-0.01, 0.02, -0.03])
    null = _row(text, "eapo - dapo", "avg@64")
    mde = stats.minimum_detectable_effect(d.sd, 3)
    needed = stats.seeds_needed_for_power(d.mean, d.sd)
    p_null = stats.paired_t_p_value(d.mean, d.sd, 3)
    assert null == f"| eapo - dapo | avg@64 | -0.0067 ± {d.half:.4f} | 3 | {p_null:.2g} | {mde:.4f} | {needed} |"
    assert mde == pytest.approx(stats.minimum_detectable_effect(1.0, 3) * d.sd)
    # every metric, not only avg@64: eapo keeps more entropy than grpo (+0.010, +0.010, +0.011), resolved
    assert "| +0.0103 |" in _row(text, "eapo - grpo", "entropy")
    # the start, from the grpo rows' before_* columns, for every run of the seed; it has no entropy
    assert "| +0.1000 |" in _row(text, "grpo - start", "avg@64")
    assert "| -0.1000 |" in _row(text, "eapo - start", "pass@16")
    assert "- start | entropy |" not in text
    # steps to target: paired over the seeds where both reached it (grpo's seed 2 did not)
    assert "| -50 ± " in _row(text, "eapo - grpo", "steps_to_target")
    # each comparison is listed once in an experiment, resolved or not, whatever the number of its families
    assert text.count("| eapo - grpo | avg@64 |") == 1


def test_resolved_without_runs_csv_is_one_line_and_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        findings.main(["resolved", "--runs_csv", str(tmp_path / "none.csv")])
    assert exit_info.value.code == 2 and "no runs.csv" in capsys.readouterr().err
