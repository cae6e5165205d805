"""Regenerate what is written from the method registry (`eapo.core.methods`): `eapo train --help`
(src/eapo/cli/train_help.txt) and the methods table in README.md and docs/method.md (between the markers
`<!-- methods table -->` and `<!-- end of methods table -->`).

Usage: python scripts/generate_docs.py           rewrite the stale files
       python scripts/generate_docs.py --check   list the stale files, exit 1 if there is one

It imports eapo from this checkout's src/ (not an installed copy). tests/cli/test_methods.py fails while a file
is stale.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

BEGIN, END = "<!-- methods table -->\n", "<!-- end of methods table -->\n"
TABLE_FILES = ("README.md", "docs/method.md")


def with_table(text: str, table: str) -> str:
    """`text` with the methods table between its markers replaced by `table`."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"no {BEGIN.strip()} ... {END.strip()} markers")
    return text[: start + len(BEGIN)] + table + text[end:]


def generated() -> dict[Path, str]:
    """Each generated file's path and the text it should have."""
    from eapo.cli.methods import methods_table
    from eapo.cli.train import HELP_FILE, render_help

    table = methods_table()
    out = {HELP_FILE: render_help()}
    for name in TABLE_FILES:
        out[ROOT / name] = with_table((ROOT / name).read_text(), table)
    return out


def stale_files() -> dict[Path, str]:
    """The generated files whose text differs from what the registry gives, with that text."""
    return {path: text for path, text in generated().items() if path.read_text() != text}


def main(argv: list[str]) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    check = "--check" in argv
    stale = stale_files()
    for path, text in stale.items():
        print(f"{'stale' if check else 'rewrote'}: {path.relative_to(ROOT)}")
        if not check:
            path.write_text(text)
    return 1 if stale and check else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
