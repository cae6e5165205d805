"""Statistics of a comparison over seeds: means with t-intervals, paired differences to a baseline, the
seeds a difference would need, and the evaluation's own standard error.

Definitions (n seeds; `x_s` a method's value on seed s, `b_s` the baseline's on the same seed):
- Mean and 95% t-interval: `mean(x) ± t_{0.975, n-1} * sd(x) / sqrt(n)` (sd with n - 1). With one seed
  there is no interval: it is `None` here and rendered "n/a (1 seed)", never "± 0.000".
- Paired difference (paired t): `d_s = x_s - b_s` over the seeds both runs have; `mean(d) ± t_{0.975, n-1} *
  sd(d) / sqrt(n)`. Runs with the same seed share the starting policy, the prompt order and the evaluation
  problems (`eapo train`, tested), so `d_s` removes what the two runs have in common.
- Seeds needed: the smallest n >= 2 with `t_{0.975, n-1} * sd(d) / sqrt(n) < |mean(d)|`, i.e. the seeds at
  which a difference of the observed size and seed-to-seed spread would have a 95% interval excluding 0.
- Evaluation standard error of avg@k (the noise of sampling k completions per problem, the problems held
  fixed): with `c_i` correct of k samples on problem i of N, `avg@k = (1/N) sum_i c_i / k` and
  `Var = (1/N^2) sum_i p_i (1 - p_i) / k`, estimated without bias by `p_i (1 - p_i) / k ~ c_i (k - c_i) /
  (k^2 (k - 1))`. It needs k >= 2. Without per-problem counts, `sqrt(p (1 - p) / (N k))` (all N k samples
  as independent draws of one rate `p = avg@k`) is an upper bound of it, since the mean of `p_i (1 - p_i)`
  is `p (1 - p) - Var_i(p_i)`.
  The evaluation SE of one seed's difference is `sqrt(se_x^2 + se_b^2)` (independent sampling; the paired
  runs sample with the same seed, which if anything correlates their noise and makes it smaller). Next to
  the seed-to-seed `sd(d)` it says which noise dominates: when it is close to `sd(d)`, more samples per
  problem (or more problems) help; when it is much smaller, only more seeds do.
- Paired-t p-value (two-sided): `t = mean(d) / (sd(d) / sqrt(n))`, `p = P(|T_{n-1}| >= |t|)`.
- Holm-Bonferroni adjusted p-values over a family of m comparisons: with the raw p-values sorted,
  `p_(1) <= ... <= p_(m)`, `p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))`; a comparison survives the
  correction at level a when `p~ <= a` (the family-wise error rate is then at most a).
- Power of the paired t-test (two-sided, level a) for a true mean difference `delta` with seed-to-seed sd
  `sigma` over n seeds: `P(|T'| > t_{1-a/2, n-1})`, T' noncentral t with n - 1 degrees of freedom and
  noncentrality `delta sqrt(n) / sigma`. Seeds needed at 80% power: the smallest n >= 2 with power >= 0.8
  at the observed mean and sd. Minimum detectable effect at 80% power (for a null result): the `delta` whose
  power is 0.8 with the design's n and the observed sd, `ncp_{0.8, n-1} sigma / sqrt(n)`. (The normal
  approximation, `n ~ ((z_{1-a/2} + z_{0.8}) sigma / delta)^2 = 7.85 (sigma / delta)^2`, underestimates n for
  few seeds; here the noncentral t is integrated exactly.) The older "seeds needed" above is the n at which the
  observed mean would just reach significance, about 50% power.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PAIRED_TEST = "paired t"
NO_INTERVAL = "n/a (1 seed)"
SEEDS_NEEDED_CAP = 100_000
# Beyond this many degrees of freedom the t quantile comes from its Cornish-Fisher expansion around the
# normal quantile (error below 1e-9 there); below, from the exact CDF of integer degrees of freedom.
_EXPANSION_DF = 100


def student_t_two_sided(t: float, df: int) -> float:
    """`P(|T| <= t)` for Student's t with `df` (integer >= 1) degrees of freedom, t >= 0.

    The closed form for integer df (Abramowitz & Stegun 26.7.3-4), with `theta = atan(t / sqrt(df))`:
    df odd: `(2 / pi) (theta + sin(theta) cos(theta) sum_{j=0}^{(df-3)/2} a_j cos^{2j}(theta))`,
    `a_0 = 1`, `a_j = a_{j-1} (2j) / (2j + 1)`; df even: `sin(theta) sum_{j=0}^{df/2-1} b_j cos^{2j}(theta)`,
    `b_0 = 1`, `b_j = b_{j-1} (2j - 1) / (2j)`.
    """
    if df < 1 or t < 0:
        raise ValueError(f"student_t_two_sided needs df >= 1 and t >= 0, got df={df}, t={t}")
    theta = math.atan(t / math.sqrt(df))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if df % 2 == 1:
        total, term = 0.0, 1.0
        for j in range((df - 1) // 2):
            total += term
            term *= c2 * (2 * j + 2) / (2 * j + 3)
        return 2.0 / math.pi * (theta + s * math.cos(theta) * total)
    total, term = 0.0, 1.0
    for j in range(df // 2):
        total += term
        term *= c2 * (2 * j + 1) / (2 * j + 2)
    return s * total


def t_quantile(q: float, df: int) -> float:
    """The `q` quantile of Student's t with `df` degrees of freedom (0.5 < q < 1), e.g. t_{0.975, df}."""
    if not 0.5 < q < 1 or df < 1:
        raise ValueError(f"t_quantile needs 0.5 < q < 1 and df >= 1, got q={q}, df={df}")
    if df > _EXPANSION_DF:
        z, v = statistics.NormalDist().inv_cdf(q), float(df)
        return (
            z
            + (z**3 + z) / (4 * v)
            + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
            + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * v**4)
        )
    target = 2 * q - 1  # P(|T| <= t)
    lo, hi = 0.0, 1.0
    while student_t_two_sided(hi, df) < target:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if student_t_two_sided(mid, df) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13 * hi:
            break
    return (lo + hi) / 2


def t975(df: int) -> float:
    """`t_{0.975, df}`: the two-sided 95% Student t quantile."""
    return t_quantile(0.975, df)


def mean_ci95(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and half-width of the 95% t-interval over `values` (None for a single value: no interval)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None
    return mean, t975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))


def seeds_needed(mean_diff: float, sd_diff: float, cap: int = SEEDS_NEEDED_CAP) -> int | None:
    """Smallest n >= 2 with `t_{0.975, n-1} * sd_diff / sqrt(n) < |mean_diff|`: the seeds at which a paired
    difference of this size and seed-to-seed spread has a 95% interval excluding 0. None: no n <= `cap`
    (a zero difference never resolves)."""
    if mean_diff == 0 or sd_diff < 0:
        return None
    if sd_diff == 0:
        return 2
    ratio = (sd_diff / abs(mean_diff)) ** 2
    # t_{0.975, n-1} > z_{0.975} = 1.95996..., so n > (1.95996 * sd / |d|)^2: start the search there.
    n = max(2, math.floor(1.959963984540054**2 * ratio))
    while n <= cap:
        if t975(n - 1) ** 2 * ratio < n:
            return n
        n += 1
    return None


def paired_t_p_value(mean_diff: float, sd_diff: float, n: int) -> float:
    """Two-sided p-value of the paired t-test of `mean(d) = 0` from n per-seed differences:
    `p = P(|T_{n-1}| >= |mean(d)| sqrt(n) / sd(d)) = 1 - student_t_two_sided(|t|, n - 1)`; with sd 0, p is 0
    for a non-zero mean and 1 for a zero mean."""
    if n < 2 or sd_diff < 0:
        raise ValueError(f"paired_t_p_value needs n >= 2 and sd >= 0, got n={n}, sd={sd_diff}")
    if sd_diff == 0:
        return 1.0 if mean_diff == 0 else 0.0
    t = abs(mean_diff) * math.sqrt(n) / sd_diff
    return max(0.0, 1.0 - student_t_two_sided(t, n - 1))


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given: with the m raw p-values sorted ascending,
    `p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))`. A comparison survives the correction at level a when its
    adjusted p is at most a; the family-wise error rate of the family is then at most a."""
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def noncentral_t_power(ncp: float, df: int, alpha: float = 0.05, intervals: int = 2000) -> float:
    """`P(|T'| > t_{1-alpha/2, df})` for T' noncentral t with `df` degrees of freedom and noncentrality `ncp`:
    the power of the two-sided t-test. T' = (Z + ncp) / S with `S = sqrt(V / df)`, V chi-square(df), so the
    power is `E_S[Phi(ncp - c S) + Phi(-ncp - c S)]` with c the critical value; the expectation is integrated
    by Simpson's rule over the density of S, `2 (df/2)^{df/2} s^{df-1} exp(-df s^2 / 2) / Gamma(df/2)`, on
    its mean ± 12 sd (error below 1e-8)."""
    if df < 1 or not 0 < alpha < 1:
        raise ValueError(f"noncentral_t_power needs df >= 1 and 0 < alpha < 1, got df={df}, alpha={alpha}")
    crit = t_quantile(1 - alpha / 2, df)
    spread = 12.0 / math.sqrt(2.0 * df)  # S has mean about 1 and sd about 1 / sqrt(2 df)
    lo, hi = max(0.0, 1.0 - spread), 1.0 + spread
    log_norm = math.log(2.0) + (df / 2) * math.log(df / 2) - math.lgamma(df / 2)
    step = (hi - lo) / intervals
    total = 0.0
    for i in range(intervals + 1):
        s = lo + i * step
        if s == 0.0 and df > 1:
            continue  # the density is 0 there
        log_density = log_norm - df * s * s / 2 + ((df - 1) * math.log(s) if df > 1 else 0.0)
        weight = 1 if i in (0, intervals) else (4 if i % 2 else 2)
        total += weight * math.exp(log_density) * (_normal_cdf(ncp - crit * s) + _normal_cdf(-ncp - crit * s))
    return min(1.0, total * step / 3)


def paired_t_power(effect: float, sd_diff: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t-test at level `alpha` over n seeds for a true mean difference `effect`
    with seed-to-seed sd `sd_diff`: `noncentral_t_power(effect sqrt(n) / sd_diff, n - 1)`."""
    if n < 2 or sd_diff <= 0:
        raise ValueError(f"paired_t_power needs n >= 2 and sd > 0, got n={n}, sd={sd_diff}")
    return noncentral_t_power(abs(effect) * math.sqrt(n) / sd_diff, n - 1, alpha)


def seeds_needed_for_power(
    mean_diff: float, sd_diff: float, power: float = 0.8, alpha: float = 0.05, cap: int = SEEDS_NEEDED_CAP
) -> int | None:
    """Smallest n >= 2 at which the paired t-test (two-sided, level `alpha`) detects a true difference of the
    observed size `mean_diff` and spread `sd_diff` with probability `power` (default 80%); power grows with n,
    so a doubling search then bisection. None: a zero difference, or more than `cap` seeds."""
    if mean_diff == 0 or sd_diff < 0:
        return None
    if sd_diff == 0:
        return 2

    def enough(n: int) -> bool:
        return paired_t_power(mean_diff, sd_diff, n, alpha) >= power

    lo, hi = 1, 2  # enough(lo) is False by convention (n = 1 has no test)
    while not enough(hi):
        if hi >= cap:
            return None
        lo, hi = hi, min(2 * hi, cap)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid, hi)
    return hi


def minimum_detectable_effect(sd_diff: float, n: int, power: float = 0.8, alpha: float = 0.05) -> float:
    """The smallest true mean difference the paired t-test (two-sided, level `alpha`) over n seeds detects with
    probability `power` (default 80%) at seed-to-seed sd `sd_diff`: `ncp sd_diff / sqrt(n)`, with ncp solving
    `noncentral_t_power(ncp, n - 1) = power` (bisection). The bound behind a null result: a difference this
    large would have been found 8 times in 10."""
    if n < 2 or sd_diff < 0 or not alpha < power < 1:
        raise ValueError(f"minimum_detectable_effect needs n >= 2, sd >= 0, alpha < power < 1, got {n}, {sd_diff}")
    lo, hi = 0.0, 1.0
    while noncentral_t_power(hi, n - 1, alpha) < power:
        lo, hi = hi, 2 * hi
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if noncentral_t_power(mid, n - 1, alpha) < power else (lo, mid)
        if hi - lo < 1e-10 * hi:
            break
    return (lo + hi) / 2 * sd_diff / math.sqrt(n)


@dataclass(frozen=True)
class PairedDifference:
    """`x - baseline` over the seeds both have: `seeds` pairs, `mean` and `half` (95% paired-t half-width,
    None below 2 pairs), `sd` (seed-to-seed standard deviation of the difference, None below 2 pairs),
    `seeds_needed` (see `seeds_needed`; None when not computable or beyond the cap)."""

    seeds: int
    mean: float | None
    half: float | None
    sd: float | None
    seeds_needed: int | None

    @property
    def resolved(self) -> bool:
        """The 95% interval excludes 0."""
        return self.half is not None and self.mean is not None and abs(self.mean) > self.half


def paired_difference(values: Mapping[int, float | None], baseline: Mapping[int, float | None]) -> PairedDifference:
    """Paired difference over seeds: `values[s] - baseline[s]` for every seed s where both are given."""
    seeds = [s for s in sorted(values) if s in baseline and values[s] is not None and baseline[s] is not None]
    return difference_statistics([values[s] - baseline[s] for s in seeds])  # type: ignore[operator]


def difference_statistics(diffs: Sequence[float]) -> PairedDifference:
    """Mean, 95% paired-t half-width, sd and seeds needed of per-seed differences `d_s`."""
    if not diffs:
        return PairedDifference(0, None, None, None, None)
    mean, half = mean_ci95(diffs)
    if len(diffs) < 2:
        return PairedDifference(1, mean, None, None, None)
    sd = statistics.stdev(diffs)
    return PairedDifference(len(diffs), mean, half, sd, seeds_needed(mean, sd))


HOLDS, FAILS, NOT_RESOLVED = "holds", "fails", "not resolved"


def verdict(diff: PairedDifference, direction: int) -> str:
    """The verdict on a claim that a per-seed difference is above 0 (`direction` +1) or below 0 (-1):
    `holds` when its 95% interval excludes 0 on the claimed side, `fails` when it excludes 0 on the other
    side, else `not resolved` (also with fewer than 2 seeds: no interval)."""
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 or -1, got {direction}")
    if not diff.resolved:
        return NOT_RESOLVED
    return HOLDS if (diff.mean > 0) == (direction > 0) else FAILS  # type: ignore[operator]


def combined_verdict(verdicts: Sequence[str]) -> str:
    """A claim made of several parts: `fails` if any part fails, `holds` if every part holds, else `not resolved`."""
    if not verdicts:
        return NOT_RESOLVED
    if FAILS in verdicts:
        return FAILS
    return HOLDS if all(v == HOLDS for v in verdicts) else NOT_RESOLVED


def avg_at_k_se(correct_counts: Sequence[int], k: int) -> float | None:
    """Evaluation standard error of avg@k, the problems held fixed: `sqrt(sum_i c_i (k - c_i) / (k^2 (k - 1)))
    / N` for `c_i` correct of k samples on each of N problems (None for k < 2: not estimable)."""
    if k < 2 or not correct_counts:
        return None
    if any(not 0 <= c <= k for c in correct_counts):
        raise ValueError(f"avg_at_k_se needs 0 <= c_i <= k = {k}, got {list(correct_counts)}")
    variance = sum(c * (k - c) for c in correct_counts) / (k * k * (k - 1))
    return math.sqrt(variance) / len(correct_counts)


def binomial_se(rate: float, samples: int) -> float:
    """`sqrt(p (1 - p) / n)`: the standard error of a rate over n independent samples (an upper bound of
    `avg_at_k_se` with n = problems x k, for run folders without per-problem counts)."""
    return math.sqrt(max(rate * (1.0 - rate), 0.0) / samples)


def difference_eval_se(se_x: Sequence[float], se_b: Sequence[float]) -> float | None:
    """Evaluation SE of one seed's difference, `sqrt(mean_s(se_x,s^2 + se_b,s^2))` over the paired seeds."""
    if not se_x or len(se_x) != len(se_b):
        return None
    return math.sqrt(statistics.fmean(a * a + b * b for a, b in zip(se_x, se_b, strict=True)))


def format_interval(mean: float | None, half: float | None, digits: int = 3, sign: bool = False) -> str:
    """`mean ± half`; `mean ± n/a (1 seed)` when there is no interval (`mean_ci95` of one value); `-`
    when there is no value."""
    if mean is None:
        return "-"
    value = f"{mean:+.{digits}f}" if sign else f"{mean:.{digits}f}"
    return f"{value} ± {NO_INTERVAL}" if half is None else f"{value} ± {half:.{digits}f}"


def format_seeds_needed(diff: PairedDifference) -> str:
    """The seeds-needed cell: a number, `n/a (1 seed)`, `never (difference 0)` or `> cap`."""
    if diff.seeds < 2 or diff.mean is None:
        return NO_INTERVAL if diff.seeds == 1 else "-"
    if diff.seeds_needed is None:
        return "never (difference 0)" if diff.mean == 0 else f"> {SEEDS_NEEDED_CAP}"
    return str(diff.seeds_needed)


def evaluation_se(result: Mapping[str, Any], k: int, problems: int | None = None) -> tuple[float | None, str]:
    """(evaluation SE of avg@k, how it was obtained) for one evaluation (`eval.json`'s `after`): from its
    `correct_per_problem` counts ("per-problem"); without them, the bound `binomial_se(avg@k, N k)` with N
    its `problems` or `problems` given here ("binomial bound"); else (None, "unknown")."""
    counts = result.get("correct_per_problem")
    if isinstance(counts, list) and counts:
        return avg_at_k_se([int(c) for c in counts], k), "per-problem"
    n = result.get("problems", problems)
    avg = result.get(f"avg@{k}")
    if isinstance(n, int) and n > 0 and isinstance(avg, (int, float)):
        return binomial_se(float(avg), n * k), "binomial bound"
    return None, "unknown"


Runs = Mapping[int, Mapping[str, Any]]  # seed -> {metric: value (None: not available for that seed)}


def comparison_row(
    runs: Runs, baseline: Runs | None, keys: Sequence[str], eval_key: str | None = None, se_key: str = "eval_se"
) -> dict[str, Any]:
    """One method's columns over seeds: for each metric `key`, its mean and 95% half-width (`key`,
    `key_ci95`) over the seeds that have it; with a `baseline` (its runs by seed) the paired difference
    (`key_diff`, `key_diff_ci95`, `key_diff_sd`, `key_paired_seeds`, `key_seeds_needed`). With `eval_key`
    (avg@k), the evaluation SE of one run's value (`eval_key_eval_se`, root mean square over seeds of the
    runs' `se_key`) and of one seed's difference (`eval_key_diff_eval_se`, `difference_eval_se`)."""
    row: dict[str, Any] = {"seeds": len(runs)}
    for key in keys:
        present = [r[key] for r in runs.values() if r.get(key) is not None]
        row[key], row[f"{key}_ci95"] = mean_ci95(present) if present else (None, None)
        if baseline is not None:
            values, reference = {s: r.get(key) for s, r in runs.items()}, {s: r.get(key) for s, r in baseline.items()}
            d = paired_difference(values, reference)
            row |= {f"{key}_diff": d.mean, f"{key}_diff_ci95": d.half, f"{key}_diff_sd": d.sd}
            row |= {f"{key}_paired_seeds": d.seeds, f"{key}_seeds_needed": d.seeds_needed}
    if eval_key is not None:
        own = [float(r[se_key]) for r in runs.values() if r.get(se_key) is not None]
        row[f"{eval_key}_eval_se"] = math.sqrt(statistics.fmean(x * x for x in own)) if own else None
        if baseline is not None:
            seeds = [s for s in runs if s in baseline and None not in (runs[s].get(se_key), baseline[s].get(se_key))]
            se_x, se_b = [runs[s][se_key] for s in seeds], [baseline[s][se_key] for s in seeds]
            row[f"{eval_key}_diff_eval_se"] = difference_eval_se(se_x, se_b)
    return row


def format_value(value: float | None, digits: int = 3) -> str:
    """`value` with `digits` decimals, `-` for None."""
    return "-" if value is None else f"{value:.{digits}f}"


def _paired_line(row: Mapping[str, Any], name: str, key: str, eval_key: str | None, digits: int) -> str:
    diff = PairedDifference(
        row[f"{key}_paired_seeds"], row[f"{key}_diff"], row[f"{key}_diff_ci95"], row[f"{key}_diff_sd"],
        row[f"{key}_seeds_needed"],
    )  # fmt: skip
    eval_se = format_value(row.get(f"{eval_key}_diff_eval_se")) if key == eval_key else "-"
    cells = [
        name, key, format_interval(row[key], row[f"{key}_ci95"], digits),
        format_interval(diff.mean, diff.half, digits, sign=True), str(diff.seeds), format_value(diff.sd, digits),
        eval_se, format_seeds_needed(diff),
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def paired_markdown(
    rows: Sequence[Mapping[str, Any]],
    name_field: str,
    keys: Sequence[str],
    baseline: str,
    eval_key: str | None,
    digits: Mapping[str, int] | None = None,
) -> str:
    """The paired-difference table, one line per (row, metric): the row's mean ± 95% interval, its paired
    difference to `baseline` ± 95% (paired t), the seeds paired, the seed-to-seed sd of the difference, the
    evaluation SE of one seed's difference (`eval_key` only) and the seeds needed. `rows` are built by
    `comparison_row` (with a baseline, except the baseline's own row); rows without pairing are left out.
    `digits`: decimals of some metrics (default 3)."""
    lines = [
        f"| {name_field} | metric | mean ± 95% | Δ vs {baseline} ± 95% ({PAIRED_TEST}) | seeds paired "
        "| sd of Δ over seeds | eval SE of Δ (one seed) | seeds needed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        name = row[name_field]
        for key in keys:
            places = (digits or {}).get(key, 3)
            if name == baseline:
                mean = format_interval(row[key], row[f"{key}_ci95"], places)
                lines.append(f"| {name} | {key} | {mean} | (baseline) | - | - | - | - |")
            elif f"{key}_paired_seeds" in row:
                lines.append(_paired_line(row, name, key, eval_key, places))
    return "\n".join(lines)


def paired_note(baseline: str) -> str:
    """How to read `paired_markdown`'s table."""
    return (
        f"Paired differences to {baseline}: Δ_s = method - {baseline} on the same seed (same starting policy, "
        f"prompt order and evaluation problems), mean ± half-width of the 95% {PAIRED_TEST}-interval "
        "t_{0.975,n-1} sd(Δ)/sqrt(n) over the n paired seeds; seeds needed: the smallest n with "
        "t_{0.975,n-1} sd(Δ)/sqrt(n) < |mean Δ| (the observed mean just reaches significance: about 50% power; "
        "80%: `eapo.evaluation.stats.seeds_needed_for_power`); "
        f"'{NO_INTERVAL}': one seed gives no interval. Eval SE of Δ: the standard error one seed's Δ of avg@k "
        "has from sampling alone, sqrt(se_method^2 + se_baseline^2), with se = sqrt(sum_i c_i (k - c_i) / "
        "(k^2 (k - 1))) / N over the N problems (c_i correct of k samples). Close to sd of Δ: more samples "
        "per problem would help; much smaller: only more seeds will.\n"
    )
