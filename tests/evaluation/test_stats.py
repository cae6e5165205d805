"""Paired comparisons (`eapo.evaluation.stats`): hand-computed cases, scipy as the slow reference, the tables of
`eapo compare` and `eapo ablate` on synthetic run folders, and that `eapo train` runs with the same seed
share the starting policy, the prompt order and the evaluation problems."""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

import pytest

import eapo.cli.ablate as ablate
import eapo.cli.compare as compare
from eapo.cli import build_parser
from eapo.cli import main as cli_main
from eapo.evaluation import stats

# t_{0.975, df} in closed form: df = 1 (Cauchy) tan(0.95 pi / 2); df = 2: P(|T| <= t) = t / sqrt(2 + t^2) = 0.95
T975_1 = math.tan(0.95 * math.pi / 2)
T975_2 = math.sqrt(2 * 0.95**2 / (1 - 0.95**2))


# ----- pure functions: hand-computed cases -------------------------------------------------------------


def test_mean_ci95_hand_computed_and_one_seed_has_no_interval():
    mean, half = stats.mean_ci95([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(T975_2 * 1.0 / math.sqrt(3), rel=1e-12)
    assert stats.mean_ci95([0.5]) == (0.5, None)


def test_t_quantile_known_values():
    assert stats.t975(1) == pytest.approx(T975_1, rel=1e-12) and T975_1 == pytest.approx(12.7062047)
    assert stats.t975(2) == pytest.approx(T975_2, rel=1e-12) and T975_2 == pytest.approx(4.3026527)
    assert stats.t975(3) == pytest.approx(3.1824463, rel=1e-7)  # tables
    assert stats.t975(30) == pytest.approx(2.0422724563012373, rel=1e-10)
    assert stats.t975(10**6) == pytest.approx(1.959966, abs=1e-6)  # tends to the normal quantile
    assert stats.student_t_two_sided(1.0, 1) == pytest.approx(0.5, abs=1e-14)  # Cauchy: P(|T| <= 1) = 1/2
    with pytest.raises(ValueError, match="t_quantile needs"):
        stats.t_quantile(0.4, 3)


def test_paired_difference_hand_computed():
    # d = (0.05, 0.02, 0.08): mean 0.05, sd 0.03, half-width t_{0.975,2} * 0.03 / sqrt(3)
    method = {0: 0.35, 1: 0.52, 2: 0.48, 3: 0.99}  # seed 3 has no baseline run: not paired
    baseline = {2: 0.40, 0: 0.30, 1: 0.50, 4: 0.10}  # pairs by seed, not by position
    d = stats.paired_difference(method, baseline)
    assert d.seeds == 3 and d.mean == pytest.approx(0.05) and d.sd == pytest.approx(0.03)
    assert d.half == pytest.approx(T975_2 * 0.03 / math.sqrt(3), rel=1e-12) == pytest.approx(0.0745241, rel=1e-6)
    assert not d.resolved  # 0.05 < 0.0745
    # n = 3: 4.303 * 0.03 / 1.732 = 0.0745 >= 0.05; n = 4: 3.182 * 0.03 / 2 = 0.0477 < 0.05
    assert d.seeds_needed == 4
    # the unpaired intervals of the two means (about ± 0.23 and ± 0.25) would hide the same difference
    assert stats.mean_ci95([0.35, 0.52, 0.48])[1] > 0.2
    missing = stats.paired_difference({0: 0.3, 1: None, 2: 0.5}, {0: 0.2, 1: 0.4, 2: 0.3})
    assert missing.seeds == 2 and missing.mean == pytest.approx(0.15)  # a seed without a value is not paired


def test_seeds_needed_hand_cases():
    # |d| = sd: t_{0.975,n-1} / sqrt(n) < 1 first at n = 7 (2.447 / 2.646 = 0.925; n = 6: 2.571 / 2.449 = 1.050)
    assert stats.seeds_needed(1.0, 1.0) == 7
    assert stats.seeds_needed(-1.0, 1.0) == 7  # the sign does not matter
    assert stats.seeds_needed(0.5, 0.0) == 2  # no spread: the fewest seeds that give an interval
    assert stats.seeds_needed(0.0, 0.1) is None  # a zero difference is never resolved
    assert stats.seeds_needed(1e-4, 1.0, cap=1000) is None  # beyond the cap
    assert stats.format_seeds_needed(stats.PairedDifference(3, 1e-4, 1.0, 1.0, None)) == "> 100000"
    assert stats.format_seeds_needed(stats.PairedDifference(3, 0.0, 0.0, 0.0, None)) == "never (difference 0)"


def test_one_seed_renders_no_interval():
    d = stats.paired_difference({0: 0.4}, {0: 0.3})
    assert d.seeds == 1 and d.mean == pytest.approx(0.1) and d.half is None and d.sd is None
    assert stats.format_interval(0.4, None) == "0.400 ± n/a (1 seed)"
    assert stats.format_interval(d.mean, d.half, sign=True) == "+0.100 ± n/a (1 seed)"
    assert stats.format_seeds_needed(d) == "n/a (1 seed)"
    assert stats.format_interval(0.4, 0.0) == "0.400 ± 0.000"  # several equal seeds: a real zero interval
    assert stats.format_interval(None, None) == "-"


def test_verdict_of_a_one_sided_claim():
    # d = (0.05, 0.02, 0.08): interval 0.05 ± 0.0745 contains 0; with a fourth seed 0.05 it excludes it
    unresolved = stats.paired_difference({0: 0.35, 1: 0.52, 2: 0.48}, {0: 0.30, 1: 0.50, 2: 0.40})
    assert stats.verdict(unresolved, +1) == stats.verdict(unresolved, -1) == stats.NOT_RESOLVED
    above = stats.difference_statistics([0.05, 0.02, 0.08, 0.05])  # 0.05 ± 3.182 * 0.02449 / 2 = ± 0.039
    assert above.half == pytest.approx(stats.t975(3) * math.sqrt(0.0018 / 3) / 2)
    assert stats.verdict(above, +1) == stats.HOLDS and stats.verdict(above, -1) == stats.FAILS
    below = stats.difference_statistics([-0.05, -0.02, -0.08, -0.05])
    assert stats.verdict(below, -1) == stats.HOLDS and stats.verdict(below, +1) == stats.FAILS
    # one seed: no interval, never a verdict however large the difference
    assert stats.verdict(stats.difference_statistics([0.9]), +1) == stats.NOT_RESOLVED
    with pytest.raises(ValueError):
        stats.verdict(above, 0)
    h, f, n = stats.HOLDS, stats.FAILS, stats.NOT_RESOLVED
    assert stats.combined_verdict([h, h]) == h and stats.combined_verdict([h, n]) == n
    assert stats.combined_verdict([h, n, f]) == f and stats.combined_verdict([]) == n


def test_avg_at_k_se_hand_computed():
    # k = 2: c (k - c) / (k^2 (k - 1)) = 0, 1/4, 0 -> sqrt(1/4) / 3
    assert stats.avg_at_k_se([0, 1, 2], 2) == pytest.approx(0.5 / 3)
    # k = 8: only c = 4 varies: 16 / 448; SE = sqrt(16 / 448) / 5
    assert stats.avg_at_k_se([8, 4, 0, 0, 0], 8) == pytest.approx(math.sqrt(16 / 448) / 5)
    assert stats.avg_at_k_se([1, 0], 1) is None  # one sample per problem: not estimable
    with pytest.raises(ValueError, match="0 <= c_i <= k"):
        stats.avg_at_k_se([3], 2)


@pytest.mark.parametrize(("p", "k"), [(0.1, 2), (0.37, 5), (0.5, 8), (0.9, 16)])
def test_avg_at_k_variance_estimate_is_unbiased(p, k):
    """E[c (k - c) / (k^2 (k - 1))] over c ~ Binomial(k, p) is exactly p (1 - p) / k = Var(c / k)."""
    expectation = sum(
        math.comb(k, c) * p**c * (1 - p) ** (k - c) * c * (k - c) / (k * k * (k - 1)) for c in range(k + 1)
    )
    assert expectation == pytest.approx(p * (1 - p) / k, rel=1e-12)


def test_binomial_se_bounds_the_per_problem_se():
    rates, k = [0.0, 0.2, 0.5, 0.9, 1.0], 8
    per_problem = math.sqrt(sum(p * (1 - p) / k for p in rates)) / len(rates)  # the true SE, problems fixed
    bound = stats.binomial_se(sum(rates) / len(rates), len(rates) * k)
    assert bound == pytest.approx(math.sqrt(0.52 * 0.48 / 40)) and per_problem < bound
    assert stats.binomial_se(0.3, 10) == pytest.approx(math.sqrt(0.021))
    se, kind = stats.evaluation_se({"avg@8": 0.52}, 8, problems=5)
    assert kind == "binomial bound" and se == pytest.approx(bound)
    se, kind = stats.evaluation_se({"avg@8": 0.3, "correct_per_problem": [8, 4, 0, 0, 0]}, 8)
    assert kind == "per-problem" and se == pytest.approx(math.sqrt(16 / 448) / 5)
    assert stats.evaluation_se({"avg@8": 0.3}, 8) == (None, "unknown")
    assert stats.difference_eval_se([0.03, 0.04], [0.0, 0.0]) == pytest.approx(math.sqrt((0.0009 + 0.0016) / 2))


def test_holm_adjusted_hand_computed():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> kept at 0.06 (monotone)
    assert stats.holm_adjusted([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm_adjusted([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert stats.holm_adjusted([0.02]) == [0.02] and stats.holm_adjusted([]) == []


def test_paired_t_p_value_hand_computed():
    # d = (1, 2, 3): mean 2, sd 1, t = 2 sqrt 3; df 2: P(|T| <= t) = t / sqrt(2 + t^2) = sqrt(12 / 14)
    assert stats.paired_t_p_value(2.0, 1.0, 3) == pytest.approx(1 - math.sqrt(12 / 14), rel=1e-12)
    assert stats.paired_t_p_value(-2.0, 1.0, 3) == stats.paired_t_p_value(2.0, 1.0, 3)
    assert stats.paired_t_p_value(0.1, 0.0, 5) == 0.0 and stats.paired_t_p_value(0.0, 0.0, 5) == 1.0
    # p < 0.05 exactly when the 95% interval excludes 0
    d = stats.difference_statistics([0.05, 0.02, 0.08, 0.04])
    assert (stats.paired_t_p_value(d.mean, d.sd, d.seeds) < 0.05) == d.resolved


def test_power_hand_cases():
    # no effect: the power is the level; 5 seeds detect 1.68 sd with 80% power (the normal approximation,
    # (1.960 + 0.842) / sqrt 5 = 1.25 sd, is far too optimistic at 4 degrees of freedom)
    assert stats.noncentral_t_power(0.0, 4) == pytest.approx(0.05, abs=1e-9)
    assert stats.minimum_detectable_effect(1.0, 5) == pytest.approx(1.682, abs=1e-3)
    assert stats.minimum_detectable_effect(0.01, 5) == pytest.approx(0.01682, abs=1e-5)  # scales with sd
    assert stats.paired_t_power(stats.minimum_detectable_effect(0.3, 7), 0.3, 7) == pytest.approx(0.8, abs=1e-8)
    # 80% power needs more seeds than the ~50% "seeds needed"; zero difference never
    assert stats.seeds_needed_for_power(1.0, 1.0) == 10 and stats.seeds_needed(1.0, 1.0) == 7
    assert stats.seeds_needed_for_power(0.0, 1.0) is None and stats.seeds_needed_for_power(0.1, 0.0) == 2
    assert stats.seeds_needed_for_power(1e-4, 1.0) is None  # beyond the cap
    with pytest.raises(ValueError, match="paired_t_power needs"):
        stats.paired_t_power(0.1, 0.0, 5)


# ----- against scipy ----------------------------------------------------------------------------------


def test_t_distribution_against_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    for df in [*range(1, 130), 150, 300, 1000, 10**4, 10**5]:
        for q in (0.6, 0.9, 0.975, 0.995):
            assert stats.t_quantile(q, df) == pytest.approx(scipy_stats.t.ppf(q, df), rel=1e-8), (q, df)
    for df in (1, 2, 3, 4, 7, 10, 31, 64):
        for t in (0.0, 0.3, 1.0, 2.5, 10.0):
            expected = 2 * scipy_stats.t.cdf(t, df) - 1
            assert stats.student_t_two_sided(t, df) == pytest.approx(expected, abs=1e-12), (t, df)


def test_paired_difference_against_scipy_ttest_rel():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = random.Random(0)
    for n in (2, 3, 5, 8, 20):
        base = [rng.gauss(0.4, 0.05) for _ in range(n)]
        other = [b + rng.gauss(0.02, 0.03) for b in base]
        d = stats.paired_difference(dict(enumerate(other)), dict(enumerate(base)))
        reference = scipy_stats.ttest_rel(other, base)
        interval = reference.confidence_interval(0.95)
        assert d.mean - d.half == pytest.approx(interval.low, rel=1e-9, abs=1e-12)
        assert d.mean + d.half == pytest.approx(interval.high, rel=1e-9, abs=1e-12)
        assert d.resolved == (reference.pvalue < 0.05)
        # the same interval from the one-sample t on the differences
        one_sample = scipy_stats.ttest_1samp([o - b for o, b in zip(other, base, strict=True)], 0.0)
        assert one_sample.statistic == pytest.approx(reference.statistic, rel=1e-9)


@pytest.mark.parametrize(("mean", "sd"), [(0.05, 0.03), (0.01, 0.05), (-0.02, 0.02), (0.003, 0.01)])
def test_seeds_needed_against_scipy_search(mean, sd):
    scipy_stats = pytest.importorskip("scipy.stats")
    n = 2
    while scipy_stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n) >= abs(mean):
        n += 1
    assert stats.seeds_needed(mean, sd) == n


def _holm_rejects(p_values: list[float], level: float) -> list[bool]:
    """Holm's step-down procedure at one level: reject the smallest p while p_(j) <= level / (m - j + 1)."""
    m, rejected = len(p_values), [False] * len(p_values)
    for j, i in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        if p_values[i] > level / (m - j):
            break
        rejected[i] = True
    return rejected


def test_holm_adjusted_against_the_step_down_procedure():
    # the adjusted p of a comparison is the smallest level at which Holm's procedure rejects it
    rng = random.Random(1)
    for m in (1, 2, 3, 5, 10):
        for _ in range(20):
            p = [rng.choice([rng.random() * 0.1, rng.random()]) for _ in range(m)]
            adjusted = stats.holm_adjusted(p)
            for level in [i / 1000 for i in range(1, 1000)]:
                expected = _holm_rejects(p, level)
                got = [a <= level for a in adjusted]
                assert all(e == g for e, g, a in zip(expected, got, adjusted, strict=True) if abs(a - level) > 1e-12)


def test_paired_t_p_value_against_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = random.Random(2)
    for n in (2, 3, 5, 8, 20):
        d = [rng.gauss(0.01, 0.02) for _ in range(n)]
        s = stats.difference_statistics(d)
        expected = scipy_stats.ttest_1samp(d, 0.0).pvalue
        assert stats.paired_t_p_value(s.mean, s.sd, n) == pytest.approx(expected, rel=1e-8, abs=1e-14)


def _scipy_power(scipy_stats, ncp: float, df: int) -> float:
    crit = scipy_stats.t.ppf(0.975, df)
    lower = scipy_stats.nct.cdf(-crit, df, ncp)  # scipy returns NaN for this tail, far below 1e-12, at large ncp
    return scipy_stats.nct.sf(crit, df, ncp) + (0.0 if math.isnan(lower) else lower)


@pytest.mark.parametrize("df", [1, 2, 3, 4, 7, 30, 300, 5000])
def test_noncentral_t_power_against_scipy_nct(df):
    scipy_stats = pytest.importorskip("scipy.stats")
    for ncp in (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0):
        assert stats.noncentral_t_power(ncp, df) == pytest.approx(_scipy_power(scipy_stats, ncp, df), abs=1e-8)


@pytest.mark.parametrize("n", [2, 3, 5, 10])
def test_minimum_detectable_effect_against_scipy(n):
    scipy_stats = pytest.importorskip("scipy.stats")
    optimize = pytest.importorskip("scipy.optimize")
    ncp = optimize.brentq(lambda x: _scipy_power(scipy_stats, x, n - 1) - 0.8, 0.0, 40.0, xtol=1e-12)
    assert stats.minimum_detectable_effect(0.02, n) == pytest.approx(ncp * 0.02 / math.sqrt(n), rel=1e-7)


@pytest.mark.parametrize(("mean", "sd"), [(0.05, 0.03), (0.01, 0.05), (-0.02, 0.02), (0.003, 0.01), (0.5, 0.1)])
def test_seeds_needed_for_power_against_scipy_search(mean, sd):
    scipy_stats = pytest.importorskip("scipy.stats")
    n = 2
    while _scipy_power(scipy_stats, abs(mean) * math.sqrt(n) / sd, n - 1) < 0.8:
        n += 1
    assert stats.seeds_needed_for_power(mean, sd) == n


# ----- the tables of `eapo compare` and `eapo ablate` -------------------------------------------------

K, PROBLEMS = 8, 5


def _counts(avg: float) -> list[int]:
    """Per-problem correct counts of 5 problems x 8 samples with this avg@8: full problems, then the rest."""
    total = round(avg * PROBLEMS * K)
    return [min(K, max(0, total - K * i)) for i in range(PROBLEMS)]


def _evaluation(avg: float, digest: str = "same-problems") -> dict:
    out = {f"avg@{K}": avg, "pass@1": avg, "pass@4": min(1.0, avg + 0.2), f"pass@{K}": min(1.0, avg + 0.3)}
    out["problems"] = PROBLEMS
    return out | {"correct_per_problem": _counts(avg), "problems_sha256": digest}


def make_compare_run(run_dir: Path, after: float, entropy: float, digest: str = "same-problems") -> None:
    """A finished `eapo train` run folder: eval.json (with per-problem counts), config.json, metrics.jsonl."""
    run_dir.mkdir(parents=True, exist_ok=True)
    summary = {"before": _evaluation(0.3), "after": _evaluation(after, digest), "train_seconds": 10.0, "steps": 5}
    (run_dir / "eval.json").write_text(json.dumps(summary))
    (run_dir / "config.json").write_text(json.dumps({"eval_problems": PROBLEMS, "eval_k": K, "max_steps": 5}))
    lines = [{"step": s, "loss": 0.0, "reward": 0.5, "entropy/sampling_mean": entropy} for s in range(1, 6)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


GRPO, EAPO = [0.300, 0.500, 0.400], [0.350, 0.525, 0.475]  # d = 0.05, 0.025, 0.075: mean 0.05, sd 0.025


def _synthetic_comparison(out: Path) -> None:
    for seed, (g, e) in enumerate(zip(GRPO, EAPO, strict=True)):
        make_compare_run(out / f"grpo-seed{seed}", g, entropy=0.15)
        make_compare_run(out / f"eapo-seed{seed}", e, entropy=0.15 + 0.01 * seed)


@pytest.fixture
def finished(monkeypatch):
    """The synthetic run folders count as finished runs of the requested options (their config.yaml is not
    written here: the reuse rule itself is tested in tests/cli/test_compare.py and test_ablate.py)."""
    import eapo.cli.runs

    monkeypatch.setattr(eapo.cli.runs, "run_state", lambda run_dir, flags: "finished")


def _compare_args(out: Path, *extra: str):
    argv = ["compare", "--methods", "grpo,eapo", "--seeds", "3", "--eval_k", str(K), "--output_dir", str(out)]
    return build_parser().parse_args([*argv, *extra])


def test_compare_tables_hold_the_paired_columns(finished, tmp_path, capsys):
    _synthetic_comparison(tmp_path)
    assert compare.run(_compare_args(tmp_path)) == 0
    assert capsys.readouterr().out.count("finished earlier with the same options, kept") == 6  # nothing trained
    rows = {row["method"]: row for row in csv.DictReader((tmp_path / "compare.csv").open())}
    eapo, grpo = rows["eapo"], rows["grpo"]
    assert float(eapo["avg@8"]) == pytest.approx(0.45)
    assert float(eapo["avg@8_diff"]) == pytest.approx(0.05) and float(eapo["avg@8_diff_sd"]) == pytest.approx(0.025)
    assert float(eapo["avg@8_diff_ci95"]) == pytest.approx(T975_2 * 0.025 / math.sqrt(3), rel=1e-9)
    assert eapo["avg@8_paired_seeds"] == "3"
    # t_{0.975,n-1} / sqrt(n) < 2: n = 3: 2.484 no; n = 4: 1.591 yes
    assert eapo["avg@8_seeds_needed"] == "4"
    assert float(eapo["entropy_diff"]) == pytest.approx(0.01) and float(eapo["entropy_diff_sd"]) == pytest.approx(0.01)
    assert float(eapo["seconds_per_step_diff"]) == 0.0 and eapo["seconds_per_step_seeds_needed"] == ""  # never
    # eval SE: correct counts grpo (12, 20, 16 of 40) -> partial problems c = 4, 4, 0; eapo (14, 21, 19) -> 6, 5, 3
    # se^2 = c (8 - c) / 448 / 25; rms over seeds; Δ: sqrt(mean(se_eapo^2 + se_grpo^2))
    se2_grpo, se2_eapo = (16 + 16 + 0) / 3 / 448 / 25, (12 + 15 + 15) / 3 / 448 / 25
    assert float(grpo["avg@8_eval_se"]) == pytest.approx(math.sqrt(se2_grpo))
    assert float(eapo["avg@8_eval_se"]) == pytest.approx(math.sqrt(se2_eapo))
    assert float(eapo["avg@8_diff_eval_se"]) == pytest.approx(math.sqrt(se2_grpo + se2_eapo))
    assert grpo["avg@8_diff"] == "" and grpo["baseline"] == "grpo" and eapo["paired_test"] == "paired t"
    md = (tmp_path / "compare.md").read_text()
    assert "## Paired differences to grpo" in md and "| Δ vs grpo ± 95% (paired t) |" in md
    # eapo 0.35, 0.525, 0.475: sd sqrt(0.01625 / 2) = 0.0901, half-width 4.3027 * 0.0901 / 1.7321 = 0.224
    assert "| eapo | avg@8 | 0.450 ± 0.224 | +0.050 ± 0.062 | 3 | 0.025 | 0.047 | 4 |" in md
    assert "| grpo | avg@8 | 0.400 ± 0.248 | (baseline) |" in md and "WARNING" not in md


def test_compare_with_one_seed_and_another_baseline(finished, tmp_path):
    _synthetic_comparison(tmp_path)
    assert compare.run(_compare_args(tmp_path, "--seeds", "1", "--baseline", "eapo")) == 0
    md = (tmp_path / "compare.md").read_text()
    assert "± 0.000" not in md and "| grpo | avg@8 | 0.300 ± n/a (1 seed) | -0.050 ± n/a (1 seed) | 1 |" in md
    assert "Δ vs eapo" in md and "| n/a (1 seed) |" in md
    row = next(r for r in csv.DictReader((tmp_path / "compare.csv").open()) if r["method"] == "grpo")
    assert float(row["avg@8_diff"]) == pytest.approx(-0.05) and row["avg@8_diff_ci95"] == "" and row["avg@8_ci95"] == ""


def test_compare_warns_when_same_seed_runs_saw_different_problems(finished, tmp_path):
    _synthetic_comparison(tmp_path)
    make_compare_run(tmp_path / "eapo-seed2", 0.475, entropy=0.17, digest="other-problems")
    assert compare.run(_compare_args(tmp_path)) == 0
    assert "WARNING: seeds [2] were evaluated on different problems" in (tmp_path / "compare.md").read_text()


def test_compare_baseline_must_be_compared(tmp_path, capsys):
    with pytest.raises(SystemExit, match="--baseline dapo is not one of --methods grpo,eapo") as err:
        compare.run(_compare_args(tmp_path, "--baseline", "dapo"))
    assert err.value.code == 2  # a ValidationError
    argv = ["compare", "--methods", "grpo,eapo", "--baseline", "dapo", "--output_dir", str(tmp_path)]
    assert cli_main(argv) == 2 and "add it to --methods" in capsys.readouterr().err


def make_ablate_run(run_dir: Path, after: float, before: float | None, reached_at: int | None) -> None:
    """A finished run folder as `eapo train` writes it for `eapo ablate` (final k = 8, periodic k = 8)."""
    make_compare_run(run_dir, after, entropy=0.2)
    summary = json.loads((run_dir / "eval.json").read_text())
    summary["before"] = None if before is None else _evaluation(before)
    (run_dir / "eval.json").write_text(json.dumps(summary))
    curve = [(0, 0.3), (25, 0.4 if reached_at == 25 else 0.3), (50, 0.4 if reached_at in (25, 50) else 0.3)]
    lines = [{"step": s, "k": 8, "avg@8": a, "pass@8": a} for s, a in curve]
    (run_dir / "heldout.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_ablate_tables_hold_the_paired_columns(tmp_path):
    for seed, (full, phr) in enumerate(zip(GRPO, EAPO, strict=True)):
        make_ablate_run(tmp_path / f"grpo-full-seed{seed}", full, before=0.3 if seed else None, reached_at=50)
        make_ablate_run(tmp_path / f"grpo-PHR-seed{seed}", phr, before=0.3, reached_at=25 if seed < 2 else None)
    argv = ["ablate", "--table_only", "--variants", "grpo-PHR,grpo-full", "--output_dir", str(tmp_path)]
    assert ablate.run(build_parser().parse_args([*argv, "--target", "0.35"])) == 0
    rows = {row["variant"]: row for row in csv.DictReader((tmp_path / "ablate.csv").open())}
    phr, base = rows["grpo-PHR"], rows["base (before RL)"]
    assert phr["baseline"] == "grpo-full" and float(phr["avg@8_diff"]) == pytest.approx(0.05)
    assert float(phr["avg@8_diff_ci95"]) == pytest.approx(T975_2 * 0.025 / math.sqrt(3), rel=1e-9)
    assert phr["avg@8_seeds_needed"] == "4" and float(phr["avg@8_diff_eval_se"]) > 0
    # steps to target: PHR 25, 25, not reached; full 50, 50, 50 -> paired on seeds 0, 1: d = -25, -25
    assert phr["steps_to_target_paired_seeds"] == "2" and float(phr["steps_to_target_diff"]) == -25.0
    assert float(phr["steps_to_target_diff_ci95"]) == 0.0 and phr["steps_to_target_seeds_needed"] == "2"
    assert base["avg@8_diff"] == ""  # the policy before training is not paired
    md = (tmp_path / "ablate.md").read_text()
    assert "## Paired differences to grpo-full" in md
    assert "| grpo-PHR | avg@8 | 0.450 ± 0.224 | +0.050 ± 0.062 | 3 | 0.025 |" in md
    assert "| grpo-PHR | steps_to_target | 25.0 ± 0.0 | -25.0 ± 0.0 | 2 | 0.0 | - | 2 |" in md
    assert "| grpo-full | avg@8 | 0.400 ± 0.248 | (baseline) |" in md
    # another baseline; a baseline that is not a variant is a one-line error, exit code 2
    assert ablate.run(build_parser().parse_args([*argv, "--baseline", "grpo-PHR"])) == 0
    assert "Δ vs grpo-PHR" in (tmp_path / "ablate.md").read_text()
    with pytest.raises(SystemExit, match="--baseline grpo-NHR is not one of the variants") as err:
        ablate.run(build_parser().parse_args([*argv, "--baseline", "grpo-NHR"]))
    assert err.value.code == 2


# ----- runs with the same seed pair -------------------------------------------------------------------

TINY_BUDGET = [
    "--max_steps", "2", "--per_device_train_batch_size", "8", "--num_generations", "4", "--eval_problems", "4",
    "--eval_k", "2", "--heldout_eval_steps", "0", "--report", "false", "--save_strategy", "no",
    "--disable_tqdm", "true",
]  # fmt: skip


@pytest.mark.slow
def test_same_seed_runs_share_start_prompt_order_and_problems(tmp_path, monkeypatch):
    from eapo.cli.train import parse_args, train
    from eapo.trainer import EAPOTrainer

    prompts: dict[str, list[list[str]]] = {}
    original = EAPOTrainer._generate_and_score_completions

    def recording(self, inputs):  # the rows the sampler gave this step, before any method acts on them
        if self.model.training:
            prompts.setdefault(self.args.output_dir, []).append([row["prompt"] for row in inputs])
        return original(self, inputs)

    monkeypatch.setattr(EAPOTrainer, "_generate_and_score_completions", recording)
    runs = {"grpo": ("grpo", 3), "eapo": ("eapo", 3), "dapo": ("dapo", 3), "grpo-seed4": ("grpo", 4)}
    for name, (method, seed) in runs.items():
        flags = ["--method", method, "--seed", str(seed), "--output_dir", str(tmp_path / name), *TINY_BUDGET]
        train(*parse_args(flags))
    steps = {name: prompts[str(tmp_path / name)] for name in runs}
    assert len(steps["grpo"]) == 2 and len(steps["grpo"][0]) == 8
    # same seed: the same prompts at every step, whatever the method (DAPO's extra rounds draw elsewhere)
    assert steps["eapo"] == steps["grpo"] and steps["dapo"] == steps["grpo"]
    assert steps["grpo-seed4"][0] != steps["grpo"][0]  # another seed: another order
    # the same starting policy and evaluation problems: the same evaluation of the start, file for file
    before = {name: (tmp_path / name / "eval_before.json").read_text() for name in runs}
    assert before["eapo"] == before["grpo"] and before["dapo"] == before["grpo"]
    first = json.loads(before["grpo"])
    assert first["problems"] == 4 and len(first["correct_per_problem"]) == 4
    after = {name: json.loads((tmp_path / name / "eval.json").read_text())["after"] for name in runs}
    assert len({a["problems_sha256"] for a in after.values()}) == 1 == len({a["problems"] for a in after.values()})
    assert all(0 <= c <= 2 for a in after.values() for c in a["correct_per_problem"])
