"""benchmarks/realmodel.py: the grid, the exact `eapo train` command lines of the sweep and the comparison, a
finished run never trained again, the tables on hand-made run folders, and one tiny-world sweep through the
same code path (a real `eapo train` subprocess, a few steps)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import statistics
import sys
from pathlib import Path

import pytest
import yaml

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # realmodel imports findings, as when run as a script
_SPEC = importlib.util.spec_from_file_location("realmodel", BENCHMARKS / "realmodel.py")
realmodel = sys.modules.setdefault("realmodel", importlib.util.module_from_spec(_SPEC))
_SPEC.loader.exec_module(realmodel)

from eapo.cli.ablate import train_flags  # noqa: E402
from eapo.cli.validate import ValidationError  # noqa: E402
from eapo.evaluation import stats  # noqa: E402


def _args(command: str, *more: str):
    return realmodel.build_parser().parse_args([command, "--model", "smollm2", "--model_path", "/models/smol", *more])


def test_grid_parsing_and_point_names():
    grid = realmodel.parse_grid(["lr=1e-5,2e-5", "batch=16,32", "temperature=0.9"])
    assert grid == [("lr", ["1e-5", "2e-5"]), ("batch", ["16", "32"]), ("temperature", ["0.9"])]
    points = realmodel.grid_points(grid)
    assert [p.name for p in points] == [
        "lr1e-5_batch16_temperature0.9", "lr1e-5_batch32_temperature0.9",
        "lr2e-5_batch16_temperature0.9", "lr2e-5_batch32_temperature0.9",
    ]  # fmt: skip
    assert points[1].flags == ("--method", "grpo", "--learning_rate", "1e-5", "--per_device_train_batch_size", "32",
                               "--temperature", "0.9")  # fmt: skip
    assert [p.name for p in realmodel.grid_points([])] == ["base"]
    for bad in ("lr", "lr=", "lr=1e-5,a/b", "method=grpo", "x-y=1", "lr=1-seed2"):
        with pytest.raises(ValidationError):
            realmodel.parse_grid([bad])
    with pytest.raises(ValidationError, match="twice"):
        realmodel.parse_grid(["lr=1e-5", "lr=2e-5"])


def test_sweep_command_lines():
    variants, ablate = realmodel.sweep_plan(_args("sweep", "--grid", "lr=1e-5,5e-5", "--seeds", "2", "--minutes", "45"))
    assert [v.name for v in variants] == ["lr1e-5", "lr5e-5"]
    assert (ablate.seeds, ablate.jobs, ablate.threads) == (2, 1, 2)
    assert train_flags(variants[1], 1, ablate, eval_before=False) == [
        "--method", "grpo", "--learning_rate", "5e-5", "--seed", "1", "--max_steps", "10000",
        "--save_strategy", "no", "--disable_tqdm", "true", "--eval_k", "4", "--eval_problems", "200",
        "--heldout_eval_steps", "10", "--heldout_eval_problems", "100", "--heldout_eval_k", "2",
        "--eval_before", "false",
        # realmodel's own flags, after ablate's (the later one wins: --save_strategy steps)
        "--model_path", "/models/smol", "--task", "wordproblems:1", "--prompt_format", "text",
        "--logging_steps", "1", "--report", "false", "--eval_offset", "200",
        "--save_strategy", "steps", "--save_steps", "10", "--save_total_limit", "1", "--eval_batch_size", "64",
        "--lr_scheduler_type", "constant", "--per_device_train_batch_size", "16", "--num_generations", "8",
        "--max_completion_length", "48",  # SWEEP_BASE without the swept learning rate
        "--max_train_minutes", "45.0", "--eval_max_new_tokens", "48",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "--model", "gemma3", "--seeds", "0"], "--seeds 0: use at least 1"),
        (["compare", "--model", "smollm2", "--eval_k", "-4"], "--eval_k -4: use at least 1"),
        (["compare", "--model", "smollm2", "--eval_offset", "-1"], "--eval_offset -1: give the first held-out"),
        (["sweep", "--model", "smollm2", "--minutes", "nan"], "--minutes nan: give each run's optimizer-step time"),
        (["sweep", "--model", "smollm2", "--minutes", "-2"], "--minutes -2.0: give each run's optimizer-step time"),
        (["sweep", "--model", "smollm2", "--max_steps", "0"], "--max_steps 0: use at least 1"),
    ],
)
def test_a_count_out_of_range_is_one_line_and_writes_nothing(tmp_path, capsys, argv, message):
    runs, docs = tmp_path / "runs", tmp_path / "docs"
    assert realmodel.main([*argv, "--runs", str(runs), "--docs", str(docs)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"realmodel: {message}") and err.count("\n") == 1
    assert not runs.exists() and not docs.exists()


def test_compare_command_lines_follow_the_recipe(tmp_path):
    recipe = tmp_path / "smollm2-wordproblems.yaml"
    recipe.write_text("learning_rate: 2.0e-5\nmax_steps: 60\nheldout_eval_steps: 15\n")
    variants, ablate = realmodel.compare_plan(_args("compare", "--recipe", str(recipe)))
    assert [v.name for v in variants] == ["grpo", "dapo", "eapo", "eapo-alpha0"]
    assert ablate.seeds == 5
    # the seeds default to the pre-registered number for each model; --seeds overrides it
    gemma = realmodel.build_parser().parse_args(
        ["compare", "--model", "gemma3", "--model_path", "/models/gemma", "--recipe", str(recipe)]
    )  # a --model_path: without one, the plan would build Gemma-3's folder (a download and a conversion)
    assert realmodel.compare_plan(gemma)[1].seeds == 3
    assert realmodel.compare_plan(_args("compare", "--recipe", str(recipe), "--seeds", "2"))[1].seeds == 2
    assert train_flags(variants[3], 4, ablate, eval_before=False) == [
        "--method", "eapo", "--eapo_alpha", "0", "--seed", "4", "--max_steps", "60",
        "--save_strategy", "no", "--disable_tqdm", "true", "--eval_k", "16", "--eval_problems", "200",
        "--heldout_eval_steps", "15", "--heldout_eval_problems", "100", "--heldout_eval_k", "4",
        "--eval_before", "false",
        "--model_path", "/models/smol", "--task", "wordproblems:1", "--prompt_format", "text",
        "--logging_steps", "1", "--report", "false", "--eval_offset", "0",
        "--save_strategy", "steps", "--save_steps", "10", "--save_total_limit", "1", "--eval_batch_size", "64",
        "--config", str(recipe),
    ]  # fmt: skip
    recipe.write_text("learning_rate: 2.0e-5\n")
    with pytest.raises(ValidationError, match="no max_steps"):
        realmodel.compare_plan(_args("compare", "--recipe", str(recipe)))
    assert realmodel.main(["compare", "--model", "gemma3", "--recipe", str(tmp_path / "none.yaml")]) == 2


def _write_run(run_dir: Path, *, after: dict, before: dict | None, entropy: list[float], k: int = 4,
               counts: list[int] | None = None, wall: float | None = None, heldout_shift: float = 0.0,
               generated: float | None = None, **record):  # fmt: skip
    """A finished run folder as `eapo train` leaves it (what the tables read), and realmodel's record; `counts`:
    the correct samples of each problem after training (eval.json's `correct_per_problem`); `wall`: eval.json's
    `wall_seconds` (the run over all its sessions); `heldout_shift`: added to the periodic held-out accuracy after
    step 0 (0.3 at step 10, 0.4 at 20); `generated`: logs `entropy/generated_mean` as each step's sampling entropy
    plus this."""
    run_dir.mkdir(parents=True)

    def result(numbers: dict) -> dict:
        acc, fmt = numbers["accuracy"], numbers["format_rate"]
        return {f"avg@{k}": acc, f"pass@{k}": min(1.0, 2 * acc), "format_rate": fmt, "accuracy": acc,
                "accuracy_formatted": acc / fmt}  # fmt: skip

    summary = {"problems": 200, "k": k, "temperature": 1.0, "before": before and result(before),
               "after": result(after) | ({"correct_per_problem": counts} if counts else {}), "failed": {},
               "train_seconds": 2700.0, "steps": len(entropy)}  # fmt: skip
    if wall is not None:
        summary["wall_seconds"] = wall
    (run_dir / "eval.json").write_text(json.dumps(summary))
    lines, weights = [], {"PHR": 2.0, "PLR": 0.5, "NLR": 0.4, "NHR": 1.8}
    for step, h in enumerate(entropy, 1):
        quadrants = {f"quadrant/{q}/entropy_mean": h * w for q, w in weights.items()}
        line = {"step": step, "loss": 0.1, "entropy/sampling_mean": h, "step_time": 90.0, **quadrants}
        if generated is not None:
            line["entropy/generated_mean"] = h + generated
        lines.append(json.dumps(line))
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    heldout = [{"step": s, "k": 2, "avg@2": 0.2 + s / 100 + (heldout_shift if s else 0.0)} for s in (0, 10, 20)]
    (run_dir / "heldout.jsonl").write_text("\n".join(json.dumps(h) for h in heldout) + "\n")
    if record:
        (run_dir / realmodel.RECORD).write_text(json.dumps(record))


def test_sweep_tables_from_hand_made_runs(tmp_path):
    out = tmp_path / "runs" / "smollm2" / "sweep"
    start = {0: {"accuracy": 0.20, "format_rate": 0.80}, 1: {"accuracy": 0.24, "format_rate": 0.80}}
    for seed, gain in ((0, 0.10), (1, 0.14)):
        _write_run(out / f"lr1e-5-seed{seed}", before=start[seed], entropy=[2.0] * 10 + [1.0] * 10,
                   after={"accuracy": start[seed]["accuracy"] + gain, "format_rate": 0.9},
                   commit="abcdef1234567", wall_seconds=3000)  # fmt: skip
        _write_run(out / f"lr5e-5-seed{seed}", before=None, entropy=[2.0] * 20,
                   after={"accuracy": start[seed]["accuracy"], "format_rate": 0.8})  # fmt: skip
    (out / "lr9e-5-seed0").mkdir()  # unfinished: not in the tables
    written = realmodel.write_tables("smollm2", tmp_path / "runs", tmp_path / "docs")
    assert [p.name for p in written] == ["smollm2-sweep.md", "smollm2-sweep.png"]
    table = (tmp_path / "docs" / "smollm2-sweep.md").read_text()
    means = table.split("## Every run")[0]
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in means.splitlines() if line.startswith("| lr")}
    assert set(rows) == {"lr1e-5", "lr5e-5"}
    row = rows["lr1e-5"]
    assert row[1:5] == ["2", "20 ± 0", "45.0 ± 0.0", "50.0 ± 0.0"]
    # accuracy 0.20, 0.24 -> 0.30, 0.38: changes 0.10, 0.14, +0.12 ± 12.706 * 0.0283 / sqrt 2 = ± 0.254
    assert row[5] == "0.220 ± 0.254 -> 0.340 ± 0.508" and row[6] == "+0.120 ± 0.254"
    assert row[9].startswith("0.800 ± 0.000 -> 0.900")  # format rate
    assert row[11] == "2.000 ± 0.000 -> 1.000 ± 0.000 |"  # entropy of the first and last 10% of steps
    assert rows["lr5e-5"][6] == "+0.000 ± 0.000"  # paired with its seed's start, evaluated by the other point
    # every run: one row per point x seed, its own start and its held-out accuracy during training
    every = table.split("## Every run")[1]
    per_run = [line.split(" | ") for line in every.splitlines() if line.startswith("| lr")]
    assert [(r[0][2:], r[1]) for r in per_run] == [("lr1e-5", "0"), ("lr1e-5", "1"), ("lr5e-5", "0"), ("lr5e-5", "1")]
    assert per_run[1][2:8] == ["20", "30.0", "50.0", "0.240 -> 0.380", "0.300 -> 0.422", "0.800 -> 0.900"]
    assert per_run[1][8] == "0.480 -> 0.760"  # pass@4: min(1, 2 accuracy); step min: 20 steps x 90 s
    assert per_run[1][9:] == ["2.000 -> 1.000", "0: 0.200, 10: 0.300, 20: 0.400 |"]
    assert per_run[2][4] == "-"  # no record: no wall time
    # one seed: its value, no interval
    assert realmodel._mean_cell({0: {"steps": 57}}, "steps", 0) == "57"
    # a value some seeds lack (a run wall not measured): the mean of those that have it, and how many
    assert rows["lr5e-5"][4] == "-"  # no record for either seed
    assert realmodel._mean_cell({0: {"wall_minutes": 83.2}, 1: {"wall_minutes": None}}, "wall_minutes", 1) == (
        "83.2 (1 of 2 seeds)"
    )
    assert realmodel._change_cell({0: 0.94}, {0: 0.23}) == "+0.710"
    assert "abcdef1234" in table


def _compare_runs(out: Path) -> None:
    """Five seeds of the four variants: eapo +0.05 over grpo on accuracy, +0.01 over alpha 0; dapo +0.01; the
    entropy of the last steps 0.5 (grpo, dapo) or 0.6 (eapo, alpha 0) of the first steps' 1.0."""
    base = [0.30, 0.32, 0.28, 0.31, 0.29]
    shift = {"grpo": 0.0, "dapo": 0.01, "eapo": 0.05, "eapo-alpha0": 0.04}
    noise = [0.002, -0.001, 0.0, 0.001, -0.002]
    for variant, d in shift.items():
        for seed, (acc, e) in enumerate(zip(base, noise, strict=True)):
            before = {"accuracy": 0.2, "format_rate": 0.8} if variant == "grpo" else None
            after = {"accuracy": acc + d + (e if variant != "grpo" else 0), "format_rate": 0.9}
            counts = [16, 8, 0] if variant == "dapo" else None
            # grpo seed 0 ran in two sessions: 100 minutes in all (eval.json), 1 in its last (the record)
            wall = {"wall": 6000.0, "wall_seconds": 60} if (variant, seed) == ("grpo", 0) else {}
            entropy = [1.0] * 10 + [0.5 + (0.1 if variant.startswith("eapo") else 0)] * 10
            during = 3 * d + (e if variant == "eapo" else 0)  # held-out accuracy during training
            # over every completion generated: grpo's is its sampling entropy, dynamic sampling's 0.05 below its
            # kept groups' (eapo's with the seed's noise); seed 4 of alpha 0 ran before the code logged it
            below = 0.0 if variant == "grpo" else -0.05 + (e if variant == "eapo" else 0)
            if variant == "dapo":
                below -= 0.05
            generated = None if (variant, seed) == ("eapo-alpha0", 4) else below
            _write_run(out / f"{variant}-seed{seed}", before=before, after=after, k=16, counts=counts, entropy=entropy,
                       heldout_shift=during, generated=generated, **wall)  # fmt: skip


def test_variants_come_in_the_pre_registrations_order():
    """The page's rows and its list of comparisons follow one order: grpo, dapo, eapo, eapo-alpha0, then any other
    variant by name; in a pair eapo comes first, else the later variant of that order."""
    names = {"eapo-alpha0": 0, "zeta": 0, "grpo": 0, "eapo": 0, "alpha": 0}
    assert realmodel.variant_order(names) == ["grpo", "eapo", "eapo-alpha0", "alpha", "zeta"]
    pairs = realmodel.comparison_pairs(realmodel.variant_order(names))
    assert pairs[:4] == [("eapo", "grpo"), ("eapo-alpha0", "grpo"), ("alpha", "grpo"), ("zeta", "grpo")]
    assert ("eapo", "eapo-alpha0") in pairs and ("zeta", "alpha") in pairs and len(pairs) == 10


def test_compare_tables_hypotheses_with_holm(tmp_path):
    _compare_runs(tmp_path / "runs" / "gemma3" / "compare")
    realmodel.write_tables("gemma3", tmp_path / "runs", tmp_path / "docs")
    table = (tmp_path / "docs" / "gemma3-compare.md").read_text()
    hyp = [line.split(" | ") for line in table.splitlines() if line.startswith("| H")]
    primary = {row[0][2:]: row for row in hyp if row[2] == "accuracy"}
    # +0.05, tiny spread; accuracy_formatted (accuracy / 0.9) rises as much: a reasoning gain
    assert primary["H1"][1] == "eapo - grpo" and primary["H1"][7] == "holds: a reasoning gain"
    assert "Interim" not in table and "Left out" not in table  # 5 seeds of every variant, the planned 3 reached
    assert "The runs: `python benchmarks/realmodel.py compare --model gemma3 --seeds 3` from a checkout" in table
    assert primary["H2"][1] == "eapo - eapo-alpha0" and primary["H2"][3].startswith("+0.0100")
    assert primary["H3"][1] == "eapo - dapo"
    # exploratory: the mean held-out accuracy after step 0 (0.35 + 3 x shift, eapo's with the seed's noise, which
    # sums to 0): eapo - grpo +0.15 over the two evaluations after the start (+0.10 if step 0 were counted)
    explore = table.split("## Exploratory")[1].split("## The paper's claims")[0]
    rows = {r.split(" | ")[0][2:]: r.split(" | ") for r in explore.splitlines() if r.startswith("| H")}
    assert [rows[h][1] for h in ("H1", "H2", "H3")] == ["eapo - grpo", "eapo - eapo-alpha0", "eapo - dapo"]
    assert rows["H1"][3].startswith("+0.1500 ± 0.00") and rows["H2"][3].startswith("+0.0300 ± ")
    assert rows["H3"][3].startswith("+0.1200 ± ") and all(r[7] == "(exploratory)" for r in rows.values())
    assert float(rows["H1"][6]) == pytest.approx(3 * float(rows["H1"][5]), rel=0.01)  # smallest raw p of the 3
    # exploratory: entropy over every completion generated, last 2 steps: grpo 0.5, dapo 0.5 - 0.1 = 0.4, eapo
    # 0.6 - 0.05 + the seed's noise (summing to 0 over 5 seeds), alpha 0 0.55 on seeds 0-3 only
    generated = table.split("## Exploratory: entropy over every completion generated")[1].split("## The paper")[0]
    rows = {r.split(" | ")[0][2:]: r.split(" | ") for r in generated.splitlines() if r.startswith("| H")}
    assert rows["H1"][3].startswith("+0.0500 ± 0.00") and rows["H1"][4] == "5"
    assert rows["H2"][3].startswith("+0.0005 ± ") and rows["H2"][4] == "4"  # (0.002 - 0.001 + 0 + 0.001) / 4
    assert rows["H3"][3].startswith("+0.1500 ± 0.00") and all(r[7] == "(exploratory)" for r in rows.values())
    h4 = [row for row in hyp if row[0] == "| H4"]
    assert len(h4) == 1 and h4[0][2] == "entropy" and h4[0][3] == "+0.1000 ± 0.0000"
    assert "| start | 5 | 0.200 ± 0.000" in table
    assert "| dapo - grpo | **+0.010" in table  # every variant paired with grpo
    # the generated list: every pair (not only those with eapo or grpo) and every variant vs the start
    every = table.split("## Every comparison")[1].split("## pass@k curve")[0]
    resolved, unresolved = every.split("Not resolved")
    labels = {(row.split(" | ")[0][2:], row.split(" | ")[1]) for row in resolved.splitlines() if row.startswith("| ")}
    assert ("eapo-alpha0 - dapo", "accuracy") in labels and ("eapo - start", "accuracy") in labels
    assert ("dapo - grpo", "format_rate") not in labels and "| dapo - grpo | format_rate | +0.0000" in unresolved
    assert (
        every.startswith(" (the generated list)\n\nΔ = the first") and "46 comparisons; " in every
    )  # 6 pairs x 5 metrics + 4 x 4 vs start
    # the pass@k curve from the per-problem counts 16, 8, 0 of 16: pass@1 (1 + 0.5 + 0) / 3, pass@2 (1 + (1 - 28 /
    # 120) + 0) / 3, pass@16 2 / 3
    curve = next(line for line in table.split("## pass@k curve")[1].splitlines() if line.startswith("| dapo | 5 | "))
    cells = curve.split(" | ")[2:]
    assert cells[:2] == ["0.500", "0.589"] and cells[-1] == "0.667 |" and len(cells) == 16
    assert (tmp_path / "docs" / "gemma3-compare.png").is_file()
    # steps: 20 x 90 s = 30 minutes; the run wall: the run's own clock over its sessions, not the last session
    assert "| grpo | 5 | " in table and "| 20 ± 0 | 30.0 ± 0.0 | 100.0 (1 of 5 seeds) |" in table
    for block in table.split("\n\n"):  # every table's rows have as many cells as its header (else no table)
        rows = [line for line in block.splitlines() if line.startswith("|")]
        assert len({row.count(" | ") for row in rows if not row.startswith("|---")}) <= 1, block
        assert all(row.count("---|") == rows[0].count(" | ") + 1 for row in rows if row.startswith("|---")), block
    # section 3's claims by its rule. Entropy 1.0 on the first 2 of 20 steps, 0.5 (grpo) or 0.6 (eapo) on the last
    # 2: ratios 0.5 and 0.6; pass@16 = 2 x accuracy, the start's 0.4, grpo's about 0.6 (above: no loss at large k)
    section = table.split("## The paper's claims")[1].split("## Every variant")[0]
    claims = {row.split(" | ")[0][2:]: row.split(" | ") for row in section.splitlines()
              if row.startswith("| ") and not row.startswith("|  |")}  # fmt: skip
    assert claims["Plain GRPO collapses entropy and loses pass@k at large k"][1] == "**fails**"
    assert claims["EAPO keeps entropy stable where GRPO collapses it"][1] == "**holds**"
    beats = claims["EAPO beats grpo (accuracy)"]
    assert beats[1] == "**holds**" and beats[5].startswith("+0.050 ±") and len(beats) == 10  # the MDE last
    assert float(beats[9].rstrip(" |")) > 0
    assert claims["alpha 0.2 is best (accuracy; against alpha 0 only)"][5] == "+0.010 ± 0.000"
    assert "Not testable with these variants: EAPO beats Forking, EntroAdv and KL-Cov" in table
    runs = table.split("## Every run")[1]
    assert "| variant | seed | steps | step min | run wall min |" in runs
    assert "| grpo | 0 | 20 | 30.0 | 100.0 | 0.200 -> 0.300 |" in runs and "| eapo | 4 | 20 | 30.0 | - |" in runs


def test_kept_runs_are_not_ignored_by_git():
    """`keep` copies finished runs into the repository so that they outlive the machine: git must not ignore them
    (the checkout's `runs/` rule matched docs/realmodel/runs/ until it was excepted), and the training folders stay
    ignored."""
    import subprocess

    root = realmodel.ROOT
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    kept = realmodel.KEPT.relative_to(root)

    def ignored(path: str) -> bool:
        return subprocess.run(["git", "-C", str(root), "check-ignore", "-q", path]).returncode == 0

    for name in ("eval.json", "metrics.jsonl", "realmodel.json"):
        assert not ignored(str(kept / "smollm2" / "compare" / "grpo-seed0" / name))
    assert not ignored(str(kept / "versions.txt"))
    assert ignored("runs/realmodel/smollm2/compare/grpo-seed0/eval.json")


def test_kept_runs_write_the_same_page_and_a_different_run_is_refused(tmp_path, capsys):
    """`keep` copies a finished run's small files, not its weights, checkpoints or an unfinished run; the page
    written from the kept copies is the page written from the runs; keeping again copies nothing; a kept run whose
    eval.json differs from the one found stops the command (exit 2, one line) and changes nothing."""
    runs, kept = tmp_path / "runs", tmp_path / "kept"
    _compare_runs(runs / "gemma3" / "compare")
    (runs / "gemma3" / "compare" / "grpo-seed0" / "model").mkdir()
    (runs / "gemma3" / "compare" / "grpo-seed0" / "model" / "model.safetensors").write_bytes(b"weights")
    (runs / "gemma3" / "compare" / "grpo-seed5").mkdir()  # unfinished: no eval.json
    (runs / "gemma3" / "compare" / "grpo-seed5" / "metrics.jsonl").write_text("{}\n")
    assert realmodel.main(["keep", "--runs", str(runs), "--to", str(kept)]) == 0
    assert "20 run(s) kept" in capsys.readouterr().out
    assert sorted(f.name for f in (kept / "gemma3" / "compare" / "grpo-seed0").iterdir()) == [
        "eval.json", "heldout.jsonl", "metrics.jsonl", "realmodel.json"]  # what _write_run wrote, not the weights
    assert not (kept / "gemma3" / "compare" / "grpo-seed5").exists()
    realmodel.write_tables("gemma3", runs, tmp_path / "docs-runs")
    realmodel.write_tables("gemma3", kept, tmp_path / "docs-kept")
    page = (tmp_path / "docs-runs" / "gemma3-compare.md").read_text()
    assert page == (tmp_path / "docs-kept" / "gemma3-compare.md").read_text() and "| H1 | eapo - grpo |" in page
    assert realmodel.main(["keep", "--runs", str(runs), "--to", str(kept)]) == 0
    assert "0 run(s) kept" in capsys.readouterr().out
    # a record written after the run's eval.json (kept before it existed) is copied by the next call, alone
    (runs / "gemma3" / "compare" / "eapo-seed2" / realmodel.RECORD).write_text('{"commit": "abc"}')
    assert realmodel.main(["keep", "--runs", str(runs), "--to", str(kept)]) == 0
    assert "1 run(s) kept" in capsys.readouterr().out
    assert (kept / "gemma3" / "compare" / "eapo-seed2" / realmodel.RECORD).read_text() == '{"commit": "abc"}'
    eval_json = runs / "gemma3" / "compare" / "dapo-seed1" / "eval.json"
    kept_metrics = (kept / "gemma3" / "compare" / "dapo-seed1" / "metrics.jsonl").read_text()
    eval_json.write_text(eval_json.read_text().replace('"steps": 20', '"steps": 21'))
    (runs / "gemma3" / "compare" / "dapo-seed1" / "metrics.jsonl").write_text("{}\n")
    assert realmodel.main(["keep", "--runs", str(runs), "--to", str(kept)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dapo-seed1 holds another run" in err
    assert (kept / "gemma3" / "compare" / "dapo-seed1" / "metrics.jsonl").read_text() == kept_metrics
    assert realmodel.main(["keep", "--runs", str(tmp_path / "nowhere"), "--to", str(kept)]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_restore_puts_kept_runs_back_so_compare_reuses_them(tmp_path, capsys):
    """On a new machine the worktree has no runs: `restore` copies each finished kept run back where its folder is
    missing, byte for byte, so that `eapo compare` finds it finished with the same options (run_state "finished")
    and does not train it again; a folder already there (a run in progress) is left alone; restoring again or
    keeping the restored runs copies nothing; a --from that is no folder is one line, exit 2."""
    from eapo.cli.runs import run_state
    from eapo.cli.train import parse_args

    kept, runs = tmp_path / "kept", tmp_path / "runs"
    _compare_runs(kept / "gemma3" / "compare")
    flags = ["--method", "grpo", "--seed", "7", "--max_steps", "3"]
    run_dir = kept / "smollm2" / "compare" / "grpo-seed7"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(parse_args([*flags, "--output_dir", str(run_dir)])[1].inputs))
    (run_dir / "eval.json").write_text('{"after": {"accuracy": 0.5}}')
    (run_dir / "model.safetensors").write_bytes(b"not kept")  # no kept file: not restored
    busy = runs / "gemma3" / "compare" / "eapo-seed3"
    busy.mkdir(parents=True)
    (busy / "metrics.jsonl").write_text('{"step": 1}\n')
    assert realmodel.main(["restore", "--runs", str(runs), "--from", str(kept)]) == 0
    assert "20 run(s) restored" in capsys.readouterr().out
    assert [p.name for p in busy.iterdir()] == ["metrics.jsonl"] and not (busy / "eval.json").exists()
    for source in [*(kept / "gemma3" / "compare").iterdir(), run_dir]:
        target = runs / source.relative_to(kept)
        if target != busy:
            assert sorted(p.name for p in target.iterdir()) == sorted(
                p.name for p in source.iterdir() if p.name in realmodel.KEPT_FILES)
            assert all((target / p.name).read_bytes() == p.read_bytes() for p in target.iterdir())
    assert run_state(runs / "smollm2" / "compare" / "grpo-seed7", flags) == "finished"
    assert realmodel.main(["restore", "--runs", str(runs), "--from", str(kept)]) == 0
    assert "0 run(s) restored" in capsys.readouterr().out
    assert realmodel.main(["keep", "--runs", str(runs), "--to", str(kept)]) == 0
    assert "0 run(s) kept" in capsys.readouterr().out
    for bad in (tmp_path / "nowhere", run_dir / "eval.json"):
        assert realmodel.main(["restore", "--runs", str(runs), "--from", str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--from" in err and "is not a folder" in err
    assert realmodel.main(["restore", "--runs", str(run_dir / "eval.json"), "--from", str(kept)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_compare_page_keeps_the_protocol_while_runs_are_missing_or_broken(tmp_path):
    """Interim pages: Holm keeps its family of three (a comparison not testable yet counts with p = 1), verdicts are
    marked interim, a failed final evaluation is left out and named, different problems within a seed are named;
    and a gain in accuracy without one in accuracy among well-formatted completions reads as a format gain."""
    out = tmp_path / "runs" / "smollm2" / "compare"
    grpo, eapo, dapo = [0.30, 0.32, 0.28, 0.31], [0.36, 0.37, 0.35, 0.37], [0.31, 0.33, 0.28, 0.33]
    for seed in range(4):
        before = {"accuracy": 0.2, "format_rate": 0.5}
        # format rate 0.6 (grpo, dapo) or 0.7 (eapo): eapo's accuracy among well-formatted about grpo's
        _write_run(out / f"grpo-seed{seed}", before=before, after={"accuracy": grpo[seed], "format_rate": 0.6},
                   entropy=[1.0] * 20, k=16)  # fmt: skip
        _write_run(out / f"eapo-seed{seed}", before=None, after={"accuracy": eapo[seed], "format_rate": 0.7},
                   entropy=[1.0] * 20, k=16)  # fmt: skip
        _write_run(out / f"dapo-seed{seed}", before=None, after={"accuracy": dapo[seed], "format_rate": 0.6},
                   entropy=[1.0] * 20, k=16)  # fmt: skip
    _write_run(out / "eapo-alpha0-seed0", before=None, after={"accuracy": 0.3, "format_rate": 0.6}, entropy=[1.0] * 20,
               k=16)  # fmt: skip
    broken = json.loads((out / "dapo-seed3" / "eval.json").read_text())  # its final evaluation failed
    (out / "dapo-seed3" / "eval.json").write_text(json.dumps(broken | {"after": {}, "failed": {"after": "boom"}}))
    for variant, sha in (("grpo", "aaa"), ("eapo", "bbb")):  # seed 1's variants saw different problems
        path = out / f"{variant}-seed1" / "eval.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | {"after": {**json.loads(path.read_text())["after"],
                                                                            "problems_sha256": sha}}))  # fmt: skip
    realmodel.write_tables("smollm2", tmp_path / "runs", tmp_path / "docs")
    table = (tmp_path / "docs" / "smollm2-compare.md").read_text()
    assert "Left out, their final evaluation failed (the pre-registration reruns such a run with the same seed): " \
           "dapo seed 3." in table  # fmt: skip
    assert "The variants of seed(s) 1 were evaluated on different problems" in table
    assert "**Interim**: finished seeds per variant grpo 4, dapo 3, eapo 4, eapo-alpha0 1 of the planned 5" in table
    assert "the last 2 of 20)" in table  # the entropy window, 10% rounded down
    hyp = {(row.split(" | ")[0][2:], row.split(" | ")[2]): row.split(" | ") for row in table.splitlines()
           if row.startswith("| H")}  # fmt: skip
    h1, h2, h3 = hyp[("H1", "accuracy")], hyp[("H2", "accuracy")], hyp[("H3", "accuracy")]
    assert h2[3:5] == ["not testable yet", "1"] and h2[7] == "-"
    # Holm over three with H2 at p = 1: H1's raw p (d = 0.06, 0.05, 0.07, 0.06) and H3's (dapo seeds 0-2 only)
    d1 = [0.06, 0.05, 0.07, 0.06]
    d3 = [e - d for e, d in zip(eapo[:3], dapo[:3], strict=True)]
    p1, p3 = (stats.paired_t_p_value(statistics.fmean(d), statistics.stdev(d), len(d)) for d in (d1, d3))
    adjusted = stats.holm_adjusted([p1, 1.0, p3])
    assert h1[5:7] == [f"{p1:.3g}", f"{adjusted[0]:.3g}"] and h3[5:7] == [f"{p3:.3g}", f"{adjusted[2]:.3g}"]
    assert adjusted[0] < 0.05 and h1[4] == "4"
    # accuracy up by 0.06, accuracy among well-formatted flat (0.36 / 0.7 against 0.30 / 0.6): a format gain
    assert h1[7] == "holds: a format gain (not on accuracy_formatted) (interim)"
    assert hyp[("H1", "accuracy_formatted")][7] == "(secondary)"


def test_carryover_puts_each_real_model_beside_the_tiny_world(tmp_path):
    docs = tmp_path / "docs"
    assert realmodel.write_carryover(docs) is None  # no model's comparison yet: no page
    _compare_runs(tmp_path / "runs" / "gemma3" / "compare")
    written = realmodel.write_tables("gemma3", tmp_path / "runs", docs)
    assert written[-1] == docs / "carryover.md"
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in written[-1].read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| part")}  # fmt: skip
    assert "| part of the claim | claimed | tiny default | tiny stress | gemma3 |" in written[-1].read_text()
    assert len(rows) == len(realmodel.CARRYOVER) == 11
    # every part is found in each table it names (no "-": a renamed claim or part would leave its cell empty)
    assert all(cell.rstrip(" |") != "-" for cells in rows.values() for cell in cells)
    # the tiny world's cells are docs/findings/<setting>-claims.md's parts (default: grpo's ratio 0.656 vs 0.5)
    collapse = rows["grpo's entropy collapses (last / first at most 0.5)"]
    assert collapse[:2] == ["Δ = ratio - 0.5 < 0", "**fails** +0.156 ± 0.021 (5 seeds)"]
    assert rows["eapo beats grpo on accuracy (avg@64; real: avg@16)"][1] == "not resolved +0.009 ± 0.016 (5 seeds)"
    # gemma3's from its comparison: eapo - grpo +0.05 with little spread; eapo keeps 0.1 more entropy than grpo;
    # alpha 0.2 - alpha 0: +0.010 exactly; grpo's pass@16 (2 x accuracy) ends above the start's 0.4
    gemma = {label: cells[3].rstrip(" |") for label, cells in rows.items()}
    assert gemma["eapo beats grpo on accuracy (avg@64; real: avg@16)"].startswith("**holds** +0.050 ± ")
    assert gemma["eapo ends with more entropy than grpo"] == "**holds** +0.100 ± 0.000 (5 seeds)"
    assert gemma["alpha 0.2 beats alpha 0 on accuracy"] == "**holds** +0.010 ± 0.000 (5 seeds)"
    assert gemma["grpo ends below the start at large k (pass@64; real: pass@16)"].startswith("**fails** +0.")
    # one seed: the cell says "n/a (1 seed)" once (it read "n/a (1 seed) (1 seeds)"); grpo's ratio 0.5 - 0.5
    for run in (tmp_path / "runs" / "gemma3" / "compare").glob("*-seed[1-4]"):
        shutil.rmtree(run)
    text = realmodel.write_tables("gemma3", tmp_path / "runs", docs)[-1].read_text()
    one_seed = ("| **fails** +0.156 ± 0.021 (5 seeds) | **holds** -0.071 ± 0.054 (5 seeds) | not resolved +0.000 ± n/a "
                "(1 seed) |")  # fmt: skip
    assert one_seed in text and "(1 seeds)" not in text


def test_a_finished_run_is_never_trained_again(tmp_path, monkeypatch, capsys):
    """A folder with eval.json and the same options is kept: no subprocess starts."""
    import eapo.cli.ablate as ablate

    monkeypatch.setattr(ablate, "_train_one", lambda *a, **k: pytest.fail("a finished run was trained again"))
    argv = ["sweep", "--model", "smollm2", "--model_path", "tiny", "--task", "countdown", "--grid", "lr=5e-5",
            "--seeds", "1", "--runs", str(tmp_path / "runs"), "--docs", str(tmp_path / "docs"),
            "--allow_dirty"]  # fmt: skip
    variants, ablate_args = realmodel.sweep_plan(realmodel.build_parser().parse_args(argv))
    run_dir = tmp_path / "runs" / "smollm2" / "sweep" / "lr5e-5-seed0"
    from eapo.cli.train import parse_args

    _, run = parse_args([*train_flags(variants[0], 0, ablate_args, True), "--output_dir", str(run_dir)])
    import yaml

    _write_run(run_dir, before={"accuracy": 0.3, "format_rate": 1.0}, after={"accuracy": 0.4, "format_rate": 1.0},
               entropy=[0.2] * 5)  # fmt: skip
    (run_dir / "config.yaml").write_text(yaml.safe_dump(run.inputs))
    assert realmodel.main(argv) == 0
    assert "finished earlier with the same options, kept" in capsys.readouterr().out
    assert (tmp_path / "docs" / "smollm2-sweep.md").is_file()


def test_tiny_world_sweep_end_to_end(tmp_path):
    """The sweep's code path for real: `eapo train` subprocesses on the shipped tiny world (countdown), a few
    steps, then the record, the tables, and a second call that trains nothing."""
    argv = ["sweep", "--model", "smollm2", "--model_path", "tiny", "--task", "countdown", "--grid", "lr=5e-5",
            "--seeds", "1", "--threads", "1", "--max_steps", "3", "--minutes", "5", "--eval_problems", "4",
            "--eval_k", "2", "--eval_offset", "4", "--heldout_eval_steps", "2", "--heldout_eval_problems", "2",
            "--heldout_eval_k", "2", "--eval_max_new_tokens", "16", "--save_steps", "2",
            "--runs", str(tmp_path / "runs"), "--docs", str(tmp_path / "docs"), "--allow_dirty"]  # fmt: skip
    assert realmodel.main(argv) == 0
    run_dir = tmp_path / "runs" / "smollm2" / "sweep" / "lr5e-5-seed0"
    summary = json.loads((run_dir / "eval.json").read_text())
    assert summary["steps"] == 3 and summary["k"] == 2 and summary["before"] is not None
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["eval_offset"], config["max_train_minutes"], config["method"]) == (4, 5.0, "grpo")
    record = json.loads((run_dir / realmodel.RECORD).read_text())
    assert len(record["commit"]) == 40 and record["variant"] == "lr5e-5" and "--max_train_minutes" in record["flags"]
    assert not list(run_dir.glob("checkpoint-*")) and (run_dir / "model").is_dir()
    table = (tmp_path / "docs" / "smollm2-sweep.md").read_text()
    assert "recipe sweep (grpo, countdown)" in table and "| lr5e-5 | 1 | 3 | " in table
    stamp = (run_dir / "eval.json").stat().st_mtime
    assert realmodel.main(argv) == 0
    assert (run_dir / "eval.json").stat().st_mtime == stamp


# how a sweep run is stopped, saved and shown; the last two: which options a user gave, and how
SWEEP_ONLY = {"max_steps", "max_train_minutes", "save_strategy", "save_steps", "save_total_limit", "disable_tqdm",
              "report", "output_dir", "logging_dir", "run_name", "applied_defaults", "inputs"}  # fmt: skip


def _parsed(flags: list[str], out: Path) -> dict:
    from eapo.cli.train import parse_args

    config, run = parse_args([*flags, "--output_dir", str(out)])
    return {**config.to_dict(), **{f"run.{k}": v for k, v in vars(run).items()}}


# each CPU recipe and the sweep point it was chosen from (docs/benchmarks.md): the model's config.json, the point's
# grid and minutes, and what the recipe must set (learning rate, max_steps = the steps the point reached)
CPU_RECIPE_POINTS = {
    "smollm2": ('{"model_type": "llama", "hidden_size": 576, "num_hidden_layers": 30, "vocab_size": 49152}',
                ["lr=1e-5", "bf16=true", "len=40"], "20", 1e-5, 57),
    "gemma3": ('{"model_type": "gemma3_text", "hidden_size": 640, "num_hidden_layers": 18, "vocab_size": 262144}',
               ["lr=1e-4", "bf16=true", "len=40", "use_peft=true", "lora_r=16"], "45", 1e-4, 51),
}  # fmt: skip


@pytest.mark.parametrize("model_name", sorted(CPU_RECIPE_POINTS))
def test_a_cpu_recipe_trains_the_sweep_point_it_was_chosen_from(model_name, tmp_path):
    """recipes/<model>-wordproblems.yaml is the sweep's pick (docs/benchmarks.md) with max_steps = the steps it
    reached: parsed by `eapo train`, it differs from that point's command line only in how the run is stopped,
    saved and shown (and the dynamic-sampling cap, which grpo does not use); the comparison's flags (method,
    problems 0-199, 16 samples) override the recipe."""
    from eapo.trainer.recipes import cpu_recipe_for, recipe_path

    config_json, grid, minutes, lr, steps = CPU_RECIPE_POINTS[model_name]
    model = tmp_path / model_name
    model.mkdir()
    (model / "config.json").write_text(config_json)
    args = realmodel.build_parser().parse_args(
        ["sweep", "--model", model_name, "--model_path", str(model), "--grid", *grid, "--minutes", minutes,
         "--heldout_eval_steps", "10", "--eval_max_new_tokens", "40"]
    )  # fmt: skip
    variants, ablate = realmodel.sweep_plan(args)
    swept = _parsed(train_flags(variants[0], 0, ablate, eval_before=True), tmp_path / "a")
    recipe = recipe_path(f"{model_name}-wordproblems")
    assert cpu_recipe_for(model).file == recipe.name  # the start line of `eapo train` points to this recipe
    shipped = _parsed(["--config", str(recipe), "--model_path", str(model), "--seed", "0"], tmp_path / "b")
    differ = {k.removeprefix("run.") for k in swept if swept[k] != shipped.get(k)}
    assert differ - SWEEP_ONLY == {"dynamic_sampling_max_rounds"}  # its cap: grpo samples one round
    assert swept["dynamic_sampling"] is False and shipped["dynamic_sampling"] is False
    assert (shipped["max_steps"], shipped["learning_rate"], shipped["lr_scheduler_type"]) == (steps, lr, "constant")
    assert (shipped["run.eval_problems"], shipped["run.eval_k"], shipped["run.eval_before"]) == (200, 4, True)

    compare_args = realmodel.build_parser().parse_args(
        ["compare", "--model", model_name, "--model_path", str(model), "--recipe", str(recipe)]
    )
    variants, ablate = realmodel.compare_plan(compare_args)
    dapo = _parsed(train_flags(variants[1], 3, ablate, eval_before=True), tmp_path / "c")
    assert (dapo["method"], dapo["run.eval_offset"], dapo["run.eval_k"], dapo["seed"]) == ("dapo", 0, 16, 3)
    assert dapo["max_steps"] == steps and dapo["learning_rate"] == lr and dapo["dynamic_sampling_max_rounds"] == 3
    lora = ("run.use_peft", "run.lora_r")  # the recipe's LoRA (Gemma-3) reaches every variant of the comparison
    assert [dapo[k] for k in lora] == [shipped[k] for k in lora] == [swept[k] for k in lora]
    assert shipped["run.use_peft"] is ("use_peft=true" in grid)


def test_pick_applies_the_sweeps_rule(tmp_path, capsys):
    """The point with the largest change in accuracy among well-formatted completions on seed 0; changes within
    0.02 of it tie and the lowest learning rate among them wins; max_steps = the steps it reached."""
    out = tmp_path / "runs" / "gemma3" / "sweep"
    start = {"accuracy": 0.20, "format_rate": 0.80}  # accuracy among well-formatted 0.25
    points = {
        "lr3e-5": (3e-5, 0.60, 0.20),
        "lr1e-5": (1e-5, 0.585, 0.20),
        "lr1e-4": (1e-4, 0.0, 0.99),
        "lr1e-6": (1e-6, 0.45, 0.20),
    }  # fmt: skip  (lr, seed 0's accuracy after, seed 1's; format rate 1)
    for name, (lr, seed0, seed1) in points.items():
        for seed, acc in ((0, seed0), (1, seed1)):
            run_dir = out / f"{name}-seed{seed}"
            _write_run(run_dir, before=start if name == "lr3e-5" else None, entropy=[1.0] * (40 + seed),
                       after={"accuracy": acc, "format_rate": 1.0})  # fmt: skip
            (run_dir / "config.json").write_text(json.dumps({"learning_rate": lr, "task": "wordproblems:1"}))
    runs, starts = realmodel.collect(out)
    name, gains = realmodel.pick_point(runs, starts)
    assert gains == pytest.approx({"lr3e-5": 0.35, "lr1e-5": 0.335, "lr1e-4": -0.25, "lr1e-6": 0.20})
    assert name == "lr1e-5"  # tied with lr3e-5 (0.015 below it), the lower learning rate
    assert realmodel.pick_point(runs, starts, tie=0.01)[0] == "lr3e-5"
    assert realmodel.pick_point(runs, starts, seed=1)[0] == "lr1e-4"  # its own seed's changes (the rule uses seed 0's)
    root = ["pick", "--model", "gemma3", "--runs", str(tmp_path / "runs")]
    for field, value in (("learning_rate", "1e-5"), ("max_steps", "40"), ("point", "lr1e-5"), ("gain", "0.3350")):
        assert realmodel.main([*root, "--print", field]) == 0 and capsys.readouterr().out == value + "\n"
    assert realmodel.main(root) == 0
    assert capsys.readouterr().out.startswith("lr1e-5: learning rate 1e-5, max_steps 40 (seed 0's change")
    assert realmodel.main(["pick", "--model", "smollm2", "--runs", str(tmp_path / "runs")]) == 2
    assert "no finished sweep run" in capsys.readouterr().err
    # the learning table: the pick's runs only (both seeds), each paired with its seed's start; none without a sweep
    assert realmodel.main(["tables", "--runs", str(tmp_path / "runs"), "--docs", str(tmp_path / "docs")]) == 0
    learning = (tmp_path / "docs" / "learning.md").read_text()
    rows = [line.split(" | ") for line in learning.splitlines() if line.startswith("| gemma3")]
    assert [r[:3] for r in rows] == [["| gemma3: lr1e-5", "0", "40"], ["| gemma3: lr1e-5", "1", "41"]]
    assert rows[0][3] == "60.0" and rows[0][5] == "0.200 -> 0.585" and rows[1][5] == "0.200 -> 0.200"
    assert realmodel.learning_markdown(tmp_path / "empty") is None
    capsys.readouterr()
    before = json.loads((out / "lr3e-5-seed0" / "eval.json").read_text())["before"]  # the seed's start
    for name in ("lr3e-5", "lr1e-5", "lr1e-6"):  # lr1e-4 alone: written as a grid writes it, not 0.0001
        for seed in (0, 1):
            (out / f"{name}-seed{seed}" / "eval.json").unlink()
    summary = json.loads((out / "lr1e-4-seed0" / "eval.json").read_text())
    (out / "lr1e-4-seed0" / "eval.json").write_text(json.dumps({**summary, "before": before}))
    assert realmodel.main([*root, "--print", "learning_rate"]) == 0 and capsys.readouterr().out == "1e-4\n"


@pytest.mark.skipif(not (BENCHMARKS.parent / ".git").exists(), reason="needs the git checkout")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "give the commit to pin the runs at"),
        (["no-such-commit-1f2e"], "no-such-commit-1f2e is not a commit of"),
        (["HEAD", "a", "b"], "give the commit to pin the runs at"),
        (["HEAD", "{file}"], "is a file, not a worktree folder"),
        (["HEAD", "{folder}"], "is not a worktree at"),
        (["HEAD", "{folder}"], "the installed libraries differ"),
    ],
)
def test_compare_queue_refuses_bad_input_in_one_line(argv, message, tmp_path, monkeypatch):
    """scripts/compare_queue.sh: a missing or unknown commit, a file or a folder that is no worktree of that commit
    for WORKTREE, libraries other than the runs' (versions.txt): one line naming the problem, exit 2, nothing
    trained and the folder left as it was."""
    import subprocess

    versions = tmp_path.parent / f"{tmp_path.name}-versions.txt"
    if message == "the installed libraries differ":
        versions.write_text("# the runs' libraries\ntorch==0.0.1\n")
    monkeypatch.setenv("EAPO_COMPARE_VERSIONS", str(versions))
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "mine.txt").write_text("kept")
    argv = [a.format(file=tmp_path / "file", folder=tmp_path / "folder") for a in argv]
    script = BENCHMARKS.parent / "scripts" / "compare_queue.sh"
    done = subprocess.run(["bash", str(script), *argv], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder"]
    assert [p.name for p in (tmp_path / "folder").iterdir()] == ["mine.txt"]
    if message == "the installed libraries differ":
        assert versions.read_text() == "# the runs' libraries\ntorch==0.0.1\n"  # not rewritten
    else:  # written at a first start only once the worktree is right
        assert not versions.exists()


def test_status_counts_runs_and_estimates_the_time_left(tmp_path, capsys):
    import torch
    from safetensors.torch import save_file

    out = tmp_path / "runs" / "smollm2" / "compare"
    for name, wall in (("grpo-seed0", 6000.0), ("dapo-seed0", 4800.0)):
        (out / name).mkdir(parents=True)
        (out / name / "eval.json").write_text(json.dumps({"wall_seconds": wall}))
    running = out / "eapo-seed0"
    running.mkdir()
    (running / "config.yaml").write_text("method: eapo\nmax_steps: 60\n")
    (running / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": 0.0}) + "\n" for s in range(1, 16)))
    good, torn = running / "checkpoint-10", running / "checkpoint-15"
    good.mkdir(), torn.mkdir()
    (good / "trainer_state.json").write_text("{}")
    save_file({"w": torch.zeros(2)}, str(good / "model.safetensors"))
    text = realmodel.compare_progress("smollm2", tmp_path / "runs")
    assert text.startswith(f"smollm2 ({out}): 2 of 20 runs finished; eapo-seed0 trained to step 15 of 60 "
                           "(checkpoint at step 10); 17 not started.")  # fmt: skip
    # mean wall 90 min; 18 runs left, a quarter of one trained: 17.75 x 90 min = 26.6 h
    assert " mean wall 90.0 min; about 26.6 h left at that rate" in text
    assert realmodel.main(["status", "--runs", str(tmp_path / "runs")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == text
    assert printed[1].endswith("0 of 12 runs finished; 12 not started. No estimate of the time left before a run "
                               "finishes.")  # fmt: skip
    # a run evaluating its start (no metrics yet) and a finished one whose eval.json says no wall
    (out / "eapo-alpha0-seed0").mkdir()
    (out / "eapo-alpha0-seed0" / "config.yaml").write_text("max_steps: 60\n")
    (out / "grpo-seed1").mkdir()
    (out / "grpo-seed1" / "eval.json").write_text("{}")
    text = realmodel.compare_progress("smollm2", tmp_path / "runs")
    assert "3 of 20 runs finished" in text and "eapo-alpha0-seed0 trained to step 0 of 60 (no checkpoint yet)" in text
    assert " mean wall 90.0 min; about 25.1 h left" in text  # 16.75 x 90 min: a wall not recorded is no figure
    assert realmodel.main(["status", "--runs", str(tmp_path / "nothing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
