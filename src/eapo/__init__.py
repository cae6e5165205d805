"""eapo: token-level entropy credit for RLVR.

The public API: the pure token-level functions (`eapo.core`), the method registry, the evaluation metrics and
the TRL trainer subclass. Names load on first use (PEP 562), so `import eapo` and the `eapo` command start
without importing torch or TRL.
"""

from __future__ import annotations

from eapo.lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    **dict.fromkeys(
        (
            "Quadrant",
            "eapo_advantages",
            "entroadv_advantages",
            "forking_mask",
            "group_entropy_stats",
            "quadrant_labels",
            "quadrant_mask",
            "quadrant_statistics",
            "token_entropy",
            "w_reinforce_advantages",
        ),
        "eapo.core",
    ),
    **dict.fromkeys(
        (
            "METHODS",
            "MethodOption",
            "RolloutBatch",
            "TokenUpdate",
            "get_method",
            "register_method",
            "unregister_method",
        ),
        "eapo.core.methods",
    ),
    **dict.fromkeys(("maj_at_k", "pass_at_k"), "eapo.evaluation.metrics"),
    **dict.fromkeys(("EAPOConfig", "EAPOTrainer"), "eapo.trainer"),
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
