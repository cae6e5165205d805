"""The report as one self-contained HTML page: inline CSS, figures as base64 `data:` URIs, no script.

Every piece of text from the run (tokens, prompts, completions, config values, notes) goes through
`html.escape`, so a completion containing markup shows as text.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eapo.analysis.report.tokens import SampledCompletion

ENTROPY_CMAP = "Blues"
_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1180px;color:#222;
 padding:0 16px}
h1{font-size:1.6em;margin-bottom:4px} h2{margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
table.kv{border-collapse:collapse;font-size:.92em} table.kv td,table.kv th{border:1px solid #ddd;padding:3px 8px;
 text-align:left}
.notes{background:#fff8e1;border:1px solid #f0d58c;padding:8px 14px;border-radius:6px}
figure{margin:16px 0} figure img{max-width:100%;border:1px solid #eee} figcaption{font-size:.9em;color:#555}
.legend{display:flex;gap:24px;align-items:center;flex-wrap:wrap;font-size:.9em;margin:8px 0 16px}
.scale{width:240px;height:14px;border:1px solid #999}
.group{margin:14px 0 20px} .group h3{font-size:1em;margin:4px 0;font-family:monospace}
.completion{display:flex;align-items:center;gap:10px;margin:3px 0;font-family:'DejaVu Sans Mono',monospace}
.reward{display:inline-block;min-width:78px;font-size:.85em;padding:1px 6px;border-radius:4px;text-align:center}
.reward.ok{background:#d7f5dd;color:#135c26} .reward.bad{background:#fde0e0;color:#8a1c1c}
.tok{display:inline-block;min-width:.7em;padding:1px 1px 0;margin:0 1px 0 0;text-align:center;
 border-bottom:3px solid transparent;line-height:1.5}
.tok.special{font-size:.7em}
.q-PHR{border-bottom:3px solid #1a7f37} .q-PLR{border-bottom:3px dotted #1a7f37}
.q-NLR{border-bottom:3px dotted #c62828} .q-NHR{border-bottom:3px solid #c62828}
"""


def entropy_color(entropy: float, vmax: float, cmap: str = ENTROPY_CMAP) -> str:
    """Hex colour of `entropy` on `cmap` scaled to `[0, vmax]` (values outside are clipped to the ends)."""
    import matplotlib
    from matplotlib.colors import to_hex

    t = min(max(entropy / vmax, 0.0), 1.0) if vmax > 0 else 0.0
    return to_hex(matplotlib.colormaps[cmap](t))


def text_color(background: str) -> str:
    """Black or white, whichever reads better on the hex colour `background` (WCAG relative luminance)."""
    channels = [int(background[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#000000" if luminance > 0.179 else "#ffffff"


def png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def token_span(token: str, entropy: float, prob: float, label: str, vmax: float, special: bool = False) -> str:
    """One token as a `<span>` coloured by entropy, classed by quadrant, with a tooltip."""
    background = entropy_color(entropy, vmax)
    title = f"token {token!r} | H = {entropy:.3f} nats | p = {prob:.3f} | quadrant {label}"
    classes = f"tok q-{label}" + (" special" if special else "")
    style = f"background:{background};color:{text_color(background)}"
    return (
        f'<span class="{classes}" style="{style}" data-entropy="{entropy:.6f}" '
        f'title="{html.escape(title)}">{visible_whitespace(token)}</span>'
    )


def visible_whitespace(token: str) -> str:
    """A token's text as HTML with its whitespace visible: a space as a middle dot, a tab as an arrow, a
    newline as a return sign followed by a line break."""
    return html.escape(token).replace(" ", "&middot;").replace("\t", "&rarr;").replace("\n", "&crarr;<br>")


def entropy_legend(vmax: float, stops: int = 11) -> str:
    """The colour scale (a CSS gradient from the same colour map) and the quadrant marks."""
    colors = ", ".join(entropy_color(vmax * i / (stops - 1), vmax) for i in range(stops))
    quadrants = " ".join(
        f'<span class="tok q-{q}">{q}</span> {html.escape(text)}'
        for q, text in (
            ("PHR", "A > 0, H >= group mean"),
            ("PLR", "A > 0, H < mean"),
            ("NLR", "A < 0, H < mean"),
            ("NHR", "A < 0, H >= mean"),
        )
    )
    return (
        f'<div class="legend"><span>entropy 0</span><div class="scale" style="background:linear-gradient(to right, '
        f'{colors})"></div><span>&ge; {vmax:.2f} nats</span><span>{quadrants}</span>'
        "<span>no underline: A = 0 (all completions of the prompt got the same reward)</span></div>"
    )


def completion_row(sample: SampledCompletion, vmax: float, special_tokens: set[str]) -> str:
    ok = sample.reward > 0
    spans = "".join(
        token_span(t, h, p, q, vmax, special=t in special_tokens)
        for t, h, p, q in zip(sample.tokens, sample.entropy, sample.prob, sample.labels, strict=True)
    )
    badge = f'<span class="reward {"ok" if ok else "bad"}" title="A = {sample.advantage:+.3f}">'
    badge += f"reward {sample.reward:g}</span>"
    return f'<div class="completion" data-reward="{sample.reward:g}">{badge}<span class="tokens">{spans}</span></div>'


def token_view(samples: Sequence[SampledCompletion], vmax: float, special_tokens: set[str]) -> str:
    """Groups of completions, one block per prompt."""
    groups: dict[int, list[SampledCompletion]] = {}
    for sample in samples:
        groups.setdefault(sample.group, []).append(sample)
    blocks = []
    for rows in groups.values():
        n_ok = sum(s.reward > 0 for s in rows)
        ent = [h for s in rows for h in s.entropy]
        mean = sum(ent) / max(len(ent), 1)
        head = f"prompt {html.escape(rows[0].prompt)} &mdash; {n_ok}/{len(rows)} correct, group mean H = {mean:.3f}"
        body = "".join(completion_row(s, vmax, special_tokens) for s in rows)
        blocks.append(f'<div class="group"><h3>{head}</h3>{body}</div>')
    return entropy_legend(vmax) + "".join(blocks)


def key_value_table(rows: Sequence[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f'<table class="kv">{cells}</table>'


def figure_html(path: Path, caption: str) -> str:
    alt = html.escape(caption, quote=True)
    return (
        f'<figure><img class="figure" src="{png_data_uri(path)}" alt="{alt}">'
        f"<figcaption>{html.escape(caption)} ({html.escape(path.name)})</figcaption></figure>"
    )


def page(title: str, sections: Sequence[tuple[str, str]]) -> str:
    """The whole document: `sections` are `(heading, inner html)`; a heading of '' adds the html as is."""
    body = "".join(f"<h2>{html.escape(h)}</h2>{inner}" if h else inner for h, inner in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )
