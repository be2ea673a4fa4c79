"""Checks that every command runs before any work: input files, output folders, locks, values.

A command's inputs are checked before it loads a model or fits anything, so that bad input costs
a second, not a minute of fitting followed by a traceback:

* :func:`check_input_file` / :func:`check_input_dir`: the path exists and is a *regular* file (a
  FIFO or a device would block or stream forever) or a folder, and can be read;
* :func:`check_output_dir`: the output folder can be created and written — no symbolic-link
  loop, no dangling link, not under a file, names within the file system's limits, and a real
  temporary file created and removed where the results will go — and no destination that the
  command writes is a folder that a file cannot replace;
* :func:`output_lock`: one run at a time per output folder (a lock file beside it);
* :func:`check_finite`: no NaN or infinity leaves a stage;
* :func:`check_face_image`: a uint8 RGB photo and its 478 MediaPipe landmarks, as the 2D photo
  readers (glasses, facial hair) take them.

Every failure is an :class:`~machlib.InputError` with a one-line message naming the path or
value and the problem (the CLI prints it as ``machlib: error: ...`` and exits with 2).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import tempfile
import threading
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ._errors import InputError

__all__ = ["OutputBusyError", "check_face_image", "check_finite", "check_input_dir", "check_input_file", "check_output_dir", "output_lock"]

#: Room kept in a file name for the suffixes machlib adds beside the output folder (the
#: temporary folder ``.OUT.tmpXXXXXXXX`` and the lock file ``.OUT.lock``).
_NAME_ROOM = 16


class OutputBusyError(InputError):
    """Another machlib run is writing the same output folder (its lock file is held)."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _stat(path: Path, what: str) -> os.stat_result:
    """``os.stat(path)`` with every failure as a one-line :class:`InputError`."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise InputError(f"{what} {path} is a dangling symbolic link (to {os.readlink(path)})") from None
        raise InputError(f"{what} {path} does not exist") from None
    except NotADirectoryError:
        raise InputError(f"{what} {path} does not exist (a part of the path is a file, not a folder)") from None
    except PermissionError:
        raise InputError(f"{what} {path} cannot be reached: permission denied") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise InputError(f"{what} {path} is a symbolic link loop") from None
        if e.errno == errno.ENAMETOOLONG:
            raise InputError(f"{what} {path}: the path or a name in it is too long") from None
        raise InputError(f"{what} {path} cannot be used: {e.strerror or e}") from None
    except ValueError as e:  # an embedded NUL byte
        raise InputError(f"{what} {path!r} is not a valid path: {e}") from None


def check_input_file(path: str | os.PathLike, what: str = "input") -> Path:
    """Check that ``path`` is an existing, readable regular file, without opening it.

    Uses :func:`os.stat` first, so a FIFO (which would block an ``open``), a device or a socket is
    refused before anything reads from it.

    Args:
        path: the file.
        what: how the message names it (e.g. ``"--landmarks"``, ``"image"``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        InputError: missing, a dangling or looping link, a folder, not a regular file, unreadable.

    Example:
        >>> from machlib._validate import check_input_file
        >>> try:
        ...     check_input_file("/dev/null", "image")
        ... except ValueError as e:
        ...     print(e)
        image /dev/null is a device, not a regular file
    """
    path = Path(os.fspath(path))
    st = _stat(path, what)
    if not stat.S_ISREG(st.st_mode):
        kind = _kind(st.st_mode)
        raise InputError(f"{what} {path} is {kind}, not a regular file" if kind != "not a regular file"
                         else f"{what} {path} is not a regular file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{what} {path} cannot be read: permission denied")
    return path


def check_input_dir(path: str | os.PathLike, what: str = "input") -> Path:
    """Check that ``path`` is an existing, readable folder (e.g. a model folder).

    Raises:
        InputError: missing, a dangling or looping link, not a folder, unreadable.
    """
    path = Path(os.fspath(path))
    st = _stat(path, what)
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(f"{what} {path} is not a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise InputError(f"{what} {path} cannot be read: permission denied")
    return path


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def _existing_ancestor(path: Path, what: str) -> Path:
    """The nearest existing ancestor of a path that does not exist; it must be a folder."""
    anc = path.parent
    while True:
        try:
            st = os.stat(anc)
        except FileNotFoundError:
            if os.path.islink(anc):
                raise InputError(f"{what} {path}: {anc} is a dangling symbolic link") from None
            if anc == anc.parent:
                raise InputError(f"{what} {path}: no folder of it exists") from None
            anc = anc.parent
            continue
        except NotADirectoryError:
            anc = anc.parent
            continue
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise InputError(f"{what} {path}: {anc} is a symbolic link loop") from None
            raise InputError(f"{what} {path}: {anc} cannot be used: {e.strerror or e}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise InputError(f"{what} {path} is under {anc}, which is a file, not a folder")
        return anc


def _probe(folder: Path, what: str, out: Path) -> None:
    """Create and remove a real temporary file in ``folder``; fail with a one-line message."""
    try:
        fd, name = tempfile.mkstemp(prefix=".machlib-probe-", dir=folder)
    except OSError as e:
        why = "permission denied" if e.errno in (errno.EACCES, errno.EPERM) else (
            "read-only file system" if e.errno == errno.EROFS else (e.strerror or str(e)))
        raise InputError(f"{what} {out} cannot be written: {why} in {folder}") from None
    os.close(fd)
    os.unlink(name)


def check_output_dir(out: str | os.PathLike, *, names: Iterable[str] = (), what: str = "output") -> Path:
    """Check that the output folder ``out`` can be created (or exists) and written, changing nothing.

    The checks: the path is valid and its names fit the file system's limit (with room for the
    temporary folder and lock file machlib puts beside it); ``out`` is not a symbolic-link loop
    or a dangling link, not a file and not under a file; a temporary file can really be created
    (and is removed again) beside ``out`` — where its results are first written — and, when
    ``out`` exists, inside it; and none of ``names`` is a folder inside ``out`` (a result file
    cannot replace a folder).

    Args:
        out: the output folder.
        names: the file names the command will write into ``out``.
        what: how the message names the folder (e.g. ``"output"``, ``"--clues"``).

    Returns:
        ``out`` as a :class:`~pathlib.Path`.

    Raises:
        InputError: one line naming the path and the problem.
    """
    text = os.fspath(out)
    if not text or "\0" in text:
        raise InputError(f"{what} folder {text!r} is not a valid path")
    out = Path(text)
    absolute = Path(os.path.abspath(text))
    exists = os.path.lexists(absolute)
    if exists:
        st = _stat(absolute, what + " folder")  # a loop or a dangling link fails here
        if not stat.S_ISDIR(st.st_mode):
            raise InputError(f"{what} {out} exists and is not a folder")
        parent = absolute.parent
    else:
        parent = _existing_ancestor(absolute, what + " folder")  # a file above it fails here
    limit = _name_max(parent)
    for part in absolute.parts[1:]:
        n = len(os.fsencode(part))
        room = _NAME_ROOM if part == absolute.name else 0
        if n + room > limit:
            short = part if len(part) <= 40 else part[:32] + "…" + part[-4:]
            raise InputError(f"{what} folder: the name {short} is too long ({n} bytes; at most {limit - room} "
                             "on this file system, leaving room for machlib's temporary folder beside it)")
    if exists:
        _probe(absolute, what + " folder", out)
        for name in names:
            dest = absolute / name
            if os.path.isdir(dest) and not os.path.islink(dest):
                raise InputError(f"{what} {out}: {name} is a folder there, so the result {name} cannot "
                                 f"replace it; move it away")
    _probe(parent, what + " folder", out)  # results are first written beside OUT
    return out


# --------------------------------------------------------------------------------------------
# one writer per output folder

_HELD: dict[str, int] = {}  # lock path -> the thread holding it, for re-entry within one process
_HELD_LOCK = threading.Lock()


def _lock_path(out: Path) -> Path:
    """``.OUT.lock`` beside ``out``, its folder resolved so that two spellings of one folder
    (``out``, ``./out``, ``link/out`` through a symbolic link) share one lock."""
    absolute = Path(os.path.abspath(os.fspath(out)))
    return Path(os.path.realpath(absolute.parent)) / f".{absolute.name}.lock"


@contextmanager
def output_lock(out: str | os.PathLike):
    """Hold the lock file of output folder ``out`` (``.OUT.lock`` beside it) for the body.

    A second run (another process, or another thread of this one) that asks for the same folder
    fails at once with :class:`OutputBusyError` instead of silently replacing the first run's
    results; the same thread may enter again (the CLI locks for the whole run, and the atomic
    write locks again). Folders above ``out`` that do not exist are created for the lock file
    and removed again if they are still empty when the lock is released. The lock file is
    removed on release; the lock is the kernel's (:func:`fcntl.flock`), so a run that dies
    leaves no stale lock.

    Raises:
        OutputBusyError: another run holds the lock.
        InputError: the lock file cannot be created (see :func:`check_output_dir`).
    """
    path = _lock_path(Path(out))
    key = str(path)
    with _HELD_LOCK:
        holder = _HELD.get(key)
    if holder == threading.get_ident():  # this thread holds it already: enter again
        yield path
        return
    if holder is not None:
        raise OutputBusyError(f"output {out} is being written by another run in this process; wait for it or "
                              f"choose another folder")
    made = []  # folders created for the lock file, innermost first
    d = path.parent
    while not os.path.isdir(d):
        made.append(d)
        d = d.parent
    try:
        for d in reversed(made):
            os.mkdir(d)
    except OSError as e:
        _rmdirs(made)
        raise InputError(f"output {out}: cannot create {d}: {e.strerror or e}") from None
    try:
        fd = _acquire(path, out)
    except BaseException:
        _rmdirs(made)
        raise
    with _HELD_LOCK:
        _HELD[key] = threading.get_ident()
    try:
        yield path
    finally:
        with _HELD_LOCK:
            del _HELD[key]
        try:
            os.unlink(path)
        except OSError:
            pass
        os.close(fd)  # releases the flock
        _rmdirs(made)


def _acquire(path: Path, out) -> int:
    """Open and lock ``path``; retry when a releasing run unlinked the file we opened."""
    for _ in range(100):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise InputError(f"output {out}: cannot create the lock file {path}: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            owner = ""
            try:
                pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
                owner = f" (process {pid})" if pid.isdigit() else ""
            except OSError:
                pass
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutputBusyError(f"output {out} is being written by another machlib run{owner}; wait for "
                                      f"it to finish or choose another folder") from None
            raise InputError(f"output {out}: cannot lock {path}: {e.strerror or e}") from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        os.close(fd)  # the previous holder removed the file after we opened it: take the new one
    raise OutputBusyError(f"output {out}: could not take the lock file {path}")


def _rmdirs(made: list[Path]) -> None:
    for d in made:  # innermost first
        try:
            os.rmdir(d)
        except OSError:
            pass


# --------------------------------------------------------------------------------------------
# values


def check_finite(stage: str, **arrays) -> None:
    """Raise unless every array is finite: no NaN or infinity leaves machlib.

    Args:
        stage: the stage that produced the arrays (named in the message, e.g. ``"fit"``).
        **arrays: name → array-like of numbers.

    Raises:
        InputError: ``"the fit stage produced non-finite values (NaN or infinity) in ..."``.

    Example:
        >>> import numpy as np
        >>> from machlib._validate import check_finite
        >>> check_finite("fit", vertices=np.zeros((3, 3)))
        >>> try:
        ...     check_finite("fit", vertices=np.array([0.0, np.nan]))
        ... except ValueError as e:
        ...     print(e)
        the fit stage produced non-finite values (NaN or infinity) in vertices (1 of 2); the input (template, landmarks or image) is degenerate
    """
    bad = []
    for name, value in arrays.items():
        if value is None:
            continue
        a = np.asarray(value)
        if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.integer):
            continue
        n = int(a.size - np.count_nonzero(np.isfinite(a)))
        if n:
            bad.append(f"{name} ({n} of {a.size})")
    if bad:
        raise InputError(f"the {stage} stage produced non-finite values (NaN or infinity) in {', '.join(bad)}; "
                         f"the input (template, landmarks or image) is degenerate")


def check_face_image(fn: str, image, landmarks, *, name: str = "landmarks") -> tuple[np.ndarray, np.ndarray]:
    """Check a photo and its landmarks for a 2D reader of the photo and return them as arrays.

    Args:
        fn: the calling function's name, for the message.
        image: ``(H, W, 3)`` uint8 RGB photo.
        landmarks: a :class:`~machlib.geometry.Landmarks` (its ``points``) or a ``(478, 2)`` array
            of MediaPipe face-mesh points with irises, in pixels.
        name: the landmarks argument's name in the caller, for the message.

    Returns:
        ``(image, points)``: the image as a numpy array and the points as float64 ``(478, 2)``.

    Raises:
        InputError: the image is not ``(H, W, 3)`` uint8, or the points are not 478 finite
            ``(x, y)`` pairs.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[-1] != 3 or img.dtype != np.uint8:
        raise InputError(f"{fn}: image must be (H, W, 3) uint8, got {img.shape} {img.dtype}")
    pts = np.asarray(getattr(landmarks, "points", landmarks), np.float64)
    if pts.shape != (478, 2) or not np.isfinite(pts).all():
        raise InputError(f"{fn}: {name} must be 478 finite (x, y) points (MediaPipe with irises), got {pts.shape}")
    return img, pts
