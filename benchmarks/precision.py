"""fp32 or bf16 on a CPU: the step time of `eapo train` on a real model, and what bf16 does to the entropies.

Step time: `eapo train --bf16 false` (fp32) and `--bf16 true` (bf16 autocast, fp32 master weights: what
`TrainingArguments(bf16=True)` does on a CPU), each a fresh process of `--steps` steps on the word-problem task
(`--per_device_train_batch_size` completions a step, `--max_completion_length` tokens, no evaluation, no
report, dynamic sampling off so that every step generates once), alternating fp32, bf16, fp32, ... over
`--repeats` runs each. Reported: the median of TRL's `step_time` (its `training_step`: generation, scoring,
loss forward and backward, optimizer), the first step dropped.

Entropies: one batch of completions sampled in fp32 from the model (seeded), then the entropy of every
completion token from one no-grad forward over prompt and completion, in fp32 and under bf16 autocast
(`eapo.core.entropy.entropy_and_token_logprob`, the function the trainer uses); reported: mean and max of
|H_bf16 - H_fp32| over the completion tokens, and the mean entropy in each.

Usage: python benchmarks/precision.py MODEL_DIR [--steps 4 --repeats 2 --threads 2]
Prints plain figures; nothing is asserted. Run it on a quiet machine: two CPU-heavy jobs halve each other.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def train_step_times(model: str, bf16: bool, args: argparse.Namespace) -> list[float]:
    """TRL's step_time of each step of one `eapo train` process (fp32 or bf16 autocast)."""
    with tempfile.TemporaryDirectory(prefix="precision-") as out:
        command = [
            sys.executable, "-m", "eapo", "train", "--model_path", model, "--task", args.task,
            "--prompt_format", "text", "--max_steps", str(args.steps), "--bf16", str(bf16).lower(),
            "--per_device_train_batch_size", str(args.batch), "--num_generations", "8",
            "--max_completion_length", str(args.tokens), "--dynamic_sampling", "false", "--eval_before", "false",
            "--eval_problems", "0", "--heldout_eval_steps", "0", "--report", "false", "--save_strategy", "no",
            "--disable_tqdm", "true", "--output_dir", out,
        ]  # fmt: skip
        env = {"OMP_NUM_THREADS": str(args.threads)}
        proc = subprocess.run(command, capture_output=True, text=True, env={**_environ(), **env})
        if proc.returncode != 0:
            raise SystemExit(f"eapo train failed ({'bf16' if bf16 else 'fp32'}):\n{proc.stderr[-2000:]}")
        rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines() if line.strip()]
        return [r["step_time"] for r in rows if "step_time" in r]


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)


def entropy_differences(model_dir: str, args: argparse.Namespace) -> dict[str, float]:
    """|H_bf16 - H_fp32| over the completion tokens of one fp32-sampled batch (see the module docstring)."""
    import torch

    from eapo.core.entropy import entropy_and_token_logprob
    from eapo.evaluation.sampling import preserved_rng
    from eapo.models.policy import load_policy
    from eapo.tasks.registry import load_task

    torch.set_num_threads(args.threads)
    model, tokenizer = load_policy(model_dir)
    model.eval()
    prompts = load_task(args.task, eval_size=args.batch // 8, train_size=1).heldout["prompt"]
    enc = tokenizer([p for p in prompts for _ in range(8)], return_tensors="pt", padding=False)
    with torch.no_grad(), preserved_rng(0):
        out = model.generate(**enc, do_sample=True, temperature=1.0, top_k=0, max_new_tokens=args.tokens,
                             pad_token_id=tokenizer.pad_token_id)  # fmt: skip
        n = enc["input_ids"].shape[1]
        ids = out[:, n:]
        results = {}
        for name, autocast in (("fp32", False), ("bf16", True)):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                logits = model(input_ids=out).logits[:, n - 1 : -1]
            entropy, _ = entropy_and_token_logprob(logits.flatten(0, 1), ids.flatten())
            results[name] = entropy.view(ids.shape)
    diff = (results["bf16"] - results["fp32"]).abs()
    return {
        "tokens": diff.numel(),
        "mean_abs_diff": diff.mean().item(),
        "max_abs_diff": diff.max().item(),
        "mean_entropy_fp32": results["fp32"].mean().item(),
        "mean_entropy_bf16": results["bf16"].mean().item(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dir", help="a model folder (e.g. the one `eapo model smollm2` prints)")
    p.add_argument("--task", default="wordproblems:1")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--batch", type=int, default=16, help="completions a step (groups of 8)")
    p.add_argument("--tokens", type=int, default=40, help="max completion length")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for _ in range(args.repeats):
        for name in ("fp32", "bf16"):
            times[name] += train_step_times(args.model_dir, name == "bf16", args)[1:]  # first step: warm-up
    print(
        f"model {args.model_dir}; {args.batch} completions x up to {args.tokens} tokens a step, {args.task}, "
        f"{args.threads} threads; {args.repeats} runs x {args.steps} steps each, first step of each run dropped"
    )
    for name, values in times.items():
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"  {name}: step_time median {statistics.median(values):.2f} s (steps: {runs})")
    ratio = statistics.median(times["bf16"]) / statistics.median(times["fp32"])
    print(f"  bf16 / fp32 step time: {ratio:.2f}")
    entropies = entropy_differences(args.model_dir, args)
    rounded = {k: round(v, 4) if isinstance(v, float) else v for k, v in entropies.items()}
    print(f"  entropies of one fp32-sampled batch, fp32 vs bf16-autocast forward: {json.dumps(rounded)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
