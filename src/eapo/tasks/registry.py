"""Tasks and rewards by name, for `eapo train --task ... --reward ...`.

A task is a train set, a disjoint held-out set (both `datasets.Dataset` with a `prompt` column plus the
columns its reward reads) and a TRL reward function:

- `countdown` (default): the tiny world's countdown problems (`eapo.tasks.countdown`), reward `countdown`;
- `arithmetic`: small-number `a + b` questions for small instruct models
  (`eapo.tasks.arithmetic`), reward `arithmetic` (the completion's last number equals the result);
- `wordproblems` / `wordproblems:D`: multi-step arithmetic word problems with a short chain of thought and
  the answer after `Answer:` (`eapo.tasks.wordproblems`), difficulty D = 1..5, reward `wordproblems`;
- `rg:NAME`: any reasoning-gym task (`reasoning_gym.create_dataset(NAME, seed=, size=)`), its own
  questions, answers extracted from `<answer>...</answer>` as reasoning-gym does, scored by the task's
  own `score_answer` (reward `rg`). Train and held-out entries are drawn from one seeded generator and
  held-out questions that also occur in the train set are dropped;
- a path: a local `.jsonl`/`.json`, `.parquet` or `.csv` file, or a folder saved with
  `Dataset.save_to_disk` (a `DatasetDict` uses its `train` split, and `test` as held-out when present,
  else a seeded split). `prompt_column` / `answer_column` name the columns that become `prompt` and
  `answer`; the reward defaults to `math`.

Rewards: `countdown`, `arithmetic`, `math` (`eapo.tasks.rewards.math_reward`), `rg`, or `module:function` (any
importable TRL reward function, imported only when named). Every problem is reported as a `TaskError` (a
`ValueError`) whose message names the bad value and the fix.
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset

from eapo.errors import TaskError, require
from eapo.tasks.rewards import completion_text

RewardFn = Callable[..., list[float]]
FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
# Qwen2.5-Math's own instruction, the prompt of the paper's math runs.
MATH_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."
RG_TASK_SEED_OFFSET = 7919  # the reasoning-gym generator seed is derived from, not equal to, the run seed


@dataclass
class Task:
    """Train and held-out sets of one task, and the reward that scores its completions."""

    name: str
    train: Dataset
    heldout: Dataset
    reward: RewardFn
    system_prompt: str | None = None
    # The final answer of a completion, for majority voting (maj@k); None when the task has no extractor.
    extract_answer: Callable[[str], Any] | None = None
    # Text prompts only: each completion ends at the first of these (kept in it), e.g. the blank line after which
    # a model prompted with worked examples writes the next example. A chat template ends turns with its own EOS.
    stop_strings: tuple[str, ...] = ()


# ----- rewards -----------------------------------------------------------------------------------------


def import_reward(spec: str) -> RewardFn:
    """The callable `function` of `module` for a `module:function` spec. The current folder is searched too
    (as `python -m` does), so `--reward my_rewards:fn` finds `./my_rewards.py` without `PYTHONPATH=.`."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise TaskError(f"reward {spec!r}: use countdown, arithmetic, wordproblems, math, rg or module:function")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)  # last: a module of the same name installed elsewhere still wins
        importlib.invalidate_caches()
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # an ImportError, or any error raised while importing the user's module
        where = module_name.replace(".", "/") + ".py"
        raise TaskError(
            f"reward {spec!r}: cannot import module {module_name!r} ({err}); put {where} in the current folder "
            "or in a folder on PYTHONPATH"
        ) from None
    fn = module
    for part in attr.split("."):
        if not hasattr(fn, part):
            raise TaskError(f"reward {spec!r}: module {module_name!r} has no attribute {attr!r}")
        fn = getattr(fn, part)
    if not callable(fn):
        raise TaskError(f"reward {spec!r}: {attr!r} is a {type(fn).__name__}, not a function")
    return fn


def rg_reward(rg_dataset: Any, name: str = "rg") -> RewardFn:
    """TRL reward function scoring completions with the reasoning-gym dataset's own `score_answer`.

    The answer is the content of the last `<answer>...</answer>` (reasoning-gym's `extract_answer`); the
    entry is looked up by the `rg_index` column. Scores are in [0, 1] (some tasks give partial credit).
    """
    from reasoning_gym.utils import extract_answer

    def reward(completions: Sequence[Any], rg_index: Sequence[int], **kwargs: Any) -> list[float]:
        scores = []
        for completion, index in zip(completions, rg_index, strict=True):
            text = completion_text(completion)
            answer = extract_answer(text) if text is not None else None
            try:
                score = float(rg_dataset.score_answer(answer, entry=rg_dataset[int(index)]))
            except Exception:  # a task's scorer that trips on odd text scores it 0, as a wrong answer
                score = 0.0
            scores.append(score)
        return scores

    reward.__name__ = f"rg_{name}"  # TRL logs rewards/<name>/mean
    return reward


def resolve_reward(spec: str | None, task_name: str, default: RewardFn | None) -> RewardFn:
    """The reward function for `--reward spec` (None: the task's own)."""
    from eapo.tasks.arithmetic import arithmetic_reward
    from eapo.tasks.rewards import countdown_reward, math_reward

    if spec is None or spec == "":
        if default is None:
            raise TaskError(f"task {task_name!r} has no default reward: pass --reward math or module:function")
        return default
    if spec == "countdown":
        return countdown_reward
    if spec == "arithmetic":
        return arithmetic_reward
    if spec == "math":
        return math_reward
    if spec == "wordproblems":
        from eapo.tasks.wordproblems import wordproblem_reward

        return wordproblem_reward
    if spec == "rg":
        if not task_name.startswith("rg:") or default is None:
            raise TaskError(f"reward 'rg' scores reasoning-gym tasks only: use --task rg:NAME (task is {task_name!r})")
        return default
    if ":" in spec:
        return import_reward(spec)
    raise TaskError(f"unknown reward {spec!r}: use countdown, arithmetic, wordproblems, math, rg or module:function")


# ----- prompts -----------------------------------------------------------------------------------------


def question_prompt(question: Any, system_prompt: str | None, conversational: bool) -> Any:
    """A question as a TRL prompt: a message list (`conversational`) or plain text.

    Questions that are already message lists are kept; plain text gets the system prompt, if any, as a
    first paragraph.
    """
    if not isinstance(question, str):
        return question
    if conversational:
        system = [{"role": "system", "content": system_prompt}] if system_prompt else []
        return [*system, {"role": "user", "content": question}]
    return f"{system_prompt}\n\n{question}\n" if system_prompt else question


def with_prompts(dataset: Dataset, system_prompt: str | None, conversational: bool) -> Dataset:
    """`dataset` with its `prompt` column formatted by `format_prompt`."""
    if not system_prompt and not conversational:
        return dataset
    return dataset.map(lambda row: {"prompt": question_prompt(row["prompt"], system_prompt, conversational)})


# ----- tasks -------------------------------------------------------------------------------------------


def countdown_task(eval_size: int) -> Task:
    from eapo.tasks.countdown import countdown_dataset, tiny_world_split
    from eapo.tasks.rewards import countdown_answer, countdown_reward

    train, heldout = tiny_world_split()
    return Task(
        "countdown",
        countdown_dataset(train),
        countdown_dataset(heldout[:eval_size]),
        countdown_reward,
        extract_answer=countdown_answer,
    )


def arithmetic_task(eval_size: int) -> Task:
    """Small-number arithmetic (`eapo.tasks.arithmetic`): the fixed held-out split (its first `eval_size`
    problems) and every other problem for training."""
    from eapo.tasks import arithmetic

    train, heldout = arithmetic.train_heldout_split(arithmetic.generate_problems())
    train_set, heldout_set = arithmetic.arithmetic_dataset(train), arithmetic.arithmetic_dataset(heldout[:eval_size])
    return Task("arithmetic", train_set, heldout_set, arithmetic.arithmetic_reward, arithmetic.SYSTEM_PROMPT)


def wordproblems_task(spec: str, train_size: int, eval_size: int, seed: int) -> Task:
    """Multi-step word problems (`eapo.tasks.wordproblems`), `wordproblems` or `wordproblems:D` (difficulty D):
    `eval_size` held-out problems (the same for every seed) and `train_size` train problems, no two equivalent."""
    from eapo.tasks import wordproblems as wp

    level_text = spec.partition(":")[2] or str(wp.DEFAULT_DIFFICULTY)
    if not level_text.isdigit() or int(level_text) not in wp.DIFFICULTIES:
        raise TaskError(
            f"task {spec!r}: the difficulty must be one of {', '.join(map(str, wp.DIFFICULTIES))} "
            f"(e.g. wordproblems:{wp.DEFAULT_DIFFICULTY})"
        )
    level = int(level_text)
    train, heldout = wp.generate_split(level, train_size=train_size, heldout_size=eval_size, seed=seed)
    return Task(
        f"wordproblems:{level}",
        wp.wordproblem_dataset(train, level),
        wp.wordproblem_dataset(heldout, level),
        wp.wordproblem_reward,
        extract_answer=wp.extract_answer,
        stop_strings=wp.STOP_STRINGS,
    )


def rg_task(name: str, train_size: int, eval_size: int, seed: int) -> Task:
    """A reasoning-gym task: `train_size` train entries and up to `eval_size` unseen held-out ones."""
    require("reasoning_gym", "reasoning-gym", "tasks", f"task rg:{name}", TaskError)
    import reasoning_gym
    from reasoning_gym.factory import DATASETS
    from reasoning_gym.utils import SYSTEM_PROMPTS

    if name not in DATASETS:
        close = difflib.get_close_matches(name, sorted(DATASETS), n=5, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise TaskError(
            f"unknown reasoning-gym task {name!r}: {hint}use rg:NAME with one of the {len(DATASETS)} tasks of "
            "python -c 'import reasoning_gym.factory as f; print(sorted(f.DATASETS))'"
        )
    try:
        data = reasoning_gym.create_dataset(name, seed=seed + RG_TASK_SEED_OFFSET, size=train_size + eval_size)
    except Exception as err:
        raise TaskError(f"reasoning-gym task {name!r} cannot be built: {err}") from None
    entries = [data[i] for i in range(len(data))]
    seen = {e["question"] for e in entries[:train_size]}
    held = [i for i in range(train_size, len(entries)) if entries[i]["question"] not in seen]

    def rows(indices: Sequence[int]) -> Dataset:
        return Dataset.from_dict(
            {
                "prompt": [entries[i]["question"] for i in indices],
                "answer": [str(entries[i]["answer"]) for i in indices],
                "rg_index": list(indices),
            }
        )

    return Task(f"rg:{name}", rows(range(train_size)), rows(held), rg_reward(data, name), SYSTEM_PROMPTS["default"])


def read_table(path: Path) -> Any:
    """A local data file (by suffix) or saved datasets folder, as a Dataset or DatasetDict."""
    from datasets import DatasetDict, load_dataset, load_from_disk

    if path.is_file() and path.stat().st_size == 0:
        raise TaskError(f"{path}: the file is empty: give a data file with one problem per row")
    if path.is_dir():
        try:
            data = load_from_disk(str(path))
        except Exception as err:
            raise TaskError(f"{path}: not a folder saved with Dataset.save_to_disk ({err})") from None
        if isinstance(data, DatasetDict) and "train" not in data:
            raise TaskError(f"{path}: a DatasetDict without a 'train' split (it has {', '.join(data)})")
        return data
    builder = FILE_BUILDERS.get(path.suffix.lower())
    if builder is None:
        raise TaskError(f"{path}: unsupported file type {path.suffix!r}: use .jsonl, .json, .parquet, .csv or a folder")
    from datasets.utils import logging as datasets_logging

    bar, verbosity = datasets_logging.is_progress_bar_enabled(), datasets_logging.get_verbosity()
    datasets_logging.disable_progress_bar()  # a local file loads in a blink; its bar would only clutter stderr
    datasets_logging.set_verbosity(datasets_logging.CRITICAL)  # its own error line: the TaskError says it
    try:
        return load_dataset(builder, data_files=str(path), split="train")
    except Exception as err:
        if "corresponds to no data" in str(err):
            raise TaskError(f"{path}: no rows: give a data file with one problem per row") from None
        cause = err
        while cause.__cause__ is not None:  # the parser's own error, not datasets' wrapper around it
            cause = cause.__cause__
        why = (str(cause).strip().splitlines() or [""])[0]
        raise TaskError(f"{path}: cannot read it as {builder} ({type(cause).__name__}: {why})") from None
    finally:
        datasets_logging.set_verbosity(verbosity)
        if bar:
            datasets_logging.enable_progress_bar()


def map_columns(dataset: Dataset, prompt_column: str, answer_column: str | None, where: str) -> Dataset:
    """Rename `prompt_column` to `prompt` and `answer_column` to `answer`, with an error naming a missing one."""
    for column in (prompt_column, answer_column):
        if column is not None and column not in dataset.column_names:
            raise TaskError(
                f"{where}: no column {column!r} (columns: {', '.join(dataset.column_names)}); "
                "set --prompt_column / --answer_column"
            )
    renames = {prompt_column: "prompt"}
    if answer_column is not None:
        renames[answer_column] = "answer"
    renames = {old: new for old, new in renames.items() if old != new}
    clash = [new for new in renames.values() if new in dataset.column_names]
    if clash:
        dataset = dataset.remove_columns(clash)
    return dataset.rename_columns(renames) if renames else dataset


def file_task(path: Path, prompt_column: str, answer_column: str | None, eval_size: int, seed: int) -> Task:
    """A task read from a local file or saved folder (see the module docstring); reward `math` by default."""
    from eapo.tasks.rewards import math_reward

    data = read_table(path)
    if hasattr(data, "keys"):  # DatasetDict
        train, heldout = data["train"], data.get("test")
    else:
        train, heldout = data, None
    if len(train) == 0:
        raise TaskError(f"{path}: no rows: give a data file with one problem per row")
    train = map_columns(train, prompt_column, answer_column, str(path))
    if heldout is not None:
        heldout = map_columns(heldout, prompt_column, answer_column, f"{path} (test split)")
    elif eval_size > 0:
        if eval_size >= len(train):
            raise TaskError(f"{path}: {len(train)} rows cannot give {eval_size} held-out ones; lower --eval_problems")
        split = train.train_test_split(test_size=eval_size, seed=seed, shuffle=True)
        train, heldout = split["train"], split["test"]
    else:
        heldout = train.select([])
    return Task(str(path), train, heldout.select(range(min(eval_size, len(heldout)))), math_reward, MATH_SYSTEM_PROMPT)


MAX_SIZE = 10**9  # train and held-out problems a task is asked for (a larger count overflows the generators)


def load_task(
    spec: str,
    *,
    reward: str | None = None,
    seed: int = 0,
    train_size: int = 10_000,
    eval_size: int = 200,
    prompt_column: str = "prompt",
    answer_column: str | None = "answer",
    eval_offset: int = 0,
) -> Task:
    """The task named by `spec` (`countdown`, `rg:NAME` or a path) with the reward named by `reward`; its held-out
    set is the task's held-out problems `eval_offset` .. `eval_offset + eval_size - 1` (fewer when it has fewer;
    a file without a test split holds out `eval_offset + eval_size` rows)."""
    if eval_offset < 0:
        raise TaskError(f"eval_offset={eval_offset} is invalid: use a value >= 0")
    if not 1 <= train_size <= MAX_SIZE:
        raise TaskError(f"train_size={train_size} is invalid: use a size in [1, {MAX_SIZE:,}]")
    if not 0 <= eval_size + eval_offset <= MAX_SIZE:
        raise TaskError(f"{eval_size} held-out problems after eval_offset={eval_offset}: use {MAX_SIZE:,} at most")
    task = _build_task(spec, seed, train_size, eval_size + eval_offset, prompt_column, answer_column)
    if eval_offset and eval_size:
        if eval_offset >= len(task.heldout):
            raise TaskError(
                f"eval_offset={eval_offset}: the task has {len(task.heldout)} held-out problems, so none is left "
                f"after the offset; use an offset below {len(task.heldout)}"
            )
        task.heldout = task.heldout.select(range(eval_offset, len(task.heldout)))
    task.reward = resolve_reward(reward, task.name, task.reward)
    from eapo.tasks.rewards import math_reward

    if task.reward is math_reward:  # --reward math, or a file's default
        require("math_verify", "math-verify", "tasks", "the math reward (its \\boxed{} answer check)", TaskError)
    return task


def _build_task(
    spec: str, seed: int, train_size: int, eval_size: int, prompt_column: str, answer_column: str | None
) -> Task:
    if spec == "countdown":
        task = countdown_task(eval_size)
    elif spec == "arithmetic":
        task = arithmetic_task(eval_size)
    elif spec == "wordproblems" or spec.startswith("wordproblems:"):
        task = wordproblems_task(spec, train_size, eval_size, seed)
    elif spec.startswith("rg:"):
        task = rg_task(spec[3:], train_size, eval_size, seed)
    elif Path(spec).exists():
        task = file_task(Path(spec), prompt_column, answer_column, eval_size, seed)
    else:
        raise TaskError(
            f"unknown task {spec!r}: use countdown, arithmetic, wordproblems[:D], rg:NAME (e.g. rg:basic_arithmetic), "
            "or an existing .jsonl/.parquet/.csv file or saved datasets folder"
        )
    return task


def load_run_task(options: Any, seed: int, eval_size: int | None = None, train_size: int | None = None) -> Task:
    """The task of `eapo train` options: `TaskArguments` (or any object with its fields, such as the
    options a run saved in config.json) with `task`, `reward`, `train_size`, `eval_problems`, `eval_offset`,
    `prompt_column` and `answer_column`; `eval_size`/`train_size` override the options' sizes."""
    return load_task(
        getattr(options, "task", "countdown"),
        reward=getattr(options, "reward", None),
        seed=seed,
        train_size=train_size if train_size is not None else int(getattr(options, "train_size", 10_000)),
        eval_size=eval_size if eval_size is not None else int(getattr(options, "eval_problems", 200)),
        prompt_column=getattr(options, "prompt_column", "prompt"),
        answer_column=getattr(options, "answer_column", "answer"),
        eval_offset=int(getattr(options, "eval_offset", 0)),
    )


@dataclass
class TaskArguments:
    """`eapo train` options that pick the task, its reward, its prompts and its held-out evaluation."""

    task: str = field(
        default="countdown",
        metadata={
            "help": "countdown (the tiny world), arithmetic (small-number sums), wordproblems[:D] (multi-step "
            "word problems with a chain of thought, difficulty D=1..5), rg:NAME (a reasoning-gym "
            "task, e.g. rg:basic_arithmetic), or a local .jsonl/.parquet/.csv file or saved datasets folder."
        },
    )
    reward: str | None = field(
        default=None,
        metadata={
            "help": "countdown, arithmetic, wordproblems, math (last \\boxed{} answer, math-verify), rg, or "
            "module:function; default: the task's own (math for files)."
        },
    )
    prompt_column: str = field(default="prompt", metadata={"help": "Column of a data file holding the prompt."})
    answer_column: str = field(default="answer", metadata={"help": "Column of a data file holding the answer."})
    train_size: int = field(default=10_000, metadata={"help": "Train entries generated for a reasoning-gym task."})
    system_prompt: str = field(
        default="auto",
        metadata={
            "help": "auto (the task's own: reasoning-gym's for rg, Qwen-Math's \\boxed{} instruction for "
            "files, none for countdown), none, or the text itself."
        },
    )
    max_prompt_length: int | None = field(
        default=None, metadata={"help": "Drop train prompts longer than this many tokens (TRL does not truncate)."}
    )
    eval_offset: int = field(
        default=0,
        metadata={
            "help": "Skip this many held-out problems: every evaluation uses problems eval_offset, eval_offset + 1, "
            "... (a sweep can tune on problems a final evaluation never sees)."
        },
    )
    eval_top_p: float = field(default=1.0, metadata={"help": "Top-p of the held-out evaluation."})
    eval_max_new_tokens: int | None = field(
        default=None, metadata={"help": "Tokens per held-out sample (default: max_completion_length)."}
    )
    eval_batch_size: int = field(default=512, metadata={"help": "Sequences per generation call of the evaluation."})
    eval_threshold: float = field(default=1.0, metadata={"help": "A held-out sample is correct when reward >= this."})


def system_prompt_for(task: Task, setting: str) -> str | None:
    """The system prompt for `--system_prompt setting` (auto, none, or the text)."""
    if setting == "auto":
        return task.system_prompt
    return None if setting in ("none", "") else setting
