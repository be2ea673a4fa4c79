"""Strand clean-up and fitting (Make-A-Character §2.5): smoothing, uniform resampling, removal of
bad strands, and transfer of strands from the template head to a fitted head.

Positions are metres in head space (+y up, +z out of the face; see :doc:`/conventions`). The
array primitives (:func:`smooth_strands`, :func:`resample_uniform`, :func:`strand_lengths`) are
pure JAX, jit-compiled, vmapped over strands and differentiable; they take ``(S, P, 3)`` arrays
and batch further with :func:`jax.vmap`. :func:`cleanup_strands` and :func:`transfer_strands`
work on :class:`~machlib.hair.Strands` and return ``float32`` numpy strands.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float
from scipy import ndimage
from scipy.spatial import cKDTree

from .._errors import InputError
from .._jit import one_shot_jit
from .._camera import project
from .._mesh import Mesh
from ._growth import HeadSDF, _closest_on_triangles, _in_blocks, _push_out, _safe_norm, sdf_lookup
from .._strands import Strands

__all__ = [
    "smooth_strands", "resample_uniform", "strand_lengths", "CleanupResult", "cleanup_strands",
    "transfer_strands",
    "cleanup_to_count",
]


def _check_points(points, owner: str, min_points: int = 1):
    points = jnp.asarray(points)
    if points.ndim != 3 or points.shape[-1] != 3:
        raise InputError(f"{owner}: points must have shape (S, P, 3), got {points.shape}")
    if points.shape[1] < min_points:
        raise InputError(f"{owner}: strands need at least {min_points} points, got {points.shape[1]}")
    if not jnp.issubdtype(points.dtype, jnp.floating):
        points = points.astype(jnp.float32)
    return points


def _check_int(value, name: str, lo: int, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise InputError(f"{owner}: {name} must be an int >= {lo}, got {value!r}")
    return int(value)


# ---------------------------------------------------------------------------------------------
# Array primitives


def _smooth_one(p, strength, iterations: int):
    n = p.shape[0]
    if n < 3:
        return p

    def body(_, x):
        lap = 0.5 * (x[:-2] + x[2:]) - x[1:-1]
        tip = 2.0 * x[-2] - x[-3] - x[-1]  # one-sided: towards the linear extrapolation
        return x + strength * jnp.concatenate([jnp.zeros_like(x[:1]), lap, tip[None]], 0)

    return jax.lax.fori_loop(0, iterations, body, p)


@partial(jax.jit, static_argnames=("iterations",))
def _smooth_batch(points, strength, iterations: int):
    return jax.vmap(lambda p: _smooth_one(p, strength, iterations))(points)


def smooth_strands(
    points: Float[ArrayLike, "S P 3"],
    *,
    iterations: int = 4,
    strength: float | Float[ArrayLike, ""] = 0.5,
) -> Float[Array, "S P 3"]:
    """Laplacian smoothing along each strand, root fixed (jit-compiled, vmapped, differentiable).

    Each iteration moves every interior point by ``strength`` towards the midpoint of its two
    neighbours (a Jacobi step of the umbrella operator). The root does not move. The tip, which
    has one neighbour, moves by ``strength`` towards the linear extrapolation
    ``2 x[P−2] − x[P−3]`` of the two points before it (a zero second difference), so a strand
    is not shortened from its tip the way pulling the tip onto its neighbour would. Straight,
    evenly spaced strands are left unchanged. The umbrella operator assumes roughly even spacing:
    resample first (:func:`resample_uniform`). Strands of fewer than 3 points are returned as
    they are.

    Args:
        points: ``(S, P, 3)`` strand points in metres, root first.
        iterations: number of smoothing steps, ``≥ 0`` (static: a new value recompiles).
        strength: step size in ``(0, 0.8]`` (the iteration is unstable above ``0.8``);
            differentiable.

    Returns:
        ``(S, P, 3)`` smoothed points in the input's float dtype.

    Raises:
        InputError: a bad shape, ``iterations`` or ``strength``.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.hair import smooth_strands
        >>> zigzag = jnp.array([[[0., 0, 0], [1, 1, 0], [2, 0, 0], [3, 1, 0], [4, 0, 0]]])
        >>> out = smooth_strands(zigzag, iterations=10, strength=0.5)
        >>> out.shape, round(float(out[0, 2, 1]), 3), out[0, 0].tolist()
        ((1, 5, 3), 0.422, [0.0, 0.0, 0.0])
    """
    points = _check_points(points, "smooth_strands")
    iterations = _check_int(iterations, "iterations", 0, "smooth_strands")
    if isinstance(strength, (int, float, np.integer, np.floating)) and not 0.0 < float(strength) <= 0.8:
        raise InputError(f"smooth_strands: strength must be in (0, 0.8], got {strength!r}")
    return _smooth_batch(points, jnp.asarray(strength, points.dtype), iterations)


def _segments(p):
    return _safe_norm(p[1:] - p[:-1])


def _resample_one(p, n: int):
    seg = _segments(p)
    c = jnp.concatenate([jnp.zeros((1,), p.dtype), jnp.cumsum(seg)])
    total = c[-1]
    t = jnp.linspace(0.0, 1.0, n, dtype=p.dtype) * total
    j = jnp.clip(jnp.searchsorted(c, t, side="right") - 1, 0, p.shape[0] - 2)
    den = c[j + 1] - c[j]
    ok = den > 0
    f = jnp.where(ok, (t - c[j]) / jnp.where(ok, den, 1.0), 0.0)
    f = jnp.clip(f, 0.0, 1.0)[:, None]
    out = p[j] * (1.0 - f) + p[j + 1] * f
    # exact ends: the root, and the tip (the last point, repeated tails included)
    return out.at[0].set(p[0]).at[-1].set(p[-1])


@one_shot_jit(static_argnames=("n",))
def _resample_batch(points, n: int):
    return jax.vmap(lambda p: _resample_one(p, n))(points)


def resample_uniform(
    points: Float[ArrayLike, "S P 3"],
    *,
    n_points: int | None = None,
) -> Float[Array, "S n 3"]:
    """Resample every strand to ``n_points`` points evenly spaced along its arc length (JAX).

    The root and the tip are kept exactly. Zero-length segments — a strand that stopped early
    repeats its tip (:func:`~machlib.hair.grow_strands` does this) — carry no arc length, so the
    output spreads the points over the grown part; a strand of zero length becomes its root
    repeated. jit-compiled and vmapped over strands; differentiable almost everywhere (the
    position of a sample moves from one segment to the next at kinks of the piecewise-linear
    map, and gradients through zero-length segments are zero).

    Args:
        points: ``(S, P, 3)`` strand points in metres, root first, ``P ≥ 2``.
        n_points: points per output strand, ``≥ 2`` (static); ``None`` keeps ``P``.

    Returns:
        ``(S, n_points, 3)`` points in the input's float dtype.

    Raises:
        InputError: a bad shape or ``n_points``.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.hair import resample_uniform
        >>> bent = jnp.array([[[0., 0, 0], [1, 0, 0], [1, 3, 0], [1, 3, 0]]])   # length 4, tip repeated
        >>> resample_uniform(bent, n_points=5)[0].tolist()
        [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 2.0, 0.0], [1.0, 3.0, 0.0]]
    """
    points = _check_points(points, "resample_uniform", 2)
    n = points.shape[1] if n_points is None else _check_int(n_points, "n_points", 2, "resample_uniform")
    return _in_blocks(lambda block: _resample_batch(block, n), points, 1024)


@jax.jit
def _lengths(points):
    return jnp.sum(jax.vmap(_segments)(points), axis=-1)


def strand_lengths(points: Float[ArrayLike, "S P 3"]) -> Float[Array, " S"]:
    """Arc length of every strand: the sum of its segment lengths, in metres (jit, differentiable).

    Args:
        points: ``(S, P, 3)`` strand points in metres, root first.

    Returns:
        ``(S,)`` lengths in the input's float dtype (zero-length segments add nothing and have a
        zero gradient).

    Raises:
        InputError: a bad shape.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.hair import strand_lengths
        >>> [round(float(x), 3) for x in strand_lengths(jnp.array([[[0., 0, 0], [0, 0.3, 0], [0.4, 0.3, 0]]]))]
        [0.7]
    """
    return _lengths(_check_points(points, "strand_lengths"))


# ---------------------------------------------------------------------------------------------
# Clean-up


class CleanupResult(NamedTuple):
    """The result of :func:`cleanup_strands`.

    Attributes:
        strands: the kept strands, smoothed and resampled (:class:`~machlib.hair.Strands`,
            ``float32`` numpy, colours and thickness of the kept strands).
        keep: ``(S,)`` bool numpy mask of the kept input strands.
        reasons: removal counts by rule: ``'short'``, ``'penetrating'``, ``'silhouette'``,
            ``'outlier'``. A strand that breaks several rules counts once, under the first of
            them in that order, so the counts sum to the number removed.
        removed_fraction: removed strands / input strands (``0.0`` for no strands).
    """

    strands: Strands
    keep: np.ndarray
    reasons: dict[str, int]
    removed_fraction: float


@jax.jit
def _penetration(sdf, points):
    s, p, _ = points.shape
    return -jnp.min(sdf_lookup(sdf, points.reshape(s * p, 3)).reshape(s, p), axis=1)


def _silhouette_outside(points: np.ndarray, mask: np.ndarray, camera) -> np.ndarray:
    """Per strand, the fraction of points that project inside the image but outside ``mask``."""
    s, p, _ = points.shape
    h, w = mask.shape
    xy = np.asarray(project(jnp.asarray(points.reshape(s * p, 3), jnp.float32), camera), np.float64)
    col, row = np.floor(xy[:, 0]), np.floor(xy[:, 1])
    inside = np.isfinite(xy).all(1) & (col >= 0) & (col < w) & (row >= 0) & (row < h)
    r = np.where(inside, row, 0).astype(np.int64)
    c = np.where(inside, col, 0).astype(np.int64)
    off = inside & ~mask[r, c]
    return off.reshape(s, p).mean(1)


def _robust_outliers(points: np.ndarray, k: float, max_fraction: float) -> np.ndarray:
    """Strands whose farthest point from the hair's median point is a high robust outlier."""
    s = points.shape[0]
    out = np.zeros(s, bool)
    cap = int(np.floor(max_fraction * s))
    if s < 3 or cap == 0:
        return out
    centre = np.median(points.reshape(-1, 3), axis=0)
    r = np.linalg.norm(points - centre, axis=2).max(1)
    med = np.median(r)
    mad = 1.4826 * np.median(np.abs(r - med))
    cand = np.flatnonzero(r > med + k * max(mad, 1e-6))
    if cand.size > cap:
        cand = cand[np.argsort(-r[cand])[:cap]]
    out[cand] = True
    return out


def cleanup_strands(
    strands: Strands,
    *,
    sdf: HeadSDF | None = None,
    min_length: float = 0.01,
    max_penetration: float = 0.002,
    silhouette: Float[ArrayLike, "H W"] | None = None,
    camera=None,
    silhouette_fraction: float = 0.5,
    silhouette_dilation: int = 2,
    outlier_k: float = 6.0,
    outlier_fraction: float = 0.02,
    smooth_iterations: int = 2,
    smooth_strength: float = 0.5,
    n_points: int | None = None,
) -> CleanupResult:
    """Remove bad strands, then smooth and resample the rest (Make-A-Character §2.5 clean-up).

    The rules, applied in this order (a strand is counted under the first it breaks):

    * ``'short'``: arc length (:func:`strand_lengths`) below ``min_length``;
    * ``'penetrating'`` (with ``sdf``): some point more than ``max_penetration`` inside the head
      (signed distance below ``−max_penetration``; the root, on the scalp, reads about zero);
    * ``'silhouette'`` (with ``silhouette`` and ``camera``): more than ``silhouette_fraction`` of
      the strand's points project inside the image onto a pixel outside the mask, after the mask
      (``> 0.5``) is dilated by ``silhouette_dilation`` pixels. Points that project outside the
      image count as inside the mask. Nothing here models occlusion, so strands behind the head
      project onto the face: pass as ``silhouette`` the image's foreground (hair ∪ head ∪ body,
      i.e. one minus the background), which removes only strands that stick out into the
      background;
    * ``'outlier'``: among the strands left, ``r`` is a strand's largest distance from the
      coordinate-wise median of all their points; a strand is an outlier where ``r`` exceeds
      ``median(r) + outlier_k · 1.4826 · MAD(r)`` (high side only: short strands are never
      outliers), at most ``outlier_fraction`` of the strands, the farthest first.

    The kept strands are resampled uniformly by arc length (:func:`resample_uniform`, which also
    spreads the repeated tips of strands that stopped early), smoothed (:func:`smooth_strands`)
    and resampled again so the spacing is uniform. With ``sdf``, every point but the root is then
    pushed out of the head along the SDF gradient to 1 mm outside (smoothing a strand that wraps
    tightly around the head would otherwise cut through it); where that moves points, segment
    lengths differ from uniform by up to about a percent.

    Args:
        strands: the :class:`~machlib.hair.Strands` to clean, ``P ≥ 2`` points each.
        sdf: the head's :class:`~machlib.hair.HeadSDF` (:func:`~machlib.hair.head_sdf_grid`);
            ``None`` skips the penetration rule.
        min_length: shortest arc length kept, metres, ``≥ 0``.
        max_penetration: allowed depth inside the head, metres, ``≥ 0``.
        silhouette: ``(H, W)`` float mask in ``[0, 1]`` (see above); needs ``camera``.
        camera: the :class:`~machlib.Camera` of the image, ``image_size == (W, H)``.
        silhouette_fraction: fraction of points off the mask above which a strand goes, in
            ``[0, 1]``.
        silhouette_dilation: mask dilation in pixels, ``≥ 0``.
        outlier_k: robust threshold in MADs, ``> 0``.
        outlier_fraction: most strands removed as outliers, as a fraction in ``[0, 1]``
            (``0`` turns the rule off).
        smooth_iterations: smoothing steps, ``≥ 0``.
        smooth_strength: smoothing step size in ``(0, 0.8]``.
        n_points: points per output strand, ``≥ 2``; ``None`` keeps ``P``.

    Returns:
        A :class:`CleanupResult`.

    Raises:
        InputError: bad option values, a mask without a camera (or the reverse), or a mask
            whose shape is not the camera's image.

    Example:
        >>> import numpy as np
        >>> from machlib.hair import Strands, cleanup_strands
        >>> t = np.linspace(0, 1, 8, dtype=np.float32)[:, None]
        >>> pts = np.stack([t * [0, -0.2, 0], t * [0, -0.005, 0], t * [0.01, -0.2, 0]])
        >>> res = cleanup_strands(Strands(pts), min_length=0.01, n_points=6)
        >>> res.keep.tolist(), res.reasons["short"], res.strands.points.shape
        ([True, False, True], 1, (2, 6, 3))
    """
    owner = "cleanup_strands"
    if not isinstance(strands, Strands):
        raise InputError(f"{owner}: strands must be a Strands, got {type(strands).__name__}")
    for name, v in (("min_length", min_length), ("max_penetration", max_penetration)):
        if not float(v) >= 0:
            raise InputError(f"{owner}: {name} must be >= 0, got {v!r}")
    for name, v in (("silhouette_fraction", silhouette_fraction), ("outlier_fraction", outlier_fraction)):
        if not 0.0 <= float(v) <= 1.0:
            raise InputError(f"{owner}: {name} must be in [0, 1], got {v!r}")
    if not float(outlier_k) > 0:
        raise InputError(f"{owner}: outlier_k must be > 0, got {outlier_k!r}")
    if not 0.0 < float(smooth_strength) <= 0.8:
        raise InputError(f"{owner}: smooth_strength must be in (0, 0.8], got {smooth_strength!r}")
    smooth_iterations = _check_int(smooth_iterations, "smooth_iterations", 0, owner)
    silhouette_dilation = _check_int(silhouette_dilation, "silhouette_dilation", 0, owner)
    p_in = strands.points_per_strand
    if p_in < 2:
        raise InputError(f"{owner}: strands need at least 2 points, got {p_in}")
    n_out = p_in if n_points is None else _check_int(n_points, "n_points", 2, owner)
    if (silhouette is None) != (camera is None):
        raise InputError(f"{owner}: silhouette and camera go together; got only one of them")
    mask = None
    if silhouette is not None:
        sil = np.asarray(silhouette, np.float32)
        w, h = camera.image_size
        if sil.shape != (h, w):
            raise InputError(
                f"{owner}: silhouette must have the camera's image shape (H, W) = {(h, w)}, got {sil.shape}"
            )
        mask = sil > 0.5
        if silhouette_dilation:
            mask = ndimage.binary_dilation(mask, iterations=silhouette_dilation)

    pts = np.asarray(strands.points, np.float32)
    s = pts.shape[0]
    if not np.isfinite(pts).all():
        raise InputError(f"{owner}: points contain NaN or infinity")
    reasons = {"short": 0, "penetrating": 0, "silhouette": 0, "outlier": 0}
    keep = np.ones(s, bool)

    def drop(name, bad):
        bad = bad & keep
        reasons[name] = int(bad.sum())
        keep[bad] = False

    if s:
        jp = jnp.asarray(pts)
        drop("short", np.asarray(_lengths(jp)) < float(min_length))
        if sdf is not None:
            drop("penetrating", np.asarray(_penetration(sdf, jp)) > float(max_penetration))
        if mask is not None:
            drop("silhouette", _silhouette_outside(pts, mask, camera) > float(silhouette_fraction))
        idx = np.flatnonzero(keep)
        out = np.zeros(s, bool)
        out[idx] = _robust_outliers(pts[idx], float(outlier_k), float(outlier_fraction))
        drop("outlier", out)

    kept = pts[keep]
    if kept.shape[0]:
        kept = np.asarray(_in_blocks(lambda block: _clean_block(block, n_out, smooth_strength, smooth_iterations, sdf),
                                     kept, 1024), np.float32)
    else:
        kept = np.zeros((0, n_out, 3), np.float32)
    pick = (lambda a: None if a is None else np.asarray(a, np.float32)[keep])
    return CleanupResult(
        Strands(kept, pick(strands.color), pick(strands.thickness)),
        keep,
        reasons,
        float((~keep).sum() / s) if s else 0.0,
    )


def _clean_block(block, n_out: int, smooth_strength, smooth_iterations: int, sdf):
    """The kept strands' resampling, smoothing and push-out (per strand), on one block."""
    x = _resample_batch(jnp.asarray(block), n_out)
    x = _smooth_batch(x, jnp.asarray(smooth_strength, x.dtype), smooth_iterations)
    x = _resample_batch(x, n_out)
    if sdf is not None:  # smoothing may cut a strand wrapped around the head: push it out
        flat = x[:, 1:].reshape(-1, 3)
        flat = _push_all(sdf, flat, jnp.asarray(_CLEARANCE, flat.dtype), 4)
        x = jnp.concatenate([x[:, :1], flat.reshape(x.shape[0], n_out - 1, 3)], 1)
    return x


# ---------------------------------------------------------------------------------------------
# Template -> fitted transfer


def _barycentric(q, a, b, c):
    """Barycentric coordinates of points q in triangles abc (all (N, 3) float64)."""
    v0, v1, v2 = b - a, c - a, q - a
    d00, d01, d11 = np.sum(v0 * v0, 1), np.sum(v0 * v1, 1), np.sum(v1 * v1, 1)
    d20, d21 = np.sum(v2 * v0, 1), np.sum(v2 * v1, 1)
    den = d00 * d11 - d01 * d01
    den = np.where(np.abs(den) > 1e-300, den, 1.0)
    w1 = (d11 * d20 - d01 * d21) / den
    w2 = (d00 * d21 - d01 * d20) / den
    return np.stack([1.0 - w1 - w2, w1, w2], 1)


def _attach(q: np.ndarray, v: np.ndarray, f: np.ndarray, n_faces: int = 16):
    """Closest face and barycentric coordinates of points q on the mesh (v, f).

    The candidates are the ``n_faces`` faces with the nearest centroids."""
    tri = v[f]
    kk = min(n_faces, len(f))
    _, cand = cKDTree(tri.mean(1)).query(q, k=kk, workers=-1)
    cand = cand.reshape(len(q), kk)
    best = np.full(len(q), np.inf)
    face = np.zeros(len(q), np.int64)
    closest = np.zeros_like(q)
    for i in range(kk):
        t = tri[cand[:, i]]
        c = _closest_on_triangles(q, t[:, 0], t[:, 1], t[:, 2])
        d = np.linalg.norm(q - c, axis=1)
        better = d < best
        best = np.where(better, d, best)
        face = np.where(better, cand[:, i], face)
        closest = np.where(better[:, None], c, closest)
    t = tri[face]
    return face, _barycentric(closest, t[:, 0], t[:, 1], t[:, 2])


def _shepard(q: np.ndarray, tree: cKDTree, disp: np.ndarray, k: int) -> np.ndarray:
    """Modified Shepard interpolation of vertex displacements at points q (float64)."""
    kk = min(k + 1, tree.n)
    d, idx = tree.query(q, k=kk, workers=-1)
    d, idx = d.reshape(len(q), kk), idx.reshape(len(q), kk)
    if kk == 1:
        return disp[idx[:, 0]]
    r = d[:, -1:]  # the (k+1)-th distance: weights fall to zero there, so they are continuous
    d, idx = d[:, :-1], idx[:, :-1]
    eps = 1e-9
    w = (np.maximum(r - d, 0.0) / (r * (d + eps) + eps)) ** 2
    tot = w.sum(1, keepdims=True)
    w = np.where(tot > 0, w / np.where(tot > 0, tot, 1.0), 1.0 / d.shape[1])  # ties: plain mean
    return np.einsum("nk,nkc->nc", w, disp[idx])


_CLEARANCE = 0.001  # metres outside the head that cleaned strands keep


@partial(jax.jit, static_argnames=("iters",))
def _push_all(sdf, pts, clearance, iters: int):
    return jax.vmap(lambda q: _push_out(sdf, q, clearance, iters))(pts)


def _mesh_of(m, name: str) -> Mesh:
    mesh = getattr(m, "mesh", m)
    if not isinstance(mesh, Mesh):
        raise InputError(f"transfer_strands: {name} must be a Mesh or have a .mesh, got {type(m).__name__}")
    return mesh


def transfer_strands(
    strands: Strands,
    source_mesh,
    target_mesh,
    *,
    k: int = 8,
    root_blend: float = 0.02,
    target_sdf: HeadSDF | None = None,
    clearance: float = 0.001,
) -> Strands:
    """Move strands grown on one head (the template) onto another with the same topology.

    Every point gets a smooth interpolation of the vertex displacements ``target − source``:
    the modified Shepard (inverse-distance) weights of its ``k`` nearest source vertices,
    ``w_i ∝ ((r − d_i) / (r d_i))²`` with ``r`` the distance to the ``(k+1)``-th nearest, which
    fall to zero before a vertex leaves the neighbourhood, so the field is continuous in space.
    Roots are re-attached: the root's closest source triangle and barycentric coordinates give
    its new position at the same barycentric point of the target triangle, so roots lie on the
    target surface. The difference between the root's exact displacement and the field's
    displacement at the root is added along the strand with a weight falling smoothly
    (smoothstep in arc length) from 1 at the root to 0 at ``root_blend`` metres, so each point's
    displacement is continuous along the strand. A pure translation of the head translates the
    strands; an identical head leaves them as they are. With ``target_sdf``, points other than
    the root are then pushed out of the target head along the SDF gradient until they are at
    least ``clearance`` outside.

    The neighbour searches use :class:`scipy.spatial.cKDTree`; the root's triangle is searched
    among the 16 faces with the nearest centroids (exact for roots on the surface). numpy
    (float64) throughout, except the SDF push (JAX).

    Args:
        strands: :class:`~machlib.hair.Strands` on the source head, roots on its surface.
        source_mesh: the head the strands were grown on (a :class:`~machlib.Mesh`, or anything
            with a ``.mesh``: a template or a geometry result).
        target_mesh: the fitted head, with the source's faces and vertex count.
        k: neighbours of the displacement interpolation, ``≥ 1``.
        root_blend: arc length in metres over which the root correction fades out, ``> 0``.
        target_sdf: the target's :class:`~machlib.hair.HeadSDF` (``None``: no push).
        clearance: distance in metres kept outside the target head by the push, ``≥ 0``.

    Returns:
        :class:`~machlib.hair.Strands` with ``float32`` numpy points, the same colours and
        thickness.

    Raises:
        InputError: a bad mesh, different topologies or bad options.

    Example:
        >>> import numpy as np
        >>> from machlib.geometry import default_template
        >>> from machlib.hair import Strands, transfer_strands
        >>> src = default_template().mesh
        >>> tgt = type(src)(np.asarray(src.vertices) + [0.0, 0.01, 0.0], src.faces, src.uv, src.faces_uv)
        >>> root = np.asarray(src.vertices)[np.asarray(src.faces)[100]].mean(0)
        >>> s = Strands((root + np.linspace(0, 0.1, 4)[:, None] * [0, 0, 1])[None].astype(np.float32))
        >>> moved = transfer_strands(s, src, tgt)
        >>> [round(float(x), 4) for x in (moved.points - s.points)[0, :, 1]]
        [0.01, 0.01, 0.01, 0.01]
    """
    owner = "transfer_strands"
    if not isinstance(strands, Strands):
        raise InputError(f"{owner}: strands must be a Strands, got {type(strands).__name__}")
    src, tgt = _mesh_of(source_mesh, "source_mesh"), _mesh_of(target_mesh, "target_mesh")
    same_faces = np.array_equal(np.asarray(src.faces), np.asarray(tgt.faces))
    if np.shape(src.vertices) != np.shape(tgt.vertices) or not same_faces:
        raise InputError(
            f"{owner}: source and target must share the topology; got {np.shape(src.vertices)[0]} and "
            f"{np.shape(tgt.vertices)[0]} vertices, {np.shape(src.faces)[0]} and {np.shape(tgt.faces)[0]} faces"
        )
    k = _check_int(k, "k", 1, owner)
    if not float(root_blend) > 0:
        raise InputError(f"{owner}: root_blend must be > 0, got {root_blend!r}")
    if not float(clearance) >= 0:
        raise InputError(f"{owner}: clearance must be >= 0, got {clearance!r}")
    pts = np.asarray(strands.points, np.float64)
    if not np.isfinite(pts).all():
        raise InputError(f"{owner}: points contain NaN or infinity")
    s, p, _ = pts.shape
    if s == 0 or p == 0:
        return Strands(pts.astype(np.float32), strands.color, strands.thickness)
    vs, vt = np.asarray(src.vertices, np.float64), np.asarray(tgt.vertices, np.float64)
    f = np.asarray(src.faces, np.int64)
    disp = vt - vs
    field = _shepard(pts.reshape(-1, 3), cKDTree(vs), disp, k).reshape(s, p, 3)
    roots = pts[:, 0]
    face, bary = _attach(roots, vs, f)
    new_roots = np.einsum("nk,nkc->nc", bary, vt[f[face]])
    corr = (new_roots - roots) - field[:, 0]
    seg = np.linalg.norm(np.diff(pts, axis=1), axis=2)
    arc = np.concatenate([np.zeros((s, 1)), np.cumsum(seg, 1)], 1)
    a = np.clip(arc / float(root_blend), 0.0, 1.0)
    blend = 1.0 - a * a * (3.0 - 2.0 * a)
    out = pts + field + blend[..., None] * corr[:, None, :]
    out[:, 0] = new_roots
    if target_sdf is not None and p > 1:
        rest = jnp.asarray(out[:, 1:].reshape(-1, 3), jnp.float32)
        pushed = _push_all(target_sdf, rest, jnp.float32(clearance), 8)
        out[:, 1:] = np.asarray(pushed, np.float64).reshape(s, p - 1, 3)
    return Strands(
        out.astype(np.float32),
        None if strands.color is None else np.asarray(strands.color, np.float32),
        None if strands.thickness is None else np.asarray(strands.thickness, np.float32),
    )


def cleanup_to_count(
    grow: Callable[[int], Strands],
    clean: Callable[[Strands], CleanupResult],
    n_strands: int,
    *,
    margin: float = 0.04,
    rounds: int = 3,
) -> CleanupResult:
    """Grow with a margin for clean-up and keep exactly ``n_strands`` strands.

    Clean-up removes a few strands (short, penetrating, outliers), so asking a grower for ``n``
    strands yields fewer. This grows ``n · (1 + margin)`` (at least 8 more), cleans, and if that
    was still too few grows again with the observed loss, up to ``rounds`` times. The kept strands
    are thinned to ``n_strands`` by evenly spaced picks in root order, so the scalp stays evenly
    covered.

    Args:
        grow: ``grow(count) -> Strands``, deterministic for a given count.
        clean: ``clean(strands) -> CleanupResult`` (e.g. a partial of :func:`cleanup_strands`).
        n_strands: strands wanted, ``≥ 0``.
        margin: extra fraction grown on the first round, ``≥ 0``.
        rounds: most growth rounds, ``≥ 1``.

    Returns:
        The last round's :class:`CleanupResult`, its ``strands`` thinned to ``n_strands`` (fewer
        only if every round lost more than expected; ``keep`` and ``reasons`` describe that
        round's clean-up).

    Example:
        >>> import numpy as np
        >>> from machlib.hair import Strands, cleanup_strands, cleanup_to_count
        >>> def grow(n):   # strands 2 cm long, every fifth one too short to keep
        ...     t = np.linspace(0, 1, 4)[None, :, None]
        ...     length = np.where(np.arange(n) % 5 == 0, 0.001, 0.02)[:, None, None]
        ...     return Strands((t * length * np.array([0, 0, 1.0])).astype(np.float32))
        >>> res = cleanup_to_count(grow, lambda s: cleanup_strands(s, min_length=0.01), 100)
        >>> res.strands.num_strands
        100
    """
    if n_strands < 0 or rounds < 1 or margin < 0:
        raise InputError(f"cleanup_to_count: need n_strands >= 0, rounds >= 1, margin >= 0; got "
                         f"{n_strands}, {rounds}, {margin}")
    ask = int(n_strands + max(8, np.ceil(margin * n_strands)))
    for _ in range(rounds):
        res = clean(grow(ask))
        kept = res.strands.num_strands
        if kept >= n_strands:
            break
        ask = int(np.ceil(ask * n_strands / max(kept, 1) * (1.0 + margin))) + 8
    kept = res.strands.num_strands
    if kept <= n_strands:
        return res
    pick = np.unique(np.round(np.linspace(0, kept - 1, n_strands)).astype(np.int64))
    s = res.strands
    thin = Strands(np.asarray(s.points)[pick],
                   None if s.color is None else np.asarray(s.color)[pick],
                   None if s.thickness is None else np.asarray(s.thickness)[pick])
    return res._replace(strands=thin)


def _strand_points(owner: str, strands) -> np.ndarray:
    """``strands.points`` as ``(S, P, 3)`` float64, checked: a :class:`Strands`, ``P >= 2``,
    finite (InputError naming ``owner`` otherwise)."""
    if not isinstance(strands, Strands):
        raise InputError(f"{owner}: strands must be machlib.hair.Strands, got {type(strands).__name__}")
    pts = np.asarray(strands.points, np.float64)
    if pts.ndim != 3 or pts.shape[1] < 2 or pts.shape[2] != 3:
        raise InputError(f"{owner}: strands need (S, P >= 2, 3) points, got {pts.shape}")
    if not np.isfinite(pts).all():
        raise InputError(f"{owner}: strand points contain NaN or infinity")
    return pts
