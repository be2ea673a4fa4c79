"""Things drawn by code onto a real portrait, to test what machlib reads from photos.

Only two of the offline portraits are useful for glasses and none for beards (the bundled portrait
wears glasses; nobody has a beard), so the tests draw them: :func:`draw_glasses` paints spectacle
frames (rims, bridge, temples) where glasses sit on a face, from its landmarks;
:func:`draw_beard` darkens and roughens the chin and jaw (or the upper lip) like facial hair.
Both are deterministic.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["draw_glasses", "draw_beard", "face_frame"]


def face_frame(points: np.ndarray):
    """``(origin, ex, ey, d)``: the eye-line frame of a face (origin between the iris centres,
    ``ex`` towards the image-right eye, ``ey`` down the face, ``d`` the iris distance in pixels)."""
    p = np.asarray(points, np.float64)
    a, b = p[468], p[473]
    d = float(np.linalg.norm(b - a))
    ex = (b - a) / d
    ey = np.array([-ex[1], ex[0]])
    return (a + b) / 2, ex, ey, d


def _lens(style: str, n: int = 96) -> np.ndarray:
    """Closed lens outline around ``(0, 0)`` in iris-distance units (u right, v down), right lens
    of the image (the outer side is +u)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    if style == "round":
        return np.stack([0.34 * c, 0.32 * s], 1)
    if style == "rectangular":  # a superellipse: flat sides, rounded corners
        e = 0.25
        return np.stack([0.36 * np.sign(c) * np.abs(c) ** e, 0.24 * np.sign(s) * np.abs(s) ** e], 1)
    if style == "cat-eye":
        x, y = 0.36 * c, 0.25 * s
        up = (s < 0) * np.clip(c, 0, None) ** 2  # the upper outer corner swept up and out
        return np.stack([x + 0.06 * up, y - 0.16 * up], 1)
    raise ValueError(style)


def draw_glasses(image: np.ndarray, points: np.ndarray, *, style: str = "rectangular",
                 color=(25, 20, 18), width: float = 0.05, temples: bool = True) -> np.ndarray:
    """The portrait with spectacle frames drawn on: two rims (``style``: ``round``,
    ``rectangular`` or ``cat-eye``), the bridge over the nose and the temples towards the ears.

    Args:
        image: ``(H, W, 3)`` uint8 portrait.
        points: its ``(478, 2)`` MediaPipe landmarks.
        style: lens outline.
        color: frame RGB (0..255).
        width: frame thickness in iris distances.
        temples: also draw the arms from the hinges towards the ears.
    """
    o, ex, ey, d = face_frame(points)
    ss = 4  # supersampled, so the lines are antialiased
    h, w = image.shape[:2]
    canvas = Image.new("L", (w * ss, h * ss), 0)
    draw = ImageDraw.Draw(canvas)
    lw = max(1, int(round(width * d * ss)))

    def px(uv):
        uv = np.atleast_2d(uv)
        xy = o + d * (uv[:, :1] * ex + uv[:, 1:] * ey)
        return [(float(x) * ss, float(y) * ss) for x, y in xy]

    lens = _lens(style)
    centres = (np.array([-0.5, 0.03]), np.array([0.5, 0.03]))
    for k, c in enumerate(centres):
        outline = lens * (np.array([-1.0, 1.0]) if k == 0 else 1.0) + c
        draw.line(px(np.concatenate([outline, outline[:1]])), fill=255, width=lw, joint="curve")
        for q in px(outline):  # round joints
            draw.ellipse([q[0] - lw / 2, q[1] - lw / 2, q[0] + lw / 2, q[1] + lw / 2], fill=255)
    inner = min(np.abs(lens[:, 0]).max(), 0.45)
    bridge = np.array([[-0.5 + inner, -0.02], [-0.08, -0.07], [0.0, -0.08], [0.08, -0.07], [0.5 - inner, -0.02]])
    draw.line(px(bridge), fill=255, width=lw, joint="curve")
    if temples:
        outer = 0.5 + np.abs(lens[:, 0]).max()
        for sgn in (-1.0, 1.0):
            arm = np.array([[sgn * (outer - 0.02), -0.08], [sgn * (outer + 0.3), -0.06]])
            draw.line(px(arm), fill=255, width=max(1, int(lw * 0.7)))
    alpha = np.asarray(canvas.resize((w, h), Image.BOX), np.float32)[..., None] / 255.0
    out = image.astype(np.float32) * (1 - alpha) + alpha * np.asarray(color, np.float32)
    return (out + 0.5).clip(0, 255).astype(np.uint8)


def draw_beard(image: np.ndarray, points: np.ndarray, *, region: str = "full", strength: float = 0.65,
               seed: int = 0) -> np.ndarray:
    """The portrait with facial hair painted on: the skin darkened towards a dark brown and
    roughened with fine noise (hair texture) over ``region``: ``full`` (chin, jaw and upper lip),
    ``goatee`` (chin and upper lip) or ``moustache`` (upper lip only).
    """
    from skimage.draw import polygon

    p = np.asarray(points, np.float64)
    h, w = image.shape[:2]
    m = np.zeros((h, w), np.float32)

    def fill(idx):
        q = p[list(idx)]
        rr, cc = polygon(q[:, 1], q[:, 0], shape=(h, w))
        m[rr, cc] = 1.0

    upper_lip = (61, 92, 165, 167, 164, 393, 391, 322, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
    chin = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 287, 273, 335, 406, 313, 18, 83, 182, 106, 43, 57)
    chin_small = (91, 181, 84, 17, 314, 405, 321, 400, 377, 152, 148, 176)
    jaw = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 410, 436, 432, 430, 394, 379, 378, 400, 377,
           152, 148, 176, 149, 150, 169, 210, 212, 216, 186)
    if region in ("full", "goatee", "moustache"):
        fill(upper_lip)
    if region == "full":
        fill(jaw)
        fill(chin)
    elif region == "goatee":
        fill(chin_small)
    from scipy import ndimage

    lips = np.zeros((h, w), np.float32)
    q = p[[61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146]]
    rr, cc = polygon(q[:, 1], q[:, 0], shape=(h, w))
    lips[rr, cc] = 1.0
    m = ndimage.gaussian_filter(m * (1 - lips), 2.0)
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.standard_normal((h, w)), 0.7)
    noise /= noise.std()
    hair = np.array([45.0, 32.0, 25.0])
    img = image.astype(np.float32)
    shade = img * (1 - strength) + strength * hair * (1 + 0.5 * noise[..., None])
    out = img * (1 - m[..., None]) + shade * m[..., None]
    return out.clip(0, 255).astype(np.uint8)
