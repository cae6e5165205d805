"""Coverage of `eapo.core.credit.credit_with_interval` on simulated branching counts with a known true credit.

For each (pi, p) case and continuations per bucket n, draws `--states` independent states (successes
`s_v ~ Binomial(n, p_v)` per bucket), estimates the credit with its interval and prints the true credit, the
mean plug-in and bias-corrected estimates, the share of intervals that contain the true credit (nominal
`--confidence`) and the mean interval width:
    python benchmarks/credit_coverage.py [--states 400] [--replicates 1000]
Prints figures; nothing is asserted.
"""

from __future__ import annotations

import argparse

import torch

from eapo.core.credit import bucket_credit, credit_with_interval

CASES = {
    "moderate credit": ([0.5, 0.3, 0.2], [0.8, 0.3, 0.5]),
    "p_v near 0 and 1": ([0.5, 0.3, 0.2], [0.95, 0.05, 0.5]),
    "independent (I = 0)": ([0.5, 0.3, 0.2], [0.4, 0.4, 0.4]),
    "tiny credit": ([0.6, 0.25, 0.15], [0.5, 0.4, 0.45]),
    "dominant token": ([0.9, 0.05, 0.05], [0.3, 0.9, 0.1]),
    "deterministic reward": ([0.7, 0.2999, 0.0001], [1.0, 0.0, 0.5]),
    "all p_v near 1": ([0.7, 0.2, 0.1], [0.98, 0.9, 0.95]),
    "never rewarded": ([0.4, 0.3, 0.3], [0.0, 0.0, 0.0]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=400)
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(args.seed)
    print(f"{'case':<22} {'n':>3} {'true':>7} {'plug-in':>7} {'bc':>7} {'cover':>6} {'width':>6}")
    for n in (16, 32, 64):
        for name, (pi, p) in CASES.items():
            pi_t = torch.tensor(pi, dtype=torch.float64).expand(args.states, 3)
            p_t = torch.tensor(p, dtype=torch.float64).expand(args.states, 3).contiguous()
            truth = float(bucket_credit(pi_t[0], p_t[0]))
            trials = torch.full((args.states, 3), float(n), dtype=torch.float64)
            successes = torch.binomial(trials, p_t, generator=gen)
            est = credit_with_interval(pi_t, successes, trials, args.confidence, args.replicates, seed=args.seed)
            cover = float(((est.low <= truth + 1e-12) & (truth <= est.high + 1e-12)).double().mean())
            width = float((est.high - est.low).mean())
            print(
                f"{name:<22} {n:>3} {truth:7.4f} {float(est.credit.mean()):7.4f} {float(est.credit_bc.mean()):7.4f} "
                f"{cover:6.3f} {width:6.4f}"
            )


if __name__ == "__main__":
    main()
