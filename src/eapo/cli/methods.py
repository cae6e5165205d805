"""`eapo methods`: the registered training methods with their GRPOConfig presets and their options.

`--markdown` prints the methods table of README.md and docs/method.md (`methods_table`), which
`scripts/generate_docs.py` writes there.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--markdown", action="store_true", help="print the methods table of the docs (Markdown)")


def run(args: argparse.Namespace) -> int:
    from eapo.core.methods import METHODS

    if args.markdown:
        print(methods_table(), end="")
        return 0
    width = max(len(name) for name in METHODS)
    for name in sorted(METHODS):
        method = METHODS[name]
        preset = ", ".join(f"{k}={v}" for k, v in method.preset.items()) or "-"
        print(f"{name:<{width}}  {method.summary}")
        print(f"{'':<{width}}  preset: {preset}; dynamic sampling: {'on' if method.dynamic_sampling else 'off'}")
        for option in method.options:
            print(f"{'':<{width}}  --{option.name} {option.default!r} ({option.rule_text()}): {option.help}")
    return 0


def methods_table() -> str:
    """Every registered method (in registration order), its preset and its options (default, valid values,
    meaning) as one Markdown table: a row per option, the method and its preset on its first row."""
    from eapo.core.methods import METHODS

    rows = ["| method | preset | option | default | valid values | meaning |", "|---|---|---|---|---|---|"]
    for method in METHODS.values():
        preset = ", ".join(f"`{k}={_literal(v)}`" for k, v in method.preset.items())
        if method.dynamic_sampling:
            preset += ", dynamic sampling"
        cells = [f"`{method.name}`", preset]
        for option in method.options or (None,):
            if option is not None:
                cells += [f"`{option.name}`", f"`{_literal(option.default)}`", option.rule_text(), option.help]
            rows.append(_row(cells + [""] * (6 - len(cells))))
            cells = ["", ""]
    return "\n".join(rows) + "\n"


def _literal(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
