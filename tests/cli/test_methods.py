"""`eapo methods` and what is generated from the method registry: `eapo train --help` (train_help.txt) and the methods
table of README.md and docs/method.md, all rewritten by `python scripts/generate_docs.py`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from eapo.cli import main
from eapo.cli.methods import methods_table
from eapo.core.methods import DAPO_LOSS, METHODS, TokenUpdate, register_method, unregister_method
from eapo.core.options import MethodOption

ROOT = Path(__file__).parents[2]
_SPEC = importlib.util.spec_from_file_location("generate_docs", ROOT / "scripts" / "generate_docs.py")
generate_docs = sys.modules.setdefault("generate_docs", importlib.util.module_from_spec(_SPEC))
_SPEC.loader.exec_module(generate_docs)


def test_the_generated_help_and_methods_tables_are_current():
    stale = [str(path.relative_to(ROOT)) for path in generate_docs.stale_files()]
    assert not stale, f"stale: {', '.join(stale)}: run `python scripts/generate_docs.py`"
    for name in generate_docs.TABLE_FILES:
        assert "| `eapo` | `loss_type=\"dapo\"`" in (ROOT / name).read_text()


def test_the_table_has_a_row_per_option_of_every_method():
    table = methods_table()
    assert all(f"| `{name}` |" in table for name in METHODS)
    assert "| `eapo_alpha` | `0.2` | >= 0 |" in table and "| `forking_scope` | `\"batch\"` |" in table
    assert "Weight c of \\|log r\\|." in table  # a | in a cell is escaped


def test_a_registered_method_and_its_option_appear_in_the_table_and_eapo_methods(capsys):
    option = MethodOption("toy_coef", 0.5, ">= 0", "Toy coefficient.")
    register_method("toy", summary="Toy.", preset=DAPO_LOSS, options=(option,))(lambda b, a: TokenUpdate(b.mask))
    try:
        assert "| `toy` | `loss_type=\"dapo\"`, `epsilon=0.2`, `epsilon_high=0.28` | `toy_coef` | `0.5` | >= 0 |" in (
            methods_table()
        )
        assert generate_docs.stale_files()  # the docs now lack it
        assert main(["methods"]) == 0
        assert "--toy_coef 0.5 (>= 0): Toy coefficient." in capsys.readouterr().out
    finally:
        unregister_method("toy")
    assert main(["methods", "--markdown"]) == 0
    assert capsys.readouterr().out == methods_table()


def test_a_stale_file_is_rewritten_between_the_markers():
    text = "intro\n<!-- methods table -->\nold rows\n<!-- end of methods table -->\nafter\n"
    new = generate_docs.with_table(text, "| new |\n")
    assert new == "intro\n<!-- methods table -->\n| new |\n<!-- end of methods table -->\nafter\n"
