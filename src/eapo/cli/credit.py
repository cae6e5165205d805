"""`eapo credit`: token credit `I(o_t; r | s_t)` by branching rollouts next to the entropy bound, on held-out
problems of a task (default: countdown of the tiny world; `--task rg:NAME` or a data file as in `eapo train`)
and a policy (default: the shipped tiny-world policy; `--model_path`).

Writes `credit.csv` (one row per branched position), `credit.json` (settings, summary and the same rows)
and `credit.png` (credit against entropy with the intervals and the bound `I = H`). The summary has the
fraction of credits within the bound (point estimate and interval), mean credit and entropy, the share
of credit carried by the 20% highest-entropy positions, and the paper's histogram proxy `I(H; r)` over
every token of every sampled completion.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

from eapo.cli.options import REWARD_HELP, TASK_HELP
from eapo.cli.validate import ValidationError

COLUMNS = (
    "problem",
    "completion",
    "position",
    "token",
    "correct",
    "entropy",
    "credit",
    "credit_bc",
    "ci_low",
    "ci_high",
    "within_bound",
    "within_bound_ci",
    "p_state",
    "buckets",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model_path", default=None, help="model folder (default: the shipped tiny-world policy)")
    parser.add_argument("--task", default="countdown", help=f"task whose held-out problems are used: {TASK_HELP}")
    parser.add_argument("--reward", default=None, help=REWARD_HELP)
    parser.add_argument("--prompt_column", default="prompt", help="prompt column of a data file")
    parser.add_argument("--answer_column", default="answer", help="answer column of a data file")
    parser.add_argument("--prompt_format", default="auto", choices=("auto", "chat", "text"), help="as eapo train")
    parser.add_argument("--system_prompt", default="auto", help="as eapo train: auto, none, or the text")
    parser.add_argument(
        "--max_completion_length", type=int, default=None, help="tokens per completion (default: 24 for countdown)"
    )
    parser.add_argument(
        "--threshold", type=float, default=1.0, help="a completion is rewarded when its reward >= this (1: full score)"
    )
    parser.add_argument("--eval_problems", "--problems", dest="problems", type=int, default=50,
                        help="held-out problems (at most 200 for countdown)")  # fmt: skip
    parser.add_argument("--num_generations", "--completions", dest="completions", type=int, default=8,
                        help="sampled completions per problem (all feed I(H; r))")  # fmt: skip
    parser.add_argument("--branch_completions", type=int, default=2, help="completions per problem branched (0 = all)")
    parser.add_argument("--positions", type=int, default=8, help="positions per branched completion (0 = all)")
    parser.add_argument("--top_k", type=int, default=3, help="candidate tokens per position, plus an 'other' bucket")
    parser.add_argument("--m", type=int, default=32, help="continuations per candidate")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (entropy uses it too)")
    parser.add_argument("--confidence", type=float, default=0.95, help="level of the bootstrap interval")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap replicates")
    parser.add_argument("--bins", type=int, default=10, help="entropy bins of the proxy I(H; r)")
    parser.add_argument("--binning", default="quantile", choices=("quantile", "uniform"), help="bins of I(H; r)")
    parser.add_argument("--batch_size", type=int, default=1024, help="sequences per generation call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", default="runs/credit", help="where credit.csv/.json/.png are written")


def _check(args: argparse.Namespace) -> None:
    problems = []
    lows = {"problems": 1, "completions": 1, "top_k": 1, "m": 2, "bootstrap": 10, "bins": 2, "batch_size": 1}
    for flag, low in lows.items():
        if getattr(args, flag) < low:
            problems.append(f"--{flag} {getattr(args, flag)}: use at least {low}")
    if args.task == "countdown" and args.problems > 200:
        problems.append(f"--problems {args.problems}: the tiny world has 200 held-out problems, use at most 200")
    for flag in ("branch_completions", "positions"):
        if getattr(args, flag) < 0:
            problems.append(f"--{flag} {getattr(args, flag)}: use 0 or more")
    if args.max_completion_length is not None and args.max_completion_length < 1:
        problems.append(f"--max_completion_length {args.max_completion_length}: use at least 1")
    if not (math.isfinite(args.temperature) and args.temperature > 0):  # NaN passes `<= 0`
        problems.append(f"--temperature {args.temperature}: use a finite value > 0 (1.0 samples)")
    if not math.isfinite(args.threshold):
        problems.append(f"--threshold {args.threshold}: use a finite number (1: full score)")
    if not 0 < args.confidence < 1:
        problems.append(f"--confidence {args.confidence}: use a value in (0, 1)")
    if problems:
        raise ValidationError("; ".join(problems))
    from eapo.pipeline.checks import check_output_folder

    check_output_folder(args.output_dir, "output_dir")  # a file there failed only after the sampling


def load_registry_task(args: argparse.Namespace) -> Any:
    """The task of `--task` (`eapo.tasks.registry`: any task of `eapo train`) with its first
    `args.problems` held-out problems; a bad task is a `ValidationError`, raised before any model loads."""
    from eapo.tasks.registry import TaskError, load_run_task

    try:
        return load_run_task(args, seed=args.seed, eval_size=args.problems, train_size=max(10 * args.problems, 100))
    except TaskError as err:
        raise ValidationError(f"task: {err}") from None


def registry_task(args: argparse.Namespace, tokenizer: Any, task: Any = None):
    """The first `args.problems` held-out prompts of any `eapo train` task (`eapo.tasks.registry`) as a
    `RewardTask`: prompts rendered as the trainer renders them, success = reward >= `args.threshold`."""
    from eapo.analysis.credit import RewardTask
    from eapo.evaluation.heldout import as_completions
    from eapo.models.policy import prompt_text, render_prompts

    task = task if task is not None else load_registry_task(args)
    chat = render_prompts(task, tokenizer, args.prompt_format, args.system_prompt, train=False)
    rows = task.heldout
    columns = {c: list(rows[c]) for c in rows.column_names if c != "prompt"}
    threshold = args.threshold

    def binary_reward(prompts: list[str], completions: list[str], completion_ids: Any, **cols: Any) -> list[float]:
        shaped = as_completions(completions, chat)
        values = task.reward(prompts=prompts, completions=shaped, completion_ids=completion_ids, **cols)
        return [1.0 if v is not None and float(v) >= threshold - 1e-9 else 0.0 for v in values]

    return RewardTask([prompt_text(tokenizer, p) for p in rows["prompt"]], binary_reward, columns)


def summarise(records: list[dict[str, Any]], proxy: float, tokens: int, accuracy: float) -> dict[str, Any]:
    """Summary of the branched positions (credits in nats, plug-in unless `_bc`)."""
    n = len(records)
    by_entropy = sorted(records, key=lambda r: r["entropy"], reverse=True)
    top = by_entropy[: max(1, math.ceil(0.2 * n))]
    total = sum(r["credit"] for r in records)
    forks = [r for r in records if r["entropy"] >= 0.1]
    return {
        "positions": n,
        "fraction_within_bound": sum(r["within_bound"] for r in records) / n,
        "fraction_within_bound_ci": sum(r["within_bound_ci"] for r in records) / n,
        "mean_entropy": statistics.fmean(r["entropy"] for r in records),
        "mean_credit": statistics.fmean(r["credit"] for r in records),
        "mean_credit_bc": statistics.fmean(r["credit_bc"] for r in records),
        "fraction_credit_ci_above_0": sum(r["ci_low"] > 0 for r in records) / n,
        "credit_share_top20_entropy": sum(r["credit"] for r in top) / total if total > 0 else 0.0,
        "positions_entropy_ge_0.1": len(forks),
        "mean_credit_over_entropy_ge_0.1": statistics.fmean(r["credit"] / r["entropy"] for r in forks)
        if forks
        else 0.0,
        "histogram_proxy_I_H_r": proxy,
        "proxy_tokens": tokens,
        "sampled_accuracy": accuracy,
    }


def plot(records: list[dict[str, Any]], path: Path, title: str) -> None:
    """Left: credit against entropy with interval bars, coloured by the completion's polarity, the bound `I = H`
    and `log 2`. Right: `credit / H` against `H` (log axis), where near-deterministic tokens are visible."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax_ratio) = plt.subplots(1, 2, figsize=(12, 5))
    top = max([r["entropy"] for r in records] + [r["ci_high"] for r in records] + [0.1]) * 1.05
    for correct, colour, label in ((True, "tab:green", "correct completion"), (False, "tab:red", "wrong completion")):
        rows = [r for r in records if r["correct"] == correct]
        if not rows:
            continue
        x = [r["entropy"] for r in rows]
        y = [r["credit"] for r in rows]
        err = [[r["credit"] - r["ci_low"] for r in rows], [r["ci_high"] - r["credit"] for r in rows]]
        ax.errorbar(x, y, yerr=err, fmt="o", ms=3, alpha=0.6, color=colour, elinewidth=0.6, label=label)
        kept = [r for r in rows if r["entropy"] > 1e-4]
        ax_ratio.scatter([r["entropy"] for r in kept], [r["credit"] / r["entropy"] for r in kept], s=8, alpha=0.6,
                         color=colour, label=label)  # fmt: skip
    ax.plot([0, top], [0, top], "k-", lw=1, label="bound I = H")
    ax.axhline(math.log(2), color="grey", ls="--", lw=1, label="log 2 (binary reward)")
    ax.set(xlim=(0, top), ylim=(0, min(top, math.log(2) * 1.1)), title=title)
    ax.set(xlabel="token entropy H (nats)", ylabel="credit I(o_t; r | s_t) (nats)")
    ax.legend(loc="upper left", fontsize=8)
    ax_ratio.axhline(1.0, color="k", lw=1, label="bound")
    ax_ratio.set_xscale("log")
    ax_ratio.set(ylim=(-0.02, 1.05), xlabel="token entropy H (nats, log scale)", ylabel="credit / H")
    ax_ratio.set(title="how much of the bound the credit uses (H > 1e-4)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(out: Path, result: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "credit.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(result["positions"])
    (out / "credit.json").write_text(json.dumps(result, indent=2) + "\n")
    s = result["summary"]
    title = f"{s['positions']} positions, I(H; r) = {s['histogram_proxy_I_H_r']:.4f} nats"
    plot(result["positions"], out / "credit.png", title)


def estimate(args: argparse.Namespace) -> dict[str, Any]:
    """The credit estimates of the options `args`: {"settings", "summary", "positions"}."""
    import torch

    from eapo.analysis.credit import choose_positions, estimate_credit, sample_with_entropy
    from eapo.cli.options import load_model
    from eapo.core.credit import histogram_mutual_information
    from eapo.tasks.countdown import MAX_COMPLETION_LENGTH

    _check(args)
    start = time.time()
    loaded = load_registry_task(args)  # a bad task fails before the model loads
    model, tokenizer = load_model(args.model_path)
    vocab = model.config.vocab_size
    if args.top_k >= vocab:
        raise ValidationError(f"--top_k {args.top_k}: use less than the vocabulary size {vocab}")
    if torch.cuda.is_available():
        model = model.cuda()
    task = registry_task(args, tokenizer, loaded)
    length = args.max_completion_length or (MAX_COMPLETION_LENGTH if args.task == "countdown" else 256)
    torch.manual_seed(args.seed)
    sample = sample_with_entropy(model, tokenizer, task, args.completions, length, args.temperature)
    states = choose_positions(sample, args.branch_completions, args.positions, torch.Generator().manual_seed(args.seed))
    records = estimate_credit(
        model, tokenizer, task, sample, states, top_k=args.top_k, m=args.m,
        max_completion_length=length, temperature=args.temperature, batch_size=args.batch_size,
        confidence=args.confidence, replicates=args.bootstrap, seed=args.seed,
    )  # fmt: skip
    entropy = torch.cat(sample.entropy)
    correct = torch.tensor([ok for ok, h in zip(sample.correct, sample.entropy, strict=True) for _ in range(len(h))])
    proxy = histogram_mutual_information(entropy, correct, bins=args.bins, binning=args.binning)
    accuracy = sum(sample.correct) / len(sample.correct)
    settings = {k: v for k, v in vars(args).items() if k not in ("func", "run")}
    settings["max_completion_length"] = length
    summary = summarise(records, proxy, int(entropy.numel()), accuracy)
    summary["seconds"] = round(time.time() - start, 1)
    return {"settings": settings, "summary": summary, "positions": records}


def run(args: argparse.Namespace) -> int:
    result = estimate(args)
    out = Path(args.output_dir)
    write_outputs(out, result)
    print(json.dumps(result["summary"], indent=2))
    print(f"eapo credit: wrote credit.csv, credit.json, credit.png to {out}")
    return 0
