"""Output files: atomic writes to regular files, streamed writes to anything else, with the user's
umask, and checks that an output can be written before any work is done.

A regular file (or a path that does not exist yet) is written to a temporary file beside it,
flushed, then renamed over it: a crash or Ctrl-C mid-write never leaves a corrupt or half-written
file. A symlink is followed and the file it names is replaced (the link stays a link). Anything
else (``/dev/null``, ``/dev/stdout``, a FIFO, a character device) is opened and written in place:
renaming over it would replace the device or pipe with a regular file.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
from collections.abc import Callable
from typing import BinaryIO

# Temporary names carry the writer's pid, so a later writer can tell an orphan (its pid is dead)
# from another process's write in progress: ".NAME.PID.RANDOM.tmp".
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")


def current_umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _is_streamed(path: str) -> bool:
    """True when ``path`` exists (after symlinks) and is not a regular file or a directory."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's live process, or a number no process can have: not ours to remove
    return True


def remove_orphans(path: str | os.PathLike) -> list[str]:
    """Delete the temporary files an earlier, killed write of ``path`` left beside it: those named
    ``.NAME.PID.*.tmp`` for this file's NAME, owned by this user, whose PID no longer runs.
    Returns the paths removed."""

    def writer(entry: str, name: str) -> int | None:
        match = _TEMPORARY.match(entry)
        return int(match["pid"]) if match and match["name"] == name else None

    return remove_dead_writers_files(path, writer)


def remove_dead_writers_files(path: str | os.PathLike, writer) -> list[str]:
    """Delete the regular files beside ``path`` for which ``writer(entry, NAME)`` (NAME being
    path's file name) gives the id of the process that wrote them, when that process no longer
    runs and the file is this user's. Returns the paths removed."""
    directory, name = os.path.split(os.path.abspath(os.fspath(path)))
    removed: list[str] = []
    try:
        entries = os.listdir(directory)
    except OSError:
        return removed
    for entry in entries:
        pid = writer(entry, name)
        if pid is None or pid == os.getpid() or _pid_alive(pid):
            continue
        candidate = os.path.join(directory, entry)
        try:
            status = os.lstat(candidate)
            if status.st_uid == os.getuid() and stat.S_ISREG(status.st_mode):
                os.unlink(candidate)
                removed.append(candidate)
        except OSError:
            pass  # gone already, or not ours to remove
    return removed


def check_writable(path: str | os.PathLike, option: str = "output") -> str:
    """Check that ``path`` can be written by ``atomic_write`` before any work is done; returns it.

    A ValueError if it is a folder, FileNotFoundError if its folder does not exist, PermissionError
    if the folder (where the temporary file goes) or a non-regular target cannot be written; each
    names ``option`` and the user's path."""
    text = os.fspath(path)
    if os.path.isdir(text):
        raise ValueError(f"{option} {text!r} is a directory; give a file name")
    if _is_streamed(text):
        if not os.access(text, os.W_OK):
            raise PermissionError(f"{option} {text!r} cannot be written (permission denied)")
        return text
    target = os.path.realpath(text)
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{option} {text!r}: the folder {directory!r} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError(f"{option} {text!r} cannot be written: no permission to create files in {directory!r}")
    return text


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(handle)`` on a temporary file beside the file ``path`` names (after symlinks),
    flush it to disk, then rename it over that file (a rename within one directory is atomic).

    A path that is not a regular file (a device, a FIFO) is written in place instead. The new file
    gets the mode ``open()`` would give it: an existing file's mode, else 0o666 less the umask."""
    path = os.fspath(path)
    if _is_streamed(path):
        with open(path, "wb") as handle:
            write(handle)
            handle.flush()
        return
    target = os.path.realpath(path)  # a symlink stays a link: its target is what gets replaced
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {path!r}: directory {directory!r} does not exist")
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~current_umask()
    remove_orphans(target)
    try:
        descriptor, temporary = tempfile.mkstemp(
            prefix=f".{os.path.basename(target)}.{os.getpid()}.", suffix=".tmp", dir=directory
        )
    except OSError as error:
        kind = PermissionError if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else OSError
        raise kind(f"cannot write {path!r}: {error.strerror}") from None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
