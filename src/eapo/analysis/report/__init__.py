"""The run report: a self-contained `report.html` (and its PNG figures in `RUN_DIR/report/`).

The report shows the training reward and held-out accuracy over steps, the mean token entropy, the
per-quadrant token share, gradient-signal share and entropy over steps (from `metrics.jsonl`), the token
entropy by polarity, and a token view: seeded groups of completions of held-out prompts sampled from the
run's final policy, every token coloured by its entropy and marked with its quadrant, with each
completion's reward. Whatever is missing from the run folder is said in the report instead.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from eapo.errors import InputError
from eapo.evaluation.metrics import answer_columns

REPORT_DIR = "report"
DEFAULT_PROBLEMS = 32  # sampled groups for the entropy histograms
DEFAULT_SHOW = 4  # of which the token view displays the first few


def entropy_scale(values: list[float]) -> float:
    """Top of the colour scale: the 99th percentile of `values` rounded up to 0.1 nats (at least 0.1)."""
    if not values:
        return 1.0
    ordered = sorted(values)
    q99 = ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]  # nearest-rank percentile
    return max(0.1, math.ceil(q99 * 10 - 1e-9) / 10)


def _summary_rows(run: Any) -> list[tuple[str, Any]]:
    c = run.config
    rows: list[tuple[str, Any]] = [("run folder", run.path.resolve())]
    for key in ("method", "seed", "max_steps", "learning_rate", "per_device_train_batch_size", "num_generations",
                "temperature", "max_completion_length"):  # fmt: skip
        if key in c:
            rows.append((key, c[key]))
    rows.append(("base model", c.get("model_path") or "shipped tiny world"))
    if run.metrics:
        rows.append(("steps logged", f"{len(run.metrics)} (last step {run.metrics[-1].get('step', '?')})"))
    rows += _eval_rows(run.summary, c)
    if run.heldout and run.heldout_source == "heldout.jsonl":
        first, last = run.heldout[0], run.heldout[-1]
        k = int(last["k"])
        every = c.get("heldout_eval_steps", "?")
        size = f"{c.get('heldout_eval_problems', '?')} problems x {k} samples, every {every} steps"
        rows.append(
            (
                f"held-out curve avg@{k} ({size}; heldout.jsonl)",
                f"{first['avg']:.3f} (step {first['step']}) -> {last['avg']:.3f} (step {last['step']})",
            )
        )
    return rows


def _eval_rows(summary: dict[str, Any], config: dict[str, Any]) -> list[tuple[str, Any]]:
    """The before/after evaluation of eval.json, saying what it was computed on (as the run's summary does)."""
    after = summary.get("after") or {}
    ks = sorted(int(key[4:]) for key in after if key.startswith("avg@") and key[4:].isdigit())
    if not ks:
        return []
    k, before = ks[-1], summary.get("before") or {}
    problems = summary.get("problems", config.get("eval_problems", "?"))
    size = f"{problems} problems x {k} samples; eval.json"
    rows = []
    labels = {f"avg@{k}": f"avg@{k}", f"pass@{k}": f"pass@{k}", "format_rate": "format rate (an answer was read)",
              "accuracy_formatted": "accuracy among well-formatted"}  # fmt: skip
    for name in [f"avg@{k}", f"pass@{k}", *answer_columns(after)]:
        value = " -> ".join(_score(result.get(name)) for result in ((before,) if name in before else ()) + (after,))
        rows.append((f"held-out {labels[name]} ({size})", value))
    return rows


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _figures(run: Any, out: Path) -> list[tuple[Path, str]]:
    from eapo.analysis.report import figures

    made = [
        (figures.reward_accuracy_figure(run.metrics, run.heldout, out / "reward_accuracy.png"),
         f"Training reward per step and held-out accuracy ({run.heldout_source or 'none'})"),
        (figures.entropy_figure(run.metrics, out / "entropy.png"), "Mean token entropy over steps"),
        (figures.quadrant_figure(run.metrics, out / "quadrants.png"),
         "Per-quadrant token share, gradient-signal share and mean entropy over steps"),
    ]  # fmt: skip
    if run.metrics and made[2][0] is None:
        run.notes.append("metrics.jsonl has no quadrant metrics (trained with --quadrant_metrics false?)")
    return [(path, caption) for path, caption in made if path is not None]


def _task_prompts(config: dict[str, Any], tokenizer: Any, problems: int) -> tuple[list[str], Any, tuple[str, ...]]:
    """Held-out prompt texts of a non-countdown run's task, rebuilt from its saved options, a scorer calling the
    task's reward as TRL does, and its stop strings (raises ValueError/TaskError when the task cannot be
    rebuilt)."""
    from types import SimpleNamespace

    from eapo.evaluation.heldout import score_with_reward
    from eapo.models.policy import prompt_text, render_prompts
    from eapo.tasks.registry import load_run_task

    options = SimpleNamespace(**{"prompt_format": "auto", "system_prompt": "auto", **config})
    task = load_run_task(options, seed=int(config.get("seed", 0)), eval_size=problems)
    render_prompts(task, tokenizer, options.prompt_format, options.system_prompt, train=False)
    rows = task.heldout.select(range(min(problems, len(task.heldout))))

    def score(groups: list[int], texts: list[str]) -> list[float]:
        rewards = []
        for g in sorted(set(groups)):
            group_texts = [t for gi, t in zip(groups, texts, strict=True) if gi == g]
            policy = str(config.get("reward_error_policy", "raise"))
            rewards += score_with_reward(task.reward, rows.select([g]), [group_texts], 1.0, policy)[0][0]
        return rewards

    return [prompt_text(tokenizer, p) for p in rows["prompt"]], score, task.stop_strings


def _token_section(run: Any, out: Path, problems: int, show: int, seed: int, progress: bool):
    """(token view html, histogram figure or None, note or None)."""
    from eapo.analysis.report import figures, html
    from eapo.analysis.report.tokens import pick_groups, sample_prompt_view, sample_token_view
    from eapo.models.policy import load_policy
    from eapo.tasks.countdown import tiny_world_split

    try:
        model, tokenizer = load_policy(run.model_dir)  # the loader of train and eval: LoRA adapters merged
    except (OSError, ValueError) as err:
        return "", None, f"the model in {run.model_dir} could not be loaded ({err.__class__.__name__}): no token view"
    c = run.config
    sampling = {
        "group_size": int(c.get("num_generations", 8)),
        "temperature": float(c.get("temperature", 1.0)),
        "max_new_tokens": int(c.get("max_completion_length", 24)),
        "seed": seed,
        "progress": progress,
    }
    task = str(c.get("task", "countdown"))
    if task == "countdown":
        samples = sample_token_view(model, tokenizer, tiny_world_split()[1][:problems], **sampling)
    else:
        try:
            prompts, score, stops = _task_prompts(c, tokenizer, problems)
        except ValueError as err:
            return "", None, f"the task {task!r} of this run could not be rebuilt ({err}): no token view"
        samples = sample_prompt_view(model, tokenizer, prompts, score, **sampling, stop_strings=stops)
    entropy = [h for s in samples for h in s.entropy]
    polarity = [(s.advantage > 0) - (s.advantage < 0) for s in samples for _ in s.entropy]
    hist = figures.entropy_histogram_figure(entropy, polarity, out / "entropy_hist.png")
    groups = pick_groups(samples, show)
    shown = sorted((s for s in samples if s.group in groups), key=lambda s: groups.index(s.group))
    intro = (
        f"<p>Policy <code>{html.html.escape(run.model_dir.name)}/</code>: {len(shown)} completions of {len(groups)} "
        f"held-out prompts (seed {seed}, temperature {c.get('temperature', 1.0)}; prompts where some completions "
        "are right and some wrong first). Hover a token for its entropy H, its probability p and its quadrant.</p>"
    )
    view = intro + html.token_view(shown, entropy_scale(entropy), set(tokenizer.all_special_tokens))
    caption = f"Token entropy by polarity: {len(entropy)} tokens of {len(samples)} completions of {problems} prompts"
    return view, (hist, caption) if hist else None, None


def write_report(
    run_dir: str | Path,
    problems: int = DEFAULT_PROBLEMS,
    show: int = DEFAULT_SHOW,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Write `RUN_DIR/report/*.png` and `RUN_DIR/report.html`; returns the html path."""
    from eapo.analysis.report import html
    from eapo.analysis.report.runfolder import read_run_folder

    if problems < 1 or show < 0:
        raise InputError("--eval_problems must be at least 1 and --show at least 0")
    run = read_run_folder(run_dir)  # a damaged file fails here, before anything is written
    out = run.path / REPORT_DIR
    for target, kind in ((out, "a file"), (run.path / "report.html", "a folder")):
        if target.exists() and target.is_dir() == (kind == "a folder"):
            raise InputError(f"{target} is {kind}, where the report goes: move it out of the run folder")
    out.mkdir(exist_ok=True)
    figs = _figures(run, out)
    view = ""
    if run.model_dir is not None:
        view, hist, note = _token_section(run, out, problems, min(show, problems), seed, progress)
        figs += [hist] if hist else []
        run.notes += [note] if note else []
    sections = [("Run", html.key_value_table(_summary_rows(run)))]
    if run.notes:
        items = "".join(f"<li>{html.html.escape(n)}</li>" for n in run.notes)
        sections.append(("Missing or skipped", f'<ul class="notes">{items}</ul>'))
    sections.append(("Figures", "".join(html.figure_html(p, c) for p, c in figs) or "<p>No figures.</p>"))
    sections.append(("Token view", view or "<p>No token view: no loadable model in the run folder.</p>"))
    path = run.path / "report.html"
    path.write_text(html.page(f"eapo report: {run.path.name}", sections))
    return path
