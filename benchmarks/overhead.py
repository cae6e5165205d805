"""Step-time overhead of `EAPOTrainer` (`--method`, default eapo; quadrant metrics on) over plain `trl.GRPOTrainer`.

Both trainers run the same settings (DAPO loss, clip range [0.2, 0.28], batch, group size, completion
length, learning rate, seed) on the same synthetic task, the same reward and the same initial weights
(one model built from a seed, deep-copied for every run). Runs are interleaved, GRPO then EAPO, the
order alternating every repeat to cancel drift, and each is a short `trainer.train()` of `--steps`
optimizer steps.

Dynamic sampling is off: it changes how much is generated (extra rounds on fresh prompts until the
batch holds only groups with a learning signal), not the cost of a step, so it would measure the task,
not the trainer. What EAPO adds per step: the token-level advantages and the quadrant metrics, and the
entropies and `log pi_old` of the sampled tokens: from the loss forward itself with one micro-batch per
generation; recorded during generation from the logits it computes (`eapo.trainer.generation`) when the
generation batch is split over several micro-batches (`--accumulation` > 1).

The model: by default a randomly initialised Qwen2 over a synthetic word vocabulary (`--hidden`,
`--layers`, `--vocab`, ...). With `--model_path DIR`, a local model folder instead (safetensors, loaded
in float32 with its own tokenizer), on prompts of random numbers, rewarded by the share of even token
ids in the completion.

Timings, per run:
- wall/step: `train_runtime / steps`, the whole `train()` (generation, scoring, EAPO's extra forward,
  forward/backward, optimizer, logging) including the first step's warm-up. The headline.
- steady wall/step: time between consecutive `on_step_end` callbacks, first step dropped: the whole
  step as well (data, generation, loss, optimizer, logging), warm-up excluded.
- CPU time/step: the process's CPU time (`time.process_time`) over the whole `train()`, divided by the
  steps. With one torch thread it does not count the time the host deschedules the process, so on a
  shared machine it is the least noisy of the four.
- TRL step_time: TRL's logged `step_time`, first step dropped. It times `GRPOTrainer.training_step`,
  which calls `_prepare_inputs` and therefore covers generation, scoring and EAPO's entropy forward
  (`_generate_and_score_completions`) plus forward/backward, but not grad clipping, the optimizer step
  or logging.

Threads: the default is 1 torch thread. On the small 2-vCPU VM this was written on, 2 OpenMP threads
are ~1.3x faster while the host is quiet, but whenever the host deschedules a vCPU every parallel
region stalls on the missing thread and a step gets 5-20x slower for tens of seconds: the numbers
become noise. One thread is stable there. Pass `--threads 2` on a machine with dedicated cores. To
flag such episodes, a fixed matmul probe is timed before and after every run: a repeat whose probe
is over 1.5x the fastest probe of the session is marked slow (`*`), and the summary is given over all
repeats and over the unmarked ones.

Usage: python benchmarks/overhead.py [--repeats 5 --steps 6 --hidden 256 --layers 4 --accumulation 2 --batch 8 ...]
       python benchmarks/overhead.py --model_path /work/models/smollm2-135m-instruct --accumulation 2 --batch 8
Prints plain figures; nothing is asserted.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import platform
import statistics
import tempfile
import time
import warnings
from typing import Any

import torch
import transformers
import trl
from datasets import Dataset
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast, Qwen2ForCausalLM, TrainerCallback
from transformers.trainer_callback import PrinterCallback
from trl import GRPOConfig, GRPOTrainer

from eapo import EAPOConfig, EAPOTrainer
from eapo.world import build_model as eapo_build_model

SPECIAL = ("<pad>", "<eos>")
IGNORED_CONFIG_FIELDS = {"output_dir", "run_name", "logging_dir"}


# ----- the synthetic world -------------------------------------------------------------------------


def word_tokenizer(vocab_size: int) -> PreTrainedTokenizerFast:
    """Word-level tokenizer over `<pad>`, `<eos>` and synthetic words `w0 ... w{vocab_size - 3}`."""
    vocab = {tok: i for i, tok in enumerate(SPECIAL)}
    for i in range(vocab_size - len(SPECIAL)):
        vocab[f"w{i}"] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")


def build_model(args: argparse.Namespace) -> Qwen2ForCausalLM:
    return eapo_build_model(
        word_tokenizer(args.vocab),
        seed=args.seed,
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_layers=args.layers,
        num_heads=args.heads,
        num_kv_heads=args.kv_heads,
        max_positions=256,
    )


def build_dataset(args: argparse.Namespace) -> Dataset:
    """Prompts of 8 to 16 random words; enough of them that no prompt repeats within a run."""
    gen = torch.Generator().manual_seed(args.seed)
    n = max(64, args.steps * args.batch // args.generations * 2)
    words = args.vocab - len(SPECIAL)
    prompts = []
    for _ in range(n):
        length = int(torch.randint(8, 17, (1,), generator=gen))
        prompts.append(" ".join(f"w{int(i)}" for i in torch.randint(words, (length,), generator=gen)))
    return Dataset.from_dict({"prompt": prompts})


def even_word_reward(completions, **kwargs) -> list[float]:
    """Share of completion words with an even index: graded, so groups carry a learning signal."""
    rewards = []
    for text in completions:
        ids = [int(w[1:]) for w in text.split() if w[:1] == "w" and w[1:].isdigit()]
        rewards.append(sum(i % 2 == 0 for i in ids) / len(ids) if ids else 0.0)
    return rewards


def even_id_reward(completions, completion_ids, **kwargs) -> list[float]:
    """Share of completion token ids that are even: graded, for any tokenizer."""
    return [sum(i % 2 == 0 for i in ids) / len(ids) if ids else 0.0 for ids in completion_ids]


def number_dataset(args: argparse.Namespace) -> Dataset:
    """Prompts of 8 to 16 random numbers (for a model folder's own tokenizer)."""
    gen = torch.Generator().manual_seed(args.seed)
    n = max(64, args.steps * args.batch // args.generations * 2)
    prompts = []
    for _ in range(n):
        length = int(torch.randint(8, 17, (1,), generator=gen))
        numbers = " ".join(str(int(i)) for i in torch.randint(1000, (length,), generator=gen))
        prompts.append(f"Continue the list: {numbers}")
    return Dataset.from_dict({"prompt": prompts})


def build_world(args: argparse.Namespace) -> dict[str, Any]:
    """Model, tokenizer, dataset, reward and a one-line description: built-in Qwen2 or `--model_path`."""
    if args.model_path is None:
        model = build_model(args)
        n_params = sum(p.numel() for p in model.parameters())
        return {
            "model": model,
            "tokenizer": word_tokenizer(args.vocab),
            "dataset": build_dataset(args),
            "reward": even_word_reward,
            "model_line": f"Qwen2 hidden={args.hidden} layers={args.layers} heads={args.heads} "
            f"kv_heads={args.kv_heads} intermediate={args.intermediate} vocab={args.vocab} tied embeddings, "
            f"{n_params / 1e6:.2f}M params",
            "data_line": "prompts of 8-16 synthetic words; reward: share of even-index words",
        }
    model = AutoModelForCausalLM.from_pretrained(args.model_path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(args.model_path)
    n_params = sum(p.numel() for p in model.parameters())
    return {
        "model": model,
        "tokenizer": tokenizer,
        "dataset": number_dataset(args),
        "reward": even_id_reward,
        "model_line": f"{args.model_path}: {type(model).__name__} hidden={model.config.hidden_size} "
        f"layers={model.config.num_hidden_layers} vocab={model.config.vocab_size}, {n_params / 1e6:.2f}M params, "
        "float32",
        "data_line": "prompts 'Continue the list:' + 8-16 random numbers; reward: share of even token ids",
    }


# ----- configs and one timed run -------------------------------------------------------------------


def shared_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return dict(
        use_cpu=True,
        bf16=False,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
        logging_steps=1,
        seed=args.seed,
        learning_rate=args.lr,
        max_steps=args.steps,
        num_generations=args.generations,
        per_device_train_batch_size=args.batch,
        gradient_accumulation_steps=args.accumulation,
        max_completion_length=args.completion_length,
        temperature=1.0,
        loss_type="dapo",
        epsilon=0.2,
        epsilon_high=0.28,
    )


# GRPOConfig fields a method's preset may set: the GRPO baseline copies them, so both run the same config.
PRESET_FIELDS = ("loss_type", "scale_rewards", "epsilon", "epsilon_high", "entropy_coef", "top_entropy_quantile")


def make_config(kind: str, args: argparse.Namespace, output_dir: str) -> GRPOConfig:
    eapo = EAPOConfig(
        output_dir,
        method=args.method,
        quadrant_metrics=True,
        dynamic_sampling=False,
        overlong_buffer_ratio=0.0,  # an extra reward function plain GRPOTrainer would not have
        **shared_kwargs(args),
    )
    if kind == "eapo":
        return eapo
    return GRPOConfig(output_dir, **{**shared_kwargs(args), **{k: getattr(eapo, k) for k in PRESET_FIELDS}})


def config_differences(grpo: GRPOConfig, eapo: EAPOConfig) -> list[str]:
    """GRPOConfig fields whose values differ between the two configs (should be none)."""
    a, b = grpo.to_dict(), eapo.to_dict()
    return [f"{k}: grpo={a[k]!r} eapo={b.get(k)!r}" for k in a if k not in IGNORED_CONFIG_FIELDS and a[k] != b.get(k)]


def probe() -> float:
    """Seconds for a fixed matmul workload, the median of 5: a gauge of how fast the machine is now."""
    a = torch.randn(256, 256, generator=torch.Generator().manual_seed(0))
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(10):
            a @ a
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class StepClock(TrainerCallback):
    """Wall-clock time at the end of every optimizer step."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append(time.perf_counter())


def timed_run(kind: str, world: dict[str, Any], args: argparse.Namespace, steps: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        config = make_config(kind, args, out)
        config.max_steps = steps
        trainer_cls = EAPOTrainer if kind == "eapo" else GRPOTrainer
        trainer = trainer_cls(
            model=copy.deepcopy(world["model"]),
            reward_funcs=world["reward"],
            args=config,
            train_dataset=world["dataset"],
            processing_class=world["tokenizer"],
        )
        trainer.remove_callback(PrinterCallback)
        clock = StepClock()
        trainer.add_callback(clock)
        before = probe()
        cpu_start = time.process_time()
        result = trainer.train()
        cpu = time.process_time() - cpu_start
        after = probe()
        step_times = [e["step_time"] for e in trainer.state.log_history if "step_time" in e]
        steady = [b - a for a, b in zip(clock.ends, clock.ends[1:], strict=False)]
        return {
            "wall": result.metrics["train_runtime"] / steps,
            "cpu": cpu / steps,
            "steady": statistics.median(steady) if steady else float("nan"),
            "step_time": statistics.median(step_times[1:] or step_times),
            "probe": max(before, after),
        }


# ----- report --------------------------------------------------------------------------------------

TIMINGS = (
    ("wall", "wall/step = train_runtime/steps (headline)"),
    ("steady", "steady wall/step (on_step_end deltas, 1st dropped)"),
    ("step_time", "TRL step_time (training_step, 1st dropped)"),
    ("cpu", "CPU time/step (process_time of train(), all steps)"),
)
SLOW_PROBE = 1.5  # a repeat is marked slow when a run's probe exceeds this times the fastest probe


def print_repeats(runs: dict[str, list[dict[str, float]]], slow: list[bool]) -> None:
    print("\nper repeat (seconds per optimizer step; probe in ms; * = machine slow during the repeat)")
    head = " ".join(f"{k + ' G':>12} {k + ' E':>12} {'E/G':>6}" for k, _ in TIMINGS)
    print(f"{'repeat':>6} {'order':>10} {head} {'probe G':>8} {'probe E':>8}")
    for r, (g, e) in enumerate(zip(runs["grpo"], runs["eapo"], strict=True)):
        order = "GRPO,EAPO" if r % 2 == 0 else "EAPO,GRPO"
        cells = " ".join(f"{g[k]:12.3f} {e[k]:12.3f} {e[k] / g[k]:6.3f}" for k, _ in TIMINGS)
        mark = " *" if slow[r] else ""
        print(f"{r:>6} {order:>10} {cells} {g['probe'] * 1e3:8.1f} {e['probe'] * 1e3:8.1f}{mark}")


def print_summary(runs: dict[str, list[dict[str, float]]], keep: list[int], title: str) -> None:
    print(f"\n{title}")
    if not keep:
        print("  (none)")
        return
    print(f"{'timing':<52} {'GRPO med':>9} {'EAPO med':>9} {'med(E/G)':>9} {'medE/medG':>9}")
    for key, label in TIMINGS:
        g = [runs["grpo"][r][key] for r in keep]
        e = [runs["eapo"][r][key] for r in keep]
        ratios = [b / a for a, b in zip(g, e, strict=True)]
        g_med, e_med = statistics.median(g), statistics.median(e)
        print(f"{label:<52} {g_med:9.3f} {e_med:9.3f} {statistics.median(ratios):9.3f} {e_med / g_med:9.3f}")


def print_report(runs: dict[str, list[dict[str, float]]], args: argparse.Namespace, total: float) -> None:
    fastest = min(run["probe"] for kind in runs.values() for run in kind)
    slow = [max(g["probe"], e["probe"]) > SLOW_PROBE * fastest for g, e in zip(runs["grpo"], runs["eapo"], strict=True)]
    print_repeats(runs, slow)
    everything = list(range(args.repeats))
    print_summary(runs, everything, f"summary over all {args.repeats} repeats x {args.steps} steps")
    clean = [r for r in everything if not slow[r]]
    if len(clean) < args.repeats:
        print_summary(runs, clean, f"summary over the {len(clean)} repeats not marked slow")
    print(f"\ntotal benchmark time: {total:.1f} s (warm-up runs included)")


def print_setup(args: argparse.Namespace, world: dict[str, Any], diffs: list[str]) -> None:
    print("EAPOTrainer overhead benchmark")
    print(
        f"machine: processor={platform.processor() or platform.machine()!r} cpu_count={os.cpu_count()} "
        f"torch threads={torch.get_num_threads()} python={platform.python_version()}"
    )
    print(f"versions: torch={torch.__version__} trl={trl.__version__} transformers={transformers.__version__}")
    print(f"model: {world['model_line']}")
    print(f"data: {len(world['dataset'])} {world['data_line']}")
    print(f"shared config: {shared_kwargs(args)}")
    print(f"EAPO config adds: method={args.method!r}, quadrant_metrics=True, dynamic_sampling=False")
    print(f"GRPOConfig fields that differ between the two: {diffs or 'none'}")
    print(f"repeats={args.repeats} steps/run={args.steps} untimed warm-up runs: {args.warmup_steps} step(s) each")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5, help="interleaved GRPO/EAPO run pairs")
    p.add_argument("--steps", type=int, default=6, help="optimizer steps per run")
    p.add_argument("--warmup-steps", type=int, default=1, help="steps of one untimed run of each trainer first")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--intermediate", type=int, default=None, help="MLP width (default 2 x hidden)")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--completion-length", type=int, default=48)
    p.add_argument("--generations", type=int, default=8, help="num_generations (group size)")
    p.add_argument("--batch", type=int, default=16, help="per_device_train_batch_size")
    p.add_argument(
        "--accumulation",
        type=int,
        default=1,
        help="gradient_accumulation_steps (= steps_per_generation). 1: EAPO applies the method inside the loss "
        "forward; > 1: the generation batch is split, EAPO records the entropies during generation",
    )
    p.add_argument(
        "--model_path",
        default=None,
        help="a local model folder (safetensors) to run instead of the built-in Qwen2 (--hidden etc. are ignored)",
    )
    p.add_argument("--method", default="eapo", help="eapo method to time against GRPOTrainer on the same config")
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (see the module docstring)")
    args = p.parse_args(argv)
    if args.intermediate is None:
        args.intermediate = 2 * args.hidden
    return args


def quiet() -> None:
    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
    logging.getLogger("trl").setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    quiet()
    torch.set_num_threads(args.threads)
    world = build_world(args)
    with tempfile.TemporaryDirectory() as out:
        diffs = config_differences(make_config("grpo", args, out), make_config("eapo", args, out))
    print_setup(args, world, diffs)

    start = time.perf_counter()
    if args.warmup_steps > 0:
        for kind in ("grpo", "eapo"):
            timed_run(kind, world, args, args.warmup_steps)
    runs: dict[str, list[dict[str, float]]] = {"grpo": [], "eapo": []}
    for r in range(args.repeats):
        order = ("grpo", "eapo") if r % 2 == 0 else ("eapo", "grpo")
        for kind in order:
            runs[kind].append(timed_run(kind, world, args, args.steps))
        g, e = runs["grpo"][-1]["wall"], runs["eapo"][-1]["wall"]
        print(f"repeat {r}: wall/step GRPO {g:.3f} s, EAPO {e:.3f} s, ratio {e / g:.3f}", flush=True)
    print_report(runs, args, time.perf_counter() - start)


if __name__ == "__main__":
    main()
