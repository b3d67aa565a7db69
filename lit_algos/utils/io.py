"""Atomic writes: write to a temporary file in the same directory, fsync, then rename.

A reader sees either the old file or the new one, never half of one, and a crash leaves at
worst a stray ``.tmp`` file.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lit_algos.errors import StorageError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def storage_error(path: str | os.PathLike, err: OSError, what: str = "write") -> StorageError:
    """A disk fault as one sentence with the path and what to do about it."""
    path = Path(path)
    code = err.errno
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        remedy = "it is read-only or not yours: fix its permissions or choose another location"
    elif code in (errno.ENOTDIR, errno.EEXIST):
        remedy = (
            "a file is in the way where a directory belongs: remove or rename it, or choose another location"
        )
    elif code == errno.EISDIR:
        remedy = "a directory is in the way where a file belongs: remove or rename it"
    elif code in (errno.ENOSPC, errno.EDQUOT):
        remedy = "the disk (or your quota) is full: free space or choose another location"
    else:
        remedy = "check the path and the disk"
    where = err.filename or path
    return StorageError(
        f"Cannot {what} {path}: {err.strerror or err} ({where}); {remedy}. Nothing was left half-written."
    )


def ensure_dir(path: str | os.PathLike, what: str = "create the directory") -> Path:
    """``mkdir -p`` that fails as a StorageError (path + remedy) rather than an OSError."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as err:  # a file of that name
        raise storage_error(path, err, what) from None
    except OSError as err:
        raise storage_error(path, err, what) from None
    if not path.is_dir():
        raise storage_error(path, OSError(errno.ENOTDIR, "Not a directory", str(path)), what)
    return path


def check_writable_dir(path: str | os.PathLike, what: str) -> Path:
    """Create ``path`` if needed and prove a file can be written there, before any long work.

    ``what`` names the setting, e.g. "the runs directory (--runs-dir or $LIT_ALGOS_RUNS)"."""
    path = Path(path)
    try:
        ensure_dir(path, f"use {what} at")
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except StorageError as err:
        raise StorageError(f"{err} It is {what}.") from None
    except OSError as err:
        raise StorageError(f"{storage_error(path, err, f'write into {what} at')}") from None
    return path


@contextmanager
def undone_on_error(*paths: str | os.PathLike, trees: tuple | list = ()) -> Iterator[None]:
    """Undo what a failing block created among ``paths`` (files, and directories with their new
    ancestors): each one that did not exist before the block is removed when it raises, files
    first, then directories deepest first and only while empty (never another process's files).
    ``trees``: folders this block alone makes (a prepared dataset), removed with their content."""

    new_trees = [Path(t) for t in trees if not os.path.lexists(t)]
    watched: list[Path] = []
    for path in [*map(Path, paths), *new_trees]:
        watched += [p for p in (*reversed(path.parents), path) if not os.path.lexists(p) and p not in watched]
    try:
        yield
    except BaseException:
        for tree in new_trees:
            shutil.rmtree(tree, ignore_errors=True)
        for p in watched:
            if p.is_file() or p.is_symlink():
                p.unlink(missing_ok=True)
        for p in sorted((p for p in watched if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            try:
                p.rmdir()
            except OSError:
                pass
        raise


def _remove_new_dirs(leaf: Path, created: list[Path]) -> None:
    """Undo the folders a failed write created (deepest first; only while they are empty)."""
    for folder in created:
        try:
            folder.rmdir()
        except OSError:
            return


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    created = [d for d in (path.parent, *path.parent.parents) if not d.exists()]
    ensure_dir(path.parent, f"write {path.name} into")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        _remove_new_dirs(path.parent, created)
        raise storage_error(path, err) from None
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        _remove_new_dirs(path.parent, created)
        raise storage_error(path, err) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def finite_json(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by null: JSON has no NaN or Infinity."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    text = json.dumps(finite_json(obj), indent=2, sort_keys=False, default=str, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except RecursionError:  # arrays or objects nested thousands deep: no file of ours is
            raise ValueError("its arrays or objects are nested too deeply to be one of ours") from None
