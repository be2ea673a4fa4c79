"""Strand file formats: USC-HairSalon ``.data``, Cem Yuksel's ``.hair``, USD ``.usda``, glTF lines.

Everything here is plain numpy. Readers load the whole file, check every count against the file
size before they allocate anything, and raise :class:`~machlib.InputError` (a
:class:`ValueError`) naming the file and the problem. Writers refuse non-finite values and
write atomically (a temporary file in the same directory, then :func:`os.replace`).

The binary formats store positions in their own frame and units. ``scale``, ``offset`` and
``up`` describe that frame, the same way for reading and writing::

    head = R_up · file · scale + offset        (read)
    file = R_upᵀ · (head − offset) / scale     (write)

with ``R_y`` the identity and ``R_z`` the z-up → y-up rotation ``(x, y, z) ↦ (x, z, −y)``, so
that the defaults read and write head space unchanged (metres, +y up, +z out of the face).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Literal

import numpy as np
from jaxtyping import Float, UInt32

from .._errors import InputError
from ._files import write_atomic
from .._strands import DEFAULT_HAIR_COLOR, DEFAULT_HAIR_WIDTH, RaggedStrands, Strands

__all__ = [
    "read_hair_data", "write_hair_data", "read_cem_hair", "write_cem_hair", "write_usd_curves",
    "strands_to_gltf_lines",
]

_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # head = _Z_UP @ file


# ---------------------------------------------------------------------------------------------
# shared helpers


def _frame(owner: str, scale, offset, up) -> tuple[float, np.ndarray, np.ndarray]:
    scale = float(scale)
    if not np.isfinite(scale) or scale <= 0:
        raise InputError(f"{owner}: scale must be a positive finite number, got {scale}")
    off = np.asarray(offset, np.float64)
    if off.shape != (3,) or not np.isfinite(off).all():
        raise InputError(f"{owner}: offset must be 3 finite numbers, got {offset!r}")
    if up not in ("y", "z"):
        raise InputError(f"{owner}: up must be 'y' or 'z', got {up!r}")
    return scale, off, (np.eye(3) if up == "y" else _Z_UP)


def _to_head(p: np.ndarray, scale: float, off: np.ndarray, rot: np.ndarray) -> np.ndarray:
    # Each step only when it does something, so the default frame is bit-exact (keeps -0.0).
    q = np.asarray(p, np.float64)
    q = q @ rot.T if rot is _Z_UP else q
    q = q * scale if scale != 1.0 else q
    q = q + off if off.any() else q
    return q.astype(np.float32)


def _to_file(p: np.ndarray, scale: float, off: np.ndarray, rot: np.ndarray) -> np.ndarray:
    q = np.asarray(p, np.float64)
    q = q - off if off.any() else q
    q = q / scale if scale != 1.0 else q
    q = q @ rot if rot is _Z_UP else q
    with np.errstate(over="ignore"):  # overflow becomes inf, which the caller reports
        return q.astype("<f4")


def _ragged(strands: Strands | RaggedStrands, owner: str, path) -> RaggedStrands:
    r = strands.to_ragged() if isinstance(strands, Strands) else strands
    for name in ("points", "color", "thickness"):
        value = getattr(r, name)
        if value is not None and not np.isfinite(np.asarray(value)).all():
            raise InputError(f"{owner}: {path}: strand {name} contain NaN or infinity; nothing was written")
    if r.thickness is not None and (np.asarray(r.thickness) < 0).any():
        raise InputError(f"{owner}: {path}: strand thickness must be >= 0")
    return r


def _finite_in_file_units(values: np.ndarray, owner: str, path, what: str) -> np.ndarray:
    if not np.isfinite(values).all():
        raise InputError(f"{owner}: {path}: {what} overflow float32 in file units (check scale/offset)")
    return values


def _ramp(counts: np.ndarray) -> np.ndarray:
    starts = np.cumsum(counts) - counts
    return np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts, counts)


# ---------------------------------------------------------------------------------------------
# USC-HairSalon .data


def read_hair_data(
    path: str | os.PathLike,
    *,
    scale: float = 1.0,
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0),
    up: Literal["y", "z"] = "y",
) -> RaggedStrands:
    """Read a USC-HairSalon ``.data`` strand file.

    Layout (little endian): ``int32`` strand count ``S``; then per strand an ``int32`` point count
    ``n`` followed by ``n × 3`` ``float32`` coordinates, root first. Nothing may follow the last
    strand. USC-HairSalon stores metres with +y up and the face toward +z, the axes of head
    space, but places the bust about 1.6 m above the origin; pass an ``offset`` such as
    ``(0, -1.64, 0)`` (check your files' bounds) to bring it near the template head.

    Args:
        path: the ``.data`` file.
        scale: metres per file unit.
        offset: ``(3,)`` head-space translation in metres added after scaling.
        up: the file's up axis, ``"y"`` (default) or ``"z"`` (see the module docstring).

    Returns:
        :class:`RaggedStrands` (``float32`` points, no colour or thickness; a one-point strand is
        a root without hair in USC-HairSalon).

    Raises:
        InputError: the file is truncated, has trailing bytes, a negative or zero count, a count
            larger than the file can hold, or non-finite coordinates.

    Example:
        >>> import numpy as np, os, tempfile
        >>> from machlib.hair import read_hair_data, write_hair_data, Strands
        >>> path = os.path.join(tempfile.mkdtemp(), "hair.data")
        >>> write_hair_data(path, Strands(np.ones((3, 4, 3), np.float32)))
        >>> os.path.getsize(path)   # 4 + 3 × (4 + 4 × 12)
        160
        >>> read_hair_data(path).counts.tolist()
        [4, 4, 4]
    """
    scale, off, rot = _frame("read_hair_data", scale, offset, up)
    data = Path(path).read_bytes()
    size = len(data)

    def bad(msg: str) -> InputError:
        return InputError(f"{path}: not a valid USC-HairSalon .data file: {msg}")

    if size < 4:
        raise bad(f"{size} bytes is too short for the strand count")
    (num,) = struct.unpack_from("<i", data, 0)
    if num < 0:
        raise bad(f"negative strand count {num}")
    if 4 + 4 * num > size:
        raise bad(f"header claims {num} strands, which needs at least {4 + 4 * num} bytes; the file has {size}")
    counts = np.empty(num, np.int64)
    pos = 4
    for i in range(num):
        if pos + 4 > size:
            raise bad(f"truncated: the file ends at byte {size} before the point count of strand {i} of {num}")
        (n,) = struct.unpack_from("<i", data, pos)
        if n < 1:
            raise bad(f"strand {i} has a point count of {n} (must be >= 1)")
        end = pos + 4 + 12 * n
        if end > size:
            raise bad(f"truncated: strand {i} of {num} claims {n} points ({12 * n} bytes from byte {pos + 4}); "
                      f"the file has {size} bytes")
        counts[i] = n
        pos = end
    if pos != size:
        raise bad(f"{size - pos} unexpected bytes after the last of {num} strands")
    # Word layout: [S, n_0, xyz..., n_1, xyz..., ...]; drop the count words.
    words = np.frombuffer(data, "<f4")
    keep = np.ones(words.size, bool)
    keep[0] = False
    keep[1 + np.arange(num) + 3 * (np.cumsum(counts) - counts)] = False
    pts = words[keep].reshape(-1, 3)
    if not np.isfinite(pts).all():
        raise bad("coordinates contain NaN or infinity")
    return RaggedStrands(_to_head(pts, scale, off, rot), counts)


def write_hair_data(
    path: str | os.PathLike,
    strands: Strands | RaggedStrands,
    *,
    scale: float = 1.0,
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0),
    up: Literal["y", "z"] = "y",
) -> None:
    """Write strands as a USC-HairSalon ``.data`` file, atomically.

    The layout is given in :func:`read_hair_data`. Colour and thickness are not part of the format
    and are dropped. ``scale``, ``offset`` and ``up`` mean what they mean for reading, so the same
    arguments round-trip.

    Args:
        path: output ``.data`` path.
        strands: :class:`Strands` or :class:`RaggedStrands`, metres in head space.
        scale: metres per file unit.
        offset: ``(3,)`` head-space translation subtracted before scaling.
        up: the file's up axis, ``"y"`` or ``"z"``.

    Raises:
        InputError: points are NaN or infinite, or overflow ``float32`` in file units.
    """
    scale, off, rot = _frame("write_hair_data", scale, offset, up)
    r = _ragged(strands, "write_hair_data", path)
    counts = np.asarray(r.counts, np.int64)
    if counts.size and counts.max() > np.iinfo(np.int32).max:
        raise InputError(f"write_hair_data: {path}: a strand has more points than int32 can count")
    pts = _finite_in_file_units(_to_file(r.points, scale, off, rot), "write_hair_data", path, "points")
    num = counts.size
    words = np.empty(1 + num + 3 * int(counts.sum()), "<u4")
    words[0] = num
    count_at = 1 + np.arange(num) + 3 * (np.cumsum(counts) - counts)
    words[count_at] = counts.astype("<u4")
    keep = np.ones(words.size, bool)
    keep[0] = False
    keep[count_at] = False
    words[keep] = pts.reshape(-1).view("<u4")
    write_atomic(Path(path), words.tobytes())


# ---------------------------------------------------------------------------------------------
# Cem Yuksel .hair

_HAIR_HEADER = struct.Struct("<4sIIIIff3f88s")  # 128 bytes
_HAS_SEGMENTS, _HAS_POINTS, _HAS_THICKNESS, _HAS_TRANSPARENCY, _HAS_COLOR = 1, 2, 4, 8, 16


def read_cem_hair(
    path: str | os.PathLike,
    *,
    scale: float = 1.0,
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0),
    up: Literal["y", "z"] = "y",
) -> RaggedStrands:
    """Read a Cem Yuksel ``.hair`` file.

    Layout (little endian): a 128-byte header — ``"HAIR"``, ``uint32`` strand count, ``uint32``
    total point count, ``uint32`` field bits (1 segments, 2 points, 4 thickness,
    8 transparency, 16 colour), ``uint32`` default segment count, ``float32`` default thickness,
    ``float32`` default transparency, 3 ``float32`` default colour, 88 bytes of ASCII
    information — then the arrays that the bits announce, in this order: ``uint16`` segments per
    strand, ``float32`` xyz per point, ``float32`` thickness per point, ``float32`` transparency
    per point, ``float32`` RGB per point. A strand of ``k`` segments has ``k + 1`` points; absent
    arrays take the header's defaults.

    machlib strands carry one colour and one thickness each: both are taken at each strand's
    root; transparency is not kept. The format has no fixed unit or up axis: set ``scale``
    (metres per file unit) and ``up`` for the files you read, e.g. ``scale=0.01, up="z"`` for
    centimetres with z up.

    Args:
        path: the ``.hair`` file.
        scale: metres per file unit (also applied to thickness).
        offset: ``(3,)`` head-space translation in metres added after scaling.
        up: the file's up axis, ``"y"`` or ``"z"``.

    Returns:
        :class:`RaggedStrands` with ``color`` and ``thickness`` (in metres) always set.

    Raises:
        InputError: wrong signature, unknown field bits, no points array, counts that disagree
            with each other or with the file size, or non-finite values.

    Example:
        >>> import numpy as np, os, tempfile
        >>> from machlib.hair import read_cem_hair, write_cem_hair, RaggedStrands
        >>> path = os.path.join(tempfile.mkdtemp(), "hair.hair")
        >>> write_cem_hair(path, RaggedStrands.from_list([np.zeros((2, 3)), np.ones((5, 3))]))
        >>> r = read_cem_hair(path)
        >>> r.counts.tolist(), r.thickness.shape, r.color.shape
        ([2, 5], (2,), (2, 3))
    """
    scale, off, rot = _frame("read_cem_hair", scale, offset, up)
    data = Path(path).read_bytes()
    size = len(data)

    def bad(msg: str) -> InputError:
        return InputError(f"{path}: not a valid .hair file: {msg}")

    if size < _HAIR_HEADER.size:
        raise bad(f"{size} bytes is too short for the 128-byte header")
    magic, num, npts, bits, dseg, dthick, _dtransp, *rest = _HAIR_HEADER.unpack_from(data, 0)
    dcolor = np.array(rest[:3], np.float32)
    if magic != b"HAIR":
        raise bad(f"signature {magic!r} is not b'HAIR'")
    if bits & ~31:
        raise bad(f"unknown field bits {bits:#x} (only segments, points, thickness, transparency, colour exist)")
    if not bits & _HAS_POINTS:
        raise bad("the header announces no points array")
    need = _HAIR_HEADER.size + 12 * npts
    need += 2 * num if bits & _HAS_SEGMENTS else 0
    need += 4 * npts if bits & _HAS_THICKNESS else 0
    need += 4 * npts if bits & _HAS_TRANSPARENCY else 0
    need += 12 * npts if bits & _HAS_COLOR else 0
    if size < need:
        raise bad(f"truncated: the header announces {num} strands and {npts} points ({need} bytes); "
                  f"the file has {size}")
    if size > need:
        raise bad(f"{size - need} unexpected bytes after the arrays of {num} strands and {npts} points")
    pos = _HAIR_HEADER.size
    if bits & _HAS_SEGMENTS:
        counts = np.frombuffer(data, "<u2", num, pos).astype(np.int64) + 1
        pos += 2 * num
        total = int(counts.sum())
    else:
        total = num * (dseg + 1)
    if total != npts:
        raise bad(f"the strands' segment counts add up to {total} points but the header says {npts}")
    if not bits & _HAS_SEGMENTS:
        counts = np.full(num, dseg + 1, np.int64)
    pts = np.frombuffer(data, "<f4", 3 * npts, pos).reshape(npts, 3)
    pos += 12 * npts
    if not np.isfinite(pts).all():
        raise bad("coordinates contain NaN or infinity")
    roots = np.cumsum(counts) - counts
    if bits & _HAS_THICKNESS:
        thick = np.frombuffer(data, "<f4", npts, pos)[roots]
        pos += 4 * npts
    else:
        thick = np.full(num, dthick, np.float32)
    pos += 4 * npts if bits & _HAS_TRANSPARENCY else 0
    if bits & _HAS_COLOR:
        color = np.frombuffer(data, "<f4", 3 * npts, pos).reshape(npts, 3)[roots]
    else:
        color = np.broadcast_to(dcolor, (num, 3))
    if not (np.isfinite(thick).all() and np.isfinite(color).all()):
        raise bad("thickness or colour contain NaN or infinity")
    return RaggedStrands(
        _to_head(pts, scale, off, rot), counts, np.array(color, np.float32),
        (thick.astype(np.float64) * scale).astype(np.float32),
    )


def write_cem_hair(
    path: str | os.PathLike,
    strands: Strands | RaggedStrands,
    *,
    scale: float = 1.0,
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0),
    up: Literal["y", "z"] = "y",
    info: str = "machlib strands",
) -> None:
    """Write strands as a Cem Yuksel ``.hair`` file, atomically.

    The layout is given in :func:`read_cem_hair`. A field that is the same for every strand is
    written once as the header default instead of as an array (the segments array too when all
    strands have one length). Per-strand colour and thickness are repeated along each strand;
    where the strands carry none, :data:`DEFAULT_HAIR_COLOR` and :data:`DEFAULT_HAIR_WIDTH` are
    written. Transparency is 0 (opaque).

    Args:
        path: output ``.hair`` path.
        strands: :class:`Strands` or :class:`RaggedStrands`, metres in head space.
        scale: metres per file unit (thickness is divided by it too).
        offset: ``(3,)`` head-space translation subtracted before scaling.
        up: the file's up axis, ``"y"`` or ``"z"``.
        info: ASCII text for the header's information field, at most 87 characters.

    Raises:
        InputError: non-finite values, a strand with more than 65,536 points, more than
            ``2³² − 1`` strands or points, or ``info`` too long or not ASCII.
    """
    scale, off, rot = _frame("write_cem_hair", scale, offset, up)
    r = _ragged(strands, "write_cem_hair", path)
    try:
        info_bytes = info.encode("ascii")
    except UnicodeEncodeError:
        raise InputError(f"write_cem_hair: info must be ASCII, got {info!r}") from None
    if len(info_bytes) > 87:
        raise InputError(f"write_cem_hair: info must be at most 87 characters, got {len(info_bytes)}")
    counts = np.asarray(r.counts, np.int64)
    num, npts = counts.size, int(counts.sum())
    if counts.size and counts.max() > 65536:
        raise InputError(f"write_cem_hair: {path}: .hair strands have at most 65,536 points, got {counts.max()}")
    if max(num, npts) > 0xFFFFFFFF:
        raise InputError(f"write_cem_hair: {path}: too many strands or points for .hair")
    pts = _finite_in_file_units(_to_file(r.points, scale, off, rot), "write_cem_hair", path, "points")

    thick = (np.full(num, DEFAULT_HAIR_WIDTH) if r.thickness is None else np.asarray(r.thickness, np.float64))
    thick = _finite_in_file_units((thick / scale).astype("<f4"), "write_cem_hair", path, "thickness")
    color = np.broadcast_to(np.asarray(DEFAULT_HAIR_COLOR if r.color is None else r.color, "<f4"), (num, 3))

    bits = _HAS_POINTS
    arrays = []
    uniform = num == 0 or bool((counts == counts[0]).all())
    dseg = int(counts[0]) - 1 if num else 0
    if not uniform:
        bits |= _HAS_SEGMENTS
        arrays.append((counts - 1).astype("<u2"))
    arrays.append(pts)
    dthick = float(thick[0]) if num else float(np.float32(DEFAULT_HAIR_WIDTH / scale))
    if num and (thick != thick[0]).any():
        bits |= _HAS_THICKNESS
        arrays.append(np.repeat(thick, counts))
    dcolor = color[0] if num else np.asarray(DEFAULT_HAIR_COLOR, "<f4")
    if num and (color != color[0]).any():
        bits |= _HAS_COLOR
        arrays.append(np.repeat(color, counts, axis=0))
    header = _HAIR_HEADER.pack(b"HAIR", num, npts, bits, dseg, dthick, 0.0, *map(float, dcolor), info_bytes)
    write_atomic(Path(path), header + b"".join(a.tobytes() for a in arrays))


# ---------------------------------------------------------------------------------------------
# USD and glTF


def _fmt_rows(values: np.ndarray, item: str, per_line: int) -> str:
    """Format ``values`` row by row with ``item`` (one ``%`` call: fast), ``per_line`` per line."""
    rows = values.shape[0]
    if rows == 0:
        return ""
    full, rem = divmod(rows, per_line)
    line = ", ".join([item] * per_line)
    parts = [line] * full + ([", ".join([item] * rem)] if rem else [])
    return ",\n            ".join(parts) % tuple(values.reshape(-1).tolist())


def _fmt_tuples(a: np.ndarray) -> str:
    return _fmt_rows(a, "(" + ", ".join(["%.9g"] * a.shape[1]) + ")", 6)


def _fmt_list(a: np.ndarray, fmt: str) -> str:
    return _fmt_rows(a, fmt, 16)


def write_usd_curves(
    path: str | os.PathLike,
    strands: Strands | RaggedStrands,
    *,
    width: float | None = None,
    color: tuple[float, float, float] | None = None,
    name: str = "hair",
) -> None:
    """Write strands as an ASCII USD layer (``.usda``) holding one linear ``BasisCurves`` prim.

    The layer has ``metersPerUnit = 1`` and ``upAxis = "Y"``, so head space goes in unchanged:
    Blender, Unreal and ``usdview`` show the hair in metres, y up. The prim is
    ``/<name>/strands`` (an ``Xform`` with the curves below it, ``defaultPrim = "<name>"``) with
    ``type = "linear"``, ``curveVertexCounts``, ``points``, ``widths``, ``extent`` and
    ``primvars:displayColor``. Widths and colours are per curve (``interpolation = "uniform"``)
    when they come from the strands, else one constant value. Coordinates are printed with 9
    significant digits, which round-trips ``float32``.

    Args:
        path: output ``.usda`` path.
        strands: :class:`Strands` or :class:`RaggedStrands`, metres in head space.
        width: one strand diameter in metres for all curves; ``None`` uses ``strands.thickness``,
            else :data:`DEFAULT_HAIR_WIDTH`.
        color: one linear RGB colour for all curves; ``None`` uses ``strands.color``, else
            :data:`DEFAULT_HAIR_COLOR`.
        name: name of the root prim (a USD identifier: letters, digits, ``_``, not starting with a
            digit).

    Raises:
        InputError: non-finite values, a negative width, or an invalid ``name``.

    Example:
        >>> import numpy as np, os, tempfile
        >>> from machlib.hair import write_usd_curves, Strands
        >>> path = os.path.join(tempfile.mkdtemp(), "hair.usda")
        >>> write_usd_curves(path, Strands(np.zeros((2, 3, 3), np.float32)), width=1e-4)
        >>> text = open(path).read()
        >>> text.splitlines()[0], 'int[] curveVertexCounts = [3, 3]' in text
        ('#usda 1.0', True)
    """
    if not (name and (name[0].isalpha() or name[0] == "_") and all(c.isalnum() or c == "_" for c in name)
            and name.isascii()):
        raise InputError(f"write_usd_curves: name must be a USD identifier, got {name!r}")
    r = _ragged(strands, "write_usd_curves", path)
    counts = np.asarray(r.counts, np.int64)
    pts = np.asarray(r.points, np.float32)
    if width is not None:
        if not np.isfinite(width) or width < 0:
            raise InputError(f"write_usd_curves: width must be a finite number >= 0, got {width}")
        widths, w_interp = np.array([width], np.float32), "constant"
    elif r.thickness is not None:
        widths, w_interp = np.asarray(r.thickness, np.float32), "uniform"
    else:
        widths, w_interp = np.array([DEFAULT_HAIR_WIDTH], np.float32), "constant"
    if color is not None:
        colors = np.asarray(color, np.float32).reshape(1, 3)
        if not np.isfinite(colors).all():
            raise InputError(f"write_usd_curves: color must be 3 finite numbers, got {color!r}")
        c_interp = "constant"
    elif r.color is not None:
        colors, c_interp = np.asarray(r.color, np.float32), "uniform"
    else:
        colors, c_interp = np.asarray(DEFAULT_HAIR_COLOR, np.float32).reshape(1, 3), "constant"
    half = float(widths.max()) / 2 if widths.size else 0.0
    if pts.shape[0]:
        extent = np.stack([pts.min(0) - half, pts.max(0) + half])
    else:
        extent = np.zeros((2, 3), np.float32)
    text = f"""#usda 1.0
(
    defaultPrim = "{name}"
    doc = "machlib strand hair: metres, head space (+y up, +z out of the face)"
    metersPerUnit = 1
    upAxis = "Y"
)

def Xform "{name}"
{{
    def BasisCurves "strands"
    {{
        uniform token type = "linear"
        uniform token wrap = "nonperiodic"
        int[] curveVertexCounts = [{_fmt_list(counts, "%d")}]
        point3f[] points = [{_fmt_tuples(pts)}]
        float[] widths = [{_fmt_list(widths, "%.9g")}] (
            interpolation = "{w_interp}"
        )
        color3f[] primvars:displayColor = [{_fmt_tuples(colors)}] (
            interpolation = "{c_interp}"
        )
        float3[] extent = [{_fmt_tuples(extent.astype(np.float32))}]
    }}
}}
"""
    write_atomic(Path(path), text.encode("utf-8"))


def strands_to_gltf_lines(
    strands: Strands | RaggedStrands,
) -> tuple[Float[np.ndarray, "N 3"], UInt32[np.ndarray, " M"]]:
    """Vertex positions and indices for a glTF ``LINES`` primitive (``mode = 1``).

    Each pair ``indices[2k], indices[2k + 1]`` is one segment between consecutive points of one
    strand; no segment joins two strands, and one-point strands draw nothing. glTF is y-up in
    metres with the front toward +z, as head space is, so the positions go into a ``POSITION``
    accessor (``VEC3``, ``FLOAT``) unchanged and the indices into an ``UNSIGNED_INT`` index
    accessor.

    Args:
        strands: :class:`Strands` or :class:`RaggedStrands`.

    Returns:
        ``(positions, indices)``: ``(N, 3)`` ``float32`` and ``(2 · Σ(counts − 1),)`` ``uint32``.

    Example:
        >>> import numpy as np
        >>> from machlib.hair import strands_to_gltf_lines, RaggedStrands
        >>> pos, idx = strands_to_gltf_lines(RaggedStrands.from_list([np.zeros((3, 3)), np.ones((2, 3))]))
        >>> pos.shape, idx.tolist()
        ((5, 3), [0, 1, 1, 2, 3, 4])
    """
    r = strands.to_ragged() if isinstance(strands, Strands) else strands
    counts = np.asarray(r.counts, np.int64)
    pos = np.ascontiguousarray(np.asarray(r.points, np.float32))
    if pos.shape[0] > 0xFFFFFFFF:
        raise InputError("strands_to_gltf_lines: too many points for uint32 indices")
    seg = np.maximum(counts - 1, 0)
    first = np.repeat(np.cumsum(counts) - counts, seg) + _ramp(seg)
    idx = np.stack([first, first + 1], 1).reshape(-1).astype(np.uint32)
    return pos, idx
