"""Preview rendering (numpy): shaded, optionally textured meshes and 2D overlays for humans.

Not differentiable; the differentiable renderer lives in ``machlib.render`` (texture stage).
"""

from __future__ import annotations

import numpy as np

from ._camera import Camera, project, rotation_matrix, world_to_camera
from ._mesh import Mesh, vertex_normals
from ._raster import rasterize_np

__all__ = ["render_mesh", "sample_texture_np", "draw_points", "draw_lines", "orbit_camera"]


def sample_texture_np(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear texture lookup (numpy), texel centres at ``(j + 0.5) / W``, edges clamped.

    Args:
        texture: ``(H, W, C)`` float or uint8 texture.
        uv: ``(..., 2)`` coordinates, origin top-left.

    Returns:
        ``(..., C)`` float64 samples (uint8 textures are scaled to ``[0, 1]``).
    """
    tex = np.asarray(texture)
    if tex.dtype == np.uint8:
        tex = tex.astype(np.float64) / 255.0
    h, w = tex.shape[:2]
    x = np.clip(uv[..., 0] * w - 0.5, 0, w - 1)
    y = np.clip(uv[..., 1] * h - 0.5, 0, h - 1)
    x0 = np.clip(np.floor(x).astype(np.int64), 0, max(w - 2, 0))
    y0 = np.clip(np.floor(y).astype(np.int64), 0, max(h - 2, 0))
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    fx = (x - x0)[..., None]
    fy = (y - y0)[..., None]
    top = tex[y0, x0] * (1 - fx) + tex[y0, x1] * fx
    bot = tex[y1, x0] * (1 - fx) + tex[y1, x1] * fx
    return top * (1 - fy) + bot * fy


def orbit_camera(
    yaw_degrees: float, *, pitch_degrees: float = 0.0, distance: float = 0.85,
    target=(0.0, -0.02, 0.0), image_size=(512, 512), fov_degrees: float = 25.0,
) -> Camera:
    """A camera orbiting the head: yaw 0 looks at the face from +z, 90 from the subject's left."""
    from ._camera import look_at

    yaw, pitch = np.radians(yaw_degrees), np.radians(pitch_degrees)
    t = np.asarray(target, dtype=np.float64)
    eye = t + distance * np.array([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
    return look_at(eye, t, image_size=image_size, fov_degrees=fov_degrees)


def render_mesh(
    mesh: Mesh,
    camera: Camera,
    *,
    texture: np.ndarray | None = None,
    color=(0.78, 0.6, 0.5),
    light_dir=(0.35, 0.45, 1.0),
    ambient: float = 0.35,
    specular: float = 0.08,
    background=None,
) -> np.ndarray:
    """Render a shaded mesh in a camera: Lambert + ambient + a little Blinn-Phong.

    Args:
        mesh: the :class:`~machlib.Mesh`.
        camera: the :class:`~machlib.Camera`; the image has ``camera.image_size``.
        texture: optional ``(H, W, 3)`` albedo in the mesh's UV layout (uint8 or float).
        color: albedo when there is no texture.
        light_dir: world-space direction towards the light.
        ambient: ambient term.
        specular: specular strength.
        background: optional ``(H, W, 3)`` uint8 image to composite over; otherwise RGBA with
            alpha = coverage.

    Returns:
        ``(H, W, 4)`` uint8 RGBA (or ``(H, W, 3)`` when ``background`` is given).
    """
    w, h = camera.image_size
    verts = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces)
    pc = np.asarray(world_to_camera(verts, camera))
    px = np.asarray(project(verts, camera))
    tri, bary = rasterize_np(px, faces, (w, h), depth=pc[:, 2], cull_backfaces=False)
    covered = tri >= 0
    t = tri[covered]
    bw = bary[covered]
    normals = np.asarray(vertex_normals(verts, faces))
    n = np.einsum("nk,nkc->nc", bw, normals[faces[t]])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    if texture is not None:
        fuv = np.asarray(mesh.faces_uv)
        uv = np.einsum("nk,nkc->nc", bw, np.asarray(mesh.uv)[fuv[t]])
        albedo = sample_texture_np(texture, uv)[:, :3]
    else:
        albedo = np.broadcast_to(np.asarray(color, dtype=np.float64), (t.size, 3))
    L = np.asarray(light_dir, dtype=np.float64)
    L /= np.linalg.norm(L)
    R = np.asarray(rotation_matrix(camera.rotation))
    cam_center = -R.T @ np.asarray(camera.translation)
    p = np.einsum("nk,nkc->nc", bw, verts[faces[t]])
    V = cam_center - p
    V /= np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-12)
    n = np.where(np.sum(n * V, 1, keepdims=True) < 0, -n, n)  # two-sided for previews
    diff = np.clip(n @ L, 0, None)[:, None]
    H = L[None] + V
    H /= np.maximum(np.linalg.norm(H, axis=1, keepdims=True), 1e-12)
    spec = specular * np.clip(np.sum(n * H, 1), 0, None)[:, None] ** 32
    rgb = albedo * (ambient + (1 - ambient) * diff) + spec
    img = np.zeros((h, w, 3))
    img[covered] = np.clip(rgb, 0, 1)
    if background is not None:
        out = np.asarray(background, dtype=np.float64) / 255.0
        out = np.where(covered[..., None], img, out)
        return (out * 255 + 0.5).astype(np.uint8)
    rgba = np.concatenate([img, covered[..., None].astype(np.float64)], -1)
    return (rgba * 255 + 0.5).astype(np.uint8)


def draw_points(image: np.ndarray, points: np.ndarray, color, *, radius: float = 1.5) -> np.ndarray:
    """Draw filled dots at continuous pixel coordinates (returns a new uint8 RGB image)."""
    from PIL import Image, ImageDraw

    im = Image.fromarray(np.asarray(image, dtype=np.uint8)[..., :3].copy())
    d = ImageDraw.Draw(im)
    for x, y in np.asarray(points):
        d.ellipse([x - radius, y - radius, x + radius, y + radius], fill=tuple(color))
    return np.asarray(im)


def draw_lines(image: np.ndarray, segments: np.ndarray, color, *, width: int = 1, alpha: float = 1.0) -> np.ndarray:
    """Draw line segments ``(S, 2, 2)`` (pixel coordinates) with optional transparency."""
    from PIL import Image, ImageDraw

    base = Image.fromarray(np.asarray(image, dtype=np.uint8)[..., :3].copy()).convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    c = tuple(color) + (int(255 * alpha),)
    for (x0, y0), (x1, y1) in np.asarray(segments):
        d.line([(x0, y0), (x1, y1)], fill=c, width=width)
    return np.asarray(Image.alpha_composite(base, layer).convert("RGB"))
