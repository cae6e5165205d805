"""Every `eapo` subcommand's --help renders (argparse formats help strings with %, so a stray '%' breaks it)."""

from __future__ import annotations

import pytest

from eapo.cli import build_parser, main

SUBCOMMANDS = ["methods", "warmstart", "eval", "compare", "report", "evalsuite", "credit", "ablate", "version"]


def test_top_level_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    registered = set(build_parser()._subparsers._group_actions[0].choices)  # noqa: SLF001
    for name in registered:
        assert name in out


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_subcommand_help_renders(name, capsys):
    if name not in build_parser()._subparsers._group_actions[0].choices:  # noqa: SLF001
        pytest.skip(f"{name} is not registered in this build")
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert "usage: eapo" in capsys.readouterr().out


def test_train_help_renders(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--method" in out and "--quadrants" in out
