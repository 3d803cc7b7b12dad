"""Output files respect the file system: regular files are replaced atomically with the user's
umask, anything else (a FIFO, a device, a symlink's target) is written where it is, orphaned
temporary files of killed writers are removed, and unwritable outputs are found before any work."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading

import pytest

from nnaccel.io import atomic_write, check_writable, remove_orphans


def _write(data: bytes):
    return lambda handle: handle.write(data)


def test_a_fifo_is_written_to_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(open(fifo, "rb").read()))
    reader.start()
    atomic_write(fifo, _write(b"through the pipe"))
    reader.join(timeout=10)
    assert received == [b"through the pipe"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert os.listdir(tmp_path) == ["pipe"]


def test_a_link_to_a_device_stays_a_link(tmp_path):
    link = tmp_path / "null"
    os.symlink(os.devnull, link)
    atomic_write(link, _write(b"discarded"))
    assert os.path.islink(link) and os.readlink(link) == os.devnull
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    assert os.listdir(tmp_path) == ["null"]


def test_a_symlink_keeps_pointing_at_its_target_which_is_replaced(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "model.npz"
    target.write_bytes(b"old")
    link = tmp_path / "link.npz"
    os.symlink(target, link)
    atomic_write(link, _write(b"new"))
    assert os.path.islink(link) and os.readlink(link) == str(target)
    assert target.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path / "real")) == ["model.npz"]  # the temporary went beside the target


def test_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.npz"
    os.symlink(tmp_path / "target.npz", link)
    atomic_write(link, _write(b"made"))
    assert os.path.islink(link) and (tmp_path / "target.npz").read_bytes() == b"made"


def test_new_files_get_the_umask_and_existing_files_keep_their_mode(tmp_path):
    previous = os.umask(0o027)
    try:
        atomic_write(tmp_path / "new.bin", _write(b"x"))
        assert stat.S_IMODE(os.stat(tmp_path / "new.bin").st_mode) == 0o640
        os.umask(0o022)
        atomic_write(tmp_path / "new2.bin", _write(b"x"))
        assert stat.S_IMODE(os.stat(tmp_path / "new2.bin").st_mode) == 0o644
        os.chmod(tmp_path / "new.bin", 0o604)
        atomic_write(tmp_path / "new.bin", _write(b"y"))
        assert stat.S_IMODE(os.stat(tmp_path / "new.bin").st_mode) == 0o604
    finally:
        os.umask(previous)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_orphans_of_killed_writers_are_removed_and_live_ones_kept(tmp_path):
    dead, alive = _dead_pid(), os.getppid()
    orphan = tmp_path / f".out.bin.{dead}.abc123.tmp"
    in_progress = tmp_path / f".out.bin.{alive}.def456.tmp"
    other_file = tmp_path / f".other.bin.{dead}.abc123.tmp"
    for path in (orphan, in_progress, other_file):
        path.write_bytes(b"partial")
    atomic_write(tmp_path / "out.bin", _write(b"whole"))
    assert sorted(os.listdir(tmp_path)) == sorted([in_progress.name, other_file.name, "out.bin"])
    assert remove_orphans(tmp_path / "other.bin") == [str(other_file)]


def test_check_writable_names_the_users_path(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"--save .* is a directory"):
        check_writable(tmp_path, "--save")
    with pytest.raises(FileNotFoundError, match=r"--json .*missing.* does not exist"):
        check_writable(tmp_path / "missing" / "out.json", "--json")
    (tmp_path / "ro").mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path).endswith("ro") else real_access(path, mode))
    with pytest.raises(PermissionError, match=r"--checkpoint '.*ro/ck.npz' cannot be written"):
        check_writable(tmp_path / "ro" / "ck.npz", "--checkpoint")
    assert check_writable(tmp_path / "fine.npz") == str(tmp_path / "fine.npz")
    assert check_writable(os.devnull) == os.devnull


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_a_read_only_folder_is_refused_for_real(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match="ro/m.npz"):
            check_writable(folder / "m.npz", "--save")
        with pytest.raises(PermissionError, match="ro/m.npz"):
            atomic_write(folder / "m.npz", _write(b"x"))
    finally:
        folder.chmod(0o755)


# ----- make-data's two files ------------------------------------------------------------------------
def test_make_data_removes_dead_partials_and_honours_the_umask(tmp_path):
    from nnaccel.data.large import write_playground_npy

    X, Y = tmp_path / "d_X.npy", tmp_path / "d_Y.npy"
    dead, alive = _dead_pid(), os.getppid()
    orphan, running = tmp_path / f"d_X.npy.partial-{dead}", tmp_path / f"d_Y.npy.partial-{alive}"
    orphan.write_bytes(b"left by a kill")
    running.write_bytes(b"another writer")
    previous = os.umask(0o002)
    try:
        write_playground_npy(X, Y, "circle", 100, chunk_size=40)
    finally:
        os.umask(previous)
    assert not orphan.exists() and running.exists()
    assert stat.S_IMODE(os.stat(X).st_mode) == 0o664 == stat.S_IMODE(os.stat(Y).st_mode)


def test_an_interrupt_between_the_renames_never_leaves_a_new_x_beside_an_old_y(tmp_path, monkeypatch):
    import numpy as np

    from nnaccel.data.large import write_playground_npy

    X, Y = tmp_path / "d_X.npy", tmp_path / "d_Y.npy"
    write_playground_npy(X, Y, "circle", 100, seed=1)
    real_replace, calls = os.replace, []

    def interrupted_replace(source, destination):
        calls.append(destination)
        if len(calls) == 2:  # after X, before Y
            raise KeyboardInterrupt
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        write_playground_npy(X, Y, "circle", 200, seed=2)
    monkeypatch.undo()
    if Y.exists():  # whatever is left must be a pair of the same run
        assert np.load(X).shape[1] == np.load(Y).shape[1]
    assert not (np.load(X).shape[1] == 200 and Y.exists() and np.load(Y).shape[1] == 100)


def test_train_save_through_a_symlink_replaces_its_target(tmp_path):
    from support import cli

    (tmp_path / "models").mkdir()
    target = tmp_path / "models" / "real.npz"
    target.write_bytes(b"old model")
    link = tmp_path / "link.npz"
    os.symlink(target, link)
    code, _, err = cli("train", "--backend", "numpy", "--epochs", "1", "--quiet", "--save", link)
    assert code == 0, err
    assert os.path.islink(link) and os.readlink(link) == str(target)
    assert target.read_bytes() != b"old model"
    import nnaccel as nna

    assert nna.Network.load(link, backend="numpy").layers == [2, 4, 2, 1]
