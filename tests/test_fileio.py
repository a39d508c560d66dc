"""File boundaries (core/fileio.py): output modes, inputs that are not regular files, outputs that are inputs,
write checks that leave nothing behind, strict JSON."""

from __future__ import annotations

import json
import math
import os

import pytest

from core.errors import DatasetError, UserError
from core.fileio import (
    atomic_write_bytes, atomic_write_json, check_writable, check_writable_folder, input_file, json_text, refuse_overwrite, same_file,
)


@pytest.fixture
def umask():
    def set_mask(mask: int) -> None:
        os.umask(mask)

    old = os.umask(0o022)
    yield set_mask
    os.umask(old)


def test_atomic_writes_get_the_umask_mode_not_0600(tmp_path, umask):
    umask(0o022)
    atomic_write_bytes(tmp_path / "a.bin", b"x")
    assert os.stat(tmp_path / "a.bin").st_mode & 0o777 == 0o644
    umask(0o027)
    atomic_write_bytes(tmp_path / "b.bin", b"x")
    assert os.stat(tmp_path / "b.bin").st_mode & 0o777 == 0o640
    os.chmod(tmp_path / "a.bin", 0o600)  # a file replaced keeps its own mode, as open() would
    atomic_write_bytes(tmp_path / "a.bin", b"y")
    assert os.stat(tmp_path / "a.bin").st_mode & 0o777 == 0o600 and (tmp_path / "a.bin").read_bytes() == b"y"


def test_input_file_names_what_the_path_is(tmp_path):
    fifo = tmp_path / "clip.pkl"
    os.mkfifo(fifo)
    with pytest.raises(DatasetError, match=r"clip\.pkl: is a named pipe \(FIFO\), not a regular file"):
        input_file(fifo, error=DatasetError)  # returns at once: nothing opens the pipe
    (tmp_path / "link.pkl").symlink_to(tmp_path / "gone.pkl")
    with pytest.raises(UserError, match=r"link\.pkl: a symbolic link to .*gone\.pkl, which does not exist; fix the link"):
        input_file(tmp_path / "link.pkl")
    with pytest.raises(UserError, match="no such file; do this"):
        input_file(tmp_path / "none.pkl", fix="do this")
    with pytest.raises(UserError, match="is a folder"):
        input_file(tmp_path)
    (tmp_path / "ok.pkl").write_bytes(b"x")
    assert input_file(tmp_path / "ok.pkl") == tmp_path / "ok.pkl"


def test_outputs_that_are_inputs_are_refused_through_links(tmp_path):
    clip = tmp_path / "clip.mpg"
    clip.write_bytes(b"video")
    (tmp_path / "sym.mpg").symlink_to(clip)
    os.link(clip, tmp_path / "hard.mpg")
    for out in (clip, tmp_path / "sym.mpg", tmp_path / "hard.mpg", tmp_path / "." / "clip.mpg"):
        with pytest.raises(UserError, match="is one of this command's inputs"):
            refuse_overwrite(out, [clip], "-o")
        assert same_file(out, clip)
    refuse_overwrite(tmp_path / "new.pkl", [clip], "-o")
    assert clip.read_bytes() == b"video"


def test_write_checks_fail_early_and_leave_nothing(tmp_path):
    (tmp_path / "file").write_text("a file")
    with pytest.raises(UserError, match=r"-o .*file/sub/out\.pkl: cannot write here \(.*file is not a folder\)"):
        check_writable(tmp_path / "file" / "sub" / "out.pkl", "-o")
    with pytest.raises(UserError, match="--out .*: is a file; pass a folder"):
        check_writable_folder(tmp_path / "file", "--out")
    with pytest.raises(UserError, match="cannot write here"):
        check_writable_folder(tmp_path / "file" / "run", "--out")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    check_writable(tmp_path / "new" / "deeper" / "out.pkl")  # fine, and creates no folder
    check_writable_folder(tmp_path / "runs" / "one")
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_json_has_no_nan_tokens(tmp_path):
    obj = {"loss": float("nan"), "r": [1.5, float("inf")], "n": 3}
    assert json.loads(json_text(obj)) == {"loss": None, "r": [1.5, None], "n": 3}
    atomic_write_json(tmp_path / "m.json", obj)
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text, parse_constant=lambda c: math.nan) == {"loss": None, "r": [1.5, None], "n": 3}
