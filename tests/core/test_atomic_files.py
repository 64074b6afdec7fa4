"""The one atomic writer: a file is replaced whole or not at all, and no temporary file is left behind."""

import json
import os
import stat

import pytest

from training.core import atomic_files


def leftovers(folder):
    return [name for name in os.listdir(folder) if name.startswith(atomic_files.TEMP_PREFIX)]


def test_text_bytes_and_json_land_whole(tmp_path):
    text = atomic_files.write_text(str(tmp_path / "a.md"), "héllo\n")
    data = atomic_files.write_bytes(str(tmp_path / "b.bin"), b"\x00\x01")
    doc = atomic_files.write_json(str(tmp_path / "c.json"), {"x": [1, 2]})
    assert open(text, encoding="utf-8").read() == "héllo\n"
    assert open(data, "rb").read() == b"\x00\x01"
    assert open(doc).read() == json.dumps({"x": [1, 2]}, indent=2) + "\n"
    assert leftovers(tmp_path) == []


def test_a_rewrite_replaces_the_old_content(tmp_path):
    path = str(tmp_path / "r.txt")
    atomic_files.write_text(path, "old, and longer than the new text\n")
    atomic_files.write_text(path, "new\n")
    assert open(path).read() == "new\n"


def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = str(tmp_path / "results.json")
    atomic_files.write_json(path, {"run": 1})
    with pytest.raises(KeyboardInterrupt):
        with atomic_files.replacing(path) as temp:
            with open(temp, "w") as handle:
                handle.write('{"run": 2, "half')
            raise KeyboardInterrupt
    assert json.load(open(path)) == {"run": 1}
    assert leftovers(tmp_path) == []


def test_a_document_that_cannot_be_serialized_changes_nothing(tmp_path):
    path = str(tmp_path / "doc.json")
    atomic_files.write_json(path, {"ok": True})
    with pytest.raises(TypeError):
        atomic_files.write_json(path, {"bad": object()})
    assert json.load(open(path)) == {"ok": True}
    assert leftovers(tmp_path) == []


def test_the_temporary_file_is_beside_the_target_and_keeps_its_extension(tmp_path):
    # savefig picks the image format from the name, and a rename is atomic only within one filesystem.
    with atomic_files.replacing(str(tmp_path / "plot.png")) as temp:
        assert os.path.dirname(temp) == str(tmp_path) and temp.endswith(".png")
        open(temp, "wb").write(b"png")
    assert (tmp_path / "plot.png").read_bytes() == b"png"


def test_files_get_the_usual_mode_not_a_private_one(tmp_path):
    mask = os.umask(0o022)
    try:
        path = atomic_files.write_text(str(tmp_path / "README.md"), "x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_a_missing_folder_is_an_error_not_a_silent_write_elsewhere(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_files.write_text(str(tmp_path / "no" / "such.txt"), "x")
