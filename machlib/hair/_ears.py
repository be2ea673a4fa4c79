"""Long hair that falls over the ears: :func:`cover_ears`.

A long, loose style grown through a procedural prior sends the hair rooted above the ear down
the side of the head at the ear's depth or behind it, so in a portrait whose hair covers the
ears (hair falling forward from a side part, framing the face) the ear shows through beside the
face. :func:`cover_ears` moves the part of such strands at and below the ear's height forward,
in front of the ear, and in onto the side of the face; :func:`ear_boxes`
measures the ears of a fitted head and ``_ears_under_hair`` tells which of them the photo's
hair mask covers. Positions are metres in head space (+y up, +z out of the face; see
:doc:`/conventions`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._errors import InputError
from ._growth import _PINNA, HeadSDF, _push_out, _safe_norm, _strands_and_sdf

__all__ = ["cover_ears", "ear_boxes"]

#: strands whose root lies closer than this (m) to the head's mid-plane are left alone: the
#: parting's, which fall to either side
_MID = 0.02
#: strands moved in front of an ear come in to this far (m) inside its lateral extent, onto the
#: side of the face there (the SDF push-out keeps them outside the head)
_HUG = 0.01


def _smooth(u):
    u = jnp.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def _cover_one(p, ear, clearance, ramp, root_ramp):
    """One strand ``(P, 3)`` and one ear ``(6,)``: the strand's part at and below the ear moved
    in front of it (see :func:`cover_ears`)."""
    side, top, bottom, front, back, outer = (ear[i] for i in range(6))
    root = p[0]
    chosen = (jnp.sign(root[0]) == side) & (side * root[0] >= _MID)
    # the hair rooted in front of the ear falls in front of it, the hair above it over it: the
    # move fades from full at the ear's front to none at its middle, so the strands spread over it
    half = 0.5 * (front - back)
    u = _smooth((root[2] - back - half) / half)
    lateral = side * p[:, 0]
    band = (p[:, 1] <= top) & (p[:, 1] >= bottom) & (lateral > _MID)
    forward = jnp.max(jnp.where(band, jnp.maximum(front + clearance - p[:, 2], 0.0), 0.0))
    inward = jnp.max(jnp.where(band, jnp.maximum(lateral - outer + _HUG, 0.0), 0.0))
    seg = _safe_norm(jnp.diff(p, axis=0))
    arc = jnp.concatenate([jnp.zeros((1,), p.dtype), jnp.cumsum(seg)])
    w = _smooth((top + ramp - p[:, 1]) / ramp) * _smooth(arc / root_ramp)
    w = jnp.where(chosen, u * w, 0.0)
    move = jnp.stack([-side * inward * jnp.ones_like(w), jnp.zeros_like(w), forward * jnp.ones_like(w)], -1)
    return p + w[:, None] * move, w


def cover_ears(
    points: Float[ArrayLike, "S P 3"],
    ears: Float[ArrayLike, "E 6"],
    *,
    sdf: HeadSDF | None = None,
    clearance: float | Float[ArrayLike, ""] = 0.006,
    ramp: float = 0.04,
    root_ramp: float = 0.02,
) -> Float[Array, "S P 3"]:
    """Move long strands that pass beside an ear in front of it, as hair worn over the ears falls.

    Each row of ``ears`` is one ear's box ``(side, top, bottom, front, back, outer)``
    (:func:`ear_boxes`): the side of the head (``+1`` the subject's left, ``+x``; ``−1`` the
    right), the heights ``y`` of its top and bottom, the depths ``z`` of its front and back and
    its lateral extent ``|x|``, metres. A strand is *chosen* for an ear when its root lies on
    that side, at least 2 cm from the mid-plane (``side · x ≥ 0.02``: the parting's strands
    fall either way): the hair of the temple, the side and the top. Of its points in the ear's
    *band* (``bottom ≤ y ≤ top`` and ``side · x > 0.02``) it takes the largest shortfall
    ``f = max(front + clearance − z, 0)`` (how far it runs behind the ear's front) and the
    largest stand-off ``g = max(side · x − (outer − 0.01), 0)`` (beyond 1 cm inside the ear's
    lateral extent: in front of the ear the strands come in onto the side of the face);
    point ``k`` then moves by

        ``u · w_k · (−side · g, 0, f)``,  ``w_k = S((top + ramp − y_k) / ramp) · S(a_k / root_ramp)``,
        ``u = S((z_root − m) / h)``, ``m = (front + back) / 2``, ``h = (front − back) / 2``,

    ``S`` the smoothstep clipped to ``[0, 1]`` and ``a_k`` the arc length from the root: the
    strand leaves its path over ``ramp`` metres above the ear, passes the ear in front of it
    and hangs on below it with the same offset (in front of the shoulder), its shape kept; the
    root never moves. ``u`` is one for roots in front of the ear and fades to none at its
    middle: the hair rooted above and behind the ear's middle stays over the ear's side, so the
    ear stays covered seen from the side too. Strands that do not reach the ear's top (short hair) or pass it in front
    already are unchanged. Ears are applied in turn. With ``sdf`` the moved points are then
    pushed out of the head to 1 mm along its gradient.

    Pure JAX: jit- and vmap-safe, differentiable in ``points`` and ``clearance`` almost
    everywhere (not where the band's largest shortfall changes point or is zero, nor across
    the SDF grid's cell faces).

    Args:
        points: ``(S, P, 3)`` strand points in metres (head space), roots first, ``P ≥ 2``.
        ears: ``(E, 6)`` ear boxes (``E ≥ 0``), as :func:`ear_boxes` returns them.
        sdf: optional head :class:`~machlib.hair.HeadSDF` to keep moved points outside the head.
        clearance: metres in front of the ear's front that the strands pass, ``≥ 0`` (a traced
            scalar is fine).
        ramp: height in metres above the ear's top over which strands turn forward, ``> 0``.
        root_ramp: arc length in metres from the root over which a point's move fades in, ``> 0``.

    Returns:
        ``(S, P, 3)`` points in the input's float dtype (float32 for integer input).

    Raises:
        InputError: points not ``(S, P, 3)`` with ``P ≥ 2``, ears not ``(E, 6)``, an ``sdf``
            that is not a :class:`~machlib.hair.HeadSDF`, or a bad option.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.hair import cover_ears
        >>> ear = jnp.array([[1.0, 0.02, -0.04, 0.02, -0.02, 0.085]])    # the left ear
        >>> y = jnp.linspace(0.08, -0.15, 24)
        >>> hang = jnp.stack([jnp.full(24, 0.08), y, jnp.full(24, 0.02)], -1)[None]  # at its front
        >>> out = cover_ears(hang, ear, clearance=0.005)
        >>> round(float(out[0, 12, 2]), 3), bool((out[0, 0] == hang[0, 0]).all())   # at the ear: 5 mm ahead
        (0.025, True)
    """
    owner = "cover_ears"
    pts = _strands_and_sdf(owner, points, sdf, "head_sdf_grid", optional=True)
    boxes = jnp.asarray(ears, pts.dtype)
    if boxes.ndim != 2 or boxes.shape[1] != 6:
        raise InputError(f"{owner}: ears must have shape (E, 6) (side, top, bottom, front, back, outer), "
                         f"got {boxes.shape}")
    if not isinstance(clearance, jax.core.Tracer):
        if isinstance(clearance, bool) or np.ndim(clearance) != 0 or not np.isfinite(float(clearance)) \
                or float(clearance) < 0:
            raise InputError(f"{owner}: clearance must be a number >= 0, got {clearance!r}")
    for name, v in (("ramp", ramp), ("root_ramp", root_ramp)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                or not np.isfinite(float(v)) or not float(v) > 0:
            raise InputError(f"{owner}: {name} must be a number > 0, got {v!r}")
    if pts.shape[0] == 0 or boxes.shape[0] == 0:
        return pts
    c = jnp.asarray(clearance, pts.dtype)
    moved = jnp.zeros(pts.shape[:2], pts.dtype)
    for i in range(boxes.shape[0]):
        pts, w = jax.vmap(lambda p: _cover_one(p, boxes[i], c, float(ramp), float(root_ramp)))(pts)
        moved = jnp.maximum(moved, w)
    if sdf is not None:
        pushed = jax.vmap(jax.vmap(lambda q: _push_out(sdf, q, 0.001)))(pts)
        pts = jnp.where((moved > 0)[..., None], pushed, pts)
    return pts


def ear_boxes(mesh, template) -> np.ndarray:
    """``(2, 6)`` float64 boxes of a fitted head's ears, rows ``(side, top, bottom, front, back,
    outer)`` for :func:`cover_ears`; ``(0, 6)`` without an ``ears`` region.

    An ear is the template's ``ears`` region (UV mask, ``≥ 0.5`` at a face's UV centroid) on
    one side, narrowed to the ellipse round the pinna (4.4 cm deep, 7.2 cm tall round the
    region's median, in the template's own head space) as :func:`~machlib.hair.scalp_roots`
    leaves bare; the box spans those faces' centroids on ``mesh`` (same topology).

    Args:
        mesh: the fitted head :class:`~machlib.Mesh` (the template's topology).
        template: its :class:`~machlib.geometry.Template`.

    Returns:
        ``(E, 6)`` float64, ``E`` 2 (right ear ``side = −1`` first) or 0.

    Raises:
        InputError: a mesh whose faces are not the template's.

    Example:
        >>> from machlib.geometry import default_template
        >>> from machlib.hair import ear_boxes
        >>> t = default_template()
        >>> b = ear_boxes(t.mesh, t)
        >>> b.shape, b[:, 0].tolist(), bool((b[:, 1] > b[:, 2]).all())
        ((2, 6), [-1.0, 1.0], True)
    """
    from ..geometry import decode

    ears = template.regions.get("ears") if template.regions else None
    if ears is None:
        return np.zeros((0, 6))
    faces = np.asarray(mesh.faces)
    if faces.shape != np.shape(template.mesh.faces):
        raise InputError(f"ear_boxes: mesh has {faces.shape[0]} faces, the template {np.shape(template.mesh.faces)[0]}")
    t_cen = np.asarray(template.mesh.vertices, np.float64)[faces].mean(1)
    cen = np.asarray(mesh.vertices, np.float64)[faces].mean(1)
    uv = np.asarray(mesh.uv, np.float64)[np.asarray(mesh.faces_uv)].mean(1)
    on_ear = np.asarray(decode(jnp.asarray(ears, jnp.float32)[..., None], jnp.asarray(uv, jnp.float32)))[:, 0] >= 0.5
    rows = []
    for side in (-1.0, 1.0):
        on = on_ear & (np.sign(t_cen[:, 0]) == side)
        if not on.any():
            return np.zeros((0, 6))
        cy, cz = np.median(t_cen[on, 1]), np.median(t_cen[on, 2])
        pinna = on & (((t_cen[:, 2] - cz) / _PINNA[0]) ** 2 + ((t_cen[:, 1] - cy) / _PINNA[1]) ** 2 < 1.0)
        e = cen[pinna]
        rows.append([side, e[:, 1].max(), e[:, 1].min(), e[:, 2].max(), e[:, 2].min(), np.abs(e[:, 0]).max()])
    return np.asarray(rows, np.float64)


def _ears_under_hair(mesh, template, camera, hair_mask, *, share: float = 0.6, min_faces: int = 20) -> np.ndarray:
    """The rows of :func:`ear_boxes` for the ears that a portrait's hair covers: at least
    ``min_faces`` of the ear's box faces are visible in ``camera`` (their centroid within 3 mm of
    the head's depth at its pixel) and at least ``share`` of those lie on the hair mask
    (``> 0.5``). An ear of which fewer than ``min_faces`` faces show (the head turned away from
    the camera) is worn as the other one is, when that one shows and is covered: the photo says
    nothing about it, and loose hair falls alike on both sides. ``(0, 6)`` when none is."""
    from .._camera import rotation_matrix
    from .._scene import ScenePart, depth_map

    boxes = ear_boxes(mesh, template)
    if boxes.shape[0] == 0:
        return boxes
    m = np.asarray(hair_mask) > 0.5
    zhead = depth_map([ScenePart(mesh, two_sided=False)], camera)
    h, w = zhead.shape
    rot = np.asarray(rotation_matrix(camera.rotation), np.float64)
    cen = np.asarray(mesh.vertices, np.float64)[np.asarray(mesh.faces)].mean(1)
    pc = cen @ rot.T + np.asarray(camera.translation, np.float64)
    xy = pc[:, :2] / pc[:, 2:3] * np.asarray(camera.focal, np.float64) + np.asarray(camera.principal, np.float64)
    col, row = np.floor(xy[:, 0]).astype(int), np.floor(xy[:, 1]).astype(int)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h) & (pc[:, 2] > 0)
    col, row = np.clip(col, 0, w - 1), np.clip(row, 0, h - 1)
    visible = inside & (pc[:, 2] <= zhead[row, col] + 0.003)
    seen_faces, covered = [], []
    for side, top, bottom, front, back, outer in boxes:
        box = ((np.sign(cen[:, 0]) == side) & (cen[:, 1] <= top) & (cen[:, 1] >= bottom) & (cen[:, 2] <= front)
               & (cen[:, 2] >= back) & (side * cen[:, 0] >= outer - 0.02))
        seen = box & visible
        seen_faces.append(int(seen.sum()))
        covered.append(seen.sum() >= min_faces and m[row[seen], col[seen]].mean() >= share)
    # an ear the photo barely sees (the head turned away) is worn as the other one is
    keep = [i for i in range(len(boxes))
            if covered[i] or (seen_faces[i] < min_faces and seen_faces[1 - i] >= min_faces and covered[1 - i])]
    return boxes[keep]
