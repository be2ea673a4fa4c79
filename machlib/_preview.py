"""Preview helpers (numpy): orbit cameras, texture lookup and 2D overlays for humans.

The preview renderer itself is :func:`machlib._scene.render_scene`; the differentiable renderer
lives in :mod:`machlib.render`.
"""

from __future__ import annotations

import numpy as np

from ._camera import Camera

__all__ = ["sample_texture_np", "draw_points", "draw_lines", "orbit_camera"]


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
