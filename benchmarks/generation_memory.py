"""Peak memory of transformers generation with and without EAPO's entropy recording, at a 150k vocabulary.

EAPO records each sampled token's entropy and log-probability during generation (`eapo.trainer.generation`):
two `(B,)` vectors per decoding step, computed from the step's logits in row chunks. This script checks that
recording keeps no `(B, T, V)` or `(B, V)` tensors: it runs the same seeded `generate` call (a Qwen2 with a
151,936-token vocabulary, Qwen2.5's; `--batch` rows, `--new-tokens` steps, sampling at temperature 1) in a
fresh process per mode and reports the peak memory of the call above the memory before it:
- CPU: the resident-set high-water mark (`/proc/self/clear_refs` reset before the call, `ru_maxrss` after);
- CUDA (when available): `torch.cuda.max_memory_allocated` after `reset_peak_memory_stats`;
and the process' peak (weights, KV cache and all). The modes alternate (plain, record, plain, record, ...) over
`--repeats` fresh processes each; the generated tokens of both modes are compared (recording must not change them).

Usage: python benchmarks/generation_memory.py [--batch 16 --new-tokens 128 --repeats 3 --hidden 256]
Prints plain figures; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

RESULT_TAG = "RESULT "
MIB = 2**20


def worker(args: argparse.Namespace) -> dict:
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    from eapo.trainer.generation import record_sampling
    from entropy import maxrss_bytes, reset_high_water_mark, rss_bytes  # benchmarks/entropy.py: the same probes

    torch.set_num_threads(args.threads)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = Qwen2Config(
        vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=2 * args.hidden, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=args.prompt + args.new_tokens + 8,
        tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(dev).eval()
    prompts = torch.randint(10, args.vocab, (args.batch, args.prompt), generator=torch.Generator().manual_seed(1))
    prompts = prompts.to(dev)
    gen = GenerationConfig(max_new_tokens=args.new_tokens, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                           eos_token_id=None, pad_token_id=0)  # fmt: skip
    model.generate(input_ids=prompts[:, :4], generation_config=GenerationConfig(max_new_tokens=2, do_sample=False))
    torch.manual_seed(2)
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        if not reset_high_water_mark():  # the high-water mark restarts at the current RSS
            raise SystemExit("this kernel does not let the process reset its memory high-water mark")
        before = rss_bytes()
    if args.mode == "record":
        with record_sampling(model, 1.0) as recorder:
            out = model.generate(input_ids=prompts, generation_config=gen)
        recorded = recorder.steps
    else:
        out = model.generate(input_ids=prompts, generation_config=gen)
        recorded = 0
    if dev.type == "cuda":
        torch.cuda.synchronize()
        total = torch.cuda.max_memory_allocated()
    else:
        total = maxrss_bytes()
    return {"mode": args.mode, "device": dev.type, "peak_extra": total - before, "peak_total": total,
            "recorded_steps": recorded,
            "tokens_sum": int(out.sum()), "logits_step_mib": args.batch * args.vocab * 4 / MIB}  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--prompt", type=int, default=32, help="prompt tokens")
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--vocab", type=int, default=151936)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--mode", choices=["plain", "record"], default=None, help=argparse.SUPPRESS)  # worker
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.mode is not None:
        print(RESULT_TAG + json.dumps(worker(args)), flush=True)
        return
    results: dict[str, list[dict]] = {"plain": [], "record": []}
    base = [a for a in (argv if argv is not None else sys.argv[1:])]
    for _ in range(args.repeats):
        for mode in ("plain", "record"):
            proc = subprocess.run([sys.executable, __file__, *base, "--mode", mode], capture_output=True, text=True)
            line = next((x for x in proc.stdout.splitlines() if x.startswith(RESULT_TAG)), None)
            if line is None:
                raise SystemExit(f"worker failed:\n{proc.stderr[-2000:]}")
            results[mode].append(json.loads(line[len(RESULT_TAG) :]))
    first = results["plain"][0]
    print(f"generate: batch {args.batch}, prompt {args.prompt} + {args.new_tokens} new tokens, vocab {args.vocab}, "
          f"hidden {args.hidden}, device {first['device']}; one step's logits: {first['logits_step_mib']:.1f} MiB, "
          f"all steps' (B, T, V): {first['logits_step_mib'] * args.new_tokens:.0f} MiB")  # fmt: skip
    same = {r["tokens_sum"] for r in results["plain"] + results["record"]}
    print(f"generated tokens identical across modes and repeats: {len(same) == 1}")
    med = {}
    for mode, runs in results.items():
        peaks = [r["peak_extra"] / MIB for r in runs]
        med[mode] = statistics.median(peaks)
        total = statistics.median(r["peak_total"] / MIB for r in runs)
        med[mode] = (statistics.median(peaks), total)
        print(
            f"{mode:>7}: peak memory above the start of the call, MiB: median {med[mode][0]:.1f} (runs: "
            + ", ".join(f"{p:.1f}" for p in peaks)
            + f"); peak of the process (weights included): {total:.1f} MiB"
        )
    extra, total = (med["record"][i] - med["plain"][i] for i in (0, 1))
    print(
        f"record - plain: {extra:+.1f} MiB above the call's start ({extra / med['plain'][0]:+.1%}); "
        f"{total:+.1f} MiB on the process peak ({total / med['plain'][1]:+.1%})"
    )


if __name__ == "__main__":
    main()
