"""The package's layers point down only: no module imports a package above its own, at module level or inside a
function (a lazy import is still a dependency). The order, bottom to top, and why:

    eapo.lazy              names that load on first use (each package's `__init__`); it imports nothing of eapo
    eapo.errors, eapo.io   the library's errors and shared file I/O: every layer may use them; they import nothing
    core                   the token-level math and the method registry (tensors in, tensors out)
    tasks                  verifiable tasks and their rewards (the tiny world's problem split included)
    world                  the shipped tiny-world policy: its files, tokenizer and model builders
    models                 loading model folders (any model; the shipped policy by default), LoRA, GGUF
    trainer                EAPOConfig and EAPOTrainer (TRL integration), checkpoints, callbacks
    evaluation             held-out accuracy, pass@k, sampling (vLLM included), benchmark suites, statistics
    analysis               token credit by branching rollouts, the HTML run report
    pipeline               the work of a command as a library function (`eapo.pipeline.train`, the warm start)
    cli                    one module per command: parse options, call the library, map its errors to exit 2
    eapo.__main__          `python -m eapo`

`eapo` itself (`eapo/__init__.py`) imports only `eapo.lazy` at module level (its names load on first use), so any layer
may read `eapo.__version__`. The same order is written down in docs/method.md section 11.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "eapo"
LAYERS = [
    {"lazy"},
    {"eapo", "errors", "io"},
    {"core"},
    {"tasks"},
    {"world"},
    {"models"},
    {"trainer"},
    {"evaluation"},
    {"analysis"},
    {"pipeline"},
    {"cli"},
    {"__main__"},
]
LEVEL = {part: i for i, layer in enumerate(LAYERS) for part in layer}


def part_of(module: str) -> str:
    """The layer part of a dotted eapo module name: `eapo.trainer.config` -> `trainer`, `eapo` -> `eapo`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "eapo"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def eapo_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of an eapo module in `path`, wherever it stands (functions included)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "eapo":  # `from eapo import x`: x may be a subpackage
                found += [(node.lineno, f"eapo.{a.name}" if a.name in LEVEL else "eapo") for a in node.names]
            else:
                found.append((node.lineno, target))
    return [(line, module) for line, module in found if module == "eapo" or module.startswith("eapo.")]


def upward_imports() -> list[str]:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = module_name(path)
        own = part_of(source) if source != "eapo" else "eapo"
        for line, target in eapo_imports(path):
            other = part_of(target)
            assert other in LEVEL, f"{target} ({path.name}:{line}) is in no layer: add its package to LAYERS"
            if other != own and LEVEL[other] >= LEVEL[own]:
                problems.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({own}) imports {target} ({other})")
    return problems


def test_every_package_is_in_a_layer():
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert packages | modules | {"eapo"} == set(LEVEL)


def test_layers_point_down_only():
    assert upward_imports() == []


@pytest.mark.parametrize(
    ("source", "line", "bad"),
    [
        ("from eapo.cli.validate import ValidationError\n", "models", True),
        ("def f():\n    from eapo.world import BASE_MODEL_DIR\n", "tasks", True),
        ("from eapo.io import read_jsonl\n", "trainer", False),
        ("from ..cli import main\n", "analysis", True),
    ],
)
def test_the_check_sees_every_kind_of_import(source, line, bad, tmp_path, monkeypatch):
    """The check itself: module-level, function-level and relative imports are all read."""
    root = tmp_path / "eapo"
    (root / line).mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / line / "__init__.py").write_text("")
    (root / line / "mod.py").write_text(source)
    monkeypatch.setitem(globals(), "PACKAGE", root)
    assert bool(upward_imports()) is bad
