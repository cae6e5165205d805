"""`eapo report`: the pure parts (colours, escaping, reading a run folder), the degraded reports, and the
full report opened in headless Chromium (no console error, figures loaded, token view, no network)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from eapo.analysis.report import entropy_scale, write_report
from eapo.analysis.report.figures import smooth
from eapo.analysis.report.html import entropy_color, text_color, token_span
from eapo.analysis.report.runfolder import eval_points, heldout_points, series
from eapo.analysis.report.tokens import SampledCompletion, pick_groups, sample_token_view
from eapo.io import read_jsonl_counted as read_jsonl
from eapo.tasks.rewards import verify_countdown
from eapo.world import BASE_MODEL_DIR, load_base
from eapo.world.problems import tiny_world_split

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
QUADRANTS = ("PHR", "PLR", "NLR", "NHR")
CONFIG = {"method": "eapo", "seed": 0, "num_generations": 8, "temperature": 1.0, "max_completion_length": 24}
PROBLEMS, SHOW = 6, 3


def _metric_line(step: int) -> dict:
    """A metrics.jsonl line with the keys the trainer logs; shares sum to 1, values move with the step."""
    share = {"PHR": 0.1, "PLR": 0.2 + 0.01 * step, "NLR": 0.5 - 0.01 * step, "NHR": 0.15, "NONE": 0.05}
    line = {"step": step, "loss": 0.01, "reward": 0.3 + 0.01 * step, "entropy/sampling_mean": 0.2 - 0.002 * step}
    for q in QUADRANTS:
        line |= {f"quadrant/{q}/token_share": share[q], f"quadrant/{q}/entropy_mean": 0.7 if q[1] == "H" else 0.01,
                 f"quadrant/{q}/abs_adv_mean": 1.0, f"quadrant/{q}/grad_share": 0.25}  # fmt: skip
    return line | {"quadrant/NONE/token_share": share["NONE"]}


def _write_run(path: Path, steps: int = 20, model: bool = True) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(CONFIG))
    (path / "metrics.jsonl").write_text("".join(json.dumps(_metric_line(s)) + "\n" for s in range(1, steps + 1)))
    heldout = [{"step": s, "k": 8, "avg@8": 0.29 + s / 200, "pass@8": 0.7 + s / 400} for s in (0, 10, 20)]
    (path / "heldout.jsonl").write_text("".join(json.dumps(h) + "\n" for h in heldout))
    if model:
        shutil.copytree(BASE_MODEL_DIR, path / "model")
    return path


# ----- pure parts -------------------------------------------------------------------------------------


def test_entropy_color_scale_ends_clipping_and_scaling():
    assert entropy_color(0.0, 1.0) == "#f7fbff"  # Blues at 0
    assert entropy_color(1.0, 1.0) == "#08306b"  # Blues at 1
    assert entropy_color(7.5, 1.0) == "#08306b" and entropy_color(-1.0, 1.0) == "#f7fbff"  # clipped
    assert entropy_color(0.5, 2.0) == entropy_color(0.25, 1.0) != entropy_color(0.5, 1.0)  # scaled by vmax
    darkness = [sum(int(entropy_color(h / 10, 1.0)[i : i + 2], 16) for i in (1, 3, 5)) for h in range(11)]
    assert darkness == sorted(darkness, reverse=True) and darkness[0] > darkness[-1]


def test_text_color_contrasts_with_the_background():
    assert text_color("#ffffff") == "#000000" and text_color("#f7fbff") == "#000000"
    assert text_color("#08306b") == "#ffffff" and text_color("#000000") == "#ffffff"
    assert text_color("#777777") == "#000000" and text_color("#707070") == "#ffffff"  # luminance 0.184 / 0.162


class _Spans(HTMLParser):
    def __init__(self):
        super().__init__()
        self.spans: list[tuple[dict, str]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "span":
            self.spans.append((dict(attrs), ""))

    def handle_data(self, data):
        if self.spans:
            self.spans[-1] = (self.spans[-1][0], self.spans[-1][1] + data)


def test_token_span_escapes_markup_and_carries_the_numbers():
    raw = token_span('<b a="x">&', 0.95, 0.25, "NHR", vmax=1.0, special=True)
    assert "<b " not in raw and 'a="x"' not in raw
    parser = _Spans()
    parser.feed(raw)
    ((attrs, text),) = parser.spans
    assert text == '<b\u00b7a="x">&'  # shown literally, its space made visible (a middle dot)
    assert attrs["class"] == "tok q-NHR special"
    assert attrs["title"] == "token '<b a=\"x\">&' | H = 0.950 nats | p = 0.250 | quadrant NHR"
    assert attrs["style"] == f"background:{entropy_color(0.95, 1.0)};color:#ffffff"
    assert float(attrs["data-entropy"]) == 0.95


def test_entropy_scale_is_the_nearest_rank_99th_percentile_rounded_up():
    assert entropy_scale([0.23] * 990 + [5.0] * 10) == pytest.approx(0.3)
    assert entropy_scale([0.23] * 989 + [5.0] * 11) == pytest.approx(5.0)
    assert entropy_scale([0.0] * 50) == pytest.approx(0.1) and entropy_scale([]) == 1.0
    assert entropy_scale([1.2] * 10) == pytest.approx(1.2)


def test_smooth_is_a_trailing_mean():
    assert smooth([1.0, 2.0, 3.0, 4.0], 2) == [1.0, 1.5, 2.5, 3.5]
    assert smooth([1.0, 5.0], 0) == [1.0, 5.0]


def test_read_jsonl_skips_blank_and_truncated_lines_and_series_skips_missing_values(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"step": 1, "reward": 0.5}\n\n{"step": 2}\n{"step": 3, "reward": NaN}\n[1]\n{"step": 4, "rew')
    rows, bad = read_jsonl(path)
    assert [r["step"] for r in rows] == [1, 2, 3] and bad == 2
    assert series(rows + [{"step": 5, "reward": True}, {"step": 6, "reward": 1}], "reward") == ([1, 6], [0.5, 1.0])
    quadrant = [{"step": 1, "h": 0.7, "share": 0.2}, {"step": 2, "h": 0.0, "share": 0.0}, {"step": 3, "h": 0.5}]
    assert series(quadrant, "h", present="share") == ([1, 3], [0.7, 0.5])  # step 2 had none of its tokens
    assert series(quadrant, "h") == ([1, 2, 3], [0.7, 0.0, 0.5])


def test_heldout_points_follow_k_and_sort_by_step():
    rows = [{"step": 20, "k": 4, "avg@4": 0.5, "pass@4": 0.9, "avg@8": 0.0},
            {"step": 0, "k": 4, "avg@4": 0.25, "pass@4": 0.75}, {"step": 5, "k": 4, "avg@8": 0.1}]  # fmt: skip
    assert heldout_points(rows) == [
        {"step": 0, "k": 4, "avg": 0.25, "pass": 0.75},
        {"step": 20, "k": 4, "avg": 0.5, "pass": 0.9},
    ]


def test_eval_points_use_pass_at_k_not_pass_at_1():
    summary = {"before": {"avg@8": 0.29, "pass@1": 0.29, "pass@2": 0.4, "pass@8": 0.71},
               "after": {"avg@8": 0.42, "pass@1": 0.42, "pass@2": 0.5, "pass@8": 0.72}, "steps": 600}  # fmt: skip
    assert eval_points(summary) == [
        {"step": 0, "k": 8, "avg": 0.29, "pass": 0.71},
        {"step": 600, "k": 8, "avg": 0.42, "pass": 0.72},
    ]


def _sample(group: int, reward: float) -> SampledCompletion:
    return SampledCompletion(group, "p", "t", ["t"], [0.1], [0.9], ["NONE"], reward, 0.0)


def test_pick_groups_puts_mixed_groups_first():
    rewards = {0: [0, 0], 1: [1, 1], 2: [0, 1], 3: [0, 0], 4: [1, 0]}
    samples = [_sample(g, r) for g, rs in rewards.items() for r in rs]
    assert pick_groups(samples, 3) == [2, 4, 0]
    assert pick_groups(samples, 10) == [2, 4, 0, 1, 3]


# ----- run folders -------------------------------------------------------------------------------------


def test_not_a_run_folder_is_a_one_line_error(tmp_path, capsys):
    from tiny import cli_error

    assert re.search(r"is not an eapo run folder .* pass the output_dir", cli_error(["report", str(tmp_path)], capsys))
    (tmp_path / "file.txt").write_text("x")
    assert "is not a directory" in cli_error(["report", str(tmp_path / "file.txt")], capsys)


DAMAGED = {
    "metrics not utf-8": ("metrics.jsonl", b'{"step": 1}\n\xff\xfe\n', "metrics.jsonl: not UTF-8 text"),
    "heldout not utf-8": ("heldout.jsonl", b"\xff\xfe\n", "heldout.jsonl: not UTF-8 text"),
    "step a string": ("metrics.jsonl", b'{"step": 1}\n{"step": "abc"}\n',
                      "metrics.jsonl: record 2 has 'step' 'abc', not an integer >= 0"),
    "step infinite": ("metrics.jsonl", b'{"step": Infinity}\n', "metrics.jsonl: record 1 has 'step' inf, not an"),
    "a score a string": ("eval.json", b'{"before": {"avg@8": "x"}, "after": {}}',
                         "eval.json: 'before' must be a mapping of metric: number ('avg@8' is 'x')"),
    "before a list": ("eval.json", b'{"before": [1, 2], "after": {}}',
                      "eval.json: 'before' must be a mapping of metric: number, not list"),
    "steps a string": ("eval.json", b'{"before": {"avg@8": 0.1}, "after": {"avg@8": 0.2}, "steps": "abc"}',
                       "eval.json: 'steps' must be an integer >= 0, not 'abc'"),
    "temperature a string": ("config.json", b'{"temperature": "hot"}',
                             "config.json: 'temperature' must be a finite number > 0, not 'hot'"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_a_damaged_run_file_is_one_line_naming_it_and_nothing_is_written(case, tmp_path, capsys):
    """Each was a traceback that left an empty RUN_DIR/report/ behind."""
    from tiny import cli_error

    name, content, expected = DAMAGED[case]
    run_dir = _write_run(tmp_path / "run", model=False)
    (run_dir / name).write_bytes(content)
    before = sorted(p.name for p in run_dir.iterdir())
    message = cli_error(["report", str(run_dir)], capsys)
    assert message.startswith(f"eapo report: {run_dir / name}: ") and expected in message, message
    assert message.endswith("restore the file from the run or delete it (the report skips it)") or "UTF-8" in message
    assert sorted(p.name for p in run_dir.iterdir()) == before


def test_a_run_whose_before_evaluation_was_off_still_reports(tmp_path):
    """eval.json's `before` is null when the run did not evaluate its start: the report read it as a mapping."""
    run_dir = _write_run(tmp_path / "run", model=False)
    (run_dir / "heldout.jsonl").unlink()
    (run_dir / "eval.json").write_text(json.dumps({"before": None, "after": {"avg@8": 0.4}, "steps": 20}))
    page = write_report(run_dir, progress=False).read_text()
    assert "0.400" in page


def test_metrics_without_model_gives_a_report_that_says_so(tmp_path):
    run_dir = _write_run(tmp_path / "run", model=False)
    (run_dir / "heldout.jsonl").unlink()
    (run_dir / "eval.json").write_text(json.dumps({"before": {"avg@8": 0.3, "pass@8": 0.7},
                                                   "after": {"avg@8": 0.4, "pass@8": 0.75}, "steps": 20}))  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "eapo", "report", str(run_dir)], capture_output=True, text=True,
                          env=env, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = (run_dir / "report.html").read_text()
    assert "no model/ or checkpoint-*/ folder" in page and "No token view" in page
    assert 'class="tok q-' not in page.split("Token view", 1)[1]
    assert page.count('<img class="figure"') == 3
    assert sorted(p.name for p in (run_dir / "report").iterdir()) == [
        "entropy.png",
        "quadrants.png",
        "reward_accuracy.png",
    ]
    assert "0.300 -&gt; 0.400" in page and "eval.json (before/after)" in page


def test_run_table_numbers_say_what_they_were_computed_on_and_agree_with_eval_json(tmp_path):
    """The before/after row is eval.json's (the summary's numbers, its problems x samples); the periodic curve
    from heldout.jsonl is a separate row naming its own size (it used to stand in for the final numbers)."""
    from eapo.analysis.report import _summary_rows
    from eapo.analysis.report.runfolder import read_run_folder

    run_dir = _write_run(tmp_path / "run", model=False)
    summary = {"problems": 200, "k": 8, "before": {"avg@8": 0.287, "pass@8": 0.7},
               "after": {"avg@8": 0.424, "pass@8": 0.75}, "steps": 20}  # fmt: skip
    (run_dir / "eval.json").write_text(json.dumps(summary))
    rows = dict(_summary_rows(read_run_folder(run_dir)))
    assert rows["held-out avg@8 (200 problems x 8 samples; eval.json)"] == "0.287 -> 0.424"
    assert rows["held-out pass@8 (200 problems x 8 samples; eval.json)"] == "0.700 -> 0.750"
    curve = [key for key in rows if key.startswith("held-out curve avg@")]
    assert len(curve) == 1 and "heldout.jsonl" in curve[0] and "problems x" in curve[0]
    assert not any("format" in key for key in rows)  # a task that reads no answers has no format rows


def test_run_table_shows_the_three_numbers_of_a_task_that_reads_answers(tmp_path):
    """Format rate and accuracy among well-formatted completions stand beside avg@k, before -> after, from
    eval.json; an accuracy among none formatted (None) is `-`."""
    from eapo.analysis.report import _summary_rows
    from eapo.analysis.report.runfolder import read_run_folder

    run_dir = _write_run(tmp_path / "run", model=False)
    before = {"avg@4": 0.189, "pass@4": 0.55, "format_rate": 0.0, "accuracy": 0.189, "accuracy_formatted": None}
    after = {"avg@4": 0.31, "pass@4": 0.6, "format_rate": 0.9, "accuracy": 0.31, "accuracy_formatted": 0.344}
    summary = {"problems": 200, "k": 4, "before": before, "after": after, "steps": 20}
    (run_dir / "eval.json").write_text(json.dumps(summary))
    rows = dict(_summary_rows(read_run_folder(run_dir)))
    size = "(200 problems x 4 samples; eval.json)"
    assert rows[f"held-out format rate (an answer was read) {size}"] == "0.000 -> 0.900"
    assert rows[f"held-out accuracy among well-formatted {size}"] == "- -> 0.344"
    assert rows[f"held-out avg@4 {size}"] == "0.189 -> 0.310"


def test_empty_metrics_gives_a_report_that_says_so(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text("")
    page = write_report(run_dir, progress=False).read_text()
    assert "metrics.jsonl is empty" in page and "no config.json" in page and "no held-out accuracy" in page
    assert "No figures." in page and "<img" not in page


# ----- the full report in a browser --------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    run_dir = _write_run(tmp_path_factory.mktemp("report") / "run")
    return write_report(run_dir, problems=PROBLEMS, show=SHOW, seed=0, progress=False)


def _render(path: Path) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        messages, requests = [], []
        page.on("console", lambda m: messages.append((m.type, m.text)))
        page.on("pageerror", lambda e: messages.append(("error", str(e))))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        images = page.eval_on_selector_all(
            "img.figure", "els => els.map(e => [e.complete, e.naturalWidth, e.src.slice(0, 22)])"
        )
        rows = page.eval_on_selector_all(
            ".group",
            """gs => gs.map(g => [g.querySelector('h3').textContent, [...g.querySelectorAll('.completion')].map(c =>
                 [c.dataset.reward, [...c.querySelectorAll('.tok')].map(t =>
                   [t.textContent, t.className, parseFloat(t.dataset.entropy)])])])""",
        )
        resources = page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
        browser.close()
    return {"messages": messages, "requests": requests, "images": images, "groups": rows, "resources": resources}


def _expected_labels(group: list) -> list[list[str]]:
    """Slow reference of the quadrant rule: sign(r - mean r) and H >= mean H over the group's tokens."""
    rewards = [float(r) for r, _ in group]
    entropies = [h for _, toks in group for _, _, h in toks]
    mean_r, mean_h = sum(rewards) / len(rewards), sum(entropies) / len(entropies)
    out = []
    for (_, toks), r in zip(group, rewards, strict=True):
        if r == mean_r:
            out.append(["NONE"] * len(toks))
        else:
            pol = "P" if r > mean_r else "N"
            out.append([pol + ("HR" if h >= mean_h else "LR") for _, _, h in toks])
    return out


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (CI installs it)")
def test_report_renders_in_chromium_with_figures_and_token_view(full_report):
    got = _render(full_report)
    assert [m for m in got["messages"] if m[0] in ("error", "warning")] == []
    assert got["requests"] == [full_report.as_uri()] and got["resources"] == []  # nothing else is fetched
    assert len(got["images"]) == 4  # reward/accuracy, entropy, quadrants, entropy histogram
    assert all(done and width > 0 and src == "data:image/png;base64," for done, width, src in got["images"])
    assert "http" not in re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", full_report.read_text())

    # The same seed samples the same completions: the page shows exactly those tokens.
    model, tokenizer = load_base(full_report.parent / "model")
    problems = tiny_world_split()[1][:PROBLEMS]
    samples = sample_token_view(model, tokenizer, problems, group_size=8, seed=0)
    shown = pick_groups(samples, SHOW)
    assert len(got["groups"]) == SHOW
    spans = [t for _, rows in got["groups"] for _, toks in rows for t in toks]
    assert len(spans) == sum(len(s.tokens) for s in samples if s.group in shown)

    for (head, rows), g in zip(got["groups"], shown, strict=True):
        problem = problems[g]
        assert head.startswith(f"prompt {','.join(map(str, problem.numbers))}>{problem.target}:")
        assert len(rows) == 8
        for (reward, toks), labels in zip(rows, _expected_labels(rows), strict=True):
            text = "".join(t for t, cls, _ in toks if "special" not in cls)
            assert float(reward) == float(verify_countdown(text, problem.numbers, problem.target))
            assert [cls.split()[1] for _, cls, _ in toks] == [f"q-{q}" for q in labels]
            assert all(math.isfinite(h) and h >= 0 for _, _, h in toks)
    classes = {cls.split()[1] for _, cls, _ in spans}
    assert {"q-PHR", "q-NHR"} <= classes  # mixed groups come first, so both polarities are on show


@pytest.mark.slow
def test_eapo_train_writes_the_report_unless_told_not_to(tmp_path):
    from eapo.cli.train import parse_args, train

    flags = ["--max_steps", "2", "--per_device_train_batch_size", "16", "--num_generations", "4",
             "--eval_problems", "4", "--eval_k", "2", "--save_strategy", "no", "--disable_tqdm", "true"]  # fmt: skip
    summary = train(*parse_args([*flags, "--output_dir", str(tmp_path / "run")]))
    page = Path(summary["report"]).read_text()
    assert Path(summary["report"]) == tmp_path / "run" / "report.html"
    assert page.count('<img class="figure"') == 4 and page.count('class="completion"') == 4 * 4  # 4 prompts x G=4
    assert "Missing or skipped" not in page  # a finished run has everything the report needs
    _, run = parse_args([*flags, "--output_dir", str(tmp_path / "quiet"), "--report", "false"])
    assert run.report is False


def test_token_view_shows_bpe_tokens_readably():
    """A byte-level BPE tokenizer (as SmolLM2's, GPT-2 style): `Ġ`/`Ċ` markers become the space and newline they
    stand for, shown visibly in the HTML; a piece that is part of a multi-byte character shows its bytes."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    from eapo.analysis.report.html import visible_whitespace
    from eapo.analysis.report.tokens import readable_tokens

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(["The answer is 6.\nThe answer is 7."] * 20, vocab_size=300, min_frequency=1)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer)
    ids = tokenizer("The answer is 6.\n→", add_special_tokens=False)["input_ids"]
    raw = tokenizer.convert_ids_to_tokens(ids)
    shown = readable_tokens(tokenizer, ids)
    assert any("Ġ" in t for t in raw) and not any("Ġ" in t or "Ċ" in t for t in shown)
    assert "".join(t for t in shown if not t.startswith("<0x")) == "The answer is 6.\n"
    assert [t for t in shown if t.startswith("<0x")] == ["<0xE2>", "<0x86>", "<0x92>"]  # "→", an unseen character
    assert visible_whitespace(" answer") == "&middot;answer" and visible_whitespace(".\n") == ".&crarr;<br>"


def test_token_view_shows_sentencepiece_pieces_readably():
    """A SentencePiece tokenizer with byte fallback (as Gemma's): `▁` is a space, also where decoding one piece
    alone drops it (the Metaspace decoder strips a leading space); a byte-fallback piece of a character outside
    the vocabulary shows as its byte `<0xF0>`, not as a replacement character or as the escaped characters of
    its name; an ASCII byte piece decodes as itself."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from eapo.analysis.report.tokens import readable_tokens

    pieces = ["<unk>", "\u2581", "\u2581The", "\u2581answer", "\u2581is", "6", ".", "\n", "\u2581\u2581"]
    pieces += [f"<0x{b:02X}>" for b in range(256)]
    vocab = {piece: i for i, piece in enumerate(pieces)}
    core = Tokenizer(models.Unigram([(p, -1.0) for p in pieces], unk_id=0, byte_fallback=True))
    core.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    core.decoder = decoders.Sequence(
        [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>")
    text = "The answer is 6.\n\U0001FAE8\x07"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    raw = tokenizer.convert_ids_to_tokens(ids)
    assert raw[:3] == ["\u2581The", "\u2581answer", "\u2581is"] and "<0xF0>" in raw  # really SentencePiece
    assert tokenizer.decode([vocab["\u2581answer"]]) == "answer"  # the leading space lost when decoded alone
    shown = readable_tokens(tokenizer, ids)
    assert shown == [" The", " answer", " is", " ", "6", ".", "\n", "<0xF0>", "<0x9F>", "<0xAB>", "<0xA8>", "\x07"]


def test_token_view_of_the_cached_gemma3_tokenizer_is_readable():
    """The real 262,144-piece Gemma-3 tokenizer, when `eapo model gemma3-270m` has cached it."""
    from transformers import AutoTokenizer

    from eapo.analysis.report.tokens import readable_tokens
    from eapo.models.gguf import GEMMA3_NAME, cache_root, is_converted

    folder = cache_root() / "models" / GEMMA3_NAME
    if not is_converted(folder):
        pytest.skip("Gemma-3-270m not cached here: run `eapo model gemma3-270m` first")
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    text = " 3 + 4 = 7.\nAnswer: 7 \u2713  two a\U000F0000b"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    shown = readable_tokens(tokenizer, ids)
    assert "".join(shown) == text.replace("\U000F0000", "<0xF3><0xB0><0x80><0x80>")
    assert "\ufffd" not in "".join(shown) and len(tokenizer) >= 262_144


def test_token_view_samples_without_autograd_and_with_the_trainers_numbers():
    """The token view's forward runs without a graph (with one, SmolLM2's report held about 18 GB: every
    prompt's activations stayed alive) and gives each token's entropy and probability of the tempered
    distribution, as a float64 forward does."""
    import torch

    from eapo.analysis.report.tokens import _sample_group
    from tiny import forward_reference, tiny_model, tiny_tokenizer

    tokenizer = tiny_tokenizer()
    model = tiny_model(len(tokenizer), seed=3)
    torch.manual_seed(0)
    ids, mask, entropy, logps = _sample_group(model, tokenizer, "12+7=", 4, 0.7, 8)
    assert torch.is_grad_enabled()  # the decorator restored it
    for t in (entropy, logps):
        assert not t.requires_grad and t.grad_fn is None and t.shape == ids.shape == mask.shape
    prompt = tokenizer(["12+7="] * 4, return_tensors="pt")["input_ids"]
    ones = torch.ones_like  # no padding anywhere: one prompt, every completion position attended
    ref_entropy, ref_logps = forward_reference(model, prompt, ones(prompt), ids, ones(ids), 0.7)
    torch.testing.assert_close(entropy, ref_entropy.float(), atol=1e-5, rtol=0)
    torch.testing.assert_close(logps, ref_logps.float(), atol=1e-5, rtol=0)


def test_the_token_view_of_a_lora_run_loads_its_adapter(tmp_path, monkeypatch):
    """A LoRA run's `model/` holds only the adapter. Before: the report looked for `model/config.json` and loaded with
    the tiny world's own loader, so it had no token view; it now loads as train and eval do (`load_policy`)."""
    pytest.importorskip("peft")
    pytest.importorskip("matplotlib")
    from eapo.cli.train import main as train_main
    from tiny import ascii_model_dir, tiny_run

    out = tmp_path / "run"
    (tmp_path / "lora_rewards.py").write_text(
        "def starts_with_digit(completions, **kwargs):\n    return [float(c[:1].isdigit()) for c in completions]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    flags = ["--task", "rg:basic_arithmetic", "--system_prompt", "none", "--reward", "lora_rewards:starts_with_digit",
             "--use_peft", "true", "--lora_r", "4", "--lora_target_modules", "q_proj", "v_proj",
             "--max_completion_length", "2", "--dynamic_sampling", "false", "--report_problems", "2"]  # fmt: skip
    assert train_main(tiny_run(ascii_model_dir(tmp_path / "base"), out, *flags)) == 0
    assert (out / "model" / "adapter_config.json").exists() and not (out / "model" / "config.json").exists()
    page = (out / "report.html").read_text()
    assert "No token view" not in page and "could not be loaded" not in page
    assert "Hover a token for its entropy" in page and 'class="completion"' in page
