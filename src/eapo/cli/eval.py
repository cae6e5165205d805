"""`eapo eval [MODEL_PATH]`: sample k completions per held-out problem of any `eapo train` task and report avg@k,
pass@j (unbiased), and, when the task has an answer extractor, maj@k and the format numbers (format rate,
accuracy, accuracy among well-formatted completions), scored by the task's own reward."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import time
from pathlib import Path
from typing import Any

from eapo.cli.options import (
    add_model_argument,
    add_task_arguments,
    check_counts,
    load_heldout,
    load_model,
    model_path,
    render_heldout,
)
from eapo.cli.validate import ValidationError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_argument(parser, positional=True, default_help="the shipped tiny-world policy")
    add_task_arguments(parser)
    parser.add_argument("--eval_k", "--k", dest="eval_k", type=int, default=32, help="samples per problem")
    parser.add_argument("--eval_problems", "--problems", dest="eval_problems", type=int, default=200,
                        help="held-out problems (the first N of the held-out set, after --eval_offset)")  # fmt: skip
    parser.add_argument("--eval_offset", type=int, default=0,
                        help="skip this many held-out problems, as eapo train (a run's evaluation again)")  # fmt: skip
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top_p", type=float, default=1.0)
    parser.add_argument("--max_completion_length", "--max_new_tokens", dest="max_new_tokens", type=int, default=None,
                        help="tokens per sample (default: 24 for countdown, 512 for other tasks)")  # fmt: skip
    parser.add_argument("--batch_size", type=int, default=512,
                        help="sequences per transformers generation call (vLLM batches itself)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--dtype", default=None, choices=("float32", "bfloat16", "float16"),
        help="weights' dtype for sampling (default: as saved; bfloat16 samples faster on a CPU with AVX512-BF16)",
    )  # fmt: skip
    parser.add_argument("--output_dir", default=None, help="folder to write eval.json into (default: print only)")
    parser.add_argument("--output", default=None, help="JSON file to write (instead of --output_dir)")


def _check(args: argparse.Namespace) -> None:
    check_counts(args, {"eval_k": 1, "eval_problems": 1, "batch_size": 1})
    if args.eval_offset < 0:
        raise ValidationError(f"--eval_offset {args.eval_offset}: use a value >= 0")
    if not (math.isfinite(args.temperature) and args.temperature > 0):  # NaN passes `<= 0`
        raise ValidationError(f"--temperature {args.temperature}: use a finite value > 0 (1.0 samples)")
    if not math.isfinite(args.threshold):
        raise ValidationError(f"--threshold {args.threshold}: use a finite number (1: full score)")
    if not 0 < args.top_p <= 1:
        raise ValidationError(f"--top_p {args.top_p}: use a value in (0, 1]")
    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        raise ValidationError(f"--max_completion_length {args.max_new_tokens}: use at least 1")


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """The evaluation as a JSON-able dict (settings and scores)."""
    import torch

    from eapo.evaluation.heldout import answer_scores, problem_record, score_with_reward, scores_from_correct
    from eapo.evaluation.sampling import sample_completions, sample_with_vllm
    from eapo.models.policy import prompt_text
    from eapo.tasks.countdown import MAX_COMPLETION_LENGTH

    _check(args)
    path = model_path(args)
    task = load_heldout(args, args.eval_problems)
    model, tokenizer = load_model(path, args.dtype)
    render_heldout(task, args, tokenizer)
    prompts = [prompt_text(tokenizer, p) for p in task.heldout["prompt"]]
    max_tokens = args.max_new_tokens or (MAX_COMPLETION_LENGTH if args.task == "countdown" else 512)
    start = time.time()
    use_vllm = path is not None and importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()
    if use_vllm:
        del model
        samples = sample_with_vllm(
            path, prompts, args.eval_k, temperature=args.temperature, top_p=args.top_p, max_new_tokens=max_tokens,
            seed=args.seed, stop_strings=task.stop_strings, dtype=args.dtype,
        )
    else:
        if torch.cuda.is_available():
            model = model.cuda()
        samples = sample_completions(
            model, tokenizer, prompts, args.eval_k, temperature=args.temperature, top_p=args.top_p,
            max_new_tokens=max_tokens, batch_size=args.batch_size, seed=args.seed, progress=True,
            desc=f"eval ({len(prompts)} problems x {args.eval_k})", stop_strings=task.stop_strings,
        )  # fmt: skip
    _, correct = score_with_reward(task.reward, task.heldout, samples, args.threshold)
    scores = scores_from_correct(correct, args.eval_k)
    if task.extract_answer is not None:
        scores |= answer_scores(samples, correct, args.eval_k, task.extract_answer)
    return {
        "model": str(path or "the shipped tiny-world policy"),
        "task": args.task,
        "eval_offset": args.eval_offset,
        "k": args.eval_k,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "max_new_tokens": max_tokens,
        "stop_strings": list(task.stop_strings),
        "seed": args.seed,
        "dtype": args.dtype or ("vLLM's auto" if use_vllm else "as saved"),
        "engine": "vllm" if use_vllm else "transformers",
        "seconds": round(time.time() - start, 2),
        **scores,
        **problem_record(prompts, correct),  # problems_sha256 equals a run's eval.json's for the same problems
    }


def run(args: argparse.Namespace) -> int:
    from eapo.pipeline.checks import check_output_file, check_output_folder

    if args.output is not None and args.output_dir is not None:
        raise ValidationError("--output and --output_dir both given: pass one")
    _check(args)  # the options and where the result goes, before any task or model loads
    check_output_file(args.output, "output")
    if args.output_dir is not None:
        check_output_folder(args.output_dir, "output_dir")
    result = evaluate(args)
    text = json.dumps(result, indent=2)
    target = Path(args.output) if args.output else Path(args.output_dir) / "eval.json" if args.output_dir else None
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text + "\n")
    shown = {k: v for k, v in result.items() if k != "correct_per_problem"}  # one number per problem: the file's
    print(json.dumps(shown, indent=2))
    return 0
