"""One GPU check of eapo's trainer paths: entropy cost, step time and memory per method, bf16 entropy agreement.

Written for one H100 (at most 8 minutes from a copy of the repo with its wheels), and runnable on a CPU at
small sizes (`--small`, what tests/benchmarks/test_gpu_check.py runs, a few seconds), so that it cannot rot.
It prints one table (and, with `--json PATH`, writes the figures). Four measurements:

1. `entropy`: time (median of `--repeats` calls after one warm-up) and peak extra memory of
   `eapo.token_entropy` against TRL's `entropy_from_logits` on `3 * randn` logits of `--entropy_shape`
   (default (4, 1024, 151936)) in bf16. Peak extra memory: `max_memory_allocated - memory_allocated` around
   the call on CUDA; not measured on CPU (see benchmarks/entropy.py for the CPU figures).
2. `step`: an optimizer step of each method on a randomly initialised model of Qwen2-0.5B's shape (`--small`:
   a 2-layer, 64-wide one) in bf16 weights, `--prompts` prompts x `--group` completions per generation batch,
   split over 2 micro-batches (`gradient_accumulation_steps=2`: EAPO records its entropies during generation),
   `--completion` new tokens, no dynamic sampling. `grpo (TRL)` is TRL's own `GRPOTrainer` with the DAPO loss
   settings EAPO uses; every other row is `EAPOTrainer` with that `method`. Step time: median over the steps
   after the first (which is warm-up), from one `TrainerCallback.on_step_end` to the next; the `ratio` column
   divides it by `grpo (TRL)`'s. Peak memory: `max_memory_allocated` over those steps (CUDA only).
3. `bf16 agreement`: the shipped tiny-world policy (`eapo.world`, trained, so its entropies are not flat) in
   bf16 samples left-padded prompts (lengths 6 to 23 characters) with the generation recorder on; then the
   entropies of the same completions come from TRL's forward (`GRPOTrainer._get_per_token_logps_and_entropies`,
   positions numbered by column: the code before issue 28) and from eapo's (`generate`'s position ids).
   Max and mean |H_recorded - H_forward| over valid completion tokens: all rows, the left-padded ones, the others.
4. The device and dtype of what the trainer keeps between steps (`last_labels`, `last_advantages`).

Usage: python benchmarks/gpu_check.py [--small] [--device cuda|cpu] [--methods grpo,eapo,...] [--json PATH]
Nothing is asserted here; tests/trainer/test_generation_entropy.py holds the bf16 bound.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

MIB = 2**20
DEFAULT_METHODS = ("grpo", "dapo", "eapo", "forking", "entroadv", "kl_cov", "clip_cov", "w_reinforce")
BF16_COLUMNS = {
    "max": "max",
    "mean": "mean",
    "padded_max": "padded rows max",
    "padded_mean": "padded rows mean",
    "unpadded_max": "unpadded rows max",
    "unpadded_mean": "unpadded rows mean",
}
BF16_PROMPTS = ("3,5>8:", "7,8>56:", "1,2,3>6:", "4,6,8,9>24:", "12,7,3,25>47:", "9,9,9,9,9,9>54:")


@dataclass
class Sizes:
    """What `--small` changes: the entropy logits, the model shape and the step's batch."""

    entropy_shape: tuple[int, int, int] = (4, 1024, 151936)
    vocab: int = 151936
    hidden: int = 896
    intermediate: int = 4864
    layers: int = 24
    heads: int = 14
    kv_heads: int = 2
    prompts: int = 8
    group: int = 8
    prompt_len: int = 64
    completion: int = 128
    steps: int = 3
    repeats: int = 5
    bf16_group: int = 8
    bf16_new_tokens: int = 48


SMALL = Sizes(
    entropy_shape=(2, 64, 4096), vocab=512, hidden=64, intermediate=128, layers=2, heads=4, kv_heads=2,
    prompts=2, group=4, prompt_len=8, completion=8, steps=3, repeats=3, bf16_group=4, bf16_new_tokens=24,
)  # fmt: skip


@dataclass
class Report:
    device: str
    entropy: dict[str, dict[str, float | None]] = field(default_factory=dict)
    steps: dict[str, dict[str, float | None]] = field(default_factory=dict)
    bf16: dict[str, dict[str, float]] = field(default_factory=dict)
    kept: dict[str, str] = field(default_factory=dict)


# ----- 1. entropy cost ---------------------------------------------------------------------------------


def _peak_and_time(fn: Any, logits: torch.Tensor, repeats: int) -> tuple[float, float | None]:
    """(median seconds, peak extra MiB or None on CPU) of `fn(logits)`; the first call is the warm-up."""
    cuda = logits.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    with torch.no_grad():
        fn(logits)
    peak = (torch.cuda.max_memory_allocated() - base) / MIB if cuda else None
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.no_grad():
            fn(logits)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), peak


def entropy_cost(device: torch.device, sizes: Sizes) -> dict[str, dict[str, float | None]]:
    """Time and peak memory of eapo's and TRL's entropy on the same bf16 logits."""
    from trl.trainer.utils import entropy_from_logits

    from eapo import token_entropy

    gen = torch.Generator(device=device).manual_seed(0)
    logits = (3.0 * torch.randn(sizes.entropy_shape, generator=gen, device=device)).to(torch.bfloat16)
    out = {}
    for name, fn in (("eapo token_entropy", token_entropy), ("trl entropy_from_logits", entropy_from_logits)):
        seconds, peak = _peak_and_time(fn, logits, sizes.repeats)
        out[name] = {"seconds": seconds, "peak_extra_mib": peak}
    return out


# ----- 2. step time and memory per method ---------------------------------------------------------------


def word_tokenizer(vocab: int) -> Any:
    """A whitespace word-level tokenizer whose vocabulary is `vocab` words `<pad>`, `<eos>`, `w2`, `w3`, ..."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = {"<pad>": 0, "<eos>": 1, **{f"w{i}": i for i in range(2, vocab)}}
    core = Tokenizer(models.WordLevel(vocab=words, unk_token="<pad>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>")


def random_qwen2(sizes: Sizes, tokenizer: Any, seed: int = 0) -> Any:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=sizes.vocab, hidden_size=sizes.hidden, intermediate_size=sizes.intermediate,
        num_hidden_layers=sizes.layers, num_attention_heads=sizes.heads, num_key_value_heads=sizes.kv_heads,
        max_position_embeddings=4096, tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    return Qwen2ForCausalLM(config).to(torch.bfloat16)


def word_prompts(sizes: Sizes, n: int) -> Any:
    from datasets import Dataset

    gen = torch.Generator().manual_seed(1)
    lengths = torch.randint(sizes.prompt_len // 2, sizes.prompt_len + 1, (n,), generator=gen)
    prompts = [" ".join(f"w{int(i)}" for i in torch.randint(2, sizes.vocab, (int(k),), generator=gen)) for k in lengths]
    return Dataset.from_dict({"prompt": prompts})


def parity_reward(completions: list[str], **kwargs: Any) -> list[float]:
    """1 when the completion has an even number of characters: about half, so groups carry signal."""
    return [float(len(c) % 2 == 0) for c in completions]


class StepClock:
    """`TrainerCallback` hooks recording the time of each optimizer step's end and, on CUDA, the peak memory
    allocated after the first (warm-up) step."""

    def __init__(self, cuda: bool) -> None:
        self.cuda, self.ends = cuda, []
        self.peak_mib: float | None = None

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            if len(self.ends) >= 1:
                self.peak_mib = max(self.peak_mib or 0.0, torch.cuda.max_memory_allocated() / MIB)
            torch.cuda.reset_peak_memory_stats()
        self.ends.append(time.perf_counter())

    def __getattr__(self, name: str) -> Any:  # every other TrainerCallback event: nothing to do
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)


def _step_config(method: str | None, device: torch.device, sizes: Sizes, out_dir: str) -> Any:
    from trl import GRPOConfig

    from eapo import EAPOConfig

    common = dict(
        output_dir=out_dir, use_cpu=device.type == "cpu", bf16=False, report_to="none", seed=0,
        num_generations=sizes.group, per_device_train_batch_size=sizes.prompts * sizes.group // 2,
        gradient_accumulation_steps=2, max_completion_length=sizes.completion, max_steps=sizes.steps,
        learning_rate=1e-6, logging_steps=1, save_strategy="no", disable_tqdm=True, temperature=1.0,
    )  # fmt: skip
    if method is None:  # TRL's GRPOTrainer with the DAPO loss settings of EAPO's preset
        return GRPOConfig(**common, loss_type="dapo", epsilon=0.2, epsilon_high=0.28)
    return EAPOConfig(**common, method=method, dynamic_sampling=False)


def step_cost(method: str | None, device: torch.device, sizes: Sizes, state: dict[str, torch.Tensor]) -> dict:
    """Median step time and peak memory of `method` (None: TRL's GRPOTrainer), from the same initial weights."""
    import tempfile

    from transformers import PrinterCallback
    from trl import GRPOTrainer

    from eapo import EAPOTrainer

    tokenizer = word_tokenizer(sizes.vocab)
    model = random_qwen2(sizes, tokenizer)
    model.load_state_dict(state)
    clock = StepClock(device.type == "cuda")
    with tempfile.TemporaryDirectory() as out_dir:
        trainer_cls = GRPOTrainer if method is None else EAPOTrainer
        trainer = trainer_cls(
            model=model, reward_funcs=parity_reward, args=_step_config(method, device, sizes, out_dir),
            train_dataset=word_prompts(sizes, 64), processing_class=tokenizer, callbacks=[clock],
        )  # fmt: skip
        trainer.remove_callback(PrinterCallback)  # the table is the output, not every step's logs
        trainer.train()
    times = [b - a for a, b in zip(clock.ends, clock.ends[1:], strict=False)]
    result = {"seconds": statistics.median(times), "peak_mib": clock.peak_mib}
    if method is not None:
        result["kept"] = f"{trainer.last_labels.device.type}/{str(trainer.last_labels.dtype).removeprefix('torch.')}"
    del trainer, model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def step_costs(device: torch.device, sizes: Sizes, methods: list[str]) -> tuple[dict, dict[str, str]]:
    tokenizer = word_tokenizer(sizes.vocab)
    state = {k: v.to(device) for k, v in random_qwen2(sizes, tokenizer).state_dict().items()}
    rows: dict[str, dict[str, float | None]] = {}
    kept: dict[str, str] = {}
    for method in [None, *methods]:
        name = "grpo (TRL)" if method is None else method
        result = step_cost(method, device, sizes, state)
        if "kept" in result:
            kept[name] = result.pop("kept")
        rows[name] = result
    baseline = rows["grpo (TRL)"]["seconds"]
    for row in rows.values():
        row["ratio"] = row["seconds"] / baseline
    return rows, kept


# ----- 3. bf16 agreement ---------------------------------------------------------------------------------


def _left_padded(tokenizer: Any, group: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in BF16_PROMPTS for _ in range(group)]
    width, pad = max(map(len, ids)), tokenizer.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(i)) + i for i in ids], device=device)
    mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i in ids], device=device)
    return input_ids, mask


def _completion_mask(completion_ids: torch.Tensor, eos: int) -> torch.Tensor:
    """TRL's completion mask: 1 up to and including the first EOS."""
    is_eos = completion_ids == eos
    width = completion_ids.shape[1]
    first = torch.where(is_eos.any(1), is_eos.int().argmax(1), torch.full_like(is_eos[:, 0], width, dtype=torch.long))
    return (torch.arange(width, device=completion_ids.device).unsqueeze(0) <= first.unsqueeze(1)).long()


def bf16_trainer(device: torch.device, out_dir: str, seed: int = 0) -> Any:
    """An `EAPOTrainer` around the shipped tiny-world policy in bf16 weights (no training: its forwards only)."""
    from eapo import EAPOConfig, EAPOTrainer
    from eapo.world import load_base

    model, tokenizer = load_base()
    model = model.to(device=device, dtype=torch.bfloat16).eval()
    args = EAPOConfig(
        output_dir=out_dir, use_cpu=device.type == "cpu", bf16=False, report_to="none", seed=seed,
        num_generations=4, per_device_train_batch_size=4, method="eapo", dynamic_sampling=False,
    )  # fmt: skip
    data = {"prompt": list(BF16_PROMPTS)}
    from datasets import Dataset

    return EAPOTrainer(
        model=model, reward_funcs=parity_reward, args=args, train_dataset=Dataset.from_dict(data),
        processing_class=tokenizer,
    )  # fmt: skip


def bf16_differences(trainer: Any, group: int, new_tokens: int, seed: int = 0) -> dict[str, dict[str, float]]:
    """|H_recorded - H_forward| of the loss forward before (TRL's) and after (eapo's), over valid tokens."""
    from transformers import GenerationConfig
    from trl import GRPOTrainer

    from eapo.trainer.generation import record_sampling

    model, tokenizer = trainer.model, trainer.processing_class
    device = next(model.parameters()).device
    prompt_ids, prompt_mask = _left_padded(tokenizer, group, device)
    config = GenerationConfig(
        max_new_tokens=new_tokens, do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    torch.manual_seed(seed)
    with torch.no_grad(), record_sampling(model, 1.0) as recorder:
        out = model.generate(input_ids=prompt_ids, attention_mask=prompt_mask, generation_config=config)
    completion_ids = out[:, prompt_ids.shape[1] :]
    completion_mask = _completion_mask(completion_ids, tokenizer.eos_token_id)
    recorded, _ = recorder.columns(completion_ids.shape[1])
    full_ids, full_mask = torch.cat([prompt_ids, completion_ids], 1), torch.cat([prompt_mask, completion_mask], 1)
    width = completion_ids.shape[1]
    valid = completion_mask.bool()
    padded = valid & (prompt_mask == 0).any(1, keepdim=True)
    subsets = {"": valid, "padded_": padded, "unpadded_": valid & ~padded}
    forwards = {
        "before (TRL forward)": lambda: GRPOTrainer._get_per_token_logps_and_entropies(
            trainer, model, full_ids, full_mask, width, compute_entropy=True
        ),
        "after (eapo forward)": lambda: trainer._get_per_token_logps_and_entropies(
            model, full_ids, full_mask, width, compute_entropy=True
        ),
    }
    result = {}
    for name, forward in forwards.items():
        with torch.no_grad():
            _, entropy, _ = forward()
        diff = (entropy.float() - recorded.to(entropy.device)).abs()
        result[name] = {}
        for prefix, subset in subsets.items():
            result[name] |= {f"{prefix}max": diff[subset].max().item(), f"{prefix}mean": diff[subset].mean().item()}
    return result


def bf16_agreement(device: torch.device, sizes: Sizes) -> dict[str, dict[str, float]]:
    import tempfile

    with tempfile.TemporaryDirectory() as out_dir:
        return bf16_differences(bf16_trainer(device, out_dir), sizes.bf16_group, sizes.bf16_new_tokens)


# ----- the table -------------------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def table(report: Report) -> str:
    lines = [f"device: {report.device}", "", "| entropy, bf16 | seconds | peak extra MiB |", "|---|---|---|"]
    for name, row in report.entropy.items():
        lines.append(f"| {name} | {_fmt(row['seconds'], '.4f')} | {_fmt(row['peak_extra_mib'], '.1f')} |")
    lines += ["", "| step (bf16) | seconds | ratio to grpo (TRL) | peak MiB | kept tensors |", "|---|---|---|---|---|"]
    for name, row in report.steps.items():
        kept = report.kept.get(name, "-")
        seconds, ratio, peak = _fmt(row["seconds"], ".3f"), _fmt(row["ratio"], ".2f"), _fmt(row["peak_mib"], ".0f")
        lines.append(f"| {name} | {seconds} | {ratio} | {peak} | {kept} |")
    lines += ["", f"| bf16 H, recorder vs loss forward (nats) | {' | '.join(BF16_COLUMNS.values())} |"]
    lines.append("|---" * (len(BF16_COLUMNS) + 1) + "|")
    for name, row in report.bf16.items():
        cells = " | ".join(f"{row[k]:.4f}" for k in BF16_COLUMNS)
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines)


def run(device: torch.device, sizes: Sizes, methods: list[str]) -> Report:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    report = Report(device=name)
    report.entropy = entropy_cost(device, sizes)
    report.steps, report.kept = step_costs(device, sizes, methods)
    report.bf16 = bf16_agreement(device, sizes)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="small sizes (CPU test: a few seconds)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS), help="EAPOTrainer methods to step")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    start = time.perf_counter()
    report = run(torch.device(args.device), SMALL if args.small else Sizes(), args.methods.split(","))
    print(table(report))
    print(f"\ntotal: {time.perf_counter() - start:.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report.__dict__, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
