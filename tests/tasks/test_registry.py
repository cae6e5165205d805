"""Tasks by name (`eapo.tasks.registry`), local data files, rewards by name, and `eapo train` end to end
on two reasoning-gym tasks and a jsonl file with a tiny model."""

from __future__ import annotations

import json
import re
import sys

import pytest
from datasets import Dataset, DatasetDict
from transformers import AutoTokenizer

from eapo.cli.train import main as train_main
from eapo.cli.train import parse_args, train
from eapo.tasks.registry import TaskError, load_task, map_columns, resolve_reward
from eapo.trainer.defaults import REAL_MODEL_DEFAULTS
from tiny import ascii_model_dir, tiny_run


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return ascii_model_dir(tmp_path_factory.mktemp("ascii-model"))


@pytest.mark.parametrize("name", ["basic_arithmetic", "chain_sum"])
def test_reasoning_gym_task_trains_two_steps_end_to_end(name, model_dir, tmp_path):
    out = tmp_path / "run"
    assert train_main(tiny_run(model_dir, out, "--task", f"rg:{name}", "--system_prompt", "none")) == 0
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2]
    summary = json.loads((out / "eval.json").read_text())
    assert set(summary["before"]) == {"avg@2", "pass@1", "pass@2", "problems", "correct_per_problem", "problems_sha256"}
    assert (out / "model" / "model.safetensors").exists()
    # The report's token view rebuilds the run's task and samples its held-out prompts (G = 4 each).
    page = (out / "report.html").read_text()
    assert "no token view" not in page
    completions = re.findall(r'<div class="completion" data-reward="([^"]+)"', page)
    prompts = REAL_MODEL_DEFAULTS["report_problems"]  # the ASCII model is not the tiny world
    assert len(completions) == prompts * 4 and {float(r) for r in completions} <= {0.0, 1.0}


@pytest.mark.parametrize("name", ["basic_arithmetic", "chain_sum"])
def test_reasoning_gym_reward_is_the_tasks_own_scorer(name):
    task = load_task(f"rg:{name}", reward="rg", seed=3, train_size=50, eval_size=20)
    assert len(task.train) == 50 and 0 < len(task.heldout) <= 20
    assert not set(task.train["prompt"]) & set(task.heldout["prompt"])  # disjoint split
    rows = task.heldout
    right = [f"think... <answer>{a}</answer>" for a in rows["answer"]]
    wrong = [f"<answer>{a}1</answer>" for a in rows["answer"]]
    assert task.reward(completions=right, rg_index=rows["rg_index"]) == [1.0] * len(rows)
    assert all(r < 1.0 for r in task.reward(completions=wrong, rg_index=rows["rg_index"]))
    assert task.reward(completions=["no tags", None], rg_index=rows["rg_index"][:2]) == [0.0, 0.0]
    again = load_task(f"rg:{name}", seed=3, train_size=50, eval_size=20)
    assert again.train["prompt"] == task.train["prompt"]  # seeded
    assert load_task(f"rg:{name}", seed=4, train_size=50, eval_size=20).train["prompt"] != task.train["prompt"]


def write_math_file(path, n=24):
    rows = [{"question": f"What is {i} + {i}?", "solution": str(2 * i)} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_file_with_column_mapping_trains(model_dir, tmp_path):
    data = write_math_file(tmp_path / "math.jsonl")
    out = tmp_path / "run"
    flags = ["--task", str(data), "--prompt_column", "question", "--answer_column", "solution",
             "--system_prompt", "none"]  # fmt: skip
    assert train_main(tiny_run(model_dir, out, *flags)) == 0
    assert json.loads((out / "eval.json").read_text())["steps"] == 2


@pytest.mark.parametrize("fmt", ["parquet", "csv", "disk"])
def test_other_file_formats_load_with_a_seeded_disjoint_split(fmt, tmp_path):
    rows = Dataset.from_list([{"q": f"q{i}", "a": str(i)} for i in range(30)])
    path = tmp_path / ("data" if fmt == "disk" else f"data.{fmt}")
    {"parquet": rows.to_parquet, "csv": rows.to_csv, "disk": rows.save_to_disk}[fmt](str(path))
    task = load_task(str(path), seed=1, eval_size=5, prompt_column="q", answer_column="a")
    assert len(task.train) == 25 and len(task.heldout) == 5
    assert not set(task.train["prompt"]) & set(task.heldout["prompt"])
    assert task.reward([r"\boxed{7}", "7"], ["7", "7"]) == [1.0, 0.0]  # math by default


def test_saved_dataset_dict_uses_its_test_split(tmp_path):
    splits = DatasetDict(
        train=Dataset.from_dict({"prompt": ["a", "b", "c"], "answer": ["1", "2", "3"]}),
        test=Dataset.from_dict({"prompt": ["x"], "answer": ["9"]}),
    )
    splits.save_to_disk(str(tmp_path / "dd"))
    task = load_task(str(tmp_path / "dd"), eval_size=10)
    assert task.train["prompt"] == ["a", "b", "c"] and task.heldout["prompt"] == ["x"]


def test_missing_column_names_the_available_ones(tmp_path):
    with pytest.raises(TaskError, match=r"no column 'problem' \(columns: question, solution\)"):
        load_task(str(write_math_file(tmp_path / "m.jsonl")), prompt_column="problem")
    with pytest.raises(TaskError, match="no column 'answer'"):
        map_columns(Dataset.from_dict({"prompt": ["a"]}), "prompt", "answer", "x")


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ("rg:not_a_task", "unknown reasoning-gym task 'not_a_task'"),
        ("nope", "unknown task 'nope': use countdown, arithmetic, wordproblems\\[:D\\], rg:NAME"),
    ],
)
def test_bad_task_names(task, message):
    with pytest.raises(TaskError, match=message):
        load_task(task)


def test_bad_files(tmp_path, capfd):
    """A malformed file is one line naming the parser's own error (it said "DatasetGenerationError: An error
    occurred while generating the dataset", after a line of datasets' logger on stderr)."""
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(TaskError, match="unsupported file type '.txt'"):
        load_task(str(tmp_path / "x.txt"))
    (tmp_path / "bad.jsonl").write_text('{"prompt": "a", "answer": 1}\n{not json\n')
    capfd.readouterr()
    with pytest.raises(TaskError, match=r"cannot read it as json \(ArrowInvalid: JSON parse error"):
        load_task(str(tmp_path / "bad.jsonl"))
    assert capfd.readouterr().err == ""


def test_user_reward_by_module_and_function(tmp_path, monkeypatch):
    (tmp_path / "my_rewards.py").write_text(
        "LIMIT = 3\ndef length(completions, **kw):\n    return [1.0] * len(completions)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    fn = resolve_reward("my_rewards:length", "countdown", None)
    assert fn(["a", "b"]) == [1.0, 1.0]
    with pytest.raises(TaskError, match="cannot import module 'no_such_mod'"):
        resolve_reward("no_such_mod:f", "countdown", None)
    with pytest.raises(TaskError, match="has no attribute 'nope'"):
        resolve_reward("my_rewards:nope", "countdown", None)
    with pytest.raises(TaskError, match="'LIMIT' is a int, not a function"):
        resolve_reward("my_rewards:LIMIT", "countdown", None)
    with pytest.raises(TaskError, match="unknown reward 'exact'"):
        resolve_reward("exact", "countdown", None)
    with pytest.raises(TaskError, match="reward 'rg' scores reasoning-gym tasks only"):
        resolve_reward("rg", "countdown", None)
    assert "my_rewards" in sys.modules


def test_bad_task_is_a_one_line_cli_error(tmp_path):
    config, run = parse_args(["--output_dir", str(tmp_path / "run"), "--task", "rg:nope"])
    with pytest.raises(SystemExit) as err:
        train(config, run)
    assert err.value.code == 2  # a bad option: exit code 2, before any model loads
    assert str(err.value).startswith("task: unknown reasoning-gym task 'nope': use rg:NAME")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()  # nothing written
    config, run = parse_args(["--output_dir", str(tmp_path / "run"), "--task", "rg:basic_arithmetc"])
    with pytest.raises(SystemExit, match="did you mean basic_arithmetic"):
        train(config, run)


CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'][0] }}:{{ m['content'] }}\n{% endfor %}"  # fmt: skip
    "{% if add_generation_prompt %}a:{% endif %}"
)


def test_chat_prompts_for_a_tokenizer_with_a_template(tmp_path):
    model = ascii_model_dir(tmp_path / "chat-model")
    tokenizer = AutoTokenizer.from_pretrained(model)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(model)
    data = write_math_file(tmp_path / "math.jsonl")
    out = tmp_path / "run"
    flags = ["--task", str(data), "--prompt_column", "question", "--answer_column", "solution",
             "--system_prompt", "Box it."]  # fmt: skip
    assert train_main(tiny_run(model, out, *flags)) == 0  # prompt_format auto -> chat
    config, run = parse_args(["--output_dir", str(out), "--model_path", str(model), "--eval_problems", "4", *flags])
    from eapo.models.policy import prepare

    setup = prepare(run, seed=0)
    assert setup.task.train[0]["prompt"][0] == {"role": "system", "content": "Box it."}
    assert setup.task.train[0]["prompt"][1]["role"] == "user"
    run.prompt_format = "text"
    assert prepare(run, seed=0).task.train[0]["prompt"].startswith("Box it.\n\nWhat is ")


def test_max_prompt_length_drops_long_prompts(model_dir, tmp_path):
    from eapo.models.policy import prepare

    data = tmp_path / "m.jsonl"
    data.write_text("".join(json.dumps({"prompt": "x" * n, "answer": "1"}) + "\n" for n in (3, 8, 12, 20, 5, 30)))
    _, run = parse_args(["--output_dir", str(tmp_path), "--model_path", str(model_dir), "--task", str(data),
                         "--system_prompt", "none", "--eval_problems", "0", "--max_prompt_length", "10"])  # fmt: skip
    setup = prepare(run, seed=0)
    assert sorted(len(p) for p in setup.task.train["prompt"]) == [3, 5, 8] and setup.dropped_long_prompts == 3
    run.max_prompt_length = 2
    with pytest.raises(TaskError, match="every train prompt is longer than max_prompt_length=2"):
        prepare(run, seed=0)


def test_generic_heldout_eval_equals_the_tiny_world_countdown_eval(tmp_path):
    from eapo.pipeline.warmstart import countdown_accuracy
    from eapo.world import load_base
    from eapo.world.problems import tiny_world_split

    model, tokenizer = load_base()
    _, run = parse_args(["--output_dir", str(tmp_path), "--eval_problems", "24", "--eval_k", "4"])
    task = load_task("countdown", eval_size=24)
    from eapo.cli.train import heldout_accuracy

    generic = heldout_accuracy(model, tokenizer, task, run, seed=5)
    problems = tiny_world_split()[1][:24]
    metrics = countdown_accuracy(model, tokenizer, problems, 4, temperature=1.0, seed=5)
    assert {k: generic[k] for k in metrics} == metrics and generic["problems"] == 24  # plus the per-problem record
    assert 0 < generic["avg@4"] < 1


def test_user_reward_in_the_current_folder_imports_without_pythonpath(tmp_path, monkeypatch):
    """`--reward my_rewards:fn` with my_rewards.py in the folder the command runs in (issue 26, point 8)."""
    (tmp_path / "cwd_rewards_26.py").write_text("def fn(completions, **kw):\n    return [0.5] * len(completions)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert resolve_reward("cwd_rewards_26:fn", "countdown", None)(["a"]) == [0.5]


@pytest.mark.parametrize("spec", ["wordproblems:1", "countdown"])
def test_eval_offset_selects_a_later_window_of_the_same_heldout_problems(spec):
    whole = load_task(spec, eval_size=40, train_size=50)
    window = load_task(spec, eval_size=15, eval_offset=20, train_size=50)
    assert window.heldout["prompt"] == whole.heldout["prompt"][20:35]
    assert window.train["prompt"] == whole.train["prompt"]  # the train split does not move
    with pytest.raises(TaskError, match="eval_offset=-1"):
        load_task(spec, eval_size=5, eval_offset=-1)


def test_an_offset_past_the_heldout_set_and_impossible_sizes_are_task_errors():
    """The tiny world has 200 held-out problems: an offset of 200 left an empty window that datasets refused with
    an IndexError (a traceback), and a huge train_size overflowed reasoning-gym's generator."""
    assert len(load_task("countdown", eval_size=5, eval_offset=199).heldout) == 1
    with pytest.raises(TaskError, match="eval_offset=200: the task has 200 held-out problems"):
        load_task("countdown", eval_size=5, eval_offset=200)
    for sizes, message in [
        ({"train_size": 0}, r"train_size=0 is invalid: use a size in \[1, 1,000,000,000\]"),
        ({"train_size": 10**20}, "train_size=100000000000000000000 is invalid"),
        ({"eval_size": 5, "eval_offset": 10**20}, "5 held-out problems after eval_offset=100000000000000000000"),
    ]:
        with pytest.raises(TaskError, match=message):
            load_task("rg:basic_arithmetic", **sizes)


def test_eval_offset_reaches_the_run_options():
    from eapo.pipeline.training import start_line

    config, run = parse_args(["--task", "wordproblems:1", "--eval_offset", "200", "--max_train_minutes", "45"])
    assert (run.eval_offset, run.max_train_minutes) == (200, 45.0)
    assert run.inputs["eval_offset"] == 200
    assert "cost: 45 minutes of training steps, at most 600 steps (at most " in start_line(config, run)


@pytest.mark.parametrize(
    ("module", "spec", "reward", "needle"),
    [
        ("reasoning_gym", "rg:basic_arithmetic", None, "task rg:basic_arithmetic needs the `reasoning-gym` package"),
        ("math_verify", "countdown", "math", "the math reward (its \\boxed{} answer check) needs the `math-verify`"),
    ],
)
def test_a_task_or_reward_whose_package_is_missing_names_the_install(module, spec, reward, needle, monkeypatch):
    """A base install (no `tasks` extra): one line naming the package and the extra, not an ImportError."""
    monkeypatch.setitem(sys.modules, module, None)  # `import module` fails, as where it is not installed
    with pytest.raises(TaskError) as err:
        load_task(spec, reward=reward, train_size=10, eval_size=5)
    assert needle in str(err.value) and "pip install 'eapo[tasks]'" in str(err.value) and "\n" not in str(err.value)
