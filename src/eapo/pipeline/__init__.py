"""The work of eapo's commands as library functions with typed inputs and a result object; the command line
(`eapo.cli`) parses options and calls these.

    from eapo.pipeline import train, train_options

    config, run = train_options(method="grpo", max_steps=50)   # EAPOConfig, RunArguments (the world's defaults)
    result = train(config, run)                                # TrainResult: run_dir, before, after, failed, ...

`eapo.pipeline.training` (`eapo train`), `eapo.pipeline.options` (the run's typed options, resolved and checked in
one place), `eapo.pipeline.checks` (model and run folders, before anything loads), `eapo.pipeline.warmstart`
(`eapo warmstart`).
"""

from __future__ import annotations

from eapo.lazy import lazy_exports

# public name -> module that defines it; loaded on first use (PEP 562), so that `eapo --help`, which imports
# eapo.pipeline.checks, imports neither torch nor TRL
_EXPORTS = {
    **dict.fromkeys(("RunArguments", "resolve_options", "train_options"), "eapo.pipeline.options"),
    **dict.fromkeys(("Interrupted", "TrainResult", "train"), "eapo.pipeline.training"),
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
