"""The one atomic writer: every file or directory the package writes appears whole or not at all.

Data go to a hidden sibling ``.<name>.<pid>.part`` (same directory, so the final
rename is atomic), which is renamed onto the target only when complete and removed
on any error or interruption. Outputs, weights, checkpoints, evaluation files and
samples all go through :func:`atomic_path`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from ..errors import OutputError

__all__ = [
    "atomic_path",
    "check_output_path",
    "replace_path",
    "scratch_path",
    "temporary_path",
    "write_bytes",
    "write_error",
    "write_text",
]


def temporary_path(path: Path) -> Path:
    """The sibling ``.<name>.<pid>.part`` that ``path`` is written to before it is renamed.

    The pid keeps two processes writing the same output apart. Temporaries of ``path``
    left by a killed run (SIGKILL, power loss) are removed here, so they never pile
    up; a temporary is stale when its process no longer runs on this machine, or is
    this process.
    """
    _remove_stale_temporaries(path)
    return path.with_name(f".{path.name}.{os.getpid()}.part")


def _remove_stale_temporaries(path: Path) -> None:
    prefix = f".{path.name}."
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return  # a missing or unreadable directory is reported by the write itself
    for entry in entries:
        pid = entry.name[len(prefix) : -len(".part")]
        if not (entry.name.startswith(prefix) and entry.name.endswith(".part") and pid.isdigit()):
            continue
        if int(pid) != os.getpid() and _process_exists(int(pid)):
            continue
        _remove(entry)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _process_exists(pid: int) -> bool:
    if os.name != "posix":
        return True  # os.kill(pid, 0) would terminate the process on Windows: keep its files
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists but belongs to another user
        return True
    return True


def replace_path(tmp: Path, path: Path) -> None:
    """Move a finished temporary file or directory onto ``path``, replacing what was there.

    A directory cannot be renamed over another, so an earlier Zarr result is removed
    first: for that moment neither exists, but never a partial one.
    """
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    os.replace(tmp, path)  # replaces a file (or symlink) atomically


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Give the temporary to write ``path`` to (a file or a directory); rename it when done.

    On any error, or an interruption, the temporary is removed and the old ``path``
    stays as it was; an ``OSError`` becomes the :class:`OutputError` of :func:`write_error`.
    """
    path = Path(path)
    tmp = temporary_path(path)
    try:
        yield tmp
        replace_path(tmp, path)
    except BaseException as exc:
        _remove(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise write_error(path, exc) from None
        raise


@contextlib.contextmanager
def scratch_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary sibling of ``path`` for intermediate data, removed whatever happens."""
    tmp = temporary_path(Path(path))
    try:
        yield tmp
    finally:
        _remove(tmp)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def check_output_path(path: Path) -> None:
    """Refuse, before any work, an output that cannot be written or would destroy data.

    The parent directory must exist (it is never created: a typo in the path
    should not silently make directories) and be writable; an existing directory
    under the output name is replaced only when it is a Zarr store (an earlier
    result), never for a TIFF output.
    """
    parent = path.parent
    if not parent.exists():
        raise OutputError(
            f"{parent}: output directory does not exist; create it first "
            "(napari-mscgm does not create directories)"
        )
    if not parent.is_dir():
        raise OutputError(f"{parent}: is not a directory")
    if path.is_dir() and not path.is_symlink():
        is_zarr = any((path / name).exists() for name in (".zgroup", ".zarray", "zarr.json"))
        if not (is_zarr and path.name.lower().endswith(".zarr")):
            raise OutputError(
                f"{path}: exists and is a directory that is not a Zarr result; "
                "move it away or choose another output name"
            )
    if not os.access(parent, os.W_OK):
        raise OutputError(
            f"{parent}: output directory is not writable; choose a directory you can write to"
        )


def write_error(path: Path, exc: OSError) -> OutputError:
    """The :class:`OutputError` for a failed write of ``path``: what happened, what to do."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    hint = {
        errno.ENOSPC: "free some space or write elsewhere",
        errno.EDQUOT: "free some space or write elsewhere",
        errno.EACCES: "choose a directory you can write to",
        errno.EPERM: "choose a directory you can write to",
        errno.EROFS: "choose a directory you can write to",
    }.get(exc.errno or 0, "check the output location")
    match = re.fullmatch(r"\.(.+)\.\d+\.part", path.name)
    if match:  # name the output the user asked for, not its temporary
        path = path.with_name(match.group(1))
    return OutputError(f"{path}: cannot write ({reason}); {hint}")
