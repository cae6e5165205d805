"""`eapo eval MODEL_DIR`: sample k completions per held-out problem and report avg@k, pass@k, maj@k."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import time
from pathlib import Path
from typing import Any

_FINAL_NUMBER = re.compile(r"=(\d{1,6})\s*$")
TASKS = ("countdown",)


def countdown_answer(completion: str) -> str | None:
    """The final result of a countdown completion (`...=22` -> `"22"`), the answer majority votes on."""
    match = _FINAL_NUMBER.search(completion.strip())
    return match.group(1) if match else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model folder (safetensors checkpoint with its tokenizer)")
    parser.add_argument("--task", default="countdown", choices=TASKS, help="task to evaluate on")
    parser.add_argument("--k", type=int, default=32, help="samples per problem")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top_p", type=float, default=1.0)
    parser.add_argument("--problems", type=int, default=200, help="held-out problems (at most 200)")
    parser.add_argument("--batch_size", type=int, default=512, help="sequences per generation call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="JSON file to write (default: print only)")


def _check(args: argparse.Namespace) -> None:
    problems = []
    if args.k < 1:
        problems.append(f"--k {args.k}: use at least 1")
    if args.temperature <= 0:
        problems.append(f"--temperature {args.temperature}: use a value > 0")
    if not 0 < args.top_p <= 1:
        problems.append(f"--top_p {args.top_p}: use a value in (0, 1]")
    if args.problems < 1:
        problems.append(f"--problems {args.problems}: use at least 1")
    if not (Path(args.model) / "config.json").exists():
        problems.append(f"{args.model}: not a model folder (no config.json)")
    if problems:
        raise SystemExit("eapo eval: " + "; ".join(problems))


def sample_with_vllm(model_dir: str, prompts: list[str], args: argparse.Namespace, max_tokens: int) -> list[list[str]]:
    """k samples per prompt with vLLM (used when vLLM is installed and a GPU is present)."""
    from vllm import LLM, SamplingParams

    llm = LLM(model=model_dir, seed=args.seed)
    params = SamplingParams(n=args.k, temperature=args.temperature, top_p=args.top_p, max_tokens=max_tokens)
    return [[o.text for o in out.outputs] for out in llm.generate(prompts, params)]


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from eapo.evaluation.metrics import score_samples
    from eapo.evaluation.sampling import sample_completions
    from eapo.tasks.countdown import format_prompt
    from eapo.tasks.rewards import countdown_verifier
    from eapo.world import load_base
    from eapo.world.problems import MAX_COMPLETION_LENGTH, tiny_world_split

    _check(args)
    problems = tiny_world_split()[1][: args.problems]
    prompts = [format_prompt(p) for p in problems]
    start = time.time()
    use_vllm = importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()
    if use_vllm:
        samples = sample_with_vllm(args.model, prompts, args, MAX_COMPLETION_LENGTH)
    else:
        model, tokenizer = load_base(args.model)
        if torch.cuda.is_available():
            model = model.cuda()
        samples = sample_completions(
            model,
            tokenizer,
            prompts,
            args.k,
            temperature=args.temperature,
            top_p=args.top_p,
            max_new_tokens=MAX_COMPLETION_LENGTH,
            batch_size=args.batch_size,
            seed=args.seed,
            progress=True,
        )
    scores = score_samples(samples, countdown_verifier(problems), args.k, extract=countdown_answer)
    return {
        "model": str(args.model),
        "task": args.task,
        "problems": len(problems),
        "k": args.k,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "seed": args.seed,
        "engine": "vllm" if use_vllm else "transformers",
        "seconds": round(time.time() - start, 2),
        **scores,
    }


def main(args: argparse.Namespace) -> int:
    result = run(args)
    text = json.dumps(result, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n")
    print(text)
    return 0
