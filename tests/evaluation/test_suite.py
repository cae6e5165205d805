"""The evaluation recipe and `eapo evalsuite`: the paper's settings, bad recipes, an end-to-end run."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from datasets import Dataset

from eapo.cli import main as cli_main
from eapo.evaluation.heldout import score_with_reward, scores_from_correct
from eapo.evaluation.suite import SuiteError, load_suite
from eapo.tasks.rewards import math_reward
from eapo.trainer.recipes import recipe_path
from tiny import cli_error

# method.md section 9: (batch prompts, mini-batch prompts, G, steps, lr, prompt length, response length)
PAPER = {
    "qwen2.5-math-7b-eapo": (512, 32, 8, 220, 1e-6, 1024, 3072),
    "qwen2.5-math-7b-quadrants": (256, 32, 8, 120, 1e-6, 1024, 3072),
    "deepscaler-1.5b-eapo": (64, 32, 16, 900, 1e-6, 2048, 24576),
}


def test_eval_recipe_has_the_papers_settings():
    suite = load_suite(recipe_path("eval-math"))
    assert (suite.temperature, suite.top_p) == (0.6, 0.95)
    ks = {b.name: (b.k, b.metrics) for b in suite.benchmarks}
    assert ks == {
        "aime24": (32, ("avg", "pass")), "aime25": (32, ("avg", "pass")), "amc": (32, ("avg",)),
        "math500": (4, ("avg", "pass")), "minerva": (4, ("avg", "pass")), "olympiad": (4, ("avg", "pass")),
    }  # fmt: skip


def test_bad_eval_recipe(tmp_path):
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({"benchmarks": {"a": {"path": "x", "k": 0}}}))
    with pytest.raises(SuiteError, match="benchmark 'a': k must be an integer >= 1"):
        load_suite(tmp_path / "r.yaml")


def test_a_misspelt_recipe_key_or_benchmark_name_is_an_error(tmp_path):
    """A misspelt key was ignored (`temprature: 1.0` evaluated at 0.6), and `--only` dropped a name the recipe
    lacks (`--only aime42` evaluated nothing and printed an empty table)."""
    from eapo.evaluation.suite import chosen_benchmarks

    bench = {"path": "x.jsonl", "k": 2}
    for recipe, message in [
        ({"temprature": 1.0, "benchmarks": {"a": bench}}, "unknown key 'temprature' (did you mean 'temperature'?)"),
        ({"benchmarks": {"a": {**bench, "metric": ["avg"]}}}, "benchmark 'a': unknown key 'metric' (did you mean"),
    ]:
        (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
        with pytest.raises(SuiteError, match=re.escape(message)):
            load_suite(tmp_path / "r.yaml")
    suite = load_suite(recipe_path("eval-math"))
    assert [b.name for b in chosen_benchmarks(suite, "amc,aime24")] == ["aime24", "amc"]  # the recipe's order
    assert len(chosen_benchmarks(suite, None)) == len(chosen_benchmarks(suite, "")) == 6
    with pytest.raises(SuiteError, match="--only amc,aime42: no benchmark aime42 in the recipe; use names from aime24"):
        chosen_benchmarks(suite, "amc,aime42")


BENCH = "benchmarks:\n  a: {path: x.jsonl, k: 2}\n"
BAD_RECIPES = {
    "temperature: abc\n" + BENCH: "r.yaml: temperature 'abc' is invalid: use a finite number > 0",
    "temperature: .nan\n" + BENCH: "r.yaml: temperature nan is invalid: use a finite number > 0",
    "temperature: .inf\n" + BENCH: "r.yaml: temperature inf is invalid: use a finite number > 0",
    "top_p: [1]\n" + BENCH: "r.yaml: top_p [1] is invalid: use a number in (0, 1]",
    "max_new_tokens: abc\n" + BENCH: "r.yaml: max_new_tokens 'abc' is invalid: use an integer >= 1",
    "max_new_tokens: .nan\n" + BENCH: "r.yaml: max_new_tokens nan is invalid: use an integer >= 1",
    "max_new_tokens: .inf\n" + BENCH: "r.yaml: max_new_tokens inf is invalid: use an integer >= 1",
    "max_new_tokens: -5\n" + BENCH: "r.yaml: max_new_tokens -5 is invalid: use an integer >= 1",
    "system_prompt: [1, 2]\n" + BENCH: "r.yaml: system_prompt [1, 2] is invalid: use a text or null",
    "benchmarks:\n  a: {path: x.jsonl, k: 2, metrics: 5}\n": "benchmark 'a': k must be an integer >= 1 and metrics",
    "benchmarks:\n  a: {path: x.jsonl, k: 2, metrics: null}\n": "benchmark 'a': k must be an integer >= 1 and metrics",
    "benchmarks:\n  a: {path: '', k: 2}\n": "benchmark 'a': path '' is not a file name: give its data file",
    "temperature: [1\n" + BENCH: "r.yaml is not valid YAML (expected ',' or ']', but got ':' at line 2, column 11)",
}


@pytest.mark.parametrize("text", sorted(BAD_RECIPES))
def test_bad_recipe_values_are_one_line_before_anything_loads(text, tmp_path, monkeypatch, capsys):
    """Each was a traceback (a string, a list or NaN where a number goes; metrics 5 or null; a YAML error printed on
    8 lines) or accepted (NaN or infinite temperature, max_new_tokens -5, an empty path, a list as system_prompt)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.yaml").write_text(text)
    message = cli_error(["evalsuite", "r.yaml", "--model_path", "m", "--output", "out.json"], capsys)
    assert message.startswith("eapo evalsuite: error: ") and BAD_RECIPES[text] in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.yaml"]


def test_a_recipe_that_is_not_utf8_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.yaml").write_bytes(b"temperature: 0.6\n\xff\xfe\x00benchmarks: {}\n")
    message = cli_error(["evalsuite", "r.yaml", "--model_path", "m"], capsys)
    assert message == "eapo evalsuite: error: evaluation recipe r.yaml is not UTF-8 text: pass a YAML recipe file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.yaml"]


def test_scores_from_task_reward():
    rows = Dataset.from_dict({"prompt": ["p0", "p1"], "answer": ["1/2", "3"]})
    samples = [[r"\boxed{0.5}", "0.5", r"\boxed{\frac12}", r"\boxed{1}"], ["x", "y", "z", r"\boxed{4}"]]
    rewards, correct = score_with_reward(math_reward, rows, samples)
    assert rewards == [[1.0, 0.0, 1.0, 0.0], [0.0] * 4]
    scores = scores_from_correct(correct, 4)
    assert scores["avg@4"] == pytest.approx(2 / 8)
    assert scores["pass@1"] == pytest.approx(0.25) and scores["pass@4"] == pytest.approx(0.5)
    assert scores["pass@2"] == pytest.approx((1 - 1 / 6) / 2)  # 1 - C(2,2)/C(4,2) for p0, 0 for p1


def test_evalsuite_end_to_end(tmp_path, capsys):
    from tiny import ascii_model_dir

    model = ascii_model_dir(tmp_path / "model")
    rows = [{"problem": f"{i}+{i}=?", "answer": str(2 * i)} for i in range(5)]
    (tmp_path / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = yaml.safe_load(recipe_path("eval-math").read_text())
    recipe["benchmarks"] = {"small": {"path": str(tmp_path / "b.jsonl"), "k": 2, "metrics": ["avg", "pass"]}}
    recipe["system_prompt"] = None
    (tmp_path / "eval.yaml").write_text(yaml.safe_dump(recipe))
    out = tmp_path / "out.json"
    args = ["evalsuite", str(tmp_path / "eval.yaml"), "--model", str(model), "--max_new_tokens", "4",
            "--limit", "3", "--output", str(out)]  # fmt: skip
    assert cli_main(args) == 0
    result = json.loads(out.read_text())
    assert result["engine"] == "transformers" and result["temperature"] == 0.6
    small = result["benchmarks"]["small"]
    assert small["problems"] == 3 and set(small) == {"problems", "k", "avg@2", "pass@2", "seconds"}
    recipe["benchmarks"]["small"]["path"] = str(tmp_path / "missing.jsonl")
    (tmp_path / "eval.yaml").write_text(yaml.safe_dump(recipe))
    assert "eapo evalsuite: error: benchmark 'small': no file" in cli_error(args, capsys)



def test_the_vllm_engine_samples_k_per_prompt_with_the_recipes_settings(monkeypatch):
    """Before: the suite called `eapo.cli.eval.sample_with_vllm` with a fake argparse object that had `k`, where the
    sampler read `eval_k`: AttributeError on the first benchmark. The sampler now lives in `eapo.evaluation`."""
    import sys
    import types
    from argparse import Namespace

    from eapo.evaluation.suite import _samples

    calls = {}

    class LLM:
        def __init__(self, model, seed, dtype):
            calls["llm"] = (model, seed, dtype)

        def generate(self, prompts, params):
            out = types.SimpleNamespace(outputs=[types.SimpleNamespace(text=f"s{i}") for i in range(params.n)])
            return [out for _ in prompts]

    def sampling_params(**kwargs):
        calls["params"] = kwargs
        return types.SimpleNamespace(**kwargs)

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=sampling_params))
    suite = load_suite(recipe_path("eval-math"))
    samples = _samples("models/x", None, None, ["p1", "p2"], 3, suite, Namespace(engine="vllm", seed=5, dtype="auto"))
    assert samples == [["s0", "s1", "s2"]] * 2 and calls["llm"] == ("models/x", 5, "auto")
    _samples("models/x", None, None, ["p1"], 3, suite, Namespace(engine="vllm", seed=5, dtype="bfloat16"))
    assert calls["llm"] == ("models/x", 5, "bfloat16")  # --dtype reaches vLLM (it was dropped)
    assert calls["params"] == {"n": 3, "temperature": 0.6, "top_p": 0.95, "max_tokens": suite.max_new_tokens}
    from eapo.evaluation.sampling import sample_with_vllm

    sample_with_vllm("models/x", ["p"], 2, temperature=1.0, top_p=1.0, max_new_tokens=40, seed=0,
                     stop_strings=("\n\n",))
    assert calls["params"] == {"n": 2, "temperature": 1.0, "top_p": 1.0, "max_tokens": 40, "stop": ["\n\n"],
                               "include_stop_str_in_output": True}  # fmt: skip
