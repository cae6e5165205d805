"""The embedded tiny world: a character-level tokenizer and a small Qwen2 policy for the countdown task,
shipped with the package so that `eapo train` runs offline on a CPU."""

from eapo.world.build import BASE_MODEL_DIR, CHARS, build_model, build_tokenizer, load_base

__all__ = ["BASE_MODEL_DIR", "CHARS", "build_model", "build_tokenizer", "load_base"]
