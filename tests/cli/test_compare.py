"""`eapo compare` as a user runs it: tables, plots, resumed runs."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_eapo_compare_writes_tables_and_resumes(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "eapo",
        "compare",
        "--methods",
        "grpo,eapo",
        "--seeds",
        "1",
        "--steps",
        "2",
        "--output_dir",
        str(tmp_path),
        "--eval_k",
        "2",
        "--",
        "--eval_problems",
        "4",
        "--disable_tqdm",
        "true",
        "--per_device_train_batch_size",
        "16",
        "--num_generations",
        "4",
    ]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    for name in ("compare.md", "compare.csv", "compare.png", "compare-paired.png"):
        assert (tmp_path / name).stat().st_size > 0
    rows = (tmp_path / "compare.csv").read_text().splitlines()
    assert rows[0].startswith("method,seeds,avg@2,avg@2_ci95") and len(rows) == 3
    assert "Held-out countdown, 2 samples per problem" in (tmp_path / "compare.md").read_text()
    stamp = (tmp_path / "grpo-seed0" / "eval.json").stat().st_mtime_ns
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and again.stdout.count("finished earlier with the same options, kept") == 2
    assert (tmp_path / "grpo-seed0" / "eval.json").stat().st_mtime_ns == stamp
    # Other options over the same folders: refused in one line, nothing trained or changed.
    saved = {p: p.read_bytes() for p in (tmp_path / "grpo-seed0").rglob("*") if p.is_file()}
    longer = [*cmd[: cmd.index("--steps") + 1], "3", *cmd[cmd.index("--steps") + 2 :]]
    refused = subprocess.run(longer, capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "holds a run with other options (max_steps: 2 there, 3 now)" in refused.stderr
    assert {p: p.read_bytes() for p in (tmp_path / "grpo-seed0").rglob("*") if p.is_file()} == saved



def test_compare_tables_show_format_rate_and_accuracy_among_well_formatted(tmp_path):
    """A task that reads answers: format_rate and accuracy_formatted are columns of compare.md/.csv beside avg@k,
    averaged over seeds and paired with the baseline like avg@k (hand-made run folders)."""
    import argparse
    import json

    from eapo.cli.compare import _summarise, write_outputs

    numbers = {("grpo", 0): (0.20, 0.80, 0.25), ("grpo", 1): (0.30, 0.90, 0.3333), ("eapo", 0): (0.36, 0.90, 0.40),
               ("eapo", 1): (0.40, 0.80, 0.50)}  # fmt: skip
    results: dict = {}
    for (method, seed), (acc, fmt, acc_fmt) in numbers.items():
        run_dir = tmp_path / f"{method}-seed{seed}"
        run_dir.mkdir()
        after = {"avg@4": acc, "pass@4": 0.6, "format_rate": fmt, "accuracy": acc, "accuracy_formatted": acc_fmt}
        (run_dir / "eval.json").write_text(json.dumps({"after": after, "steps": 10, "train_seconds": 100, "k": 4}))
        (run_dir / "config.json").write_text(json.dumps({"task": "wordproblems:1", "eval_problems": 200}))
        (run_dir / "metrics.jsonl").write_text(json.dumps({"entropy/sampling_mean": 1.0}) + "\n")
        results.setdefault(method, {})[seed] = _summarise(run_dir, 4)
    args = argparse.Namespace(eval_k=4, baseline="grpo", steps=10)
    write_outputs(results, tmp_path, args)
    header, grpo, eapo = (tmp_path / "compare.csv").read_text().splitlines()[:3]
    columns = header.split(",")
    row = dict(zip(columns, eapo.split(","), strict=True))
    assert {"format_rate", "accuracy_formatted"} <= set(columns)
    assert float(row["format_rate"]) == pytest.approx(0.85)
    assert float(row["accuracy_formatted"]) == pytest.approx(0.45)
    assert float(row["accuracy_formatted_diff"]) == pytest.approx(0.45 - (0.25 + 0.3333) / 2)
    assert float(row["format_rate_diff"]) == pytest.approx(0.0)
    md = (tmp_path / "compare.md").read_text()
    assert "| format_rate | accuracy_formatted |" in md and "accuracy among them" in md


# Bad input: one line on stderr, exit code 2, checked before any training, nothing written or left behind.

ARGV = ["compare", "--methods", "grpo", "--seeds", "2", "--steps", "3", "--eval_k", "4"]


def _no_training(monkeypatch):
    import eapo.cli.runs

    monkeypatch.setattr(eapo.cli.runs, "train_or_resume", lambda *a: pytest.fail("must not train"))


def _finished_compare_run(out, seed: int):
    """A finished `eapo compare` run (grpo, seed) of ARGV: config.yaml with the options it plans, eval.json,
    config.json, metrics.jsonl."""
    import json

    import yaml

    from eapo.cli import build_parser
    from eapo.cli.compare import train_flags
    from eapo.cli.train import parse_args

    run_dir = out / f"grpo-seed{seed}"
    run_dir.mkdir(parents=True)
    args = build_parser().parse_args([*ARGV, "--output_dir", str(out)])
    inputs = parse_args([*train_flags("grpo", seed, args), "--output_dir", str(run_dir)])[1].inputs
    (run_dir / "config.yaml").write_text(yaml.safe_dump(inputs))
    after = {"avg@4": 0.5, "pass@4": 0.75, "correct_per_problem": [2, 2]}
    (run_dir / "eval.json").write_text(json.dumps({"after": after, "train_seconds": 6.0, "steps": 3}))
    (run_dir / "config.json").write_text(json.dumps({"eval_problems": 2}))
    lines = [{"step": s, "reward": 0.5, "entropy/sampling_mean": 1.0} for s in (1, 2, 3)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return run_dir


def _files(folder):
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_compare_output_dir_that_is_a_file_is_one_line(tmp_path, capsys, monkeypatch):
    from tiny import cli_error

    _no_training(monkeypatch)
    target = tmp_path / "taken"
    target.write_text("mine")
    err = cli_error([*ARGV, "--output_dir", str(target)], capsys)
    assert "--output_dir" in err and "is a file, not a folder: give a folder" in err
    assert target.read_text() == "mine" and sorted(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [(["--bogus", "1"], "unrecognised argument '--bogus'"), (["--learning_rate=-1"], "learning_rate=-1.0 is invalid")],
)
def test_compare_bad_train_flags_leave_no_folder(tmp_path, capsys, monkeypatch, extra, needle):
    """A bad `eapo train` flag after -- is found before any run trains, and --output_dir is not made."""
    from tiny import cli_error

    _no_training(monkeypatch)
    out = tmp_path / "new"
    assert needle in cli_error([*ARGV, "--output_dir", str(out), "--", *extra], capsys)
    assert not out.exists()


def test_compare_seeds_have_an_upper_bound(tmp_path, capsys, monkeypatch):
    """--seeds 1e20 built a list of every run folder first (it hung); at most 1000."""
    from tiny import cli_error

    _no_training(monkeypatch)
    out = tmp_path / "new"
    for seeds in ("1001", "99999999999999999999"):
        argv = ["compare", "--methods", "grpo", "--seeds", seeds, "--output_dir", str(out)]
        assert f"--seeds {seeds}: use 1 to 1000" in cli_error(argv, capsys)
    assert not out.exists()


DAMAGES = [
    ("eval.json", '{"after": ', "not JSON: Expecting value"),
    ("eval.json", "[]", "a JSON list, not an object"),
    ("eval.json", '{"after": {"pass@4": 0.5}, "train_seconds": 1, "steps": 3}', "no number avg@4"),
    ("eval.json", '{"after": {}, "failed": {"after": "reward failed"}}', "no final evaluation: reward failed"),
    ("metrics.jsonl", "", "no step logged"),
    ("metrics.jsonl", '{"step": 1, "reward": 0.5}\n', "without entropy/sampling_mean"),
    ("config.json", "{", "not JSON"),
    ("config.yaml", "bad: [", "cannot be read"),
    ("config.yaml", "- a\n", "a YAML list, not a mapping of options"),
]


@pytest.mark.parametrize(("name", "text", "needle"), DAMAGES)
def test_compare_names_a_damaged_finished_run_before_training(tmp_path, capsys, monkeypatch, name, text, needle):
    """A finished run whose file is truncated or edited is one line naming that file and the fix, found before
    the other run (seed 1, new) is trained; nothing is written."""
    from tiny import cli_error

    _no_training(monkeypatch)
    run_dir = _finished_compare_run(tmp_path, 0)
    (run_dir / name).write_text(text)
    before = _files(tmp_path)
    err = cli_error([*ARGV, "--output_dir", str(tmp_path)], capsys)
    assert f"{run_dir / name} cannot be read (" in err and needle in err, err
    assert err.endswith(f": delete {run_dir} to train it again")
    assert _files(tmp_path) == before and sorted(tmp_path.iterdir()) == [run_dir]


def test_compare_tabulates_finished_runs_as_before(tmp_path, capsys, monkeypatch):
    """The check of the finished runs reads what the table reads: two valid runs are tabulated, none trained."""
    _no_training(monkeypatch)
    from eapo.cli import main

    for seed in (0, 1):
        _finished_compare_run(tmp_path, seed)
    assert main([*ARGV, "--output_dir", str(tmp_path)]) == 0
    assert "| grpo | 2 | 0.500 ± 0.000 |" in (tmp_path / "compare.md").read_text()
