"""eapo.lazy: a package's names load on first use, once; unknown names fail as on a plain module."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_import_eapo_loads_no_torch_until_a_name_is_used():
    code = (
        "import sys, eapo, eapo.trainer, eapo.pipeline; before = 'torch' in sys.modules or 'trl' in sys.modules; "
        "names = 'EAPOTrainer' in dir(eapo) and 'train' in dir(eapo.pipeline); "
        "q = eapo.Quadrant; print(before, names, 'torch' in sys.modules, 'trl' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True", "True", "False"]  # the math needs torch, not TRL


def test_a_name_loads_once_into_the_package(monkeypatch):
    import types

    from eapo.lazy import lazy_exports

    package = types.ModuleType("fakepkg")
    monkeypatch.setitem(sys.modules, "fakepkg", package)
    getattr_, dir_ = lazy_exports("fakepkg", {"sqrt": "math"})
    import math

    assert getattr_("sqrt") is math.sqrt and package.sqrt is math.sqrt  # kept: later lookups skip getattr_
    assert "sqrt" in dir_()
    with pytest.raises(AttributeError, match="module 'fakepkg' has no attribute 'cos'"):
        getattr_("cos")
