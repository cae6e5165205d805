"""The warm start is deterministic for a seed and writes a loadable safetensors checkpoint."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from eapo.pipeline.warmstart import sft_dataset, warmstart
from eapo.world import load_base
from eapo.world.problems import tiny_world_split


@pytest.mark.slow
def test_warmstart_is_deterministic_and_loadable(tmp_path):
    kwargs = dict(seed=0, target_pass1=1.0, max_steps=4, eval_every=2, eval_problems=8, final_eval_problems=8)
    runs = [warmstart(tmp_path / name, **kwargs) for name in ("a", "b")]
    assert runs[0] == runs[1] and runs[0]["steps"] == 4 and len(runs[0]["history"]) == 2
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    model, tokenizer = load_base(tmp_path / "a")
    assert tokenizer.decode(tokenizer("3*5=15,15+7=22")["input_ids"]) == "3*5=15,15+7=22"
    assert json.loads((tmp_path / "a" / "warmstart.json").read_text())["steps"] == 4


def test_sft_data_varies_solution_order_and_split_is_disjoint():
    train, heldout = tiny_world_split()
    assert not {(tuple(sorted(p.numbers)), p.target) for p in train} & {
        (tuple(sorted(p.numbers)), p.target) for p in heldout
    }
    data = sft_dataset(train[:50], per_problem=2, seed=0)
    by_prompt: dict[str, set[str]] = {}
    for row in data:
        by_prompt.setdefault(row["prompt"], set()).add(row["completion"])
    assert sum(len(v) == 2 for v in by_prompt.values()) > 25  # most problems appear in two different orders


def test_warmstart_refuses_a_file_or_a_non_empty_folder_before_building(tmp_path, monkeypatch):
    """It wrote its model into whatever folder it was given (a file there failed only after the model was built)."""
    import eapo.pipeline.warmstart as module
    from eapo.errors import InputError

    monkeypatch.setattr(module, "build_tokenizer", lambda: pytest.fail("built before the check"))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    (tmp_path / "file").write_text("x")
    for target, message in (("full", "is not empty: give a new or empty folder"), ("file", "is a file, not a folder")):
        with pytest.raises(InputError, match=message):
            warmstart(tmp_path / target, max_steps=1)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["file", "full", "keep.txt"]
