"""The output-path checks every command makes at its start (`eapo.pipeline.checks`), before any work."""

from __future__ import annotations

import pytest

from eapo.errors import InputError
from eapo.pipeline.checks import check_output_file, check_output_folder


def test_an_output_file_is_checked_before_the_work(tmp_path):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "folder").mkdir()
    assert check_output_file(None, "output") is None
    assert check_output_file(tmp_path / "new" / "deeper" / "out.json", "output") == tmp_path / "new/deeper/out.json"
    assert check_output_file(tmp_path / "afile", "output") == tmp_path / "afile"  # an existing file is replaced
    for path, message in [
        ("", "--output '': give a file name"),
        (tmp_path / "folder", "is a folder: give a file name"),
        (tmp_path / "afile" / "out.json", f"its parent {str(tmp_path / 'afile')!r} is a file"),
        (tmp_path / "afile" / "sub" / "out.json", f"its parent {str(tmp_path / 'afile')!r} is a file"),
    ]:
        with pytest.raises(InputError, match="^--output ") as err:
            check_output_file(path, "output")
        assert message in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "folder"]  # nothing made


def test_an_output_folder_is_checked_before_the_work(tmp_path):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert check_output_folder(tmp_path / "new", "output_dir", empty=True) == tmp_path / "new"
    assert check_output_folder(tmp_path / "full", "output_dir") == tmp_path / "full"
    for path, empty, message in [
        ("", False, "--output_dir '': give a folder"),
        (tmp_path / "afile", False, "is a file, not a folder"),
        (tmp_path / "afile" / "sub", False, "is a file; give another folder"),
        (tmp_path / "full", True, "is not empty: give a new or empty folder"),
    ]:
        with pytest.raises(InputError) as err:
            check_output_folder(path, "output_dir", empty=empty)
        assert message in str(err.value) and str(err.value).startswith("--output_dir ")
    assert not (tmp_path / "new").exists()
