"""Names that load on first use (PEP 562), for a package whose `__init__` would otherwise import torch or TRL:

    _EXPORTS = {"EAPOTrainer": "eapo.trainer.trainer"}       # public name -> module that defines it
    __all__ = sorted(_EXPORTS)
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

The bottom layer (like `eapo.errors`): it imports no eapo module.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level `__getattr__` and `__dir__` of `package`: `__getattr__(name)` imports `exports[name]` and
    returns its `name`, kept in the package's namespace so later lookups skip it; any other name is an
    AttributeError as for a plain module."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
