"""`eapo evalsuite RECIPE --model DIR`: a model on several math benchmarks, as in the paper's evaluation.

The recipe (`recipes/eval-math.yaml`) gives the sampling settings (temperature, top_p, max_new_tokens,
system prompt) and, per benchmark, a local data file, its prompt/answer columns, k and the metrics to
report (`avg` -> avg@k, `pass` -> pass@k). Every row is evaluated; completions are scored by
`eapo.tasks.rewards.math_reward` (last `\\boxed{}` answer, math-verify). Sampling uses vLLM when it is installed
and a GPU is present, else transformers generation.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from eapo.errors import SuiteError

METRICS = ("avg", "pass")


@dataclass(frozen=True)
class Benchmark:
    name: str
    path: str
    k: int
    metrics: tuple[str, ...]
    prompt_column: str = "problem"
    answer_column: str = "answer"


@dataclass(frozen=True)
class Suite:
    temperature: float
    top_p: float
    max_new_tokens: int
    system_prompt: str | None
    benchmarks: tuple[Benchmark, ...]


SUITE_KEYS = ("temperature", "top_p", "max_new_tokens", "system_prompt", "benchmarks")
BENCHMARK_KEYS = ("path", "k", "metrics", "prompt_column", "answer_column")


def _unknown_keys(where: str, spec: dict, known: tuple[str, ...]) -> None:
    """A SuiteError naming the first key of `spec` not in `known` (a misspelt key was ignored before)."""
    import difflib

    for key in spec:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SuiteError(f"{where}: unknown key {key!r}{hint}: use {', '.join(known)}")


def _number(value: Any) -> bool:
    """A YAML number: int or float, not a bool (`true` is an int to Python)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _benchmark(name: str, spec: Any) -> Benchmark:
    if not isinstance(spec, dict) or "path" not in spec or "k" not in spec:
        raise SuiteError(f"benchmark {name!r}: give a mapping with at least path and k")
    _unknown_keys(f"benchmark {name!r}", spec, BENCHMARK_KEYS)
    if not _text(spec["path"]):
        raise SuiteError(f"benchmark {name!r}: path {spec['path']!r} is not a file name: give its data file")
    metrics = spec.get("metrics", list(METRICS))
    if isinstance(metrics, str):
        metrics = [metrics]
    k = spec["k"]
    if (not isinstance(k, int) or isinstance(k, bool) or k < 1 or not isinstance(metrics, list) or not metrics
            or any(m not in METRICS for m in metrics)):  # fmt: skip
        raise SuiteError(f"benchmark {name!r}: k must be an integer >= 1 and metrics a subset of {list(METRICS)}")
    for key in ("prompt_column", "answer_column"):
        if key in spec and not _text(spec[key]):
            raise SuiteError(f"benchmark {name!r}: {key} {spec[key]!r} is not a column name: give the column's name")
    columns = {key: spec[key] for key in ("prompt_column", "answer_column") if key in spec}
    return Benchmark(str(name), spec["path"], k, tuple(metrics), **columns)


def _read_recipe(path: str | Path) -> Any:
    """The recipe's YAML, every way of failing (missing, a folder, not UTF-8, bad YAML) one line."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise SuiteError(f"cannot read evaluation recipe {path}: {err.strerror or err}: pass a recipe file") from None
    except UnicodeDecodeError:
        raise SuiteError(f"evaluation recipe {path} is not UTF-8 text: pass a YAML recipe file") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        what = getattr(err, "problem", None) or (str(err).strip().splitlines() or [type(err).__name__])[0]
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise SuiteError(f"evaluation recipe {path} is not valid YAML ({what}{where}): fix it there") from None


def load_suite(path: str | Path) -> Suite:
    """Read and check an evaluation recipe."""
    data = _read_recipe(path)
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), dict) or not data["benchmarks"]:
        raise SuiteError(f"{path}: needs a 'benchmarks' mapping of name: {{path, k, metrics}}")
    _unknown_keys(str(path), data, SUITE_KEYS)
    temperature, top_p = data.get("temperature", 0.6), data.get("top_p", 0.95)
    if not (_number(temperature) and math.isfinite(temperature) and temperature > 0):
        raise SuiteError(f"{path}: temperature {temperature!r} is invalid: use a finite number > 0 (e.g. 0.6)")
    if not (_number(top_p) and 0 < top_p <= 1):  # NaN fails the comparison
        raise SuiteError(f"{path}: top_p {top_p!r} is invalid: use a number in (0, 1] (e.g. 0.95)")
    max_new_tokens = data.get("max_new_tokens", 3072)
    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or max_new_tokens < 1:
        raise SuiteError(f"{path}: max_new_tokens {max_new_tokens!r} is invalid: use an integer >= 1 (e.g. 3072)")
    system_prompt = data.get("system_prompt")
    if system_prompt is not None and not isinstance(system_prompt, str):
        raise SuiteError(f"{path}: system_prompt {system_prompt!r} is invalid: use a text or null (none)")
    return Suite(
        temperature=float(temperature),
        top_p=float(top_p),
        max_new_tokens=max_new_tokens,
        system_prompt=system_prompt or None,
        benchmarks=tuple(_benchmark(name, spec) for name, spec in data["benchmarks"].items()),
    )


def benchmark_rows(bench: Benchmark, system_prompt: str | None, chat: bool, limit: int | None) -> Any:
    """Every row of a benchmark file, columns mapped to prompt/answer and prompts formatted."""
    from eapo.tasks.registry import map_columns, read_table, with_prompts

    path = Path(bench.path)
    if not path.exists():
        raise SuiteError(f"benchmark {bench.name!r}: no file {path}; set its path in the recipe")
    data = read_table(path)
    if hasattr(data, "keys"):  # a saved DatasetDict: its test split, else its train split
        data = data["test"] if "test" in data else data["train"]
    rows = map_columns(data, bench.prompt_column, bench.answer_column, f"benchmark {bench.name!r}")
    rows = rows.select_columns(["prompt", "answer"])
    if limit is not None:
        rows = rows.select(range(min(limit, len(rows))))
    return with_prompts(rows, system_prompt, chat)


def _samples(model_dir: str, model: Any, tokenizer: Any, prompts: list[str], k: int, suite: Suite, args) -> list:
    from eapo.evaluation.sampling import sample_completions, sample_with_vllm

    if args.engine == "vllm":
        return sample_with_vllm(
            model_dir, prompts, k, temperature=suite.temperature, top_p=suite.top_p,
            max_new_tokens=suite.max_new_tokens, seed=args.seed, dtype=None if args.dtype == "auto" else args.dtype,
        )  # fmt: skip

    return sample_completions(
        model, tokenizer, prompts, k, temperature=suite.temperature, top_p=suite.top_p,
        max_new_tokens=suite.max_new_tokens, batch_size=args.batch_size, seed=args.seed, progress=True,
    )  # fmt: skip


def chosen_benchmarks(suite: Suite, only: str | None) -> list[Benchmark]:
    """The suite's benchmarks named in `only` (comma-separated; None or empty: all); a SuiteError for a name the
    suite lacks (it was dropped without a word)."""
    if not only:
        return list(suite.benchmarks)
    wanted = [name.strip() for name in only.split(",") if name.strip()]
    names = [bench.name for bench in suite.benchmarks]
    unknown = [name for name in wanted if name not in names]
    if unknown or not wanted:
        raise SuiteError(f"--only {only}: no benchmark {', '.join(unknown) or '(none named)'} in the recipe; use "
                         f"names from {', '.join(names)}")  # fmt: skip
    return [bench for bench in suite.benchmarks if bench.name in wanted]


def run_suite(suite: Suite, args: argparse.Namespace) -> dict[str, Any]:
    """{benchmark: {problems, k, avg@k and/or pass@k, seconds}} for the model folder `args.model`."""
    from eapo.evaluation.heldout import score_with_reward, scores_from_correct
    from eapo.models.policy import conversational, load_policy, prompt_text
    from eapo.tasks.rewards import math_reward

    benchmarks = chosen_benchmarks(suite, args.only)
    for bench in benchmarks:  # a missing benchmark file fails before the model loads
        if not Path(bench.path).exists():
            raise SuiteError(f"benchmark {bench.name!r}: no file {bench.path}; set its path in the recipe")
    model, tokenizer = load_policy(args.model, dtype=args.dtype)
    chat = conversational(tokenizer, args.prompt_format)
    results: dict[str, Any] = {}
    for bench in benchmarks:
        start = time.time()
        rows = benchmark_rows(bench, suite.system_prompt, chat, args.limit)
        prompts = [prompt_text(tokenizer, p) for p in rows["prompt"]]
        samples = _samples(args.model, model, tokenizer, prompts, bench.k, suite, args)
        _, correct = score_with_reward(math_reward, rows, samples)
        scores = scores_from_correct(correct, bench.k)
        keep = {f"{m}@{bench.k}" for m in bench.metrics}
        results[bench.name] = {"problems": len(rows), "k": bench.k, **{m: v for m, v in scores.items() if m in keep},
                               "seconds": round(time.time() - start, 1)}  # fmt: skip
    return results
