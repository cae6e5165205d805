"""Evaluation sampling with and without the prompt's forward shared by its k samples (`shared_prompt_batch`).

Samples `--problems` held-out problems x `--k` of a task (its plain-text prompts) from a model folder, twice in one
process, alternating which goes first over `--repeats`: the batch tokenized whole (every row runs its prompt
through the model) and the shared prompts (one forward per distinct prompt, its cache repeated); prints each one's
seconds, the ratio, and whether the two gave the same completions. Prints figures; nothing is asserted.

    python benchmarks/shared_prompts.py --model_path $(eapo model smollm2) --task wordproblems:1 \\
        --problems 8 --k 16 --batch_size 64 --max_new_tokens 40
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_path", required=True)
    parser.add_argument("--task", default="wordproblems:1")
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--max_new_tokens", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from eapo.evaluation import sampling
    from eapo.tasks.registry import load_task

    tokenizer = AutoTokenizer.from_pretrained(args.model_path)
    model = AutoModelForCausalLM.from_pretrained(args.model_path, dtype=torch.float32)
    task = load_task(args.task, eval_size=args.problems)
    prompts = list(task.heldout["prompt"])  # plain-text prompts (`--prompt_format text`)
    shared = sampling.shared_prompt_batch

    def plain(model, tokenizer, batch):
        enc = tokenizer(list(batch), return_tensors="pt", padding=True)
        return {key: value.to(model.device) for key, value in enc.items()}

    options = dict(k=args.k, temperature=1.0, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                   seed=0, stop_strings=task.stop_strings)  # fmt: skip
    seconds: dict[str, list[float]] = {"whole batch": [], "shared prompts": []}
    samples: dict[str, list[list[str]]] = {}
    for repeat in range(args.repeats):
        order = ["whole batch", "shared prompts"] if repeat % 2 == 0 else ["shared prompts", "whole batch"]
        for name in order:
            sampling.shared_prompt_batch = plain if name == "whole batch" else shared
            start = time.perf_counter()
            samples[name] = sampling.sample_completions(model, tokenizer, prompts, **options)
            seconds[name].append(time.perf_counter() - start)
    sampling.shared_prompt_batch = shared
    tokens = tokenizer(prompts[0])["input_ids"]
    print(f"{args.model_path}: {args.problems} problems x {args.k} samples, batches of {args.batch_size}, "
          f"up to {args.max_new_tokens} new tokens, prompts of about {len(tokens)} tokens, {args.threads} threads")
    for name, values in seconds.items():
        print(f"  {name:15s} median {statistics.median(values):7.1f} s  ({', '.join(f'{v:.1f}' for v in values)})")
    ratio = statistics.median(seconds["whole batch"]) / statistics.median(seconds["shared prompts"])
    print(f"  whole batch / shared prompts: {ratio:.2f}x")
    print(f"  same completions: {samples['whole batch'] == samples['shared prompts']}")


if __name__ == "__main__":
    main()
