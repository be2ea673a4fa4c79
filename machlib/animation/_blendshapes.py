"""ARKit's 52 blendshapes as displacement fields on the template head ("delta triplanes").

Every blendshape is an analytic displacement field placed from the head's dense landmarks: eyelids
rotate about the eyeball centre, the jaw about a hinge axis below the ears, lip corners, brows,
cheeks and nostrils move under compact smooth bumps. Evaluated at the texels of the template's
position map, the fields become ``(52, R, R, 3)`` maps in the template's UV layout: a fitted head,
which shares that layout, inherits them by sampling at its vertices' UVs, the same mechanism that
decodes its geometry (:func:`machlib.geometry.decode`).

The mouth of the procedural template is a closed slit. :func:`mouth_cut` finds the triangles that
straddle the lips' contact line; an animated head drops them, so the lips part when the jaw opens.
Whether a point belongs to the upper or the lower lip is decided from that cut (the nearest vertex
in UV), so the two lips never share a texel and part cleanly.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float
from scipy.spatial import cKDTree

from .._errors import InputError
from .._mesh import Mesh
from ..geometry import decode, default_template
from ._expressions import ARKIT_BLENDSHAPES

__all__ = [
    "FaceFrame", "face_frame", "blendshape_field", "mouth_cut", "MouthCut", "blendshape_triplanes",
    "head_blendshapes", "apply_blendshapes", "EYE_LOOK_DEGREES", "eye_blendshapes",
]

_INDEX = {n: i for i, n in enumerate(ARKIT_BLENDSHAPES)}
_TEMPLATE_EYE_RADIUS = 0.0125
_TEMPLATE_IOD = 0.0846  # outer eye corners 33–263 on the template
EYE_LOOK_DEGREES = {"Up": 20.0, "Down": 25.0, "In": 25.0, "Out": 25.0}
"""Eyeball rotation (degrees) of each ``eyeLook*`` blendshape at weight 1."""

# MediaPipe FaceMesh indices (subject's right side first; +x is the subject's left)
_UPPER_LID = {"R": (33, 246, 161, 160, 159, 158, 157, 173, 133),
              "L": (263, 466, 388, 387, 386, 385, 384, 398, 362)}
_LOWER_LID = {"R": (33, 7, 163, 144, 145, 153, 154, 155, 133),
              "L": (263, 249, 390, 373, 374, 380, 381, 382, 362)}
_LIP_PAIRS = ((78, 78), (191, 95), (80, 88), (81, 178), (82, 87), (13, 14), (312, 317), (311, 402),
              (310, 318), (415, 324), (308, 308))
_BROW = {"R": {"inner": (107, 55), "mid": (105, 52), "outer": (70, 46)},
         "L": {"inner": (336, 285), "mid": (334, 282), "outer": (300, 276)}}


class FaceFrame(NamedTuple):
    """Landmark-derived places the blendshape fields are built from (head space, metres).

    Attributes:
        scale: head size relative to the template (outer-eye-corner distance ratio).
        eye_centers: ``(2, 3)`` eyeball centres, ``[right, left]``.
        eye_radius: eyeball radius.
        upper_lid, lower_lid: per side (``"R"``, ``"L"``) ``(9, 3)`` lid-margin points, corner to corner.
        lip_line: ``(11, 2)`` ``(x, y)`` of the lips' contact line, sorted by ``x``.
        mouth_corners: ``(2, 3)`` outer mouth corners ``[right, left]``.
        mouth_center: the lips' centre between the outer upper and lower lip.
        jaw_pivot: a point on the jaw's hinge axis (parallel to ``x``).
        chin: the chin landmark.
        brows: per side ``{"inner", "mid", "outer"}`` brow points.
        cheeks: ``(2, 3)`` cheek centres ``[right, left]``.
        alae: ``(2, 3)`` nostril wings ``[right, left]``.
    """

    scale: float
    eye_centers: np.ndarray
    eye_radius: float
    upper_lid: dict
    lower_lid: dict
    lip_line: np.ndarray
    mouth_corners: np.ndarray
    mouth_center: np.ndarray
    jaw_pivot: np.ndarray
    chin: np.ndarray
    brows: dict
    cheeks: np.ndarray
    alae: np.ndarray


def face_frame(landmarks: Float[ArrayLike, "478 3"]) -> FaceFrame:
    """Places for the blendshape fields from 478 MediaPipe landmarks (with irises) on a head.

    Args:
        landmarks: ``(478, 3)`` head-space landmark positions (``Template.landmark_positions`` or
            a fitted head's).

    Returns:
        The :class:`FaceFrame`.

    Raises:
        InputError: wrong shape or non-finite landmarks.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (478, 3) or not np.all(np.isfinite(lm)):
        raise InputError(f"face_frame: landmarks must be a finite (478, 3) array, got shape {lm.shape}")
    scale = float(np.linalg.norm(lm[263] - lm[33]) / _TEMPLATE_IOD)
    if not 0.3 < scale < 3.0:
        raise InputError(f"face_frame: the eye corners are {scale:.2f}× the template's distance apart; "
                         "landmarks must be in metres, head space")
    r = _TEMPLATE_EYE_RADIUS * scale
    eyes = np.stack([lm[468] - [0, 0, r], lm[473] - [0, 0, r]])
    lip = np.array([[(lm[a, 0] + lm[b, 0]) / 2, (lm[a, 1] + lm[b, 1]) / 2] for a, b in _LIP_PAIRS])
    lip = lip[np.argsort(lip[:, 0])]
    corners = np.stack([lm[61], lm[291]])
    center = 0.5 * (lm[0] + lm[17])
    # hinge: below the ears, a little behind the face's front plane
    ear_y = 0.5 * (lm[234, 1] + lm[454, 1])
    pivot = np.array([0.0, ear_y - 0.025 * scale, 0.5 * (lm[234, 2] + lm[454, 2]) - 0.005 * scale])
    brows = {s: {k: 0.5 * (lm[a] + lm[b]) for k, (a, b) in v.items()} for s, v in _BROW.items()}
    cheeks = np.stack([lm[187], lm[411]])  # on the cheeks, between the mouth corners and the jaw
    alae = np.stack([lm[64], lm[294]])
    return FaceFrame(scale, eyes, r,
                     {s: lm[list(i)] for s, i in _UPPER_LID.items()},
                     {s: lm[list(i)] for s, i in _LOWER_LID.items()},
                     lip, corners, center, pivot, lm[152].copy(), brows, cheeks, alae)


# ------------------------------------------------------------------------------------------------
# field helpers (numpy; the fields are assets, built once per head)

def _smoothstep(e0, e1, x):
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _bump(p, c, radii):
    """Compact smooth bump: 1 at ``c``, 0 outside the ellipsoid of ``radii``."""
    d2 = np.sum(((p - np.asarray(c)) / np.asarray(radii)) ** 2, -1)
    return np.clip(1.0 - d2, 0.0, None) ** 2


def _rot_x(v, angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([v[..., 0], c * v[..., 1] - s * v[..., 2], s * v[..., 1] + c * v[..., 2]], -1)


def _rot_y(v, angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([c * v[..., 0] + s * v[..., 2], v[..., 1], -s * v[..., 0] + c * v[..., 2]], -1)


def _lip_y(f: FaceFrame, x):
    return np.interp(x, f.lip_line[:, 0], f.lip_line[:, 1])


def _upper_weight(f: FaceFrame, p, upper):
    """1 on the upper lip's side of the contact line, 0 on the lower's; smooth beyond the corners.

    ``upper`` (bool per point, or None) is the exact side inside the mouth's width (from the cut);
    without it the side is the sign of the height above the contact line.
    """
    t = p[:, 1] - _lip_y(f, p[:, 0])
    xc = float(np.mean(np.abs(f.mouth_corners[:, 0])))
    beyond = np.abs(p[:, 0]) - 0.92 * xc
    width = 0.0006 * f.scale + 0.9 * np.clip(beyond, 0.0, None)
    smooth = _smoothstep(-width, width, t)
    hard = (t > 0).astype(np.float64) if upper is None else np.asarray(upper, dtype=np.float64)
    blend = _smoothstep(0.0, 0.004 * f.scale, beyond)
    return hard * (1 - blend) + smooth * blend


def _jaw_weight(f: FaceFrame, p, upper_w):
    """How much a point follows the jaw: the lower face, fading towards the neck, ears and back."""
    s = f.scale
    lower = 1.0 - upper_w
    below_chin = f.chin[1] - p[:, 1]
    neck = 1.0 - _smoothstep(0.004 * s, 0.035 * s, below_chin)
    front = _smoothstep(f.jaw_pivot[2] - 0.01 * s, f.jaw_pivot[2] + 0.03 * s, p[:, 2])
    side = 1.0 - _smoothstep(0.045 * s, 0.075 * s, np.abs(p[:, 0]))
    # the lower lip's corners stay nearly put, so the mouth opens as a lens, not a box
    xc = float(np.mean(np.abs(f.mouth_corners[:, 0])))
    below = _lip_y(f, p[:, 0]) - p[:, 1]
    near_lip = 1.0 - _smoothstep(0.003 * s, 0.02 * s, below)
    corner = 1.0 - 0.9 * near_lip * np.clip(np.abs(p[:, 0]) / (1.1 * xc), 0.0, 1.0) ** 2
    return lower * neck * front * side * corner


def _lid_field(f: FaceFrame, p, side: str, *, upper_amount: float, lower_amount: float, push: float):
    """Rotate the lids about the eyeball centre (angles as fractions of the eye's opening)."""
    k = 0 if side == "R" else 1
    c = f.eye_centers[k]
    s = f.scale
    q = p - c
    phi = np.arctan2(q[:, 1], q[:, 2])
    r = np.linalg.norm(q[:, 1:], axis=1)

    def margin(points):
        d = points - c
        order = np.argsort(d[:, 0])
        return d[order, 0], np.arctan2(d[order, 1], d[order, 2])

    ux, uphi = margin(f.upper_lid[side])
    lx, lphi = margin(f.lower_lid[side])
    phi_u = np.interp(q[:, 0], ux, uphi)
    phi_l = np.interp(q[:, 0], lx, lphi)
    opening = np.clip(phi_u - phi_l, 0.0, None)
    falloff = 0.75
    g_up = np.where(phi >= phi_u, 1.0 - _smoothstep(phi_u, phi_u + falloff, phi), 0.0)
    g_low = np.where(phi <= phi_l, 1.0 - _smoothstep(-phi_l, -phi_l + falloff * 0.7, -phi), 0.0)
    span = np.maximum(phi_u - phi_l, 1e-6)
    mid = np.clip((phi - phi_l) / span, 0.0, 1.0)
    between = (phi > phi_l) & (phi < phi_u)
    angle = upper_amount * opening * np.where(between, mid, g_up)
    angle = angle - lower_amount * opening * np.where(between, 1 - mid, g_low)
    lateral = 1.0 - _smoothstep(0.012 * s, 0.022 * s, np.abs(q[:, 0]))
    front = _smoothstep(-0.004 * s, 0.004 * s, q[:, 2])
    radial = 1.0 - _smoothstep(f.eye_radius + 0.006 * s, f.eye_radius + 0.016 * s, np.linalg.norm(q, axis=1))
    w = lateral * front * radial
    moved = _rot_x(q, angle * w)  # a positive angle about +x lowers points in front of the centre
    out = np.where(phi >= phi_u, g_up, 0.0) * push * s * w * (np.abs(upper_amount) > 0)
    radial_dir = np.stack([np.zeros_like(r), moved[:, 1], moved[:, 2]], 1) / np.maximum(r, 1e-9)[:, None]
    return moved - q + out[:, None] * radial_dir


def blendshape_field(points: Float[ArrayLike, "N 3"], frame: FaceFrame, *,
                     upper: Optional[np.ndarray] = None) -> np.ndarray:
    """The 52 ARKit displacements at head-space points, ``(52, N, 3)`` in metres.

    Args:
        points: ``(N, 3)`` points near the head (its surface, or parts inside the mouth).
        frame: the :class:`FaceFrame` of the head.
        upper: optional ``(N,)`` bool, the exact lip side of each point inside the mouth's width
            (from :func:`mouth_cut`); None uses the sign of the height above the contact line.

    Returns:
        ``(52, N, 3)`` float64 displacements in :data:`ARKIT_BLENDSHAPES` order. Displacements
        are for weight 1; weights mix them linearly (:func:`apply_blendshapes`).

    Raises:
        InputError: ``points`` is not ``(N, 3)`` finite.
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or not np.all(np.isfinite(p)):
        raise InputError(f"blendshape_field: points must be a finite (N, 3) array, got shape {p.shape}")
    f, s = frame, frame.scale
    out = np.zeros((len(ARKIT_BLENDSHAPES), len(p), 3))

    def put(name, d):
        out[_INDEX[name]] += d

    sides = (("Left", "L", 1, 1.0), ("Right", "R", 0, -1.0))  # +x is the subject's left
    # -- eyes: lids about the eyeball
    for name, key, k, sx in sides:
        put(f"eyeBlink{name}", _lid_field(f, p, key, upper_amount=0.80, lower_amount=0.24, push=0.0008))
        put(f"eyeWide{name}", _lid_field(f, p, key, upper_amount=-0.28, lower_amount=-0.08, push=0.0))
        put(f"eyeSquint{name}", _lid_field(f, p, key, upper_amount=0.10, lower_amount=0.30, push=0.0004))
        put(f"eyeLookUp{name}", _lid_field(f, p, key, upper_amount=-0.14, lower_amount=-0.06, push=0.0))
        put(f"eyeLookDown{name}", _lid_field(f, p, key, upper_amount=0.30, lower_amount=0.10, push=0.0004))
        c = f.eye_centers[k]
        for look, dx in (("In", -sx), ("Out", sx)):  # lids follow the gaze a little sideways
            lid = _bump(p, c + [0, 0, f.eye_radius], (0.016 * s, 0.012 * s, 0.014 * s))
            put(f"eyeLook{look}{name}", lid[:, None] * np.array([dx * 0.0012 * s, 0, 0]))
    # -- jaw
    up_w = _upper_weight(f, p, upper)
    jaw = _jaw_weight(f, p, up_w)
    q = p - f.jaw_pivot
    for name, angle in (("jawOpen", np.radians(13.0)), ("tongueOut", np.radians(4.0))):
        put(name, _rot_x(q, angle * jaw) - q)  # +angle about x swings the chin down and back
    put("jawForward", jaw[:, None] * np.array([0, 0, 0.006 * s]))
    put("jawLeft", jaw[:, None] * np.array([0.007 * s, 0, 0]))
    put("jawRight", jaw[:, None] * np.array([-0.007 * s, 0, 0]))
    # -- lips
    mc = f.mouth_center
    xc = float(np.mean(np.abs(f.mouth_corners[:, 0])))
    lips = _bump(p, mc, (xc + 0.01 * s, 0.022 * s, 0.03 * s))
    jaw_open = out[_INDEX["jawOpen"]]
    put("mouthClose", -0.6 * jaw_open * (lips * (1 - up_w))[:, None] * (1 - np.clip(np.abs(p[:, 0]) / (xc + 0.01 * s), 0, 1) ** 2)[:, None])
    toward = np.stack([-(p[:, 0] - mc[0]), np.zeros(len(p)), np.zeros(len(p))], 1)
    open_lips = (up_w * 0.0015 - (1 - up_w) * 0.0025) * s
    put("mouthFunnel", lips[:, None] * (0.25 * toward + np.array([0, 0, 0.005 * s])) + (lips * open_lips)[:, None] * [0, 1, 0])
    put("mouthPucker", lips[:, None] * (0.4 * toward + np.array([0, 0, 0.007 * s])))
    region = _bump(p, mc, (xc + 0.02 * s, 0.03 * s, 0.035 * s))
    put("mouthLeft", region[:, None] * np.array([0.007 * s, 0, 0]))
    put("mouthRight", region[:, None] * np.array([-0.007 * s, 0, 0]))
    upper_lip = lips * up_w
    lower_lip = lips * (1 - up_w)
    put("mouthRollLower", lower_lip[:, None] * np.array([0, 0.0015 * s, -0.004 * s]))
    put("mouthRollUpper", upper_lip[:, None] * np.array([0, -0.0015 * s, -0.004 * s]))
    chin = _bump(p, 0.5 * (f.chin + mc), (xc + 0.01 * s, 0.03 * s, 0.03 * s)) * (1 - up_w)
    put("mouthShrugLower", chin[:, None] * np.array([0, 0.004 * s, 0.001 * s]))
    put("mouthShrugUpper", upper_lip[:, None] * np.array([0, 0.0025 * s, 0.0005 * s]))
    for name, key, k, sx in sides:
        corner = f.mouth_corners[k]
        cb = _bump(p, corner, (0.02 * s, 0.018 * s, 0.022 * s))
        wide = _bump(p, corner + [0.004 * sx * s, 0.006 * s, -0.004 * s], (0.03 * s, 0.03 * s, 0.03 * s))
        put(f"mouthSmile{name}", cb[:, None] * np.array([0.004 * sx * s, 0.006 * s, -0.003 * s])
            + wide[:, None] * np.array([0.0, 0.002 * s, 0.0005 * s]))
        put(f"mouthFrown{name}", cb[:, None] * np.array([0.001 * sx * s, -0.005 * s, -0.001 * s]))
        put(f"mouthDimple{name}", cb[:, None] * np.array([0.002 * sx * s, 0.0, -0.004 * s]))
        put(f"mouthStretch{name}", cb[:, None] * np.array([0.005 * sx * s, -0.003 * s, -0.002 * s]))
        half = _bump(p, mc + [0.5 * corner[0] - 0.5 * mc[0], 0, 0], (0.6 * xc + 0.006 * s, 0.016 * s, 0.03 * s))
        put(f"mouthPress{name}", (half * up_w)[:, None] * np.array([0, -0.0008 * s, -0.0012 * s])
            + (half * (1 - up_w))[:, None] * np.array([0, 0.0012 * s, -0.0012 * s]))
        put(f"mouthLowerDown{name}", (half * (1 - up_w))[:, None] * np.array([0, -0.0045 * s, 0.0005 * s]))
        put(f"mouthUpperUp{name}", (half * up_w)[:, None] * np.array([0, 0.0045 * s, 0.0005 * s]))
    # -- brows, cheeks, nose
    for name, key, k, sx in sides:
        b = f.brows[key]
        whole = _bump(p, b["mid"], (0.028 * s, 0.014 * s, 0.025 * s))
        put(f"browDown{name}", whole[:, None] * np.array([-0.002 * sx * s, -0.005 * s, 0.001 * s]))
        outer = _bump(p, b["outer"], (0.018 * s, 0.016 * s, 0.025 * s))
        put(f"browOuterUp{name}", outer[:, None] * np.array([0, 0.005 * s, 0]))
        sq = _bump(p, f.eye_centers[k] + [0, -0.02 * s, 0.01 * s], (0.02 * s, 0.014 * s, 0.02 * s))
        put(f"cheekSquint{name}", sq[:, None] * np.array([0, 0.003 * s, 0.0008 * s]))
        ala = _bump(p, f.alae[k] + [0, 0.004 * s, 0], (0.011 * s, 0.014 * s, 0.014 * s))
        put(f"noseSneer{name}", ala[:, None] * np.array([0.0005 * sx * s, 0.003 * s, 0.0005 * s]))
    inner = sum(_bump(p, f.brows[key]["inner"], (0.016 * s, 0.016 * s, 0.025 * s)) for key in "RL")
    put("browInnerUp", np.clip(inner, 0, 1)[:, None] * np.array([0, 0.006 * s, 0]))
    puff = np.zeros(len(p))
    for k in range(2):
        puff = puff + _bump(p, f.cheeks[k], (0.022 * s, 0.024 * s, 0.03 * s))
    # outwards from a vertical axis 3 cm behind the lips
    outward = np.stack([p[:, 0], np.zeros(len(p)), p[:, 2] - (mc[2] - 0.03 * s)], 1)
    outward /= np.maximum(np.linalg.norm(outward, axis=1, keepdims=True), 1e-9)
    put("cheekPuff", puff[:, None] * outward * 0.007 * s)
    put("tongueOut", lower_lip[:, None] * np.array([0, -0.0015 * s, 0.0005 * s]))
    return out


# ------------------------------------------------------------------------------------------------
class MouthCut(NamedTuple):
    """The lips' parting on a template-topology head.

    Attributes:
        faces: ``(F,)`` bool, True for the triangles that straddle the lips' contact line (an
            animated head drops them).
        upper: ``(V,)`` bool, True for vertices on the upper lip's side of the line.
        mouth: ``(V,)`` bool, True for vertices inside the mouth's width, where ``upper`` decides
            the side exactly.
    """

    faces: np.ndarray
    upper: np.ndarray
    mouth: np.ndarray


def _vertex_uv(mesh: Mesh) -> np.ndarray:
    return np.asarray(mesh.vertex_uv(), dtype=np.float64)


def mouth_cut(mesh: Mesh, frame: FaceFrame) -> MouthCut:
    """Find the triangles along the lips' contact line between the mouth corners.

    Args:
        mesh: a head with the template's topology (the template or a fitted head).
        frame: its :class:`FaceFrame`.

    Returns:
        The :class:`MouthCut`.
    """
    v = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces)
    xc = float(np.mean(np.abs(frame.mouth_corners[:, 0])))
    t = v[:, 1] - _lip_y(frame, v[:, 0])
    upper = t > 0
    near = (np.abs(v[:, 0]) < 0.96 * xc) & (np.abs(t) < 0.006 * frame.scale) & (v[:, 2] > frame.mouth_center[2] - 0.02 * frame.scale)
    fu = upper[faces]
    straddle = fu.any(1) & ~fu.all(1) & near[faces].all(1)
    return MouthCut(straddle, upper, near)


def blendshape_triplanes(*, template=None, resolution: int = 256) -> Float[np.ndarray, "52 R R 3"]:
    """The 52 blendshapes as delta triplanes in the template's UV layout.

    Each texel holds the displacement of the template surface point it maps to; a fitted head
    samples them at its vertex UVs (:func:`head_blendshapes`). The lips' side of texels inside the
    mouth's width is the side of the nearest template vertex in UV, so the maps keep the upper and
    the lower lip apart exactly where :func:`mouth_cut` parts the mesh.

    Args:
        template: a :class:`~machlib.geometry.Template` (default: the built-in one).
        resolution: map size ``R`` (≥ 64).

    Returns:
        ``(52, R, R, 3)`` float32 displacements in metres, :data:`ARKIT_BLENDSHAPES` order.

    Raises:
        InputError: resolution below 64, or a template without the 478 landmarks.

    Example:
        >>> from machlib.animation import blendshape_triplanes
        >>> blendshape_triplanes(resolution=64).shape
        (52, 64, 64, 3)
    """
    if int(resolution) < 64:
        raise InputError(f"blendshape_triplanes: resolution must be at least 64, got {resolution}")
    template = default_template() if template is None else template
    if not np.all(template.landmark_valid):
        raise InputError("blendshape_triplanes: the template must define all 478 landmarks")
    key = (id(template.mesh), int(resolution))
    hit = _TRIPLANES.get(key)
    if hit is not None and hit[0] is template.mesh:
        return hit[1]
    frame = face_frame(template.landmark_positions())
    R = int(resolution)
    pos = np.asarray(template.position_map(R), dtype=np.float64).reshape(-1, 3)
    cut = mouth_cut(template.mesh, frame)
    vuv = _vertex_uv(template.mesh)
    ii, jj = np.meshgrid(np.arange(R), np.arange(R), indexing="ij")
    texel_uv = np.stack([(jj.reshape(-1) + 0.5) / R, (ii.reshape(-1) + 0.5) / R], 1)
    idx = np.flatnonzero(cut.mouth)
    upper = None
    if idx.size:
        _, nn = cKDTree(vuv[idx]).query(texel_uv)
        upper = cut.upper[idx[nn]]
        inside = np.abs(pos[:, 0]) < np.max(np.abs(template.mesh.vertices[idx, 0]))
        geo = pos[:, 1] > _lip_y(frame, pos[:, 0])
        upper = np.where(inside & (np.linalg.norm(texel_uv - vuv[idx[nn]], axis=1) < 0.02), upper, geo)
    field = blendshape_field(pos, frame, upper=upper).astype(np.float32).reshape(-1, R, R, 3)
    if len(_TRIPLANES) >= 4:
        _TRIPLANES.pop(next(iter(_TRIPLANES)))
    _TRIPLANES[key] = (template.mesh, field)
    return field


_TRIPLANES: dict = {}


def head_blendshapes(head: Mesh, *, template=None, triplanes=None) -> Float[np.ndarray, "52 V 3"]:
    """Per-vertex blendshape deltas of a head with the template's topology, from the delta triplanes.

    The deltas are sampled at the head's vertex UVs (bilinear, like
    :func:`machlib.geometry.decode`) and scaled by the head's size relative to the template.

    Args:
        head: the fitted head (template topology).
        template: the template the head was fitted from (default: the built-in one).
        triplanes: precomputed :func:`blendshape_triplanes` (default: computed at 256²).

    Returns:
        ``(52, V, 3)`` float32 deltas in metres.

    Raises:
        InputError: the head does not have the template's topology.
    """
    template = default_template() if template is None else template
    if np.shape(head.faces) != np.shape(template.mesh.faces) or np.shape(head.vertices) != np.shape(template.mesh.vertices):
        raise InputError(f"head_blendshapes: the head must have the template's topology "
                         f"({template.mesh.num_vertices} vertices), got {head.num_vertices}")
    tp = blendshape_triplanes(template=template) if triplanes is None else np.asarray(triplanes)
    if tp.ndim != 4 or tp.shape[0] != len(ARKIT_BLENDSHAPES) or tp.shape[-1] != 3:
        raise InputError(f"head_blendshapes: triplanes must be (52, R, R, 3), got {tp.shape}")
    uv = jnp.asarray(_vertex_uv(template.mesh), dtype=jnp.float32)
    stacked = jnp.asarray(np.moveaxis(tp, 0, 2).reshape(tp.shape[1], tp.shape[2], -1))
    d = np.asarray(decode(stacked, uv)).reshape(-1, len(ARKIT_BLENDSHAPES), 3)
    scale = _size_ratio(head, template)
    return np.ascontiguousarray(np.moveaxis(d, 1, 0) * scale, dtype=np.float32)


def _size_ratio(head: Mesh, template) -> float:
    v0 = np.asarray(template.mesh.vertices, dtype=np.float64)
    v1 = np.asarray(head.vertices, dtype=np.float64)
    s0 = np.sqrt(np.mean(np.sum((v0 - v0.mean(0)) ** 2, 1)))
    s1 = np.sqrt(np.mean(np.sum((v1 - v1.mean(0)) ** 2, 1)))
    return float(s1 / s0)


def eye_blendshapes(points: Float[ArrayLike, "N 3"], frame: FaceFrame) -> np.ndarray:
    """Blendshape deltas of eyeball parts: the ``eyeLook*`` shapes rotate each eye about its centre.

    Points with ``x < 0`` belong to the subject's right eye, the others to the left. Every other
    blendshape leaves the eyes still.

    Args:
        points: ``(N, 3)`` vertices of eyeball parts (sclera, iris, pupil, cornea).
        frame: the head's :class:`FaceFrame`.

    Returns:
        ``(52, N, 3)`` float64 deltas.
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or not np.all(np.isfinite(p)):
        raise InputError(f"eye_blendshapes: points must be a finite (N, 3) array, got shape {p.shape}")
    out = np.zeros((len(ARKIT_BLENDSHAPES), len(p), 3))
    for name, k, sx in (("Left", 1, 1.0), ("Right", 0, -1.0)):
        sel = (p[:, 0] >= 0) if k == 1 else (p[:, 0] < 0)
        q = p[sel] - frame.eye_centers[k]
        for look, deg in EYE_LOOK_DEGREES.items():
            a = np.radians(deg)
            if look == "Up":
                moved = _rot_x(q, -a)
            elif look == "Down":
                moved = _rot_x(q, a)
            else:  # In turns the gaze towards the nose (−x for the left eye), Out away from it
                sign = -sx if look == "In" else sx
                moved = _rot_y(q, sign * a)
            out[_INDEX[f"eyeLook{look}{name}"], sel] = moved - q
    return out


@jax.jit
def apply_blendshapes(vertices: Float[ArrayLike, "V 3"], deltas: Float[ArrayLike, "B V 3"],
                      weights: Float[ArrayLike, " B"]) -> Float[Array, "V 3"]:
    """Pose a mesh: ``vertices + Σ_b weights[b] · deltas[b]`` (pure, jit-compiled; vmap over weights).

    Args:
        vertices: ``(V, 3)`` neutral positions.
        deltas: ``(B, V, 3)`` blendshape displacements (e.g. :func:`head_blendshapes`).
        weights: ``(B,)`` weights, usually in ``[0, 1]`` (:func:`expression_weights`).

    Returns:
        ``(V, 3)`` posed positions.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.animation import apply_blendshapes
        >>> apply_blendshapes(jnp.zeros((1, 3)), jnp.ones((2, 1, 3)), jnp.array([0.5, 0.25])).tolist()
        [[0.75, 0.75, 0.75]]
    """
    v = jnp.asarray(vertices)
    return v + jnp.einsum("b,bvc->vc", jnp.asarray(weights, v.dtype), jnp.asarray(deltas, v.dtype))
