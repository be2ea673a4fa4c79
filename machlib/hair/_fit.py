"""Fitting grown strands to a portrait's hair silhouette (Make-A-Character §2.5, issue 17 item 3).

The library style retrieved for a portrait is only a prior: its strands end where the style's
do, not where the photo's hair ends. :func:`fit_strand_tips` trims every strand whose visible
part leaves the photo's hair, and extends every strand whose visible tip still lies inside it,
along its own direction pulled by gravity and bent to the photo's orientation map, until its
projection reaches the mask's boundary. Roots never move, so the fringe and the parting of the
prior stay where they are. Positions are metres in head space (see :doc:`/conventions`).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float
from scipy import ndimage

from .._camera import Camera, rotation_matrix
from .._errors import InputError
from .._mesh import Mesh
from .._scene import ScenePart, depth_map
from .._strands import Strands
from ._cleanup import _CLEARANCE, _push_all, _resample_batch, _strand_points
from ._growth import HeadSDF, _lookup, _sdf_normals_np, _sdf_np

__all__ = ["TipFit", "fit_strand_tips"]


class TipFit(NamedTuple):
    """The result of :func:`fit_strand_tips`.

    Attributes:
        strands: the fitted :class:`~machlib.hair.Strands` (``float32`` numpy points, the input's
            ``(S, P, 3)`` shape, colour and thickness).
        trimmed: ``(S,)`` bool, strands cut where their visible part left the hair.
        extended: ``(S,)`` bool, strands grown on towards the hair's visible boundary.
        length_before: ``(S,)`` arc lengths in metres before the fit.
        length_after: ``(S,)`` arc lengths in metres after it.
        dropped: ``(S,)`` bool, strands collapsed onto a root seen on bare skin (also counted
            in ``trimmed``).
    """

    strands: Strands
    trimmed: np.ndarray
    extended: np.ndarray
    length_before: np.ndarray
    length_after: np.ndarray
    dropped: np.ndarray | None = None

    def summary(self) -> dict:
        """JSON-ready counts and median lengths (metres) for a report."""
        return {
            "trimmed": int(self.trimmed.sum()), "extended": int(self.extended.sum()),
            "dropped": 0 if self.dropped is None else int(self.dropped.sum()),
            "median_length_before": round(float(np.median(self.length_before)), 4) if self.length_before.size else 0.0,
            "median_length_after": round(float(np.median(self.length_after)), 4) if self.length_after.size else 0.0,
        }


def _project(pts: np.ndarray, R: np.ndarray, t: np.ndarray, focal: np.ndarray, principal: np.ndarray):
    pc = pts @ R.T + t
    z = pc[..., 2]
    zs = np.where(z > 1e-6, z, 1e-6)
    xy = pc[..., :2] / zs[..., None] * focal + principal
    return xy, z


def _sample(img: np.ndarray, xy: np.ndarray, z: np.ndarray, fill):
    """Nearest-pixel lookup; ``fill`` outside the image or behind the camera, plus the in-image flag."""
    h, w = img.shape[:2]
    col, row = np.floor(xy[..., 0]), np.floor(xy[..., 1])
    inside = np.isfinite(xy).all(-1) & (z > 1e-6) & (col >= 0) & (col < w) & (row >= 0) & (row < h)
    r = np.where(inside, row, 0).astype(np.int64)
    c = np.where(inside, col, 0).astype(np.int64)
    return np.where(inside, img[r, c], fill), inside


def _seen(points: np.ndarray, camera: Camera, mesh: Mesh, *, depth_bias: float = 0.004) -> np.ndarray:
    """``(...)`` bool: which of ``(..., 3)`` head-space points the portrait's camera sees, as
    :func:`fit_strand_tips` judges them (inside the image and at most ``depth_bias`` metres
    behind the head's surface at their pixel)."""
    R = np.asarray(rotation_matrix(camera.rotation), np.float64)
    xy, z = _project(np.asarray(points, np.float64), R, np.asarray(camera.translation, np.float64),
                     np.asarray(camera.focal, np.float64), np.asarray(camera.principal, np.float64))
    return _in_front(depth_map([ScenePart(mesh, two_sided=False)], camera), xy, z, depth_bias)


def _in_front(zhead: np.ndarray, xy: np.ndarray, z: np.ndarray, depth_bias: float) -> np.ndarray:
    """Projected points (``xy`` pixels, ``z`` camera depth) inside the image and at most
    ``depth_bias`` behind the depth map ``zhead`` at their pixel."""
    zh, inside = _sample(zhead, xy, z, -np.inf)
    return inside & (z <= zh + float(depth_bias))


#: depth step (metres) and steps (4 cm at most) of the search along a camera ray that puts an
#: extension's new point seen against the head onto it (:func:`fit_strand_tips`, step 3)
_SETTLE_STEP = 0.001
_SETTLE_RANGE = 40
#: distance (metres) from the head within which an extension seen against the head lies
_LAYER = 0.003
#: |cosine| of the image angle (from the head's centre) above which an inflated point is at the
#: head's side, where step 1 slides it back along its camera ray towards the head
_SIDE_COS = 0.7


def _along_rays(sdf: HeadSDF, pts, eye, k: int):
    """The unit rays from the camera at ``eye`` through ``pts`` ``(N, 3)``, the offsets
    ``i · _SETTLE_STEP`` (``0 ≤ i ≤ k``) along them and ``(N, k + 1)`` the head distance of each
    point moved by each offset."""
    ray = pts - eye
    ray = ray / jnp.maximum(jnp.linalg.norm(ray, axis=-1, keepdims=True), 1e-12)
    offs = _SETTLE_STEP * jnp.arange(k + 1, dtype=pts.dtype)
    cand = pts[:, None, :] + offs[None, :, None] * ray[:, None, :]
    return ray, offs, jax.vmap(jax.vmap(lambda q: _lookup(sdf, q)))(cand)


@partial(jax.jit, static_argnames=("k",))
def _settle(sdf: HeadSDF, pts, limit, eye, k: int):
    """``pts`` ``(N, 3)`` each moved away from the camera at ``eye`` along its ray by the least
    multiple ``i · _SETTLE_STEP`` (``0 ≤ i ≤ k``) at which its head distance is at most ``limit``
    ``(N,)``; a point whose ray finds none stays (a ray that misses the head)."""
    ray, offs, d = _along_rays(sdf, pts, eye, k)
    ok = d <= limit[:, None]
    off = jnp.where(ok.any(1), offs[jnp.argmax(ok, 1)], 0.0)
    return pts + off[:, None] * ray


@partial(jax.jit, static_argnames=("k",))
def _hug(sdf: HeadSDF, pts, limit, eye, k: int):
    """``(N,)`` how far to move each of ``pts`` ``(N, 3)`` away from the camera at ``eye`` along
    its ray: the least multiple ``i · _SETTLE_STEP`` (``0 ≤ i ≤ k``) at which its head distance
    is at most ``limit`` ``(N,)``, or, where none is, the multiple nearest the head (a ray that
    passes beside it)."""
    _, offs, d = _along_rays(sdf, pts, eye, k)
    ok = d <= limit[:, None]
    return offs[jnp.where(ok.any(1), jnp.argmax(ok, 1), jnp.argmin(d, 1))]


def _padded(x: np.ndarray) -> np.ndarray:
    """``x`` (rows of float32) padded with copies of its first row to a power of two (at least
    256): the count of side points to slide (step 1) changes with every photo, and each
    new count compiled :func:`_hug` again (a compile per hair run)."""
    x = np.asarray(x, np.float32)
    n = len(x)
    size = max(256, 1 << int(np.ceil(np.log2(max(n, 1)))))
    if n == 0 or n == size:
        return x
    return np.concatenate([x, np.broadcast_to(x[:1], (size - n,) + x.shape[1:])])


#: cosine between the scalp's normal at a root and the direction to the camera above which the
#: root is on the hairline that faces the camera (a fringe's, not the crown's)
_FRONT_COS = 0.25


@partial(jax.jit, static_argnames=("n",))
def _lengths_and_resample(points, n: int):
    out = _resample_batch(points, n)
    return out, jnp.sum(jnp.linalg.norm(jnp.diff(points, axis=1), axis=-1), axis=1)


def fit_strand_tips(
    strands: Strands,
    camera: Camera,
    hair_mask: Float[ArrayLike, "H W"],
    *,
    mesh: Mesh | None = None,
    sdf: HeadSDF | None = None,
    keep_mask: Float[ArrayLike, "H W"] | None = None,
    theta: Float[ArrayLike, "H W"] | None = None,
    confidence: Float[ArrayLike, "H W"] | None = None,
    step: float = 0.004,
    max_extension: float = 0.3,
    tolerance: float = 0.01,
    gravity: float = 0.5,
    bend: float = 0.8,
    depth_bias: float = 0.004,
    min_points: int = 2,
    inflate: float = 0.3,
    sectors: int = 72,
    inflate_ramp: float = 0.04,
    max_move: float = 0.025,
    frame_length: float | Float[ArrayLike, " S"] = 0.0,
    drop_bare_roots: bool = True,
    occluder: Float[ArrayLike, "H W"] | None = None,
    brows: Float[ArrayLike, "K 2"] | None = None,
) -> TipFit:
    """Widen, trim and extend strands so that their visible part ends where the photo's hair ends.

    Every point is projected into the portrait's camera; a point is *visible* when it projects
    inside the image and is not behind the head (its camera depth at most ``depth_bias`` behind
    the depth of ``mesh`` at its pixel; without a mesh every point in the image is visible).
    Points hidden by the head are never judged: the photo says nothing about them. With
    ``occluder`` (e.g. the body below the chin), points deeper than the head's centre that
    project onto it (``> 0.5``) are hidden too: hair hanging down the back is behind the torso.

    1. Inflate (``inflate > 0``): a retrieved style hugs the head more closely than most
       photographed hair, whose outline lies further out at the crown and
       the sides. Around the head's centre ``c`` (the mesh's bounding-box centre, or the strands'
       mean point without a mesh) and its projection, the image is cut into ``sectors`` angular
       sectors; per sector the 98th percentile of the image distance from ``c`` of the hair
       mask's pixels and of the visible strand points give the factor
       ``f = clip(r_mask / r_strands, 1, 1 + inflate)`` (smoothed over neighbouring sectors).
       Every point moves away from ``c`` by ``(f − 1)·w`` times its offset across the view (the
       offset's camera ``x, y`` part; depth is left alone, so the back of the hair does not
       bulge), ``f`` interpolated linearly in the angle between the centres of the two sectors
       nearest to where it projects (so a strand running across sectors, down the side of the
       head, moves smoothly instead of in steps at their boundaries) and ``w`` rising from 0 at
       the root to 1 at ``inflate_ramp`` metres of arc, so roots stay on the scalp; no point
       moves further than ``max_move``. The fringe (below) is not inflated: it lies over the
       face, not on the outline, and moved up off the forehead it stood out in front of it.
       With ``sdf``, a moved point at the side (``|cos|`` of its image angle from ``c`` above
       0.7) in front of ``c`` slides back along its camera ray, its projection unchanged, by
       the least multiple of 1 mm (at most 4 cm) that brings it back to its head distance
       before the move, or by the one nearest the head where none does (a ray beside it); the
       slide grows along a strand by at most its arc length and stops in front of the head
       seen at its pixel. Moved across the view alone, side hair in front of the head's widest
       part stood off the temple as a flat curtain in a turned view.
    2. Trim: a strand is cut just before its first visible point (after the root) that falls
       outside ``keep_mask`` (default ``hair_mask``; ``> 0.5``) dilated by ``tolerance`` × the
       image's larger side; the rest of the strand collapses onto the last kept point. With
       ``drop_bare_roots``, a strand whose root is visible outside ``keep_mask`` (not dilated:
       the photo shows skin there, e.g. the upper forehead below the photo's hairline)
       collapses onto its root (zero length, for clean-up to remove): otherwise its first
       ``min_points`` points would lie on the skin as a thin band of hair.
    3. Extend: a strand whose tip is visible, inside ``hair_mask`` (``> 0.5``, not dilated) and
       not pointing up (the last segment's ``y`` component below 0.5 of its length) grows on in
       steps of ``step`` metres: the direction is the last one plus ``gravity`` × down,
       renormalised, and then, where ``theta`` is given, its image-plane part (camera ``x, y``)
       turned to the photo's strand angle at the tip's pixel (sign kept, so the strand does not
       turn back; weight ``bend`` × ``confidence``), its depth part kept; each new point is
       pushed out of the head (``sdf``) to 1 mm. With ``brows``, ``mesh`` and ``sdf``, the
       fringe lies on the forehead: a strand is a fringe when its root is seen on the front
       hairline (the head's outward normal there within 75.5 deg of the direction to the
       camera, cosine above 0.25, so not the crown) and both its root and its tip (as given)
       project between the brows' outer ends and above their line (a least-squares line
       through ``brows``). A fringe's tip whose camera ray meets the head gets no gravity (the
       head carries it, so a swept fringe keeps its heading), and a new point whose ray meets
       the head slides back along it (its projection unchanged) until it is at most 3 mm from
       the head, or one ``step`` closer than the tip was, whichever is further, and keeps the
       heading it was grown along; a fringe stops at its first new point below the brows'
       line. Kept at the tip's depth and pulled by gravity, a swept fringe hung as a straight
       curtain in front of the forehead. Growth stops at the first new point that is not
       visible or falls outside ``hair_mask``, or after ``max_extension`` metres. Hair that
       runs off the image is not seen ending: with ``frame_length > 0`` (the photo's hair runs
       off the frame, so its read length is only a lower bound), a strand whose tip (or a new
       point) is hidden by the head, or projects below or beside the image, in front of the
       camera, where the image's nearest border pixel is hair, goes on growing unseen (no mask
       test, the same direction rule without ``theta``) until its arc length reaches
       ``frame_length`` metres or it has grown ``max_extension``; a point seen in the image is
       judged as before.

    Roots never move, so the parting and the fringe of the prior are kept. The strands are then
    resampled evenly by arc length to their point count (:func:`~machlib.hair.resample_uniform`),
    so trimmed strands get finer and extended ones coarser spacing. Deterministic (no
    randomness); numpy with jit-compiled resampling and head push-out; not differentiable.

    Args:
        strands: the :class:`~machlib.hair.Strands`, ``(S, P, 3)`` metres in head space, ``P ≥ 2``.
        camera: the portrait's :class:`~machlib.Camera` (head space = world),
            ``image_size == (W, H)``.
        hair_mask: ``(H, W)`` hair probability in ``[0, 1]`` (rows down, pixel ``(i, j)`` centred at
            ``(j + 0.5, i + 0.5)``).
        mesh: the head :class:`~machlib.Mesh` that hides points behind it; ``None``: nothing hides.
        sdf: the head's :class:`~machlib.hair.HeadSDF` that extensions are pushed out of;
            ``None``: no collision.
        keep_mask: ``(H, W)`` mask in ``[0, 1]`` of where strands may stay (e.g. the hair plus a
            hat that may cover hair); default ``hair_mask``.
        theta: ``(H, W)`` strand angle in radians (image ``x`` right, ``y`` down, as
            :func:`~machlib.hair.orientation_map`); ``None``: no bending.
        confidence: ``(H, W)`` orientation confidence in ``[0, 1]`` (default 1 where ``theta`` is
            given).
        step: extension step, metres, ``> 0``.
        max_extension: longest extension, metres, ``≥ 0``.
        tolerance: dilation of ``keep_mask`` for trimming, as a fraction of the image's larger
            side, ``≥ 0``.
        gravity: downward pull added to each extension step's direction, ``≥ 0``.
        bend: weight of the orientation map, in ``[0, 1]``.
        depth_bias: metres a point may lie behind the head's surface and still count as visible,
            ``≥ 0``.
        min_points: the fewest points (from the root) a trimmed strand keeps, ``≥ 1``.
        inflate: largest relative outward move of step 1, ``≥ 0`` (``0``: no inflation).
        sectors: angular sectors of step 1, ``≥ 4``.
        inflate_ramp: arc length in metres over which step 1's move rises from the root, ``> 0``.
        max_move: the longest move of step 1, metres, ``≥ 0``.
        occluder: ``(H, W)`` mask in ``[0, 1]`` of what hides points behind the head's centre
            depth (the head's bounding-box centre, or the strands' mean point without a mesh);
            ``None``: only the head hides.
        drop_bare_roots: collapse strands whose root is seen outside ``keep_mask`` (step 2).
        frame_length: the arc length in metres to which strands leaving the image through the
            hair grow (step 3), ``≥ 0`` (``0``: they stop at the frame); a scalar, or ``(S,)``
            one per strand (real hair does not end in one straight cut where nobody sees it). A
            read length that runs off the image is a lower bound: pass the length the reading
            gives.
        brows: ``(K, 2)`` pixel points of the brows' upper contour (``K ≥ 2``, spread across
            ``x``; e.g. the detected landmarks'), which tell the fringe (step 1 and 3); ``None``:
            no strand is a fringe.

    Returns:
        A :class:`TipFit`.

    Raises:
        InputError: strands that are not :class:`~machlib.hair.Strands` or not finite, a mask of
            another shape than the camera's image, or bad option values.

    Example:
        >>> import numpy as np
        >>> from machlib._preview import orbit_camera
        >>> from machlib.hair import Strands, fit_strand_tips
        >>> cam = orbit_camera(0.0, image_size=(64, 64))
        >>> line = np.stack([np.zeros(8), np.linspace(0.05, 0.0, 8), np.zeros(8)], 1)[None]
        >>> mask = np.zeros((64, 64)); mask[:, 28:36] = 1.0        # hair all the way down
        >>> fit = fit_strand_tips(Strands(line.astype(np.float32)), cam, mask, step=0.005, max_extension=0.05)
        >>> bool(fit.extended[0]), round(float(fit.length_after[0]), 3)    # 5 cm grown on
        (True, 0.1)
    """
    owner = "fit_strand_tips"
    pts = _strand_points(owner, strands)
    if not isinstance(camera, Camera):
        raise InputError(f"{owner}: camera must be a machlib.Camera, got {type(camera).__name__}")
    w, h = (int(v) for v in camera.image_size)
    hm = np.asarray(hair_mask, np.float64)
    if hm.shape != (h, w):
        raise InputError(f"{owner}: hair_mask must have the camera's image shape (H, W) = {(h, w)}, got {hm.shape}")
    km = hm if keep_mask is None else np.asarray(keep_mask, np.float64)
    if km.shape != (h, w):
        raise InputError(f"{owner}: keep_mask must have shape {(h, w)}, got {km.shape}")
    oc = None
    if occluder is not None:
        oc = np.asarray(occluder, np.float64)
        if oc.shape != (h, w):
            raise InputError(f"{owner}: occluder must have shape {(h, w)}, got {oc.shape}")
    th = conf = None
    if theta is not None:
        th = np.asarray(theta, np.float64)
        conf = np.ones_like(th) if confidence is None else np.asarray(confidence, np.float64)
        if th.shape != (h, w) or conf.shape != (h, w):
            raise InputError(f"{owner}: theta and confidence must have shape {(h, w)}, got {th.shape} and {conf.shape}")
    for name, v, ok, what in (("step", step, lambda x: x > 0, "> 0"), ("max_extension", max_extension, lambda x: x >= 0, ">= 0"),
                              ("tolerance", tolerance, lambda x: x >= 0, ">= 0"), ("gravity", gravity, lambda x: x >= 0, ">= 0"),
                              ("bend", bend, lambda x: 0 <= x <= 1, "in [0, 1]"),
                              ("depth_bias", depth_bias, lambda x: x >= 0, ">= 0")):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not ok(float(v)):
            raise InputError(f"{owner}: {name} must be a number {what}, got {v!r}")
    if not (isinstance(inflate, (int, float, np.integer, np.floating)) and float(inflate) >= 0
            and isinstance(inflate_ramp, (int, float, np.integer, np.floating)) and float(inflate_ramp) > 0
            and isinstance(max_move, (int, float, np.integer, np.floating)) and float(max_move) >= 0):
        raise InputError(f"{owner}: need inflate >= 0, inflate_ramp > 0 and max_move >= 0, got {inflate!r}, "
                         f"{inflate_ramp!r}, {max_move!r}")
    if isinstance(sectors, bool) or not isinstance(sectors, (int, np.integer)) or sectors < 4:
        raise InputError(f"{owner}: sectors must be an int >= 4, got {sectors!r}")
    if not isinstance(drop_bare_roots, (bool, np.bool_)):
        raise InputError(f"{owner}: drop_bare_roots must be a bool, got {drop_bare_roots!r}")
    if isinstance(min_points, bool) or not isinstance(min_points, (int, np.integer)) or min_points < 1:
        raise InputError(f"{owner}: min_points must be an int >= 1, got {min_points!r}")

    s, p, _ = pts.shape
    frame = np.asarray(frame_length, np.float64) if not isinstance(frame_length, bool) else np.asarray(np.nan)
    if frame.ndim > 1 or (frame.ndim == 1 and frame.shape != (s,)) or not np.all(np.isfinite(frame)) \
            or not np.all(frame >= 0):
        raise InputError(f"{owner}: frame_length must be a number >= 0 or ({s},) numbers >= 0, got {frame_length!r}")
    frame = np.broadcast_to(frame, (s,))
    grow_unseen = bool(s) and float(frame.max()) > 0
    empty = np.zeros(s, bool)
    if s == 0:
        z0 = np.zeros(0)
        return TipFit(strands, empty, empty, z0, z0, empty)
    R = np.asarray(rotation_matrix(camera.rotation), np.float64)
    t = np.asarray(camera.translation, np.float64)
    focal = np.asarray(camera.focal, np.float64)
    principal = np.asarray(camera.principal, np.float64)
    zhead = depth_map([ScenePart(mesh, two_sided=False)], camera) if mesh is not None else np.full((h, w), np.inf)
    zface = zhead  # the head alone (no occluder): where a ray meets it
    eye = (-R.T @ t).astype(np.float32)  # the camera's centre in head space
    if occluder is not None:  # the body: a layer at the head centre's depth that hides what is behind it
        centre = 0.5 * (np.asarray(mesh.vertices, np.float64).min(0) + np.asarray(mesh.vertices, np.float64).max(0)) \
            if mesh is not None else pts.reshape(-1, 3).mean(0)
        zc = float((R @ centre + t)[2])
        zhead = np.where(oc > 0.5, np.minimum(zhead, zc), zhead)
    hair = hm > 0.5
    bw = None
    if brows is not None:
        bw = np.asarray(brows, np.float64)
        if bw.ndim != 2 or bw.shape[1] != 2 or len(bw) < 2 or not np.isfinite(bw).all() or np.ptp(bw[:, 0]) <= 0:
            raise InputError(f"{owner}: brows must be (K, 2) finite pixel points, K >= 2, spread across x, got "
                             f"shape {bw.shape}")
        # the brows' line: least squares row = a·x + b (a rolled head tilts it), over their span
        line = np.polyfit(bw[:, 0], bw[:, 1], 1)
        span = (bw[:, 0].min(), bw[:, 0].max())

    def above_brows(xy):
        """Pixels between the brows' outer ends and above their line."""
        if bw is None:
            return np.zeros(xy.shape[:-1], bool)
        x, y = xy[..., 0], xy[..., 1]
        return (x >= span[0]) & (x <= span[1]) & (y < line[0] * x + line[1])

    tol = round(float(tolerance) * max(h, w))
    keep = ndimage.binary_dilation(km > 0.5, iterations=tol) if tol > 0 else km > 0.5

    def visible(xy, z):
        return _in_front(zhead, xy, z, depth_bias)

    def unseen(xy, z):
        """Hidden by the head, or projecting below or beside the image (not above it), in front
        of the camera, next to a border pixel of hair: where the photo cannot show the end."""
        zh, inside = _sample(zhead, xy, z, -np.inf)
        ok = np.isfinite(xy).all(-1) & (z > 1e-6) & ~inside & (xy[..., 1] >= 0)
        c = np.clip(np.nan_to_num(np.floor(xy[..., 0])), 0, w - 1).astype(np.int64)
        r = np.clip(np.nan_to_num(np.floor(xy[..., 1])), 0, h - 1).astype(np.int64)
        return (ok & hair[r, c]) | (inside & (z > zh + float(depth_bias)))

    # the fringe: strands rooted on the front hairline (seen, the scalp there facing the camera)
    # above the brows' line and between their outer ends, whose tip is seen above that line
    fringe = np.zeros(s, bool)
    if bw is not None and sdf is not None and mesh is not None:
        xy_r, z_r = _project(pts[:, 0], R, t, focal, principal)
        xy_e, z_e = _project(pts[:, -1], R, t, focal, principal)
        fringe = (visible(xy_r, z_r) & above_brows(xy_r) & visible(xy_e, z_e) & above_brows(xy_e))
        if fringe.any():
            normal = _sdf_normals_np(sdf, pts[fringe, 0], h=0.002)
            to_eye = (-R.T @ t) - pts[fringe, 0]
            to_eye /= np.maximum(np.linalg.norm(to_eye, axis=1, keepdims=True), 1e-12)
            fringe[fringe] = np.sum(normal * to_eye, 1) > _FRONT_COS

    # 0. inflate towards the mask's outline, sector by sector around the head's centre (not the
    # fringe: it lies over the face, not on the outline)
    if float(inflate) > 0 and hair.any():
        if mesh is not None:
            v = np.asarray(mesh.vertices, np.float64)
            centre = 0.5 * (v.min(0) + v.max(0))
        else:
            centre = pts.reshape(-1, 3).mean(0)
        c2, _ = _project(centre, R, t, focal, principal)
        xy, z = _project(pts, R, t, focal, principal)
        vis = visible(xy, z)
        nb = int(sectors)

        def sector_radius(dxy, count_min):
            ang = np.mod(np.arctan2(dxy[:, 1], dxy[:, 0]), 2 * np.pi)
            b = np.minimum((ang / (2 * np.pi) * nb).astype(np.int64), nb - 1)
            rad = np.linalg.norm(dxy, axis=1)
            out = np.full(nb, np.nan)
            order = np.lexsort((rad, b))
            bs, rs = b[order], rad[order]
            starts = np.searchsorted(bs, np.arange(nb))
            ends = np.searchsorted(bs, np.arange(nb), side="right")
            for i in range(nb):
                n = ends[i] - starts[i]
                if n >= count_min:
                    out[i] = rs[starts[i] + int(0.98 * (n - 1))]
            return out

        rows, cols = np.nonzero(hair)
        r_mask = sector_radius(np.stack([cols + 0.5, rows + 0.5], 1) - c2, 5)
        r_str = sector_radius(xy[vis] - c2, 20)
        f = np.clip(r_mask / r_str, 1.0, 1.0 + float(inflate))
        f = np.where(np.isfinite(f), f, 1.0)
        f = (np.roll(f, 1) + 2 * f + np.roll(f, -1)) / 4.0
        # linear in the angle between sector centres: a strand that runs across the sectors (down
        # the side of the head) would otherwise jump at each boundary, ribbed every 5°
        ang = np.mod(np.arctan2(xy[..., 1] - c2[1], xy[..., 0] - c2[0]), 2 * np.pi)
        pos = ang / (2 * np.pi) * nb - 0.5
        lo = np.floor(pos)
        frac = pos - lo
        lo = np.mod(lo.astype(np.int64), nb)
        fp = (1.0 - frac) * f[lo] + frac * f[np.mod(lo + 1, nb)]
        arc = np.concatenate([np.zeros((s, 1)), np.cumsum(np.linalg.norm(np.diff(pts, axis=1), axis=2), 1)], 1)
        ramp = np.clip(arc / float(inflate_ramp), 0.0, 1.0)
        planar = R.T @ np.diag([1.0, 1.0, 0.0]) @ R  # the offset's part across the view, not in depth
        move = ((fp - 1.0) * ramp * ~fringe[:, None])[..., None] * ((pts - centre) @ planar.T)
        n_move = np.linalg.norm(move, axis=-1, keepdims=True)
        moved = pts + move * np.minimum(1.0, float(max_move) / np.maximum(n_move, 1e-12))
        if sdf is not None:
            # the side: the move is across the view, so a point in front of the head's widest
            # part stood off the temple (a flat curtain in front of it in a turned view); each
            # slides back along its ray (projection kept) to its distance from the head before
            # the move (or the nearest one), the shift growing along the strand by at most its
            # arc length and never behind the head where the photo sees it
            z_mid = float((R @ centre + t)[2])
            sel = (n_move[..., 0] > 1e-6) & (np.abs(np.cos(ang)) > _SIDE_COS) & (z < z_mid)
            off = np.zeros((s, p))
            if sel.any():
                d0 = _sdf_np(sdf, pts[sel])
                hug = _hug(sdf, jnp.asarray(_padded(moved[sel])), jnp.asarray(_padded(d0[:, None])[:, 0]),
                           jnp.asarray(eye), _SETTLE_RANGE)
                off[sel] = np.asarray(hug, np.float64)[: int(sel.sum())]
            seg = np.linalg.norm(np.diff(moved, axis=1), axis=2)
            for i in range(1, p):
                off[:, i] = np.minimum(np.maximum(off[:, i], off[:, i - 1]), off[:, i - 1] + seg[:, i - 1])
            xy_m, z_m = _project(moved, R, t, focal, principal)
            zh_m, _ = _sample(zhead, xy_m, z_m, np.inf)
            dist = np.linalg.norm(moved @ R.T + t, axis=-1)
            with np.errstate(invalid="ignore"):
                cap = np.where(np.isfinite(zh_m), np.maximum(zh_m - z_m, 0.0) * dist / np.maximum(z_m, 1e-6), np.inf)
            ray = moved - eye
            ray /= np.maximum(np.linalg.norm(ray, axis=-1, keepdims=True), 1e-12)
            moved = moved + np.minimum(off, cap)[..., None] * ray
        pts = moved

    # 1. trim
    xy, z = _project(pts, R, t, focal, principal)
    vis = visible(xy, z)
    off = vis & ~_sample(keep, xy, z, False)[0]
    off[:, : int(min_points)] = False
    first = np.where(off.any(1), off.argmax(1), p)  # index of the first point dropped
    # a root the photo shows on bare skin (not the dilated keep mask): the whole strand goes
    dropped = vis[:, 0] & ~_sample(km > 0.5, xy[:, 0], z[:, 0], False)[0] if drop_bare_roots else np.zeros(s, bool)
    first = np.where(dropped, 1, first)
    trimmed = first < p
    idx = np.minimum(np.arange(p)[None, :], first[:, None] - 1)
    pts = np.take_along_axis(pts, idx[..., None], axis=1)

    # 2. extend
    n_ext = int(np.floor(float(max_extension) / float(step) + 1e-9))
    ext = np.repeat(pts[:, -1:], max(n_ext, 0), axis=1)  # (S, K, 3), the tip repeated
    tip = pts[:, -1].copy()
    prev = pts[:, -2]  # trimmed strands (collapsed here) are not extended
    seg = tip - prev
    seg_len = np.linalg.norm(seg, axis=1)
    d = np.where(seg_len[:, None] > 1e-9, seg / np.maximum(seg_len, 1e-12)[:, None], np.array([0.0, -1.0, 0.0]))
    xy_t, z_t = _project(tip, R, t, focal, principal)
    active = (~trimmed) & visible(xy_t, z_t) & _sample(hair, xy_t, z_t, False)[0] & (d[:, 1] < 0.5)
    # hair that runs off the image: not seen ending, so it grows on unseen to frame_length
    arc = np.sum(np.linalg.norm(np.diff(pts, axis=1), axis=2), axis=1)
    if grow_unseen:
        active |= (~trimmed) & unseen(xy_t, z_t) & (arc < frame) & (d[:, 1] < 0.5)
    extended = np.zeros(s, bool)
    fringe &= active
    down = np.array([0.0, -1.0, 0.0])
    clearance = jnp.asarray(_CLEARANCE, jnp.float32)
    for k in range(n_ext):
        if not active.any():
            break
        a = np.flatnonzero(active)
        xy_a, z_a = _project(tip[a], R, t, focal, principal)
        zf_a, _ = _sample(zface, xy_a, z_a, np.inf)
        held = fringe[a] & np.isfinite(zf_a) & (z_a < zf_a)  # the head carries a fringe: no gravity
        dk = d[a] + float(gravity) * np.where(held[:, None], 0.0, 1.0) * down
        dk /= np.maximum(np.linalg.norm(dk, axis=1, keepdims=True), 1e-12)
        seen = visible(xy_a, z_a)
        if th is not None and bend > 0 and seen.any():
            ang, _ = _sample(th, xy_a, z_a, 0.0)
            cw, _ = _sample(conf, xy_a, z_a, 0.0)
            dc = dk @ R.T  # camera frame: x right, y down (image), z forward
            plane = np.linalg.norm(dc[:, :2], axis=1)
            u = np.stack([np.cos(ang), np.sin(ang)], 1)
            u = np.where((np.sum(u * dc[:, :2], 1) < 0)[:, None], -u, u)
            turned = np.concatenate([u * plane[:, None], dc[:, 2:]], 1)
            wgt = (float(bend) * np.clip(cw, 0.0, 1.0) * seen)[:, None]
            dc = (1.0 - wgt) * dc + wgt * turned
            dk = dc @ R
            dk /= np.maximum(np.linalg.norm(dk, axis=1, keepdims=True), 1e-12)
        new = tip[a] + float(step) * dk
        slid = np.zeros(a.size, bool)
        if sdf is not None:  # all S tips at once: one compiled shape for every step
            full_new = tip.copy()
            full_new[a] = new
            new = np.asarray(_push_all(sdf, jnp.asarray(full_new, jnp.float32), clearance, 3), np.float64)[a]
            # the fringe lies on the forehead: a new point whose ray meets the head slides back
            # along it until it is at most _LAYER from the head, or one step closer than the tip
            # was (its projection, all the mask judges, stays); kept at the tip's depth, the
            # extension hung a straight curtain off the head
            xy_s, z_s = _project(new, R, t, focal, principal)
            zf, _ = _sample(zface, xy_s, z_s, np.inf)
            on_head = fringe[a] & np.isfinite(zf) & (z_s < zf)
            if on_head.any():
                full_new = tip.copy()
                full_new[a] = new
                # no closer per step than one step's length (at most 45 degrees toward the head):
                # a tip far out comes down onto the head, not in one jump
                d_tip = _sdf_np(sdf, tip[a[on_head]])
                lim = np.full(s, np.inf, np.float32)
                lim[a[on_head]] = np.maximum(_LAYER, d_tip - float(step))
                settled = np.asarray(_settle(sdf, jnp.asarray(full_new, jnp.float32), jnp.asarray(lim),
                                             jnp.asarray(eye), _SETTLE_RANGE), np.float64)[a]
                slid = np.linalg.norm(settled - new, axis=1) > 1e-7
                new = settled
        xy_n, z_n = _project(new, R, t, focal, principal)
        ok = visible(xy_n, z_n) & _sample(hair, xy_n, z_n, False)[0]
        if fringe[a].any():  # a fringe ends above the brows
            ok &= ~(fringe[a] & ~above_brows(xy_n))
        if grow_unseen:  # behind the head or out of the frame through the hair
            ok |= unseen(xy_n, z_n) & (arc[a] < frame[a])
        go = a[ok]
        move = new[ok] - tip[go]
        n_move = np.linalg.norm(move, axis=1, keepdims=True)
        arc[go] += n_move[:, 0]
        heading = np.where(n_move > 1e-9, move / np.maximum(n_move, 1e-12), d[go])
        # a point slid onto the head keeps the heading it was grown along: the slide is along the
        # view ray, and taken as the strand's direction it turned the next steps into the head
        d[go] = np.where(slid[ok][:, None], dk[ok], heading)
        tip[go] = new[ok]
        ext[go, k:] = new[ok][:, None]
        extended[go] = True
        active[a[~ok]] = False

    full = np.concatenate([pts, ext], 1) if n_ext > 0 else pts
    out, before_len = _lengths_and_resample(jnp.asarray(np.asarray(strands.points, np.float32)), p)
    out, after_len = _lengths_and_resample(jnp.asarray(full.astype(np.float32)), p)
    out = np.asarray(out, np.float32)
    fitted = Strands(out, None if strands.color is None else np.asarray(strands.color, np.float32),
                     None if strands.thickness is None else np.asarray(strands.thickness, np.float32))
    return TipFit(fitted, trimmed, extended, np.asarray(before_len, np.float64), np.asarray(after_len, np.float64),
                  dropped)
