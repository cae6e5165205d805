"""`eapo evalsuite RECIPE --model DIR`: a model on several benchmarks of an evaluation recipe (see
`eapo.evaluation.suite`)."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

from eapo.cli.options import check_counts
from eapo.cli.validate import ValidationError
from eapo.evaluation.suite import Suite, SuiteError, load_suite, run_suite


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="evaluation recipe (YAML), e.g. recipes/eval-math.yaml")
    parser.add_argument("--model_path", "--model", dest="model", required=True,
                        help="model folder (safetensors checkpoint with its tokenizer)")  # fmt: skip
    parser.add_argument("--only", default=None, help="comma-separated benchmark names (default: all)")
    parser.add_argument("--limit", type=int, default=None, help="first N problems of each benchmark (smoke tests)")
    parser.add_argument("--max_completion_length", "--max_new_tokens", dest="max_new_tokens", type=int, default=None,
                        help="override the recipe's max_new_tokens (tokens per sample)")  # fmt: skip
    parser.add_argument("--prompt_format", default="auto", choices=("auto", "chat", "text"))
    parser.add_argument("--dtype", default="auto", choices=("auto", "bfloat16", "float16", "float32"))
    parser.add_argument("--engine", default="auto", choices=("auto", "vllm", "transformers"))
    parser.add_argument("--batch_size", type=int, default=64, help="sequences per transformers generation call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="JSON file to write (default: print only)")


def _check(args: argparse.Namespace) -> None:
    """The flags and the --output file, before the recipe is read or anything loads."""
    from eapo.pipeline.checks import check_output_file

    if not args.model.strip():
        raise ValidationError("--model_path '': give a model folder")
    check_counts(args, {"batch_size": 1, **({"limit": 1} if args.limit is not None else {})})
    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        raise ValidationError(f"--max_completion_length {args.max_new_tokens}: use at least 1")
    check_output_file(args.output, "output")  # a folder there failed only after the evaluation


def run(args: argparse.Namespace) -> int:
    _check(args)
    try:
        suite = load_suite(args.recipe)
    except SuiteError as err:
        raise ValidationError(f"error: {err}") from None

    import torch

    from eapo.models.policy import PolicyError
    from eapo.tasks.registry import TaskError

    try:
        if args.max_new_tokens is not None:
            suite = Suite(suite.temperature, suite.top_p, args.max_new_tokens, suite.system_prompt, suite.benchmarks)
        if args.engine == "auto":  # a LoRA run's adapter folder is merged by transformers, not read by vLLM
            has_vllm = importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()
            has_vllm = has_vllm and not (Path(args.model) / "adapter_config.json").exists()
            args.engine = "vllm" if has_vllm else "transformers"
        results = run_suite(suite, args)
    except (SuiteError, TaskError, PolicyError) as err:
        raise ValidationError(f"error: {err}") from None
    out = {"model": str(args.model), "temperature": suite.temperature, "top_p": suite.top_p,
           "engine": args.engine, "benchmarks": results}  # fmt: skip
    text = json.dumps(out, indent=2)
    if args.output is not None:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text + "\n")
    print(text)
    return 0
