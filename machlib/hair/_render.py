"""Strand preview rendering (numpy): hair as shaded, depth-tested polylines over a head mesh.

Not differentiable; meant for people judging a hairstyle (Make-A-Character §2.5). The head is
rasterized with :func:`machlib._raster.rasterize_np` (which also gives a depth buffer), the
strands are drawn as one-pixel polylines at a supersampled resolution with a z-buffer against the
head and against each other, shaded with the Kajiya-Kay hair model, and box-filtered down.
Frames and pixel centres follow :doc:`/conventions`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from jaxtyping import UInt8

from .._camera import Camera, rotation_matrix
from .._mesh import Mesh
from .._preview import orbit_camera, sample_texture_np
from .._raster import rasterize_np
from .._strand_raster import (
    _kajiya_kay_terms,
    _linear_to_srgb,
    _strand_pass,
    _unit,
    _vertex_normals_np,
)
from ._strands import DEFAULT_HAIR_COLOR, Strands

__all__ = ["render_strands", "hair_preview", "HAIR_PREVIEW_VIEWS"]

#: Named views of :func:`hair_preview` → camera yaw in degrees (see
#: :func:`machlib._preview.orbit_camera`): the face, the subject's left side, the back.
HAIR_PREVIEW_VIEWS: dict[str, float] = {"front": 0.0, "side": 90.0, "back": 180.0}

def _check_color(value, name: str, owner: str) -> np.ndarray:
    c = np.asarray(value, dtype=np.float64)
    if c.shape != (3,) or not np.isfinite(c).all():
        raise ValueError(f"{owner}: {name} must be 3 finite numbers, got shape {c.shape}")
    return c


def _head_pass(mesh, texture, R, t, focal, principal, size, head_color, L, cam_center, cull_backfaces):
    """Rasterize and shade the head like :func:`~machlib._preview.render_mesh`; also depth."""
    w, h = size
    verts = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    pc = verts @ R.T + t
    z = np.where(np.abs(pc[:, 2]) < 1e-9, 1e-9, pc[:, 2])
    px = pc[:, :2] / z[:, None] * focal + principal
    tri, bary = rasterize_np(px, faces, (w, h), depth=pc[:, 2], cull_backfaces=cull_backfaces)
    covered = tri >= 0
    tid = tri[covered]
    bw = bary[covered]
    zbuf = np.full((h, w), np.inf)
    zbuf[covered] = np.einsum("nk,nk->n", bw, pc[:, 2][faces[tid]])
    rgb = np.zeros((h, w, 3))
    if tid.size == 0:
        return rgb, covered, zbuf
    normals = _vertex_normals_np(verts, faces)
    n = _unit(np.einsum("nk,nkc->nc", bw, normals[faces[tid]]))
    if texture is not None:
        fuv = np.asarray(mesh.faces_uv)
        uv = np.einsum("nk,nkc->nc", bw, np.asarray(mesh.uv, dtype=np.float64)[fuv[tid]])
        albedo = sample_texture_np(texture, uv)[:, :3]
    else:
        albedo = np.broadcast_to(head_color, (tid.size, 3))
    p = np.einsum("nk,nkc->nc", bw, verts[faces[tid]])
    V = _unit(cam_center - p)
    n = np.where(np.sum(n * V, 1, keepdims=True) < 0, -n, n)  # two-sided, as render_mesh
    ambient, specular = 0.35, 0.08
    diff = np.clip(n @ L, 0, None)[:, None]
    H = _unit(L[None] + V)
    spec = specular * np.clip(np.sum(n * H, 1), 0, None)[:, None] ** 32
    rgb[covered] = np.clip(albedo * (ambient + (1 - ambient) * diff) + spec, 0, 1)
    return rgb, covered, zbuf


def render_strands(
    strands: Strands,
    camera: Camera,
    *,
    mesh: Mesh | None = None,
    texture: np.ndarray | None = None,
    head_color: Sequence[float] | np.ndarray = (0.78, 0.6, 0.5),
    light_dir: Sequence[float] | np.ndarray | None = None,
    background: np.ndarray | Sequence[float] | None = None,
    supersample: int = 2,
    ambient: float = 0.25,
    specular: float = 0.15,
    shininess: float = 60.0,
    root_shadow: float = 0.5,
    root_shadow_length: float = 0.03,
    jitter: float = 0.1,
    depth_bias: float = 5e-4,
    cull_backfaces: bool = True,
) -> UInt8[np.ndarray, "H W C"]:
    """Render hair strands (and optionally the head they grow on) for a person to look at.

    Every strand is drawn as a polyline one pixel wide at ``supersample`` times the camera's
    resolution: each projected segment is sampled at least once per pixel and z-buffered against
    the head's depth and against the other strands; the image is then box-filtered down, which
    anti-aliases and lets sparse hair read as partly transparent. Strands are shaded with
    Kajiya-Kay, with ``T`` the strand tangent and ``L``, ``V`` the unit directions to the light and
    the eye: diffuse ``sin(T, L) = sqrt(1 - (T·L)²)`` and specular
    ``max(0, sin(T, L) sin(T, V) - (T·L)(T·V))^shininess`` (the highlight cone of a cylinder).
    Strands darken towards their roots (``root_shadow`` over the first ``root_shadow_length``
    metres of arc length, an ambient-occlusion stand-in for the inside of the hair volume) and
    each strand's brightness is jittered by ``±jitter`` (fixed pattern: the output is
    deterministic). Strand colours are linear RGB (``strands.color``, or
    :data:`~machlib.hair.DEFAULT_HAIR_COLOR`), shaded in linear light and converted to sRGB. The
    head is shaded as :func:`machlib._preview.render_mesh` shades it, with ``head_color`` and
    ``texture`` taken as display (sRGB) values.

    Args:
        strands: the :class:`~machlib.hair.Strands`, metres in head space (the mesh's frame).
        camera: the :class:`~machlib.Camera`; the output has ``camera.image_size``.
        mesh: optional head :class:`~machlib.Mesh`: drawn, and hides strands behind it.
        texture: optional ``(H, W, 3)`` albedo (uint8 or float in ``[0, 1]``, sRGB) in the mesh's
            UV layout.
        head_color: sRGB head albedo when there is no texture.
        light_dir: world direction towards the light; ``None`` puts the light above, right of
            and behind the camera (``(0.35, -0.45, -1)`` in camera coordinates), so every view
            is lit.
        background: ``(H, W, 3)`` uint8 image or an sRGB colour (3 floats in ``[0, 1]``) to
            composite over; ``None`` gives RGBA with alpha = coverage.
        supersample: integer ``≥ 1`` factor per axis for the strand pass and the head.
        ambient: ambient fraction of the strand diffuse term.
        specular: strength of the Kajiya-Kay highlight.
        shininess: its exponent.
        root_shadow: darkening at the root, in ``[0, 1]``.
        root_shadow_length: arc length in metres over which the root darkening fades.
        jitter: per-strand relative brightness jitter, in ``[0, 1)``.
        depth_bias: metres by which a strand may lie behind the head surface and still show
            (keeps roots on the scalp visible).
        cull_backfaces: skip head triangles facing away from the camera (about twice as fast;
            the picture is the same for a closed mesh with counter-clockwise outward winding).
            Set ``False`` for a mesh with inconsistent winding.

    Returns:
        ``(H, W, 4)`` uint8 RGBA (straight alpha), or ``(H, W, 3)`` uint8 RGB when
        ``background`` is given, ``(W, H) = camera.image_size``.

    Raises:
        TypeError: ``strands`` is not :class:`~machlib.hair.Strands` or ``camera`` not a
            :class:`~machlib.Camera`.
        ValueError: non-finite strand points, a bad ``supersample``, colour, background shape or
            option value, or a texture without a mesh.

    Example:
        >>> import numpy as np
        >>> from machlib._preview import orbit_camera
        >>> from machlib.hair import Strands
        >>> from machlib.hair._render import render_strands
        >>> line = np.stack([np.zeros(8), np.linspace(-0.1, 0.1, 8), np.zeros(8)], 1)[None]
        >>> img = render_strands(Strands(line), orbit_camera(0.0, image_size=(32, 32)))
        >>> img.shape, img.dtype, bool(img[:, 16, 3].max() > 0)
        ((32, 32, 4), dtype('uint8'), True)
    """
    owner = "render_strands"
    if not isinstance(strands, Strands):
        raise TypeError(f"{owner}: strands must be machlib.hair.Strands, got {type(strands).__name__}")
    if not isinstance(camera, Camera):
        raise TypeError(f"{owner}: camera must be a machlib.Camera, got {type(camera).__name__}")
    if isinstance(supersample, bool) or int(supersample) != supersample or supersample < 1:
        raise ValueError(f"{owner}: supersample must be an integer >= 1, got {supersample!r}")
    ss = int(supersample)
    if texture is not None and mesh is None:
        raise ValueError(f"{owner}: texture given without a mesh")
    for name, val, lo, hi in (("ambient", ambient, 0, 1), ("root_shadow", root_shadow, 0, 1),
                              ("jitter", jitter, 0, 0.999), ("specular", specular, 0, np.inf),
                              ("shininess", shininess, 0, np.inf),
                              ("root_shadow_length", root_shadow_length, 1e-9, np.inf),
                              ("depth_bias", depth_bias, 0, np.inf)):
        if not (lo <= float(val) <= hi):
            raise ValueError(f"{owner}: {name} must be in [{lo}, {hi}], got {val!r}")
    points = np.asarray(strands.points, dtype=np.float64)
    if not np.isfinite(points).all():
        raise ValueError(f"{owner}: strands.points contain NaN or infinity")
    head_color = _check_color(head_color, "head_color", owner)
    w0, h0 = camera.image_size
    w, h = w0 * ss, h0 * ss
    if background is not None:
        bg = np.asarray(background)
        if bg.shape == (3,):
            bg = np.broadcast_to(_check_color(bg, "background", owner), (h0, w0, 3))
        elif bg.shape[:2] == (h0, w0) and bg.ndim == 3 and bg.shape[2] in (3, 4):
            bg = bg[..., :3].astype(np.float64) / (255.0 if bg.dtype == np.uint8 else 1.0)
        else:
            raise ValueError(f"{owner}: background must be a colour (3,) or an ({h0}, {w0}, 3) image, got {bg.shape}")

    R = np.asarray(rotation_matrix(np.asarray(camera.rotation, np.float64)), dtype=np.float64)
    t = np.asarray(camera.translation, dtype=np.float64)
    focal = np.asarray(camera.focal, dtype=np.float64) * ss
    principal = np.asarray(camera.principal, dtype=np.float64) * ss
    cam_center = -R.T @ t
    if light_dir is None:
        L = R.T @ np.array([0.35, -0.45, -1.0])
    else:
        L = _check_color(light_dir, "light_dir", owner)
    if np.linalg.norm(L) < 1e-12:
        raise ValueError(f"{owner}: light_dir must be non-zero")
    L = L / np.linalg.norm(L)

    if mesh is not None:
        rgb, covered, zhead = _head_pass(mesh, texture, R, t, focal, principal, (w, h), head_color, L, cam_center,
                                         bool(cull_backfaces))
    else:
        rgb, covered, zhead = np.zeros((h, w, 3)), np.zeros((h, w), bool), np.full((h, w), np.inf)

    hit, seg, frac = _strand_pass(points, R, t, focal, principal, (w, h), zhead, float(depth_bias))
    if seg.size:
        s = points.shape[0]
        strand, _, sin_l, spec, ao = _kajiya_kay_terms(points, seg, frac, L, cam_center, float(shininess),
                                                       float(root_shadow_length), float(root_shadow))
        bright = 1.0 + float(jitter) * np.random.default_rng(0).uniform(-1.0, 1.0, s)
        if strands.color is None:
            albedo = np.broadcast_to(np.asarray(DEFAULT_HAIR_COLOR, np.float64), (s, 3))
        else:
            albedo = np.clip(np.asarray(strands.color, dtype=np.float64), 0.0, 1.0)
        lit = albedo[strand] * (bright[strand] * (ambient + (1.0 - ambient) * sin_l))[:, None]
        lin = ao[:, None] * (lit + float(specular) * spec[:, None] * (0.3 + 0.7 * albedo[strand]) ** 0.5)
        rgb[hit] = _linear_to_srgb(lin)
    alpha = (covered | hit).astype(np.float64)

    def down(a):
        return a.reshape(h0, ss, w0, ss, *a.shape[2:]).mean(axis=(1, 3))

    if background is not None:
        bg_ss = np.repeat(np.repeat(bg, ss, 0), ss, 1) if ss > 1 else bg
        out = np.where(alpha[..., None] > 0, rgb, bg_ss)
        return (np.clip(down(out), 0, 1) * 255 + 0.5).astype(np.uint8)
    a = down(alpha)
    col = down(rgb * alpha[..., None]) / np.maximum(a, 1e-12)[..., None]
    rgba = np.concatenate([col, a[..., None]], -1)
    return (np.clip(rgba, 0, 1) * 255 + 0.5).astype(np.uint8)


def _frame(strands_pts: np.ndarray, verts: np.ndarray, fov_degrees: float) -> tuple[tuple, float]:
    """Orbit target and distance that keep the head and every strand in view from any yaw."""
    pts = np.concatenate([verts.reshape(-1, 3), strands_pts.reshape(-1, 3)], 0)
    cx, cz = (verts[:, 0].min() + verts[:, 0].max()) / 2, (verts[:, 2].min() + verts[:, 2].max()) / 2
    lo, hi = pts[:, 1].min(), pts[:, 1].max()
    ty = (lo + hi) / 2
    half_h = (hi - lo) / 2
    r = float(np.sqrt((pts[:, 0] - cx) ** 2 + (pts[:, 2] - cz) ** 2).max())
    tan = np.tan(np.radians(fov_degrees) / 2)
    d = 1.08 * max(half_h, r) / tan + r
    return (float(cx), float(ty), float(cz)), max(float(d), 0.3)


def hair_preview(
    strands: Strands,
    mesh: Mesh,
    *,
    texture: np.ndarray | None = None,
    size: int = 384,
    views: Sequence[str | float | int] = ("front", "side", "back"),
    background: Sequence[float] | np.ndarray = (0.93, 0.93, 0.92),
    supersample: int = 2,
) -> UInt8[np.ndarray, "H W 3"]:
    """Front, side and back views of hair on its head, side by side, for a person to judge.

    Each view is :func:`render_strands` through :func:`machlib._preview.orbit_camera` at the
    view's yaw (``"front"`` 0°, ``"side"`` 90°, the subject's left, ``"back"`` 180°; a number is
    a yaw in degrees), with the light following the camera. The orbit target and distance are
    chosen once from the head and the strands so that everything is in frame and every view has
    the same scale.

    Args:
        strands: the :class:`~machlib.hair.Strands` (may be empty: the bald head).
        mesh: the head :class:`~machlib.Mesh` the strands were grown on.
        texture: optional ``(H, W, 3)`` sRGB albedo in the mesh's UV layout.
        size: side of each square view in pixels, ``≥ 8``.
        views: names of :data:`HAIR_PREVIEW_VIEWS` or yaw angles in degrees.
        background: sRGB colour behind the head (a neutral light grey).
        supersample: see :func:`render_strands`.

    Returns:
        ``(size, len(views) * size, 3)`` uint8 RGB.

    Raises:
        TypeError: ``strands`` or ``mesh`` has the wrong type.
        ValueError: an unknown view name, no views, or a bad ``size``.

    Example:
        >>> import numpy as np
        >>> from machlib import Mesh
        >>> from machlib.hair import Strands
        >>> from machlib.hair._render import hair_preview
        >>> tri = Mesh(np.array([[-.1, -.1, 0], [.1, -.1, 0], [0, .1, 0]]), np.array([[0, 1, 2]]),
        ...            np.zeros((3, 2)), np.array([[0, 1, 2]]))
        >>> hair_preview(Strands(np.zeros((0, 4, 3))), tri, size=16).shape
        (16, 48, 3)
    """
    owner = "hair_preview"
    if not isinstance(strands, Strands):
        raise TypeError(f"{owner}: strands must be machlib.hair.Strands, got {type(strands).__name__}")
    if not isinstance(mesh, Mesh):
        raise TypeError(f"{owner}: mesh must be a machlib.Mesh, got {type(mesh).__name__}")
    if isinstance(size, bool) or int(size) != size or size < 8:
        raise ValueError(f"{owner}: size must be an integer >= 8, got {size!r}")
    if isinstance(views, str) or len(views) == 0:
        raise ValueError(f"{owner}: views must be a non-empty sequence of names or yaws, got {views!r}")
    yaws = []
    for v in views:
        if isinstance(v, str):
            if v not in HAIR_PREVIEW_VIEWS:
                raise ValueError(f"{owner}: unknown view {v!r}; use one of {sorted(HAIR_PREVIEW_VIEWS)} or a yaw")
            yaws.append(HAIR_PREVIEW_VIEWS[v])
        else:
            yaws.append(float(v))
    size = int(size)
    fov = 25.0
    pts = np.asarray(strands.points, dtype=np.float64)
    if not np.isfinite(pts).all():
        raise ValueError(f"{owner}: strands.points contain NaN or infinity")
    target, distance = _frame(pts, np.asarray(mesh.vertices, dtype=np.float64), fov)
    panels = []
    for yaw in yaws:
        cam = orbit_camera(yaw, distance=distance, target=target, image_size=(size, size), fov_degrees=fov)
        panels.append(render_strands(strands, cam, mesh=mesh, texture=texture, background=background,
                                     supersample=supersample))
    return np.concatenate(panels, axis=1)
