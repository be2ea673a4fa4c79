"""A small, explicit glTF 2.0 / GLB writer, a reader for tests, and a structural validator.

Everything here is plain numpy (plus :mod:`zlib` for PNG). :class:`GltfBuilder` collects
materials, meshes (:class:`Triangles` and :class:`Lines` primitives, morph targets, skinning
attributes), nodes with a TRS hierarchy and skins, and :meth:`GltfBuilder.to_glb` packs them into
one binary glTF file: a JSON chunk padded with spaces and a BIN chunk padded with zeros, both
4-byte aligned, one bufferView per accessor or image, each starting on a 4-byte boundary.

Conventions (see :doc:`/conventions`):

* glTF is y-up, metres, front toward +z, as head space is, so positions go in unchanged.
* machlib's texture coordinates already follow glTF (``u`` right, ``v`` down, origin at the
  top-left corner of the image), so ``TEXCOORD_0`` is written **without** a ``v`` flip; only OBJ
  needs ``1 − v``.
* Matrices are given row-major (``M @ [x, y, z, 1]``) and written column-major, as glTF stores
  them; :func:`read_glb` transposes them back.
* Triangles are counter-clockwise seen from outside (glTF's front face).

Output bytes are a pure function of the input: the JSON is written in insertion order with
compact separators and PNGs are encoded here (filter "Up", zlib level 4).
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
import zlib
from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from .._errors import InputError
from .._version import __version__

__all__ = ["GltfBuilder", "Triangles", "Lines", "read_glb", "validate_gltf", "encode_png", "vertex_tangents"]

_GLB_MAGIC = 0x46546C67  # b"glTF"
_CHUNK_JSON = 0x4E4F534A  # b"JSON"
_CHUNK_BIN = 0x004E4942  # b"BIN\0"
_ARRAY_BUFFER = 34962
_ELEMENT_ARRAY_BUFFER = 34963

_BYTE, _UBYTE, _SHORT, _USHORT, _UINT, _FLOAT = 5120, 5121, 5122, 5123, 5125, 5126
_DTYPES = {_BYTE: "<i1", _UBYTE: "<u1", _SHORT: "<i2", _USHORT: "<u2", _UINT: "<u4", _FLOAT: "<f4"}
_NCOMP = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_MODES = {"points": 0, "lines": 1, "line_loop": 2, "line_strip": 3, "triangles": 4}
_PNG_SIG = b"\x89PNG\r\n\x1a\n"


def _fail(owner: str, msg: str) -> None:
    raise InputError(f"{owner}: {msg}")


def _array(owner: str, name: str, value, *, dims: int, last: int | tuple[int, ...] | None = None,
           rows: int | None = None, finite: bool = True) -> np.ndarray:
    try:
        a = np.asarray(value)
    except Exception as e:  # ragged lists and the like
        raise InputError(f"{owner}: {name} is not an array ({e})") from None
    if a.ndim != dims:
        _fail(owner, f"{name} must have {dims} dimensions, got shape {a.shape}")
    if last is not None and a.shape[-1] not in ((last,) if isinstance(last, int) else last):
        _fail(owner, f"{name} must have shape (..., {last}), got {a.shape}")
    if rows is not None and a.shape[0] != rows:
        _fail(owner, f"{name} has {a.shape[0]} rows but there are {rows} vertices")
    if a.dtype.kind not in "biuf":
        _fail(owner, f"{name} must be numeric, got dtype {a.dtype}")
    if finite and a.dtype.kind == "f" and not np.isfinite(a).all():
        _fail(owner, f"{name} contains NaN or infinity")
    return a


def _indices(owner: str, name: str, value, n_vertices: int) -> np.ndarray:
    a = np.asarray(value)
    if a.size and a.dtype.kind not in "iu":
        _fail(owner, f"{name} must be integers, got dtype {a.dtype}")
    a = a.astype(np.int64).reshape(-1)
    if a.size and (a.min() < 0 or a.max() >= n_vertices):
        _fail(owner, f"{name} out of range: values in [{a.min()}, {a.max()}] for {n_vertices} vertices")
    return a


def _ref(owner: str, name: str, value, n: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < n:
        _fail(owner, f"{name} {value!r} does not exist ({n} {what})")
    return int(value)


def _unit_rows(owner: str, name: str, v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v.astype(np.float64), axis=-1, keepdims=True)
    if (n < 1e-12).any():
        _fail(owner, f"{name} has {int((n < 1e-12).sum())} zero-length vectors")
    return (v / n).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# primitives


@dataclasses.dataclass(frozen=True, eq=False)
class Triangles:
    """A triangle primitive: vertex attributes, indices, morph targets and skinning weights.

    All per-vertex arrays have ``N`` rows (vertices already split at UV seams, e.g. by
    :meth:`machlib.Mesh.split`). Arrays are checked and converted when the primitive is built:
    bad shapes, NaN or out-of-range indices raise :class:`~machlib.InputError`.

    ``positions`` and ``indices`` are positional, the other fields keyword-only.

    Attributes:
        positions: ``(N, 3)`` float positions in metres (``POSITION``).
        indices: ``(F, 3)`` int triangle indices, counter-clockwise seen from outside; written as
            ``uint16`` when every index fits below 65535, else ``uint32``.
        normals: optional ``(N, 3)`` normals (``NORMAL``), renormalised to unit length.
        uv: optional ``(N, 2)`` texture coordinates (``TEXCOORD_0``), machlib's convention =
            glTF's (origin top-left, ``v`` down), written unflipped.
        colors: optional ``(N, 3|4)`` vertex colours (``COLOR_0``) in ``[0, 1]`` (float) or
            ``uint8`` (written normalised).
        tangents: optional ``(N, 4)`` tangents (``TANGENT``): unit ``xyz``, ``w = ±1``.
        joints: optional ``(N, K)`` int joint indices into the skin's joint list (``JOINTS_0``).
        weights: optional ``(N, K)`` non-negative skin weights (``WEIGHTS_0``); the 4 largest
            influences per vertex are kept, duplicates merged and each row normalised to sum 1.
        target_positions: optional ``(T, N, 3)`` morph-target position deltas in metres.
        target_normals: optional ``(T, N, 3)`` morph-target normal deltas.
        material: optional material index from :meth:`GltfBuilder.add_material`.

    Example:
        >>> from machlib.export import Triangles
        >>> import numpy as np
        >>> t = Triangles(np.eye(3), np.array([[0, 1, 2]]), uv=[[0, 0], [1, 0], [0, 1]])
        >>> t.positions.dtype, t.indices.tolist(), t.num_targets
        (dtype('float32'), [0, 1, 2], 0)
    """

    positions: ArrayLike
    indices: ArrayLike
    _: dataclasses.KW_ONLY
    normals: ArrayLike | None = None
    uv: ArrayLike | None = None
    colors: ArrayLike | None = None
    tangents: ArrayLike | None = None
    joints: ArrayLike | None = None
    weights: ArrayLike | None = None
    target_positions: ArrayLike | None = None
    target_normals: ArrayLike | None = None
    material: int | None = None

    def __post_init__(self):
        own = "Triangles"
        pos = _array(own, "positions", self.positions, dims=2, last=3).astype(np.float32)
        n = len(pos)
        if n == 0:
            _fail(own, "positions is empty")
        tri = _array(own, "indices", self.indices, dims=2, last=3)
        if len(tri) == 0:
            _fail(own, "indices is empty")
        put = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        put("positions", pos)
        put("indices", _indices(own, "indices", tri, n))
        if self.normals is not None:
            put("normals", _unit_rows(own, "normals", _array(own, "normals", self.normals, dims=2, last=3, rows=n)))
        if self.uv is not None:
            put("uv", _array(own, "uv", self.uv, dims=2, last=2, rows=n).astype(np.float32))
        if self.colors is not None:
            put("colors", _colors(own, self.colors, n))
        if self.tangents is not None:
            t = _array(own, "tangents", self.tangents, dims=2, last=4, rows=n)
            if not np.isin(t[:, 3], (-1.0, 1.0)).all():
                _fail(own, "tangents[:, 3] (handedness) must be +1 or -1")
            put("tangents", np.concatenate([_unit_rows(own, "tangents", t[:, :3]),
                                            t[:, 3:].astype(np.float32)], 1))
        if (self.joints is None) != (self.weights is None):
            _fail(own, "joints and weights go together: give both or neither")
        if self.joints is not None:
            j, w = _skin_weights(own, self.joints, self.weights, n)
            put("joints", j)
            put("weights", w)
        tp, tn = self.target_positions, self.target_normals
        if tp is None and tn is not None:
            _fail(own, "target_normals need target_positions")
        if tp is not None:
            tp = _array(own, "target_positions", tp, dims=3, last=3).astype(np.float32)
            if tp.shape[1] != n:
                _fail(own, f"target_positions has shape {tp.shape}, expected (T, {n}, 3)")
            put("target_positions", tp)
            if tn is not None:
                if self.normals is None:
                    _fail(own, "target_normals need base normals (a morph target may only move existing attributes)")
                tn = _array(own, "target_normals", tn, dims=3, last=3).astype(np.float32)
                if tn.shape != tp.shape:
                    _fail(own, f"target_normals has shape {tn.shape}, target_positions {tp.shape}")
                put("target_normals", tn)

    @property
    def num_targets(self) -> int:
        """Number of morph targets ``T`` (0 without targets)."""
        return 0 if self.target_positions is None else int(self.target_positions.shape[0])


@dataclasses.dataclass(frozen=True, eq=False)
class Lines:
    """A line primitive, e.g. hair strands (``mode`` LINES or LINE_STRIP).

    For many strands use ``mode="lines"`` with an index pair per segment
    (:func:`machlib.hair.strands_to_gltf_lines` builds them); glTF forbids primitive restart, so
    one LINE_STRIP primitive draws one connected polyline.

    ``positions`` and ``indices`` are positional, the other fields keyword-only.

    Attributes:
        positions: ``(N, 3)`` float positions in metres.
        indices: optional int indices, ``(M,)`` or ``(M/2, 2)`` for ``"lines"`` (``M`` even),
            ``(M,)`` with ``M ≥ 2`` for ``"line_strip"``; ``None`` draws the vertices in order.
        mode: ``"lines"`` (glTF mode 1) or ``"line_strip"`` (mode 3).
        colors: optional ``(N, 3|4)`` vertex colours in ``[0, 1]`` or ``uint8`` (``COLOR_0``).
        material: optional material index.

    Example:
        >>> from machlib.export import Lines
        >>> import numpy as np
        >>> Lines(np.zeros((4, 3)), [0, 1, 2, 3]).indices.tolist()
        [0, 1, 2, 3]
    """

    positions: ArrayLike
    indices: ArrayLike | None = None
    _: dataclasses.KW_ONLY
    mode: Literal["lines", "line_strip"] = "lines"
    colors: ArrayLike | None = None
    material: int | None = None

    def __post_init__(self):
        own = "Lines"
        pos = _array(own, "positions", self.positions, dims=2, last=3).astype(np.float32)
        if len(pos) == 0:
            _fail(own, "positions is empty")
        if self.mode not in ("lines", "line_strip"):
            _fail(own, f"mode must be 'lines' or 'line_strip', got {self.mode!r}")
        object.__setattr__(self, "positions", pos)
        if self.indices is not None:
            idx = _indices(own, "indices", self.indices, len(pos))
            object.__setattr__(self, "indices", idx)
        m = len(pos) if self.indices is None else len(self.indices)
        if self.mode == "lines" and (m == 0 or m % 2):
            _fail(own, f"mode 'lines' needs a positive, even number of indices, got {m}")
        if self.mode == "line_strip" and m < 2:
            _fail(own, f"mode 'line_strip' needs at least 2 indices, got {m}")
        if self.colors is not None:
            object.__setattr__(self, "colors", _colors(own, self.colors, len(pos)))


def _colors(owner: str, value, n: int) -> np.ndarray:
    c = _array(owner, "colors", value, dims=2, last=(3, 4), rows=n)
    if c.dtype == np.uint8:
        return c
    if c.dtype.kind != "f":
        _fail(owner, f"colors must be float in [0, 1] or uint8, got dtype {c.dtype}")
    if c.size and (c.min() < 0 or c.max() > 1):
        _fail(owner, f"colors must lie in [0, 1], got [{c.min():g}, {c.max():g}]")
    return c.astype(np.float32)


def _skin_weights(owner: str, joints, weights, n: int) -> tuple[np.ndarray, np.ndarray]:
    j = _array(owner, "joints", joints, dims=2, rows=n)
    w = _array(owner, "weights", weights, dims=2, rows=n).astype(np.float64)
    if j.dtype.kind not in "iu":
        _fail(owner, f"joints must be integers, got dtype {j.dtype}")
    if j.shape != w.shape:
        _fail(owner, f"joints {j.shape} and weights {w.shape} must have the same shape")
    if j.size and j.min() < 0:
        _fail(owner, "joints must be >= 0")
    if j.size and j.max() > 65534:
        _fail(owner, f"joint index {j.max()} too large (glTF stores JOINTS_0 as uint16)")
    if (w < 0).any():
        _fail(owner, "weights must be >= 0")
    j = j.astype(np.int64)
    # merge duplicate joints of a vertex (sort by joint, sum equal runs)
    order = np.argsort(j, axis=1, kind="stable")
    j = np.take_along_axis(j, order, 1)
    w = np.take_along_axis(w, order, 1)
    dup = np.zeros_like(j, dtype=bool)
    dup[:, 1:] = j[:, 1:] == j[:, :-1]
    for k in range(1, j.shape[1]):  # carry a duplicate's weight to the first of its run
        carry = dup[:, k]
        first = k - 1
        w_prev = w[:, first].copy()
        w[carry, first] = w_prev[carry] + w[carry, k]
        w[carry, k] = 0.0
        j[carry, k] = j[carry, first]
    w[dup] = 0.0
    # keep the 4 largest
    k = min(4, j.shape[1])
    top = np.argsort(-w, axis=1, kind="stable")[:, :k]
    j4 = np.zeros((n, 4), np.int64)
    w4 = np.zeros((n, 4), np.float64)
    j4[:, :k] = np.take_along_axis(j, top, 1)
    w4[:, :k] = np.take_along_axis(w, top, 1)
    total = w4.sum(1)
    if (total <= 0).any():
        _fail(owner, f"{int((total <= 0).sum())} vertices have all-zero skin weights")
    w4 /= total[:, None]
    j4[w4 == 0] = 0
    w32 = w4.astype(np.float32)
    rows = np.arange(n)
    big = np.argmax(w32, axis=1)
    others = w32.astype(np.float64).sum(1) - w32[rows, big]
    w32[rows, big] = (1.0 - others).astype(np.float32)  # the float32 sum is 1 to half an ulp
    return j4.astype(np.uint16), w32


def vertex_tangents(positions: ArrayLike, normals: ArrayLike, uv: ArrayLike, indices: ArrayLike) -> np.ndarray:
    """Per-vertex tangents for glTF's ``TANGENT`` (needed by a normal-mapped material).

    Each triangle's tangent (direction of increasing ``u``) and bitangent (direction "up" in the
    image, i.e. decreasing machlib/glTF ``v``, where a normal map's green channel points) are
    accumulated per vertex, area-weighted; the tangent is made orthogonal to the normal
    (Gram-Schmidt) and ``w = ±1`` records the handedness so that
    ``bitangent = w · cross(normal, tangent)``. A vertex without a usable UV gradient gets any
    unit tangent orthogonal to its normal.

    Args:
        positions: ``(N, 3)`` positions.
        normals: ``(N, 3)`` unit normals.
        uv: ``(N, 2)`` texture coordinates (origin top-left, ``v`` down).
        indices: ``(F, 3)`` triangle indices.

    Returns:
        ``(N, 4)`` ``float32`` tangents: unit ``xyz`` orthogonal to the normal, ``w`` in ``{-1, 1}``.

    Example:
        >>> from machlib.export import vertex_tangents
        >>> import numpy as np
        >>> p = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
        >>> n = np.tile([0.0, 0, 1], (3, 1))
        >>> vertex_tangents(p, n, [[0, 1], [1, 1], [0, 0]], [[0, 1, 2]])[0].tolist()
        [1.0, 0.0, 0.0, 1.0]
    """
    own = "vertex_tangents"
    p = _array(own, "positions", positions, dims=2, last=3).astype(np.float64)
    n = _array(own, "normals", normals, dims=2, last=3, rows=len(p)).astype(np.float64)
    t = _array(own, "uv", uv, dims=2, last=2, rows=len(p)).astype(np.float64)
    f = _indices(own, "indices", _array(own, "indices", indices, dims=2, last=3), len(p)).reshape(-1, 3)
    t = np.stack([t[:, 0], 1.0 - t[:, 1]], 1)  # image-up v, so the bitangent follows green = +y
    e1, e2 = p[f[:, 1]] - p[f[:, 0]], p[f[:, 2]] - p[f[:, 0]]
    d1, d2 = t[f[:, 1]] - t[f[:, 0]], t[f[:, 2]] - t[f[:, 0]]
    det = d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1]
    ok = np.abs(det) > 1e-20
    r = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)[:, None]
    # the UV-area factor |det| keeps each triangle's weight proportional to its 3D area
    tan = (e1 * d2[:, 1:] - e2 * d1[:, 1:]) * r * np.abs(det)[:, None]
    bit = (e2 * d1[:, :1] - e1 * d2[:, :1]) * r * np.abs(det)[:, None]
    T = np.zeros_like(p)
    B = np.zeros_like(p)
    for c in range(3):
        np.add.at(T, f[:, c], tan)
        np.add.at(B, f[:, c], bit)
    n = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)
    T -= n * np.sum(n * T, 1, keepdims=True)
    length = np.linalg.norm(T, axis=1)
    bad = length < 1e-12
    if bad.any():  # any unit vector orthogonal to the normal
        helper = np.where(np.abs(n[bad, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
        alt = np.cross(n[bad], helper)
        T[bad] = alt
        length[bad] = np.linalg.norm(alt, axis=1)
    T /= length[:, None]
    w = np.where(np.sum(np.cross(n, T) * B, 1) < 0, -1.0, 1.0)
    return np.concatenate([T, w[:, None]], 1).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# PNG


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(image: ArrayLike) -> bytes:
    """Encode an 8-bit image as PNG bytes (deterministic: filter "Up" on every row, zlib level 4).

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` image, ``C`` in 1–4 (grey, grey+alpha, RGB, RGBA), row 0
            at the top; ``uint8``, or float in ``[0, 1]`` (rounded to 8 bits).

    Returns:
        The PNG file contents.

    Example:
        >>> from machlib.export import encode_png
        >>> import numpy as np
        >>> png = encode_png(np.zeros((2, 3, 3), np.uint8))
        >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n", png[16:24].hex()
        (True, '0000000300000002')
    """
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
        _fail("encode_png", f"image must have shape (H, W) or (H, W, 1..4), got {np.shape(image)}")
    if a.dtype.kind == "f":
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            _fail("encode_png", "a float image must be finite and lie in [0, 1]")
        a = np.round(a * 255.0).astype(np.uint8)
    elif a.dtype != np.uint8:
        _fail("encode_png", f"image must be uint8 or float in [0, 1], got dtype {a.dtype}")
    h, w, c = a.shape
    rows = a.reshape(h, w * c)
    up = rows.copy()
    up[1:] = rows[1:] - rows[:-1]  # uint8 wraps modulo 256, as PNG's filter does
    raw = np.concatenate([np.full((h, 1), 2, np.uint8), up], 1).tobytes()
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    ihdr = struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0)
    return _PNG_SIG + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw, 4)) + _chunk(b"IEND", b"")


def _png_problem(data: bytes) -> str | None:
    """Why ``data`` is not a well-formed PNG (signature, chunk CRCs, IHDR, IDAT size), or None."""
    if data[:8] != _PNG_SIG:
        return "not a PNG (bad signature)"
    pos, chunks = 8, []
    while pos < len(data):
        if pos + 12 > len(data):
            return "truncated PNG chunk"
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if pos + 12 + length > len(data):
            return f"PNG chunk {kind!r} runs past the end"
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if crc != zlib.crc32(kind + body):
            return f"PNG chunk {kind!r} has a bad CRC"
        chunks.append((kind, body))
        pos += 12 + length
        if kind == b"IEND":
            break
    if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        return "PNG does not start with a valid IHDR"
    if chunks[-1][0] != b"IEND":
        return "PNG has no IEND chunk"
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(ctype)
    if w == 0 or h == 0 or channels is None or depth not in (1, 2, 4, 8, 16):
        return f"PNG IHDR is invalid (size {w}x{h}, bit depth {depth}, colour type {ctype})"
    idat = b"".join(b for k, b in chunks if k == b"IDAT")
    if not idat:
        return "PNG has no IDAT"
    try:
        raw = zlib.decompress(idat)
    except zlib.error as e:
        return f"PNG image data does not decompress ({e})"
    if interlace == 0 and len(raw) != h * (1 + (w * channels * depth + 7) // 8):
        return f"PNG image data has {len(raw)} bytes, expected {h * (1 + (w * channels * depth + 7) // 8)}"
    return None


# ---------------------------------------------------------------------------------------------
# builder


def _quat_matrix(q: np.ndarray) -> np.ndarray:
    x, y, z, w = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def _floats(a) -> list[float]:
    return [float(x) for x in np.asarray(a, np.float64).reshape(-1)]


class GltfBuilder:
    """Collects materials, meshes, nodes and skins, and writes them as one GLB file.

    Indices returned by the ``add_*`` methods are glTF indices, used to connect the parts:
    materials go into primitives, meshes and skins into nodes, nodes into skins (as joints) and
    into other nodes (``parent=``). Nodes without a parent form the scene. Nothing is written
    until :meth:`to_glb`; its output depends only on what was added, in the order it was added.

    Args:
        generator: ``asset.generator`` string; default ``"machlib <version>"``.

    Example:
        >>> from machlib.export import GltfBuilder, Triangles, read_glb, validate_gltf
        >>> import numpy as np
        >>> b = GltfBuilder(generator="doc")
        >>> red = b.add_material(base_color=(1.0, 0.0, 0.0, 1.0))
        >>> tri = Triangles(np.eye(3), np.array([[0, 1, 2]]), material=red)
        >>> node = b.add_node(mesh=b.add_mesh([tri], name="triangle"), name="root")
        >>> glb = b.to_glb()
        >>> glb[:4], validate_gltf(glb), read_glb(glb)["json"]["meshes"][0]["name"]
        (b'glTF', [], 'triangle')
    """

    def __init__(self, *, generator: str | None = None):
        if generator is None:
            generator = f"machlib {__version__}"
        self._generator = generator
        self._bin = bytearray()
        self._views: list[dict] = []
        self._accessors: list[dict] = []
        self._images: list[dict] = []
        self._image_keys: dict[bytes, int] = {}
        self._textures: list[dict] = []
        self._texture_keys: dict[int, int] = {}
        self._materials: list[dict] = []
        self._meshes: list[dict] = []
        self._mesh_info: list[tuple[bool, int]] = []  # (skinned, max joint + 1)
        self._nodes: list[dict] = []
        self._parent: list[int | None] = []
        self._skins: list[dict] = []

    # -- low level ---------------------------------------------------------------------------

    def _view(self, data: bytes, *, target: int | None = None, stride: int | None = None) -> int:
        self._bin.extend(b"\0" * (-len(self._bin) % 4))
        view = {"buffer": 0, "byteOffset": len(self._bin), "byteLength": len(data)}
        if stride is not None:
            view["byteStride"] = stride
        if target is not None:
            view["target"] = target
        self._bin.extend(data)
        self._views.append(view)
        return len(self._views) - 1

    def _accessor(self, a: np.ndarray, kind: str, *, target: int | None = None,
                  normalized: bool = False, bounds: bool = False) -> int:
        comp = {np.dtype("int8"): _BYTE, np.dtype("uint8"): _UBYTE, np.dtype("int16"): _SHORT,
                np.dtype("uint16"): _USHORT, np.dtype("uint32"): _UINT, np.dtype("float32"): _FLOAT}[a.dtype]
        count = a.shape[0]
        if kind.startswith("MAT"):
            k = int(kind[3])
            a = np.ascontiguousarray(np.swapaxes(a.reshape(count, k, k), 1, 2))  # column-major
        elem = a.reshape(count, -1).astype(a.dtype.newbyteorder("<"))
        size = elem.shape[1] * elem.itemsize
        stride = None
        if target == _ARRAY_BUFFER and size % 4:  # vertex elements start on 4-byte boundaries
            stride = size + (-size % 4)
            padded = np.zeros((count, stride), np.uint8)
            padded[:, :size] = elem.view(np.uint8).reshape(count, size)
            data = padded.tobytes()
        else:
            data = elem.tobytes()
        acc = {"bufferView": self._view(data, target=target, stride=stride), "componentType": comp,
               "count": int(count), "type": kind}
        if normalized:
            acc["normalized"] = True
        if bounds:
            acc["min"] = _floats(elem.min(0))
            acc["max"] = _floats(elem.max(0))
        self._accessors.append(acc)
        return len(self._accessors) - 1

    def _sparse_accessor(self, a: np.ndarray, kind: str, *, bounds: bool = False) -> int:
        """A float accessor stored sparsely: the rows that are not all zero, and their indices.

        Morph targets move a few vertices of a part (a blink moves the lids, not the scalp), so
        most rows are zero; glTF's sparse accessors store only the others (no ``bufferView``
        means "zeros"). Falls back to a dense accessor when sparse storage would not be smaller.
        """
        count = a.shape[0]
        rows = np.nonzero(np.any(a.reshape(count, -1) != 0, axis=1))[0]
        index_type = np.uint8 if count <= 256 else (np.uint16 if count <= 65536 else np.uint32)
        item = a.reshape(count, -1).shape[1] * a.itemsize
        if rows.size * (item + np.dtype(index_type).itemsize) >= count * item:
            return self._accessor(a, kind, target=_ARRAY_BUFFER, bounds=bounds)
        acc = {"componentType": _FLOAT, "count": int(count), "type": kind}
        if bounds:
            flat = a.reshape(count, -1)
            acc["min"] = _floats(flat.min(0))
            acc["max"] = _floats(flat.max(0))
        if rows.size:
            comp = {np.uint8: _UBYTE, np.uint16: _USHORT, np.uint32: _UINT}[index_type]
            values = np.ascontiguousarray(a.reshape(count, -1)[rows]).astype("<f4")
            acc["sparse"] = {"count": int(rows.size),
                             "indices": {"bufferView": self._view(rows.astype(index_type).astype(
                                 np.dtype(index_type).newbyteorder("<")).tobytes()), "componentType": comp},
                             "values": {"bufferView": self._view(values.tobytes())}}
        self._accessors.append(acc)
        return len(self._accessors) - 1

    def _texture(self, image, owner: str) -> int:
        if isinstance(image, (bytes, bytearray)):
            png = bytes(image)
            problem = _png_problem(png)
            if problem:
                _fail(owner, f"texture bytes: {problem}")
        else:
            png = encode_png(image)
        if png not in self._image_keys:
            view = self._view(png)
            self._images.append({"bufferView": view, "mimeType": "image/png"})
            self._image_keys[png] = len(self._images) - 1
        img = self._image_keys[png]
        if img not in self._texture_keys:
            self._textures.append({"sampler": 0, "source": img})
            self._texture_keys[img] = len(self._textures) - 1
        return self._texture_keys[img]

    # -- public ------------------------------------------------------------------------------

    def add_material(
        self,
        *,
        name: str | None = None,
        base_color: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
        base_color_texture: ArrayLike | bytes | None = None,
        metallic: float = 0.0,
        roughness: float = 0.5,
        metallic_roughness_texture: ArrayLike | bytes | None = None,
        normal_texture: ArrayLike | bytes | None = None,
        normal_scale: float = 1.0,
        occlusion_texture: ArrayLike | bytes | None = None,
        emissive: Sequence[float] = (0.0, 0.0, 0.0),
        alpha_mode: Literal["OPAQUE", "MASK", "BLEND"] = "OPAQUE",
        alpha_cutoff: float = 0.5,
        double_sided: bool = False,
        specular: float | None = None,
        specular_texture: ArrayLike | bytes | None = None,
    ) -> int:
        """Add a PBR metallic-roughness material; textures are embedded as PNG.

        Texture arguments take an ``(H, W, C)`` ``uint8`` (or float ``[0, 1]``) image, row 0 at
        the top, or already-encoded PNG bytes. Identical images are stored once. Channel meaning
        is glTF's: base colour is sRGB (RGB or RGBA); the metallic-roughness texture has
        roughness in G and metallic in B (linear) and multiplies the factors; the normal texture
        is a tangent-space normal map (RGB = ``(n + 1) / 2``, glTF's OpenGL convention: green
        is +y, "up" in the image); the occlusion texture uses R.

        Args:
            name: material name.
            base_color: RGBA factor in ``[0, 1]`` (linear), multiplied with the texture.
            base_color_texture: optional albedo texture.
            metallic: metallic factor in ``[0, 1]``.
            roughness: roughness factor in ``[0, 1]``.
            metallic_roughness_texture: optional texture (G roughness, B metallic).
            normal_texture: optional tangent-space normal map.
            normal_scale: scale of the normal map's x and y.
            occlusion_texture: optional ambient-occlusion texture (R).
            emissive: RGB emissive factor in ``[0, 1]``.
            alpha_mode: ``"OPAQUE"``, ``"MASK"`` (with ``alpha_cutoff``) or ``"BLEND"``.
            alpha_cutoff: alpha threshold for ``"MASK"``.
            double_sided: render back faces too.
            specular: optional ``KHR_materials_specular`` ``specularFactor`` in ``[0, 1]`` (the
                strength of the dielectric reflection; 1 is glTF's default F0 of 0.04). The
                extension is written (and listed in ``extensionsUsed``) when this or
                ``specular_texture`` is given.
            specular_texture: optional ``KHR_materials_specular`` ``specularTexture``: an RGBA
                image whose alpha channel (linear data) multiplies ``specular`` (default 1). It
                may be the same image as ``metallic_roughness_texture`` (stored once).

        Returns:
            The material index.

        Example:
            >>> from machlib.export import GltfBuilder
            >>> import numpy as np
            >>> b = GltfBuilder(generator="doc")
            >>> b.add_material(name="skin", base_color_texture=np.full((4, 4, 3), 200, np.uint8))
            0
        """
        own = "GltfBuilder.add_material"
        bc = np.asarray(base_color, np.float64)
        if bc.shape != (4,) or not np.isfinite(bc).all() or bc.min() < 0 or bc.max() > 1:
            _fail(own, f"base_color must be 4 numbers in [0, 1], got {base_color!r}")
        em = np.asarray(emissive, np.float64)
        if em.shape != (3,) or not np.isfinite(em).all() or em.min() < 0 or em.max() > 1:
            _fail(own, f"emissive must be 3 numbers in [0, 1], got {emissive!r}")
        for key, v in (("metallic", metallic), ("roughness", roughness), ("alpha_cutoff", alpha_cutoff)):
            if not (math.isfinite(v) and 0 <= v <= 1):
                _fail(own, f"{key} must be in [0, 1], got {v}")
        if not math.isfinite(normal_scale):
            _fail(own, f"normal_scale must be finite, got {normal_scale}")
        if alpha_mode not in ("OPAQUE", "MASK", "BLEND"):
            _fail(own, f"alpha_mode must be OPAQUE, MASK or BLEND, got {alpha_mode!r}")
        pbr: dict = {"baseColorFactor": _floats(bc)}
        if base_color_texture is not None:
            pbr["baseColorTexture"] = {"index": self._texture(base_color_texture, own)}
        pbr["metallicFactor"] = float(metallic)
        pbr["roughnessFactor"] = float(roughness)
        if metallic_roughness_texture is not None:
            pbr["metallicRoughnessTexture"] = {"index": self._texture(metallic_roughness_texture, own)}
        mat: dict = {}
        if name is not None:
            mat["name"] = str(name)
        mat["pbrMetallicRoughness"] = pbr
        if normal_texture is not None:
            mat["normalTexture"] = {"index": self._texture(normal_texture, own)}
            if normal_scale != 1.0:
                mat["normalTexture"]["scale"] = float(normal_scale)
        if occlusion_texture is not None:
            mat["occlusionTexture"] = {"index": self._texture(occlusion_texture, own)}
        if em.any():
            mat["emissiveFactor"] = _floats(em)
        if alpha_mode != "OPAQUE":
            mat["alphaMode"] = alpha_mode
            if alpha_mode == "MASK":
                mat["alphaCutoff"] = float(alpha_cutoff)
        if double_sided:
            mat["doubleSided"] = True
        if specular is not None or specular_texture is not None:
            f = 1.0 if specular is None else specular
            if not (math.isfinite(f) and 0 <= f <= 1):
                _fail(own, f"specular must be in [0, 1], got {specular}")
            ext: dict = {"specularFactor": float(f)}
            if specular_texture is not None:
                if not isinstance(specular_texture, (bytes, bytearray)) and np.shape(specular_texture)[-1:] != (4,):
                    _fail(own, f"specular_texture must be an RGBA image (alpha = specular), "
                               f"got shape {np.shape(specular_texture)}")
                ext["specularTexture"] = {"index": self._texture(specular_texture, own)}
            mat["extensions"] = {"KHR_materials_specular": ext}
        self._materials.append(mat)
        return len(self._materials) - 1

    def add_mesh(
        self,
        primitives: Sequence[Triangles | Lines],
        *,
        name: str | None = None,
        target_names: Sequence[str] | None = None,
        weights: ArrayLike | None = None,
    ) -> int:
        """Add a mesh made of one or more primitives.

        Args:
            primitives: :class:`Triangles` and/or :class:`Lines`. With morph targets, every
                primitive must have the same number ``T`` of them (glTF's rule), so lines cannot
                share a mesh with morphing triangles.
            name: mesh name.
            target_names: ``T`` unique names, written to ``mesh.extras.targetNames`` (the
                convention of three.js, Blender and Babylon), e.g.
                :data:`machlib.animation.ARKIT_BLENDSHAPES`.
            weights: default morph weights ``(T,)``; zeros when omitted.

        Returns:
            The mesh index.

        Example:
            >>> from machlib.export import GltfBuilder, Triangles
            >>> import numpy as np
            >>> b = GltfBuilder(generator="doc")
            >>> t = Triangles(np.eye(3), [[0, 1, 2]], target_positions=np.ones((1, 3, 3)))
            >>> b.add_mesh([t], target_names=["up"])
            0
        """
        own = "GltfBuilder.add_mesh"
        prims = list(primitives)
        if not prims:
            _fail(own, "a mesh needs at least one primitive")
        for p in prims:
            if not isinstance(p, (Triangles, Lines)):
                _fail(own, f"primitives must be Triangles or Lines, got {type(p).__name__}")
            if p.material is not None:
                _ref(own, "material", p.material, len(self._materials), "materials")
        counts = {p.num_targets if isinstance(p, Triangles) else 0 for p in prims}
        if len(counts) != 1:
            _fail(own, f"all primitives of a mesh need the same number of morph targets, got {sorted(counts)}")
        (n_targets,) = counts
        skinned = {isinstance(p, Triangles) and p.joints is not None for p in prims}
        if len(skinned) != 1:
            _fail(own, "either every primitive of a mesh is skinned (joints/weights) or none")
        if target_names is not None:
            names = [str(s) for s in target_names]
            if len(names) != n_targets:
                _fail(own, f"{len(names)} target_names for {n_targets} morph targets")
            if len(set(names)) != len(names):
                _fail(own, "target_names must be unique")
        elif n_targets:
            names = [f"target_{i}" for i in range(n_targets)]
        mesh: dict = {}
        if name is not None:
            mesh["name"] = str(name)
        if n_targets:
            w = np.zeros(n_targets) if weights is None else _array(own, "weights", weights, dims=1)
            if w.shape != (n_targets,):
                _fail(own, f"weights must have shape ({n_targets},), got {w.shape}")
        elif weights is not None:
            _fail(own, "weights given for a mesh without morph targets")
        out = []
        max_joint = 0
        for p in prims:
            attrs = {"POSITION": self._accessor(p.positions, "VEC3", target=_ARRAY_BUFFER, bounds=True)}
            prim: dict = {"attributes": attrs}
            if isinstance(p, Triangles):
                if p.normals is not None:
                    attrs["NORMAL"] = self._accessor(p.normals, "VEC3", target=_ARRAY_BUFFER)
                if p.tangents is not None:
                    attrs["TANGENT"] = self._accessor(p.tangents, "VEC4", target=_ARRAY_BUFFER)
                if p.uv is not None:
                    attrs["TEXCOORD_0"] = self._accessor(p.uv, "VEC2", target=_ARRAY_BUFFER)
            if p.colors is not None:
                attrs["COLOR_0"] = self._accessor(p.colors, f"VEC{p.colors.shape[1]}", target=_ARRAY_BUFFER,
                                                  normalized=p.colors.dtype == np.uint8)
            if isinstance(p, Triangles) and p.joints is not None:
                jt = p.joints.astype(np.uint8) if p.joints.max() < 256 else p.joints
                attrs["JOINTS_0"] = self._accessor(jt, "VEC4", target=_ARRAY_BUFFER)
                attrs["WEIGHTS_0"] = self._accessor(p.weights, "VEC4", target=_ARRAY_BUFFER)
                max_joint = max(max_joint, int(p.joints.max()) + 1)
            if p.indices is not None:
                idx = p.indices
                idx = idx.astype(np.uint16) if len(p.positions) <= 65535 else idx.astype(np.uint32)
                prim["indices"] = self._accessor(idx, "SCALAR", target=_ELEMENT_ARRAY_BUFFER)
            if p.material is not None:
                prim["material"] = int(p.material)
            prim["mode"] = _MODES[p.mode] if isinstance(p, Lines) else 4
            if n_targets:
                targets = []
                for t in range(n_targets):
                    tgt = {"POSITION": self._sparse_accessor(p.target_positions[t], "VEC3", bounds=True)}
                    if p.target_normals is not None:
                        tgt["NORMAL"] = self._sparse_accessor(p.target_normals[t], "VEC3")
                    targets.append(tgt)
                prim["targets"] = targets
            out.append(prim)
        mesh["primitives"] = out
        if n_targets:
            mesh["weights"] = _floats(w)
            mesh["extras"] = {"targetNames": names}
        self._meshes.append(mesh)
        self._mesh_info.append((skinned == {True}, max_joint))
        return len(self._meshes) - 1

    def add_node(
        self,
        *,
        name: str | None = None,
        parent: int | None = None,
        translation: Sequence[float] | None = None,
        rotation: Sequence[float] | None = None,
        scale: Sequence[float] | None = None,
        mesh: int | None = None,
        skin: int | None = None,
    ) -> int:
        """Add a node with a local TRS transform, optionally under ``parent`` and with a mesh.

        The local matrix is ``T · R · S``. A skinned mesh node (``skin`` given) should be a root
        node without a transform: glTF ignores its transform and the validator warns.

        Args:
            name: node name.
            parent: index of an existing node to hang this one under; ``None`` makes a scene root.
            translation: ``(3,)`` metres.
            rotation: unit quaternion ``(x, y, z, w)`` (glTF's order); renormalised.
            scale: ``(3,)`` scale factors.
            mesh: mesh index.
            skin: skin index; requires a skinned ``mesh`` whose joint indices fit the skin.

        Returns:
            The node index.

        Example:
            >>> from machlib.export import GltfBuilder
            >>> b = GltfBuilder(generator="doc")
            >>> root = b.add_node(name="neck", translation=(0.0, 1.5, 0.0))
            >>> b.add_node(name="head", parent=root, rotation=(0.0, 0.0, 0.0, 1.0))
            1
        """
        own = "GltfBuilder.add_node"
        node: dict = {}
        if name is not None:
            node["name"] = str(name)
        if parent is not None:
            parent = _ref(own, "parent", parent, len(self._nodes), "nodes")
        for key, value, n in (("translation", translation, 3), ("rotation", rotation, 4), ("scale", scale, 3)):
            if value is None:
                continue
            v = np.asarray(value, np.float64)
            if v.shape != (n,) or not np.isfinite(v).all():
                _fail(own, f"{key} must be {n} finite numbers, got {value!r}")
            if key == "rotation":
                norm = np.linalg.norm(v)
                if norm < 1e-6:
                    _fail(own, f"rotation must be a unit quaternion (x, y, z, w), got {value!r}")
                v = v / norm
            node[key] = _floats(v)
        if mesh is not None:
            mesh = _ref(own, "mesh", mesh, len(self._meshes), "meshes")
            node["mesh"] = mesh
        if skin is not None:
            skin = _ref(own, "skin", skin, len(self._skins), "skins")
            if mesh is None or not self._mesh_info[mesh][0]:
                _fail(own, "a skin needs a mesh with joints and weights")
            n_joints = len(self._skins[skin]["joints"])
            if self._mesh_info[mesh][1] > n_joints:
                _fail(own, f"mesh {mesh} uses joint {self._mesh_info[mesh][1] - 1} but skin {skin} has {n_joints} joints")
            node["skin"] = int(skin)
        elif mesh is not None and self._mesh_info[mesh][0]:
            _fail(own, f"mesh {mesh} has joints and weights: give its node a skin")
        self._nodes.append(node)
        self._parent.append(parent)
        if parent is not None:
            self._nodes[parent].setdefault("children", []).append(len(self._nodes) - 1)
        return len(self._nodes) - 1

    def world_matrix(self, node: int) -> np.ndarray:
        """The ``(4, 4)`` row-major world transform of ``node`` (product of the local ``T·R·S``).

        Example:
            >>> from machlib.export import GltfBuilder
            >>> b = GltfBuilder(generator="doc")
            >>> a = b.add_node(translation=(1.0, 0.0, 0.0))
            >>> b.world_matrix(b.add_node(parent=a, translation=(0.0, 2.0, 0.0)))[:3, 3].tolist()
            [1.0, 2.0, 0.0]
        """
        node = _ref("GltfBuilder.world_matrix", "node", node, len(self._nodes), "nodes")
        m = np.eye(4)
        while node is not None:
            m = _local_matrix(self._nodes[node]) @ m
            node = self._parent[node]
        return m

    def add_skin(
        self,
        joints: Sequence[int],
        *,
        name: str | None = None,
        inverse_bind_matrices: ArrayLike | None = None,
        skeleton: int | None = None,
    ) -> int:
        """Add a skin over existing joint nodes.

        Args:
            joints: node indices; ``JOINTS_0`` value ``k`` refers to ``joints[k]``.
            name: skin name.
            inverse_bind_matrices: ``(J, 4, 4)`` row-major matrices (last row ``0 0 0 1``);
                default: the inverses of the joints' current world matrices (bind pose = the
                nodes' TRS as added).
            skeleton: optional node index of the skeleton root.

        Returns:
            The skin index.

        Example:
            >>> from machlib.export import GltfBuilder
            >>> b = GltfBuilder(generator="doc")
            >>> j = b.add_node(name="jaw", translation=(0.0, -0.05, 0.02))
            >>> b.add_skin([j])
            0
        """
        own = "GltfBuilder.add_skin"
        js = [_ref(own, "joint node", j, len(self._nodes), "nodes") for j in joints]
        if not js:
            _fail(own, "a skin needs at least one joint")
        if len(set(js)) != len(js):
            _fail(own, "joints must be unique")
        if inverse_bind_matrices is None:
            ibm = np.stack([np.linalg.inv(self.world_matrix(j)) for j in js])
            ibm[:, 3] = (0.0, 0.0, 0.0, 1.0)
        else:
            ibm = _array(own, "inverse_bind_matrices", inverse_bind_matrices, dims=3).astype(np.float64)
            if ibm.shape != (len(js), 4, 4):
                _fail(own, f"inverse_bind_matrices must have shape ({len(js)}, 4, 4), got {ibm.shape}")
            if not np.allclose(ibm[:, 3], (0.0, 0.0, 0.0, 1.0)):
                _fail(own, "inverse_bind_matrices must have last row (0, 0, 0, 1)")
        skin: dict = {}
        if name is not None:
            skin["name"] = str(name)
        skin["inverseBindMatrices"] = self._accessor(ibm.astype(np.float32), "MAT4")
        skin["joints"] = js
        if skeleton is not None:
            skin["skeleton"] = _ref(own, "skeleton node", skeleton, len(self._nodes), "nodes")
        self._skins.append(skin)
        return len(self._skins) - 1

    def to_json(self) -> dict:
        """The glTF JSON document (with ``buffers[0]`` as the GLB's BIN chunk).

        Example:
            >>> from machlib.export import GltfBuilder
            >>> GltfBuilder(generator="doc").to_json()["asset"]
            {'version': '2.0', 'generator': 'doc'}
        """
        doc: dict = {"asset": {"version": "2.0", "generator": self._generator}}
        roots = [i for i, p in enumerate(self._parent) if p is None]
        if roots:
            doc["scene"] = 0
            doc["scenes"] = [{"nodes": roots}]
        for key, items in (("nodes", self._nodes), ("meshes", self._meshes), ("skins", self._skins),
                           ("materials", self._materials), ("textures", self._textures),
                           ("images", self._images)):
            if items:
                doc[key] = items
        used = sorted({k for m in self._materials for k in m.get("extensions", {})})
        if used:
            doc["extensionsUsed"] = used
        if self._textures:
            doc["samplers"] = [{"magFilter": 9729, "minFilter": 9987, "wrapS": 33071, "wrapT": 33071}]
        if self._accessors:
            doc["accessors"] = self._accessors
        if self._views:
            doc["bufferViews"] = self._views
        if self._bin:
            doc["buffers"] = [{"byteLength": len(self._bin)}]
        return json.loads(json.dumps(doc))  # a deep copy: later additions do not change it

    def to_glb(self) -> bytes:
        """The binary glTF file: 12-byte header, JSON chunk (space-padded), BIN chunk (zero-padded).

        Example:
            >>> from machlib.export import GltfBuilder
            >>> glb = GltfBuilder(generator="doc").to_glb()
            >>> len(glb) % 4, glb[:4]
            (0, b'glTF')
        """
        js = json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
        js += b" " * (-len(js) % 4)
        out = struct.pack("<II", len(js), _CHUNK_JSON) + js
        if self._bin:
            data = bytes(self._bin) + b"\0" * (-len(self._bin) % 4)
            out += struct.pack("<II", len(data), _CHUNK_BIN) + data
        return struct.pack("<III", _GLB_MAGIC, 2, 12 + len(out)) + out


def _local_matrix(node: dict) -> np.ndarray:
    if "matrix" in node:
        return np.asarray(node["matrix"], np.float64).reshape(4, 4).T
    m = np.eye(4)
    q = np.asarray(node.get("rotation", (0.0, 0.0, 0.0, 1.0)), np.float64)
    m[:3, :3] = _quat_matrix(q) * np.asarray(node.get("scale", (1.0, 1.0, 1.0)), np.float64)[None, :]
    m[:3, 3] = node.get("translation", (0.0, 0.0, 0.0))
    return m


# ---------------------------------------------------------------------------------------------
# reading


def _split_glb(data: bytes, problems: list[str]) -> tuple[dict | None, bytes | None]:
    """Parse the GLB container; append container problems; return (json, bin)."""
    if len(data) < 12:
        problems.append(f"GLB: file has {len(data)} bytes, fewer than the 12-byte header")
        return None, None
    magic, version, length = struct.unpack("<III", data[:12])
    if magic != _GLB_MAGIC:
        problems.append("GLB: bad magic (not 'glTF')")
        return None, None
    if version != 2:
        problems.append(f"GLB: version {version}, expected 2")
    if length != len(data):
        problems.append(f"GLB: header length {length} but the file has {len(data)} bytes")
    if length % 4:
        problems.append(f"GLB: length {length} is not a multiple of 4")
    pos, chunks = 12, []
    while pos < len(data):
        if pos + 8 > len(data):
            problems.append(f"GLB: truncated chunk header at byte {pos}")
            break
        clen, ctype = struct.unpack("<II", data[pos:pos + 8])
        if clen % 4:
            problems.append(f"GLB: chunk {len(chunks)} length {clen} is not a multiple of 4")
        if pos + 8 + clen > len(data):
            problems.append(f"GLB: chunk {len(chunks)} ({clen} bytes at {pos + 8}) runs past the end of the file")
            break
        chunks.append((ctype, data[pos + 8:pos + 8 + clen]))
        pos += 8 + clen
    if not chunks or chunks[0][0] != _CHUNK_JSON:
        problems.append("GLB: the first chunk is not JSON")
        return None, None
    if len(chunks) > 1 and chunks[1][0] != _CHUNK_BIN:
        problems.append("GLB: the second chunk is not BIN")
    try:
        doc = json.loads(chunks[0][1].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        problems.append(f"GLB: the JSON chunk does not parse ({e})")
        return None, None
    if not isinstance(doc, dict):
        problems.append("GLB: the JSON is not an object")
        return None, None
    binary = chunks[1][1] if len(chunks) > 1 and chunks[1][0] == _CHUNK_BIN else None
    return doc, binary


def _element_layout(acc: dict) -> tuple[np.dtype, int, int, list[int]]:
    """(dtype, components, element byte size, byte offsets of each component)."""
    dt = np.dtype(_DTYPES[acc["componentType"]])
    kind = acc["type"]
    n = _NCOMP[kind]
    if kind.startswith("MAT"):
        k = int(kind[3])
        col = k * dt.itemsize
        col += -col % 4  # matrix columns start on 4-byte boundaries
        offsets = [c * col + r * dt.itemsize for c in range(k) for r in range(k)]
        return dt, n, k * col, offsets
    return dt, n, n * dt.itemsize, [i * dt.itemsize for i in range(n)]


def _decode(doc: dict, binary: bytes | None, i: int) -> np.ndarray:
    acc = doc["accessors"][i]
    dt, n, size, offsets = _element_layout(acc)
    count = int(acc["count"])
    if "bufferView" in acc:
        view = doc["bufferViews"][acc["bufferView"]]
        if view.get("buffer", 0) != 0 or binary is None or "uri" in doc["buffers"][view["buffer"]]:
            raise InputError(f"read_glb: accessor {i} uses an external buffer")
        stride = view.get("byteStride") or size
        start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
        end = start + stride * (count - 1) + size if count else start
        if end > view.get("byteOffset", 0) + view["byteLength"] or end > len(binary):
            raise InputError(f"read_glb: accessor {i} runs past its bufferView")
        raw = np.frombuffer(binary, np.uint8)
        pick = start + stride * np.arange(count)[:, None] + np.repeat(offsets, dt.itemsize)[None, :] \
            + np.tile(np.arange(dt.itemsize), n)[None, :]
        out = raw[pick].copy().view(dt).reshape(count, n)
    else:
        out = np.zeros((count, n), dt)
    sparse = acc.get("sparse")
    if sparse:
        sub = {"count": sparse["count"], "type": "SCALAR", "componentType": sparse["indices"]["componentType"],
               "bufferView": sparse["indices"]["bufferView"], "byteOffset": sparse["indices"].get("byteOffset", 0)}
        val = {"count": sparse["count"], "type": acc["type"], "componentType": acc["componentType"],
               "bufferView": sparse["values"]["bufferView"], "byteOffset": sparse["values"].get("byteOffset", 0)}
        tmp = {**doc, "accessors": [sub, val]}
        out[_decode(tmp, binary, 0).astype(np.int64)] = _decode(tmp, binary, 1).reshape(-1, n)
    kind = acc["type"]
    if kind == "SCALAR":
        return out.reshape(count)
    if kind.startswith("MAT"):
        k = int(kind[3])
        return np.swapaxes(out.reshape(count, k, k), 1, 2)  # column-major storage → row-major
    return out


def read_glb(data: bytes) -> dict:
    """Read a GLB file: its JSON, every accessor decoded to numpy, and the embedded images.

    Meant for tests and inspection: accessors come back in their stored component type
    (normalised integers are not scaled); ``SCALAR`` as ``(count,)``, ``VECn`` as
    ``(count, n)``, ``MATn`` as ``(count, n, n)`` row-major.

    Args:
        data: the GLB file contents.

    Returns:
        ``{"json": dict, "accessors": [np.ndarray, ...], "images": [bytes, ...]}``.

    Raises:
        InputError: the bytes are not a well-formed GLB, or an accessor lies outside the buffer.

    Example:
        >>> from machlib.export import GltfBuilder, Triangles, read_glb
        >>> import numpy as np
        >>> b = GltfBuilder(generator="doc")
        >>> _ = b.add_node(mesh=b.add_mesh([Triangles(np.eye(3), [[0, 1, 2]])]))
        >>> r = read_glb(b.to_glb())
        >>> r["accessors"][0].tolist(), r["accessors"][1].tolist()
        ([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], [0, 1, 2])
    """
    problems: list[str] = []
    doc, binary = _split_glb(bytes(data), problems)
    if doc is None or problems:
        raise InputError(f"read_glb: {problems[0] if problems else 'not a GLB file'}")
    try:
        accessors = [_decode(doc, binary, i) for i in range(len(doc.get("accessors", [])))]
        images = []
        for img in doc.get("images", []):
            if "bufferView" in img:
                v = doc["bufferViews"][img["bufferView"]]
                images.append(binary[v.get("byteOffset", 0):v.get("byteOffset", 0) + v["byteLength"]])
            else:
                images.append(b"")
    except InputError:
        raise
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise InputError(f"read_glb: malformed glTF JSON ({type(e).__name__}: {e})") from None
    return {"json": doc, "accessors": accessors, "images": images}


# ---------------------------------------------------------------------------------------------
# validation

_ATTRIBUTE_RULES = {  # semantic prefix → (types, allowed (componentType, normalized) pairs)
    "POSITION": (("VEC3",), {(_FLOAT, False)}),
    "NORMAL": (("VEC3",), {(_FLOAT, False)}),
    "TANGENT": (("VEC4",), {(_FLOAT, False)}),
    "TEXCOORD": (("VEC2",), {(_FLOAT, False), (_UBYTE, True), (_USHORT, True)}),
    "COLOR": (("VEC3", "VEC4"), {(_FLOAT, False), (_UBYTE, True), (_USHORT, True)}),
    "JOINTS": (("VEC4",), {(_UBYTE, False), (_USHORT, False)}),
    "WEIGHTS": (("VEC4",), {(_FLOAT, False), (_UBYTE, True), (_USHORT, True)}),
}
_TARGET_RULES = {"POSITION": ("VEC3",), "NORMAL": ("VEC3",), "TANGENT": ("VEC3",)}


def _rule_key(semantic: str) -> str | None:
    if semantic in ("POSITION", "NORMAL", "TANGENT"):
        return semantic
    stem, _, num = semantic.rpartition("_")
    return stem if stem in ("TEXCOORD", "COLOR", "JOINTS", "WEIGHTS") and num.isdigit() else None


class _Checker:
    def __init__(self, doc: dict, binary: bytes | None, problems: list[str]):
        self.doc, self.bin, self.p = doc, binary, problems
        self.cache: dict[int, np.ndarray | None] = {}

    def arr(self, key: str) -> list:
        v = self.doc.get(key, [])
        if not isinstance(v, list):
            self.p.append(f"{key}: must be an array")
            return []
        return v

    def ref(self, where: str, value, key: str) -> bool:
        n = len(self.arr(key))
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < n:
            self.p.append(f"{where}: index {value!r} out of range for {key} ({n} items)")
            return False
        return True

    def values(self, i: int) -> np.ndarray | None:
        if i not in self.cache:
            try:
                self.cache[i] = _decode(self.doc, self.bin, i)
            except Exception:  # reported by the accessor checks
                self.cache[i] = None
        return self.cache[i]

    def run(self) -> None:
        doc = self.doc
        asset = doc.get("asset")
        if not isinstance(asset, dict) or asset.get("version") != "2.0":
            self.p.append("asset.version: must be '2.0'")
        self.buffers()
        ok_views = self.views()
        ok_acc = self.accessors(ok_views)
        self.images()
        self.textures()
        self.materials()
        parents = self.nodes()
        self.skins(parents, ok_acc)
        self.meshes(ok_acc)
        self.scenes(parents)

    def buffers(self) -> None:
        for i, b in enumerate(self.arr("buffers")):
            if "uri" not in b:
                if i != 0:
                    self.p.append(f"buffers[{i}]: only buffer 0 may refer to the GLB BIN chunk")
                elif self.bin is None:
                    self.p.append("buffers[0]: no uri and no BIN chunk")
                elif not isinstance(b.get("byteLength"), int) or b["byteLength"] > len(self.bin):
                    self.p.append(f"buffers[0]: byteLength {b.get('byteLength')} exceeds the BIN chunk ({len(self.bin)} bytes)")
                elif len(self.bin) - b["byteLength"] > 3:
                    self.p.append(f"buffers[0]: BIN chunk ({len(self.bin)} bytes) is more than 3 bytes longer than byteLength {b['byteLength']}")

    def views(self) -> set[int]:
        ok = set()
        buffers = self.arr("buffers")
        for i, v in enumerate(self.arr("bufferViews")):
            w = f"bufferViews[{i}]"
            if not self.ref(f"{w}.buffer", v.get("buffer"), "buffers"):
                continue
            off, length = v.get("byteOffset", 0), v.get("byteLength")
            if not isinstance(length, int) or length < 1 or not isinstance(off, int) or off < 0:
                self.p.append(f"{w}: byteOffset/byteLength invalid ({off}, {length})")
                continue
            blen = buffers[v["buffer"]].get("byteLength", 0)
            if off + length > blen:
                self.p.append(f"{w}: range [{off}, {off + length}) exceeds buffer {v['buffer']} ({blen} bytes)")
                continue
            stride = v.get("byteStride")
            if stride is not None and (not isinstance(stride, int) or stride < 4 or stride > 252 or stride % 4):
                self.p.append(f"{w}: byteStride {stride} must be a multiple of 4 in [4, 252]")
                continue
            if v.get("target") not in (None, _ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER):
                self.p.append(f"{w}: target {v.get('target')} is not 34962 or 34963")
            ok.add(i)
        return ok

    def accessors(self, ok_views: set[int]) -> set[int]:
        ok = set()
        views = self.arr("bufferViews")
        for i, a in enumerate(self.arr("accessors")):
            w = f"accessors[{i}]"
            ct, kind, count = a.get("componentType"), a.get("type"), a.get("count")
            if ct not in _DTYPES:
                self.p.append(f"{w}: componentType {ct} is not a glTF component type")
                continue
            if kind not in _NCOMP:
                self.p.append(f"{w}: type {kind!r} is not a glTF accessor type")
                continue
            if not isinstance(count, int) or count < 1:
                self.p.append(f"{w}: count must be >= 1, got {count!r}")
                continue
            if a.get("normalized") and ct in (_UINT, _FLOAT):
                self.p.append(f"{w}: normalized is not allowed for componentType {ct}")
            dt, n, size, _ = _element_layout(a)
            if "bufferView" in a:
                if not self.ref(f"{w}.bufferView", a["bufferView"], "bufferViews") or a["bufferView"] not in ok_views:
                    continue
                v = views[a["bufferView"]]
                off = a.get("byteOffset", 0)
                if off % dt.itemsize or (v.get("byteOffset", 0) + off) % dt.itemsize:
                    self.p.append(f"{w}: byteOffset {off} (view offset {v.get('byteOffset', 0)}) is not aligned to its component size {dt.itemsize}")
                    continue
                stride = v.get("byteStride") or size
                if stride < size:
                    self.p.append(f"{w}: bufferView byteStride {stride} is smaller than the element size {size}")
                    continue
                end = off + stride * (count - 1) + size
                if end > v["byteLength"]:
                    self.p.append(f"{w}: needs {end} bytes but bufferView {a['bufferView']} has {v['byteLength']}")
                    continue
            for key in ("min", "max"):
                if key in a and (not isinstance(a[key], list) or len(a[key]) != n):
                    self.p.append(f"{w}.{key}: must have {n} components")
            ok.add(i)
            vals = self.values(i)
            if vals is not None and vals.size and ("min" in a or "max" in a) and not a.get("sparse"):
                flat = vals.reshape(count, -1).astype(np.float64)
                for key, got in (("min", flat.min(0)), ("max", flat.max(0))):
                    if key in a and isinstance(a[key], list) and len(a[key]) == n:
                        want = np.asarray(a[key], np.float64)
                        if ct == _FLOAT:
                            want = want.astype(np.float32).astype(np.float64)
                        if not np.array_equal(want, got):
                            self.p.append(f"{w}.{key}: {a[key]} does not match the data {got.tolist()}")
        return ok

    def images(self) -> None:
        views = self.arr("bufferViews")
        for i, img in enumerate(self.arr("images")):
            w = f"images[{i}]"
            if ("uri" in img) == ("bufferView" in img):
                self.p.append(f"{w}: exactly one of uri and bufferView is required")
                continue
            if "bufferView" not in img:
                continue
            if "mimeType" not in img:
                self.p.append(f"{w}: mimeType is required with a bufferView")
            if not self.ref(f"{w}.bufferView", img["bufferView"], "bufferViews"):
                continue
            v = views[img["bufferView"]]
            if "byteStride" in v or "target" in v:
                self.p.append(f"{w}: an image bufferView must have no byteStride and no target")
            if self.bin is None or v.get("buffer", 0) != 0:
                continue
            data = self.bin[v.get("byteOffset", 0):v.get("byteOffset", 0) + v["byteLength"]]
            mime = img.get("mimeType")
            if mime == "image/png":
                problem = _png_problem(data)
                if problem:
                    self.p.append(f"{w}: {problem}")
            elif mime == "image/jpeg":
                if data[:3] != b"\xff\xd8\xff":
                    self.p.append(f"{w}: not a JPEG (bad signature)")
            elif mime is not None:
                self.p.append(f"{w}: mimeType {mime!r} is not image/png or image/jpeg")

    def textures(self) -> None:
        for i, t in enumerate(self.arr("textures")):
            if "source" in t:
                self.ref(f"textures[{i}].source", t["source"], "images")
            if "sampler" in t:
                self.ref(f"textures[{i}].sampler", t["sampler"], "samplers")

    def _texinfo(self, where: str, info) -> None:
        if info is not None:
            self.ref(f"{where}.index", info.get("index"), "textures")

    def materials(self) -> None:
        for i, m in enumerate(self.arr("materials")):
            w = f"materials[{i}]"
            pbr = m.get("pbrMetallicRoughness", {})
            bc = pbr.get("baseColorFactor", [1, 1, 1, 1])
            if len(bc) != 4 or not all(0 <= float(x) <= 1 for x in bc):
                self.p.append(f"{w}.baseColorFactor: must be 4 numbers in [0, 1], got {bc}")
            for key in ("metallicFactor", "roughnessFactor"):
                if not 0 <= float(pbr.get(key, 1.0)) <= 1:
                    self.p.append(f"{w}.{key}: must be in [0, 1], got {pbr[key]}")
            if m.get("alphaMode", "OPAQUE") not in ("OPAQUE", "MASK", "BLEND"):
                self.p.append(f"{w}.alphaMode: {m['alphaMode']!r} is not OPAQUE, MASK or BLEND")
            self._texinfo(f"{w}.baseColorTexture", pbr.get("baseColorTexture"))
            self._texinfo(f"{w}.metallicRoughnessTexture", pbr.get("metallicRoughnessTexture"))
            for key in ("normalTexture", "occlusionTexture", "emissiveTexture"):
                self._texinfo(f"{w}.{key}", m.get(key))

    def nodes(self) -> dict[int, int]:
        parents: dict[int, int] = {}
        nodes = self.arr("nodes")
        for i, nd in enumerate(nodes):
            w = f"nodes[{i}]"
            for c in nd.get("children", []):
                if self.ref(f"{w}.children", c, "nodes"):
                    if c in parents:
                        self.p.append(f"{w}: node {c} already has parent {parents[c]}")
                    parents[c] = i
            if "mesh" in nd:
                self.ref(f"{w}.mesh", nd["mesh"], "meshes")
            if "skin" in nd:
                self.ref(f"{w}.skin", nd["skin"], "skins")
            if "matrix" in nd and any(k in nd for k in ("translation", "rotation", "scale")):
                self.p.append(f"{w}: matrix and TRS are exclusive")
            if "rotation" in nd:
                q = np.asarray(nd["rotation"], np.float64)
                if q.shape != (4,) or abs(np.linalg.norm(q) - 1) > 1e-6:
                    self.p.append(f"{w}.rotation: must be a unit quaternion, got {nd['rotation']}")
            for key, k in (("translation", 3), ("scale", 3), ("matrix", 16)):
                if key in nd and len(nd[key]) != k:
                    self.p.append(f"{w}.{key}: must have {k} numbers")
        for i in range(len(nodes)):  # cycles
            seen, n = set(), i
            while n in parents:
                if n in seen:
                    self.p.append(f"nodes[{i}]: the hierarchy has a cycle")
                    break
                seen.add(n)
                n = parents[n]
        return parents

    def _root(self, n: int, parents: dict[int, int]) -> int:
        seen = set()
        while n in parents and n not in seen:
            seen.add(n)
            n = parents[n]
        return n

    def skins(self, parents: dict[int, int], ok_acc: set[int]) -> None:
        accessors = self.arr("accessors")
        for i, s in enumerate(self.arr("skins")):
            w = f"skins[{i}]"
            joints = s.get("joints", [])
            if not joints:
                self.p.append(f"{w}.joints: must not be empty")
                continue
            if len(set(joints)) != len(joints):
                self.p.append(f"{w}.joints: must be unique")
            if not all(self.ref(f"{w}.joints", j, "nodes") for j in joints):
                continue
            if len({self._root(j, parents) for j in joints}) != 1:
                self.p.append(f"{w}.joints: the joints have no common root")
            if "skeleton" in s:
                self.ref(f"{w}.skeleton", s["skeleton"], "nodes")
            if "inverseBindMatrices" in s and self.ref(f"{w}.inverseBindMatrices", s["inverseBindMatrices"], "accessors"):
                a = accessors[s["inverseBindMatrices"]]
                if a.get("type") != "MAT4" or a.get("componentType") != _FLOAT:
                    self.p.append(f"{w}.inverseBindMatrices: accessor must be MAT4 FLOAT")
                elif a.get("count") != len(joints):
                    self.p.append(f"{w}.inverseBindMatrices: {a.get('count')} matrices for {len(joints)} joints")
                elif s["inverseBindMatrices"] in ok_acc:
                    m = self.values(s["inverseBindMatrices"])
                    if m is not None and not np.allclose(m[:, 3], (0, 0, 0, 1)):
                        self.p.append(f"{w}.inverseBindMatrices: every matrix needs last row (0, 0, 0, 1)")

    def meshes(self, ok_acc: set[int]) -> None:
        accessors = self.arr("accessors")
        views = self.arr("bufferViews")
        skins = self.arr("skins")
        users: dict[int, list[dict]] = {}
        for nd in self.arr("nodes"):
            if isinstance(nd.get("mesh"), int):
                users.setdefault(nd["mesh"], []).append(nd)
        for mi, mesh in enumerate(self.arr("meshes")):
            prims = mesh.get("primitives", [])
            if not prims:
                self.p.append(f"meshes[{mi}].primitives: must not be empty")
                continue
            n_targets = {len(p.get("targets", [])) for p in prims}
            if len(n_targets) > 1:
                self.p.append(f"meshes[{mi}]: primitives have different numbers of morph targets {sorted(n_targets)}")
            nt = max(n_targets)
            if "weights" in mesh and len(mesh["weights"]) != nt:
                self.p.append(f"meshes[{mi}].weights: {len(mesh['weights'])} weights for {nt} morph targets")
            names = mesh.get("extras", {}).get("targetNames") if isinstance(mesh.get("extras"), dict) else None
            if names is not None and (len(names) != nt or not all(isinstance(s, str) for s in names)):
                self.p.append(f"meshes[{mi}].extras.targetNames: {len(names)} names for {nt} morph targets")
            for node in users.get(mi, []):
                if "weights" in node and len(node["weights"]) != nt:
                    self.p.append(f"nodes using mesh {mi}: {len(node['weights'])} weights for {nt} morph targets")
            for pi, p in enumerate(prims):
                self.primitive(f"meshes[{mi}].primitives[{pi}]", p, accessors, views, ok_acc,
                               users.get(mi, []), skins)

    def _attr(self, w: str, sem: str, ai, accessors: list, views: list, ok_acc: set[int],
              rules: dict, target: bool) -> int | None:
        if not self.ref(f"{w}.{sem}", ai, "accessors"):
            return None
        a = accessors[ai]
        key = _rule_key(sem)
        if key is None:
            if not sem.startswith("_"):
                self.p.append(f"{w}.{sem}: unknown attribute semantic")
            return a.get("count")
        if target:
            if key not in ("POSITION", "NORMAL", "TANGENT"):
                return a.get("count")
            if a.get("type") not in _TARGET_RULES[key] or a.get("componentType") != _FLOAT:
                self.p.append(f"{w}.{sem}: morph target {key} must be VEC3 FLOAT")
        else:
            types, comps = rules[key]
            if a.get("type") not in types:
                self.p.append(f"{w}.{sem}: type {a.get('type')} not allowed (expected {' or '.join(types)})")
            if (a.get("componentType"), bool(a.get("normalized", False))) not in comps:
                self.p.append(f"{w}.{sem}: componentType {a.get('componentType')} with normalized={bool(a.get('normalized', False))} not allowed")
        if key == "POSITION" and ("min" not in a or "max" not in a):
            self.p.append(f"{w}.{sem}: POSITION accessor needs min and max")
        if "bufferView" in a and isinstance(a["bufferView"], int) and a["bufferView"] < len(views):
            v = views[a["bufferView"]]
            if a.get("byteOffset", 0) % 4 or v.get("byteStride", 4) % 4 or v.get("byteOffset", 0) % 4:
                self.p.append(f"{w}.{sem}: vertex attribute elements must start on 4-byte boundaries")
            if v.get("target", _ARRAY_BUFFER) != _ARRAY_BUFFER:
                self.p.append(f"{w}.{sem}: bufferView target must be ARRAY_BUFFER (34962)")
            if "byteStride" not in v:
                _, _, size, _ = _element_layout(a) if a.get("componentType") in _DTYPES and a.get("type") in _NCOMP else (0, 0, 0, 0)
                if size % 4:
                    self.p.append(f"{w}.{sem}: element size {size} needs a byteStride multiple of 4")
        if ai in ok_acc and not target:
            vals = self.values(ai)
            if vals is not None:
                if key == "NORMAL":
                    bad = np.abs(np.linalg.norm(vals.astype(np.float64), axis=1) - 1) > 5e-4
                    if bad.any():
                        self.p.append(f"{w}.NORMAL: {int(bad.sum())} normals are not unit length")
                if key == "TANGENT":
                    v64 = vals.astype(np.float64)
                    if (np.abs(np.linalg.norm(v64[:, :3], axis=1) - 1) > 5e-4).any() or not np.isin(v64[:, 3], (-1, 1)).all():
                        self.p.append(f"{w}.TANGENT: xyz must be unit and w ±1")
        return a.get("count")

    def primitive(self, w: str, p: dict, accessors: list, views: list, ok_acc: set[int],
                  nodes: list[dict], skins: list) -> None:
        attrs = p.get("attributes", {})
        mode = p.get("mode", 4)
        if mode not in range(7):
            self.p.append(f"{w}.mode: {mode} is not 0..6")
        if "POSITION" not in attrs:
            self.p.append(f"{w}.attributes: POSITION is missing")
        counts = {}
        for sem, ai in attrs.items():
            c = self._attr(f"{w}.attributes", sem, ai, accessors, views, ok_acc, _ATTRIBUTE_RULES, False)
            if c is not None:
                counts[sem] = c
        if len(set(counts.values())) > 1:
            self.p.append(f"{w}.attributes: accessors have different counts {counts}")
        n_vertices = counts.get("POSITION", max(counts.values(), default=0))
        if "material" in p and self.ref(f"{w}.material", p["material"], "materials"):
            mat = self.arr("materials")[p["material"]]
            infos = [mat.get("pbrMetallicRoughness", {}).get(k) for k in ("baseColorTexture", "metallicRoughnessTexture")]
            infos += [mat.get(k) for k in ("normalTexture", "occlusionTexture", "emissiveTexture")]
            for info in infos:
                if info is not None and f"TEXCOORD_{info.get('texCoord', 0)}" not in attrs:
                    self.p.append(f"{w}: material {p['material']} samples TEXCOORD_{info.get('texCoord', 0)}, which the primitive lacks")
                    break
        if "indices" in p and self.ref(f"{w}.indices", p["indices"], "accessors"):
            ai = p["indices"]
            a = accessors[ai]
            if a.get("type") != "SCALAR" or a.get("componentType") not in (_UBYTE, _USHORT, _UINT) or a.get("normalized"):
                self.p.append(f"{w}.indices: must be SCALAR UNSIGNED_BYTE/SHORT/INT, not normalized")
            elif "bufferView" in a and isinstance(a["bufferView"], int) and a["bufferView"] < len(views):
                v = views[a["bufferView"]]
                if "byteStride" in v:
                    self.p.append(f"{w}.indices: the bufferView must not have byteStride")
                if v.get("target", _ELEMENT_ARRAY_BUFFER) != _ELEMENT_ARRAY_BUFFER:
                    self.p.append(f"{w}.indices: bufferView target must be ELEMENT_ARRAY_BUFFER (34963)")
            count = a.get("count", 0)
            vals = self.values(ai) if ai in ok_acc else None
            if vals is not None and a.get("componentType") in (_UBYTE, _USHORT, _UINT):
                vals = vals.astype(np.int64)
                restart = {_UBYTE: 255, _USHORT: 65535, _UINT: 4294967295}[a["componentType"]]
                if (vals == restart).any():
                    self.p.append(f"{w}.indices: contains the primitive-restart value {restart}")
                if vals.size and vals.max() >= n_vertices:
                    self.p.append(f"{w}.indices: index {int(vals.max())} out of range for {n_vertices} vertices")
        else:
            count = n_vertices
        if (mode == 1 and count % 2) or (mode in (2, 3) and count < 2) or (mode in (4, 5, 6) and (count < 3 or (mode == 4 and count % 3))):
            self.p.append(f"{w}: {count} indices/vertices do not fit mode {mode}")
        for ti, tgt in enumerate(p.get("targets", [])):
            for sem, ai in tgt.items():
                if sem not in attrs:
                    self.p.append(f"{w}.targets[{ti}].{sem}: the base primitive has no {sem}")
                c = self._attr(f"{w}.targets[{ti}]", sem, ai, accessors, views, ok_acc, _ATTRIBUTE_RULES, True)
                if c is not None and c != n_vertices:
                    self.p.append(f"{w}.targets[{ti}].{sem}: count {c} differs from the base's {n_vertices}")
            if ti and set(tgt) != set(p["targets"][0]):
                self.p.append(f"{w}.targets[{ti}]: attributes {sorted(tgt)} differ from targets[0] {sorted(p['targets'][0])}")
        joint_sets = sorted(s for s in attrs if s.startswith("JOINTS_"))
        weight_sets = sorted(s for s in attrs if s.startswith("WEIGHTS_"))
        if len(joint_sets) != len(weight_sets):
            self.p.append(f"{w}.attributes: {len(joint_sets)} JOINTS_n sets but {len(weight_sets)} WEIGHTS_n sets")
            return
        for nd in nodes:
            if joint_sets and "skin" not in nd:
                self.p.append(f"{w}: a node uses this skinned mesh without a skin")
            if not joint_sets and "skin" in nd:
                self.p.append(f"{w}: a node gives a skin to this mesh, which has no JOINTS_0/WEIGHTS_0")
        if not joint_sets:
            return
        jv = [self.values(attrs[s]) if attrs[s] in ok_acc else None for s in joint_sets]
        wv = [self.values(attrs[s]) if attrs[s] in ok_acc else None for s in weight_sets]
        if any(x is None for x in jv + wv):
            return
        jj = np.concatenate(jv, 1).astype(np.int64)
        ww = []
        for s, x in zip(weight_sets, wv):
            a = accessors[attrs[s]]
            x = x.astype(np.float64)
            if a.get("normalized"):
                x = x / (255.0 if a["componentType"] == _UBYTE else 65535.0)
            ww.append(x)
        wt = np.concatenate(ww, 1)
        if (wt < 0).any():
            self.p.append(f"{w}.WEIGHTS_0: negative weights")
        sums = wt.sum(1)
        bad = np.abs(sums - 1) > 2e-7 * jj.shape[1] + (0 if accessors[attrs[weight_sets[0]]].get("componentType") == _FLOAT else 1e-2)
        if bad.any():
            k = int(np.argmax(bad))
            self.p.append(f"{w}.WEIGHTS_0: {int(bad.sum())} vertices have weights not summing to 1 (vertex {k}: {sums[k]:.6g})")
        used = np.where(wt > 0, jj, -1 - np.arange(jj.shape[1])[None, :])
        srt = np.sort(used, 1)
        if (srt[:, 1:] == srt[:, :-1]).any():
            self.p.append(f"{w}.JOINTS_0: a vertex uses the same joint twice")
        for nd in nodes:
            s = nd.get("skin")
            if isinstance(s, int) and 0 <= s < len(skins):
                nj = len(skins[s].get("joints", []))
                if jj.size and jj.max() >= nj:
                    self.p.append(f"{w}.JOINTS_0: joint {int(jj.max())} out of range for skin {s} ({nj} joints)")

    def scenes(self, parents: dict[int, int]) -> None:
        scenes = self.arr("scenes")
        if "scene" in self.doc:
            self.ref("scene", self.doc["scene"], "scenes")
        for i, s in enumerate(scenes):
            for n in s.get("nodes", []):
                if self.ref(f"scenes[{i}].nodes", n, "nodes") and n in parents:
                    self.p.append(f"scenes[{i}].nodes: node {n} is not a root (its parent is {parents[n]})")


def validate_gltf(glb_bytes: bytes) -> list[str]:
    """Check a GLB file against the glTF 2.0 rules that matter for machlib's assets.

    An in-repo structural check (the official Khronos validator is run in the tests when Node.js
    is available): GLB header and chunk lengths and alignment; every index in range; bufferView
    and accessor ranges, alignment and strides; accessor type / componentType / normalized per
    attribute semantic; POSITION ``min``/``max`` present and equal to the data (also in morph
    targets); unit normals and tangents; index values in range and not the restart value; counts
    that fit the primitive mode; morph targets with base attributes, equal counts and the same
    attributes, one count per mesh, ``weights`` and ``extras.targetNames`` of that length;
    JOINTS_0 inside the skin, no joint used twice, WEIGHTS_0 summing to 1; skins with unique
    joints sharing a root and one inverse bind matrix per joint (last row ``0 0 0 1``); node
    hierarchy without cycles or double parents; scene nodes are roots; embedded images are
    well-formed PNG/JPEG with a mimeType.

    Args:
        glb_bytes: the GLB file contents.

    Returns:
        Human-readable problems, each starting with a JSON path (e.g.
        ``"meshes[0].primitives[0].indices: index 7 out of range for 3 vertices"``); empty when
        the file passes. Never raises on malformed input.

    Example:
        >>> from machlib.export import validate_gltf
        >>> validate_gltf(b"glTF")
        ['GLB: file has 4 bytes, fewer than the 12-byte header']
    """
    problems: list[str] = []
    doc, binary = _split_glb(bytes(glb_bytes), problems)
    if doc is None:
        return problems
    try:
        _Checker(doc, binary, problems).run()
    except Exception as e:  # malformed JSON structure the checks did not anticipate
        problems.append(f"glTF JSON is malformed ({type(e).__name__}: {e})")
    return problems
