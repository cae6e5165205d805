"""`eapo ablate`: variants, the table math on synthetic run folders, resuming, and a tiny real run."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import eapo.cli.ablate as ablate
from eapo.cli import build_parser
from tiny import cli_error

STEPS = 12  # metrics lines per synthetic run: entropy = step / 10


def _pass(avg: float) -> dict[str, float]:
    return {"pass@1": avg, **{f"pass@{j}": min(1.0, avg + 0.01 * j) for j in (2, 4, 8, 16, 32, 64)}}


def make_run(
    run_dir: Path, after: float, before: float | None, heldout: list[tuple[int, float]], options: dict | None = None
) -> None:
    """A finished run folder as `eapo train` writes it (final k = 64, periodic k = 8; before None: the run
    did not evaluate its starting policy); `options` are the saved run options (config.yaml)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(options or {}))
    summary = {
        "before": None if before is None else {"avg@64": before, **_pass(before)},
        "after": {"avg@64": after, **_pass(after)},
        "train_seconds": 1.0,
        "steps": STEPS,
    }
    (run_dir / "eval.json").write_text(json.dumps(summary))
    config = {"max_steps": STEPS, "eval_problems": 200, "eval_k": 64, "heldout_eval_steps": 25, "task": "arithmetic"}
    (run_dir / "config.json").write_text(json.dumps({**config, "heldout_eval_problems": 100, "heldout_eval_k": 8}))
    lines = [{"step": s, "loss": 0.0, "reward": 0.5, "entropy/sampling_mean": s / 10} for s in range(1, STEPS + 1)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    rows = [{"step": s, "k": 8, "avg@8": a, "pass@8": min(1.0, 2 * a)} for s, a in heldout]
    (run_dir / "heldout.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def parse(*argv: str):
    return build_parser().parse_args(["ablate", *argv])


def test_variants_and_their_train_flags(tmp_path):
    names = [v.name for v in ablate.ablation_variants()]
    assert names == ["grpo-PHR", "grpo-PLR", "grpo-NLR", "grpo-NHR", "grpo-full"]
    variants = {v.name: v for v in ablate.ablation_variants("dapo", without=True)}
    assert variants["dapo-NHR"].flags == ("--method", "dapo", "--quadrants", "NHR")
    assert variants["eapo-full"].flags == ("--method", "eapo")
    assert variants["eapo-wo-PLR"].flags == ("--method", "eapo", "--eapo_shaped_quadrants", "PHR,NLR,NHR")
    assert len(variants) == 5 + 1 + 4
    args = parse("--steps", "7", "--", "--learning_rate", "1e-4")
    cmd = ablate.train_command(variants["dapo-NHR"], 2, args, tmp_path)
    assert cmd[cmd.index("--quadrants") + 1] == "NHR" and cmd[cmd.index("--seed") + 1] == "2"
    assert cmd[cmd.index("--max_steps") + 1] == "7" and cmd[-6:-4] == ["--learning_rate", "1e-4"]
    assert cmd[-4:] == ["--output_dir", str(tmp_path), "--overwrite_output_dir", "true"]
    with pytest.raises(SystemExit, match="unknown --variants grpo-XYZ"):  # a ValidationError: exit code 2
        ablate.select_variants(ablate.ablation_variants(), "grpo-PHR,grpo-XYZ")


def test_steps_to_target_is_the_first_evaluation_reaching_it():
    curve = [{"step": 50, "k": 8, "avg@8": 0.4}, {"step": 0, "k": 8, "avg@8": 0.3}, {"step": 25, "k": 8, "avg@8": 0.35}]
    assert ablate.steps_to_target(curve, 0.35) == 25  # >= counts, order of the lines does not matter
    assert ablate.steps_to_target(curve, 0.3) == 0
    assert ablate.steps_to_target(curve, 0.41) is None
    one_seed = {"steps_to_target": 150.0, "steps_to_target_ci95": 0.0, "reached": 1, "seeds": 3}
    assert ablate._steps_cell(one_seed) == "150 (1/3)"  # no interval from a single seed


def _synthetic_ablation(out: Path) -> None:
    make_run(out / "grpo-PHR-seed0", 0.3, 0.29, [(0, 0.30), (25, 0.36), (50, 0.34)])  # reached at 25
    make_run(out / "grpo-PHR-seed1", 0.4, 0.30, [(0, 0.30), (25, 0.33), (50, 0.35)])  # reached at 50
    make_run(out / "grpo-PHR-seed2", 0.5, 0.31, [(0, 0.30), (25, 0.31), (50, 0.34)])  # not reached
    for seed in range(3):
        make_run(out / f"grpo-full-seed{seed}", 0.45, None, [(0, 0.30), (25, 0.30)])
    make_run(out / "grpo-NHR-seed0", 0.45, 0.9, [(0, 0.30)])  # a second start of seed 0 (same policy): not counted


def test_table_math_on_synthetic_run_folders(tmp_path, capsys):
    _synthetic_ablation(tmp_path)
    variants = "grpo-PHR,grpo-NHR,grpo-full"
    args = parse("--table_only", "--variants", variants, "--output_dir", str(tmp_path), "--target", "0.35")
    assert ablate.run(args) == 0
    rows = {row["variant"]: row for row in csv.DictReader((tmp_path / "ablate.csv").open())}
    assert list(rows) == ["base (before RL)", "grpo-PHR", "grpo-NHR", "grpo-full"]
    phr, full, base = rows["grpo-PHR"], rows["grpo-full"], rows["base (before RL)"]
    assert base["seeds"] == "3" and rows["grpo-NHR"]["seeds"] == "1"
    # mean 0.4, half-width t_{0.975,2} * sd / sqrt(3) = 4.302653 * 0.1 / 1.7320508
    assert float(phr["avg@64"]) == pytest.approx(0.4) and float(phr["avg@64_ci95"]) == pytest.approx(0.2484138, 1e-6)
    assert float(phr["pass@16"]) == pytest.approx(0.56) and float(phr["pass@64"]) == pytest.approx(0.98)  # 0.94, 1, 1
    assert float(base["avg@64"]) == pytest.approx(0.30) and float(base["avg@64_ci95"]) == pytest.approx(0.02484138)
    assert float(phr["entropy"]) == pytest.approx(0.75) and float(base["entropy"]) == pytest.approx(0.55)
    # steps to 0.35: seeds reached at 25 and 50, one not: mean 37.5, 12.706205 * 17.678 / 1.4142 = 158.8276
    assert float(phr["steps_to_target"]) == 37.5 and float(phr["steps_to_target_ci95"]) == pytest.approx(158.8276)
    assert phr["reached"] == "2" and full["reached"] == "0" and full["steps_to_target"] == ""
    assert float(full["avg@64_ci95"]) == 0.0 and "pass@2" not in phr and "pass@4" in phr
    md = (tmp_path / "ablate.md").read_text()
    assert "| grpo-PHR | 3 | 0.400 ± 0.248 |" in md and "| 38 ± 159 (2/3) |" in md
    assert "| not reached (0/3) |" in md and "steps to avg@k >= 0.35" in md
    assert "12 steps per run" in md and "(every 25 steps, 100 problems x 8 samples)" in md  # from config.json
    assert md.count("Held-out arithmetic, final evaluation") == 1  # the runs' task, not a fixed name
    assert (tmp_path / "ablate.png").stat().st_size > 10_000
    assert (tmp_path / "ablate-paired.png").stat().st_size > 10_000  # grpo-PHR paired with grpo-full
    assert "grpo-PHR" in capsys.readouterr().out


def _saved_options(variant_name: str, seed: int, args, run_dir: Path) -> dict:
    """The config.yaml `eapo train` writes for one ablation run."""
    from eapo.cli.train import parse_args

    variant = {v.name: v for v in ablate.ablation_variants()}[variant_name]
    flags = ablate.train_flags(variant, seed, args, variant_name == "grpo-PHR")
    return parse_args([*flags, "--output_dir", str(run_dir)])[1].inputs


def test_finished_runs_are_kept_and_unfinished_ones_redone(tmp_path, monkeypatch, capsys):
    args = parse("--variants", "grpo-PHR,grpo-full", "--seeds", "2", "--output_dir", str(tmp_path), "--jobs", "2")
    done = tmp_path / "grpo-PHR-seed0"
    make_run(done, 0.4, 0.3, [(0, 0.3)], _saved_options("grpo-PHR", 0, args, done))
    unfinished = tmp_path / "grpo-PHR-seed1"  # interrupted: options saved, no eval.json
    unfinished.mkdir()
    (unfinished / "config.yaml").write_text(yaml.safe_dump(_saved_options("grpo-PHR", 1, args, unfinished)))
    (unfinished / "metrics.jsonl").write_text('{"step": 1}\n')
    trained = []
    # --jobs 2 runs this in 2 threads; TRL's argument parser is not thread-safe (building it resolves the
    # dataclass fields' types in place: "type object 'str' has no attribute '__args__'"), and the real
    # `_train_one` parses nothing in its thread (it starts a subprocess), so the fake parses under a lock.
    lock = threading.Lock()

    def fake_train(variant, seed, args, run_dir, eval_before, state):
        trained.append((variant.name, seed, state))
        assert eval_before == (variant.name == "grpo-PHR")  # the first variant evaluates the start
        with lock:
            options = _saved_options(variant.name, seed, args, run_dir)
        make_run(run_dir, 0.4, 0.3, [(0, 0.3)], options)
        return f"{run_dir.name}: done"

    monkeypatch.setattr(ablate, "_train_one", fake_train)
    assert ablate.run(args) == 0
    assert sorted(trained) == [("grpo-PHR", 1, "unfinished"), ("grpo-full", 0, "new"), ("grpo-full", 1, "new")]
    assert "grpo-PHR-seed0: finished earlier with the same options, kept" in capsys.readouterr().out
    assert ablate.run(args) == 0 and len(trained) == 3  # everything finished: nothing retrained
    # run_all tells its caller of each run as it ends (findings.py rewrites its tables then)
    seen: list[str] = []
    shutil.rmtree(tmp_path / "grpo-full-seed1")
    variants = ablate.select_variants(ablate.ablation_variants(), "grpo-PHR,grpo-full")
    assert ablate.run_all(variants, args, tmp_path, seen.append) == []
    assert seen == ["grpo-full-seed1: done"] and len(trained) == 4


def test_a_resumed_session_adds_to_the_runs_log(tmp_path, monkeypatch):
    """A fresh start's log waits beside the run folder (which `eapo train` empties) and moves in; a resumed session
    appends to train.log (it used to replace it, losing the earlier sessions' lines)."""
    import eapo.trainer.checkpoint as checkpoint

    args = parse("--variants", "grpo-full", "--seeds", "1", "--output_dir", str(tmp_path))
    variant = ablate.ablation_variants()[0]
    run_dir = tmp_path / "grpo-full-seed0"
    sessions: list[list[str]] = []

    def fake_run(cmd, stdout, **kwargs):
        sessions.append(cmd)
        stdout.write(f"session {len(sessions)}\n")
        return SimpleNamespace(returncode=0)

    monkeypatch.setattr(ablate.subprocess, "run", fake_run)
    assert ablate._train_one(variant, 0, args, run_dir, True, "new").startswith("grpo-full-seed0: done in ")
    monkeypatch.setattr(checkpoint, "last_checkpoint", lambda run_dir: run_dir / "checkpoint-10")
    ablate._train_one(variant, 0, args, run_dir, True, "unfinished")
    assert "--resume" in sessions[1] and "--resume" not in sessions[0]
    assert (run_dir / "train.log").read_text() == "session 1\nsession 2\n"
    assert not list(tmp_path.glob(".*.train.log"))


def test_a_run_with_other_options_is_refused_and_left_alone(tmp_path, monkeypatch, capsys):
    """`eapo ablate --max_steps 10` over a folder trained with 5 steps: one line, exit 2, nothing trained or
    changed (it used to keep the 5-step run and label it 10 steps)."""
    args5 = parse("--variants", "grpo-PHR", "--seeds", "1", "--max_steps", "5", "--output_dir", str(tmp_path))
    run_dir = tmp_path / "grpo-PHR-seed0"
    make_run(run_dir, 0.4, 0.3, [(0, 0.3)], _saved_options("grpo-PHR", 0, args5, run_dir))
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    monkeypatch.setattr(ablate, "_train_one", lambda *a: pytest.fail("must not train"))
    argv = ["ablate", "--variants", "grpo-PHR", "--seeds", "1", "--max_steps", "10", "--output_dir", str(tmp_path)]
    err = cli_error(argv, capsys)
    assert "holds a run with other options (max_steps: 5 there, 10 now)" in err and "another --output_dir" in err
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


def test_bad_arguments_are_clear_errors(tmp_path, capsys):
    out = ["--output_dir", str(tmp_path)]
    assert "--base_method: unknown method 'nope'" in cli_error(["ablate", "--base_method", "nope", *out], capsys)
    assert "must be >= 1" in cli_error(["ablate", "--seeds", "0", *out], capsys)
    assert "no finished run" in cli_error(["ablate", "--table_only", *out], capsys)


@pytest.mark.slow
def test_tiny_ablation_end_to_end(tmp_path):
    out = tmp_path / "abl"
    cmd = [sys.executable, "-m", "eapo", "ablate", "--variants", "grpo-PHR,grpo-full", "--seeds", "1", "--steps", "1"]
    cmd += ["--eval_k", "4", "--eval_problems", "4", "--heldout_eval_steps", "1", "--heldout_eval_problems", "4"]
    cmd += ["--heldout_eval_k", "2", "--jobs", "2", "--output_dir", str(out)]
    cmd += ["--", "--per_device_train_batch_size", "8", "--num_generations", "4"]
    stale = out / "grpo-PHR-seed0"  # an interrupted run with the same options: trained again from scratch
    stale.mkdir(parents=True)
    args = parse(*cmd[cmd.index("ablate") + 1 :])
    (stale / "config.yaml").write_text(yaml.safe_dump(_saved_options("grpo-PHR", 0, args, stale)))
    (stale / "metrics.jsonl").write_text('{"step": 999, "loss": 0.0}\n')
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "[ablate] grpo-full-seed0: training" in proc.stdout and "written:" in proc.stdout
    for name in ("ablate.md", "ablate.csv", "ablate.png"):
        assert (out / name).stat().st_size > 0
    rows = list(csv.DictReader((out / "ablate.csv").open()))
    assert [row["variant"] for row in rows] == ["base (before RL)", "grpo-PHR", "grpo-full"]
    assert {"avg@4", "pass@1", "pass@4", "entropy", "steps_to_target"} <= set(rows[0])
    assert json.loads((stale / "config.json").read_text())["quadrants"] == "PHR"
    assert json.loads((out / "grpo-full-seed0" / "config.json").read_text())["quadrants"] == "PHR,PLR,NLR,NHR"
    assert json.loads((out / "grpo-full-seed0" / "eval.json").read_text())["before"] is None
    assert json.loads((stale / "eval.json").read_text())["before"]["avg@4"] >= 0
    assert [json.loads(line)["step"] for line in (stale / "metrics.jsonl").read_text().splitlines()] == [1]
    assert [json.loads(line)["step"] for line in (stale / "heldout.jsonl").read_text().splitlines()] == [0, 1]


def test_a_task_that_reads_answers_gets_format_rate_and_accuracy_among_well_formatted(tmp_path):
    """summarise_run: eval.json's format_rate and accuracy_formatted become columns, after and before (`_base`);
    a task without them (make_run's) gets none."""
    run_dir = tmp_path / "grpo-full-seed0"
    make_run(run_dir, after=0.4, before=0.3, heldout=[])
    assert not {"format_rate", "accuracy_formatted"} & set(ablate.summarise_run(run_dir, 0.35))
    summary = json.loads((run_dir / "eval.json").read_text())
    summary["before"] |= {"format_rate": 0.5, "accuracy": 0.3, "accuracy_formatted": 0.6}
    summary["after"] |= {"format_rate": 0.8, "accuracy": 0.4, "accuracy_formatted": 0.5}
    (run_dir / "eval.json").write_text(json.dumps(summary))
    out = ablate.summarise_run(run_dir, 0.35)
    assert (out["format_rate"], out["accuracy_formatted"]) == (0.8, 0.5)
    assert (out["_base"]["format_rate"], out["_base"]["accuracy_formatted"]) == (0.5, 0.6)


# Bad input: one line on stderr, exit code 2, checked before any training, nothing written or left behind.


def _no_training(monkeypatch):
    monkeypatch.setattr(ablate, "_train_one", lambda *a: pytest.fail("must not train"))


def _files(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("table_only", [True, False])
def test_an_output_dir_that_is_a_file_is_one_line(tmp_path, capsys, monkeypatch, table_only):
    _no_training(monkeypatch)
    target = tmp_path / "taken"
    target.write_text("mine")
    argv = ["ablate", "--seeds", "1", "--output_dir", str(target), *(["--table_only"] if table_only else [])]
    assert "--output_dir" in (err := cli_error(argv, capsys)) and "is a file, not a folder: give a folder" in err
    assert target.read_text() == "mine" and sorted(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize(
    "argv",
    [
        ["--table_only"],  # no finished run there
        ["--seeds", "1", "--", "--bogus", "1"],
        ["--seeds", "1", "--", "--learning_rate=-1"],
        ["--table_only", "--", "--bogus", "1"],  # checked, not dropped, with --table_only too
    ],
)
def test_a_refused_ablation_leaves_no_folder(tmp_path, capsys, monkeypatch, argv):
    _no_training(monkeypatch)
    out = tmp_path / "new"
    err = cli_error(["ablate", "--output_dir", str(out), *argv], capsys)
    needle = {"--bogus": "unrecognised argument '--bogus'", "--learning_rate=-1": "learning_rate=-1.0 is invalid"}
    assert needle.get(argv[-2] if argv[-1] == "1" else argv[-1], "no finished run in") in err
    assert not out.exists()


def test_a_missing_model_folder_is_one_line_before_training_but_finished_runs_need_none(tmp_path, capsys, monkeypatch):
    """A --model_path after -- that does not exist failed each run's training process in turn (its train.log, a
    folder per run left behind); now one line before any run, no folder made. Finished runs of a model folder
    since deleted are still reused and tabulated: only a run to train needs its model."""
    _no_training(monkeypatch)
    out, gone = tmp_path / "new", tmp_path / "gone"
    flags = ["--variants", "grpo-PHR,grpo-full", "--seeds", "1", "--output_dir", str(out)]
    err = cli_error(["ablate", *flags, "--", "--model_path", str(gone)], capsys)
    assert f"eapo ablate: model_path={str(gone)!r} does not exist" in err and not out.exists()
    args = parse(*flags, "--", "--model_path", str(gone))
    for name in ("grpo-PHR", "grpo-full"):
        make_run(out / f"{name}-seed0", 0.4, 0.3, [(0, 0.3)], _saved_options(name, 0, args, out / f"{name}-seed0"))
    assert ablate.run(args) == 0
    assert "grpo-full-seed0: finished earlier with the same options, kept" in capsys.readouterr().out
    (out / "grpo-full-seed0" / "eval.json").unlink()  # unfinished: it would train, and its model is gone
    before = _files(out)
    assert f"model_path={str(gone)!r} does not exist" in cli_error(["ablate", *flags, "--", "--model_path",
                                                                     str(gone)], capsys)  # fmt: skip
    assert _files(out) == before


@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [
        ("--target", "nan", "--target nan: give a held-out accuracy from 0 to 1"),
        ("--target", "inf", "--target inf: give a held-out accuracy from 0 to 1"),
        ("--target", "-1", "--target -1.0: give a held-out accuracy from 0 to 1"),
        ("--target", "2", "--target 2.0: give a held-out accuracy from 0 to 1"),
        ("--heldout_eval_problems", "0", "--heldout_eval_problems 0: use at least 1"),
        ("--heldout_eval_problems", "-1", "--heldout_eval_problems -1: use at least 1"),
        ("--heldout_eval_k", "0", "--heldout_eval_k 0: use at least 1"),
        ("--heldout_eval_k", "-1", "--heldout_eval_k -1: use at least 1"),
        ("--seeds", "1001", "--seeds 1001: use 1 to 1000"),
    ],
)
def test_bad_values_are_refused_before_tabulating(tmp_path, capsys, flag, value, needle):
    """Over a folder of finished runs, where --table_only would otherwise write its tables."""
    _synthetic_ablation(tmp_path)
    before = _files(tmp_path)
    argv = ["ablate", "--table_only", "--variants", "grpo-PHR,grpo-NHR,grpo-full", "--output_dir", str(tmp_path)]
    assert needle in cli_error([*argv, flag, value], capsys)
    assert _files(tmp_path) == before


def test_seeds_have_an_upper_bound(tmp_path, capsys):
    """--table_only --seeds 1e20 listed every run folder it might find (it hung); at most 1000 (1001 first: a
    bound taken away fails there, and does not hang on 1e20)."""
    out = tmp_path / "new"
    for seeds in ("1001", "99999999999999999999"):
        argv = ["ablate", "--table_only", "--seeds", seeds, "--output_dir", str(out)]
        assert f"--seeds {seeds}: use 1 to 1000" in cli_error(argv, capsys)
    assert not out.exists()


ABLATE_DAMAGES = [
    ("eval.json", "{", "not JSON: Expecting property name"),
    ("eval.json", "[]", "a JSON list, not an object"),
    ("eval.json", '{"after": {"pass@64": 0.5}}', "its after: no avg@k"),
    ("eval.json", '{"after": {"avg@64": 0.5, "pass@1": 0.5}}', "its after: no number pass@4"),
    ("eval.json", '{"after": {"avg@1": 0.5, "pass@1": 0.5}, "before": {"avg@1": "x"}}', "its before: no number avg@1"),
    ("eval.json", '{"after": {"avg@1": 0.5, "pass@1": 0.5, "correct_per_problem": [3]}}', "not a count from 0 to 1"),
    ("metrics.jsonl", "", "no step logged"),
    ("heldout.jsonl", '{"step": 0, "k": 8}\n', "a line without a number step, k and avg@k"),
    ("config.json", "[1]", "a JSON list, not an object"),
]


@pytest.mark.parametrize(("name", "text", "needle"), ABLATE_DAMAGES)
def test_a_damaged_finished_run_is_one_line_naming_its_file(tmp_path, capsys, name, text, needle):
    _synthetic_ablation(tmp_path)
    run_dir = tmp_path / "grpo-PHR-seed1"
    (run_dir / name).write_text(text)
    before = _files(tmp_path)
    argv = ["ablate", "--table_only", "--variants", "grpo-PHR,grpo-NHR,grpo-full", "--output_dir", str(tmp_path)]
    err = cli_error(argv, capsys)
    assert f"{run_dir / name} cannot be read (" in err and needle in err, err
    assert err.endswith(f": delete {run_dir} to train it again")
    assert _files(tmp_path) == before


def test_a_finished_run_without_metrics_is_one_line(tmp_path, capsys):
    """eval.json {"after": {}} (no final evaluation) and no metrics.jsonl: the first that the table reads."""
    run_dir = tmp_path / "grpo-full-seed0"
    run_dir.mkdir()
    (run_dir / "eval.json").write_text('{"after": {}}')
    err = cli_error(["ablate", "--table_only", "--seeds", "1", "--output_dir", str(tmp_path)], capsys)
    assert f"{run_dir / 'eval.json'} cannot be read (the run has no final evaluation)" in err
    (run_dir / "eval.json").write_text('{"after": {"avg@1": 0.5, "pass@1": 0.5}}')
    err = cli_error(["ablate", "--table_only", "--seeds", "1", "--output_dir", str(tmp_path)], capsys)
    assert f"{run_dir / 'metrics.jsonl'} cannot be read (it is missing): delete {run_dir} to train it again" in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["eval.json", "grpo-full-seed0"]


def test_a_damaged_finished_run_stops_the_ablation_before_training(tmp_path, capsys, monkeypatch):
    """Without --table_only: the finished runs are read before any other run trains."""
    _no_training(monkeypatch)
    args = parse("--variants", "grpo-PHR,grpo-full", "--seeds", "1", "--output_dir", str(tmp_path))
    done = tmp_path / "grpo-PHR-seed0"
    make_run(done, 0.4, 0.3, [(0, 0.3)], _saved_options("grpo-PHR", 0, args, done))
    (done / "eval.json").write_text('{"after": ')
    argv = ["ablate", "--variants", "grpo-PHR,grpo-full", "--seeds", "1", "--output_dir", str(tmp_path)]
    assert f"{done / 'eval.json'} cannot be read (not JSON" in cli_error(argv, capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grpo-PHR-seed0"]
