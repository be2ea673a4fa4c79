"""Image-guided hairstyle retrieval: rank the library's styles by how well their projected
silhouette and strand orientation match a portrait's hair mask and orientation map
(:func:`match_styles`)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from jaxtyping import Float, PRNGKeyArray
from scipy import ndimage

from .._errors import InputError
from .._camera import Camera, rotation_matrix
from .._scene import ScenePart, depth_map
from .._strand_raster import _strand_pass
from ._growth import HeadSDF, _resolve_geometry
from ._styles import HAIR_STYLES, HairStyle, grow_style

__all__ = ["StyleMatch", "match_styles", "strand_coverage"]


class StyleMatch(NamedTuple):
    """One style's agreement with a portrait (an item of :func:`match_styles`' ranking).

    Attributes:
        name: the style's name.
        score: ``f1 + orientation_weight · orientation`` (higher is better).
        f1: harmonic mean of the silhouette's precision (share of the style's visible hair on
            pixels where hair may be seen) and recall (share of the hair mask it covers).
        orientation: confidence-weighted mean of ``cos 2(θ_style − θ_image)`` over the pixels
            both cover, in ``[−1, 1]`` (``1``: strands run the same way; ``0`` when none overlap).
    """

    name: str
    score: float
    f1: float
    orientation: float


def _scaled_camera(camera: Camera, scale: int) -> Camera:
    w, h = camera.image_size
    size = (max(1, w // scale), max(1, h // scale))
    f = np.asarray(camera.focal, np.float64) * np.array([size[0] / w, size[1] / h])
    c = np.asarray(camera.principal, np.float64) * np.array([size[0] / w, size[1] / h])
    return Camera(camera.rotation, camera.translation, f, c, image_size=size)


def strand_coverage(
    points: Float[np.ndarray, "S P 3"],
    camera: Camera,
    *,
    mesh=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Where strands are visible in a camera, and which way they run there.

    The strands' segments are z-buffered against each other and, with ``mesh``, against the head
    (the sampling rasterizer of :func:`~machlib.hair.render_strands`), at the camera's resolution.

    Args:
        points: ``(S, P, 3)`` strand points, metres, head space.
        camera: the :class:`~machlib.Camera`.
        mesh: the head :class:`~machlib.Mesh` that hides strands behind it, or ``None``.

    Returns:
        ``(hit, theta)``: ``(H, W)`` bool, pixels where a strand is the nearest surface; and
        ``(H, W)`` float, the image angle in ``[0, π)`` of the visible segment (``x`` right,
        ``y`` down, as :func:`~machlib.hair.orientation_map`), ``0`` elsewhere.

    Example:
        >>> import numpy as np
        >>> from machlib._preview import orbit_camera
        >>> from machlib.hair import strand_coverage
        >>> strand = np.stack([np.zeros(8), np.linspace(0.1, -0.1, 8), np.zeros(8)], 1)[None]
        >>> hit, theta = strand_coverage(strand, orbit_camera(0.0, image_size=(64, 64)))
        >>> int(hit.sum()) > 10, round(float(np.median(theta[hit])), 2)     # vertical: π/2
        (True, 1.57)
    """
    pts = np.asarray(points, np.float64)
    if pts.ndim != 3 or pts.shape[-1] != 3:
        raise InputError(f"strand_coverage: points must have shape (S, P, 3), got {pts.shape}")
    w, h = camera.image_size
    R = np.asarray(rotation_matrix(camera.rotation), np.float64)
    t = np.asarray(camera.translation, np.float64)
    focal = np.asarray(camera.focal, np.float64)
    principal = np.asarray(camera.principal, np.float64)
    if mesh is not None:
        zhead = depth_map([ScenePart(mesh, two_sided=False)], camera)
    else:
        zhead = np.full((h, w), np.inf)
    hit, seg, _ = _strand_pass(pts, R, t, focal, principal, (w, h), zhead, 5e-4)
    theta = np.zeros((h, w))
    if seg.size:
        p = pts.shape[1]
        a = (seg // (p - 1)) * p + seg % (p - 1)
        flat = pts.reshape(-1, 3)
        ends = np.stack([flat[a], flat[a + 1]], 1) @ R.T + t  # (n, 2, 3) camera space
        z = np.where(ends[..., 2] > 1e-6, ends[..., 2], 1e-6)
        px = ends[..., :2] / z[..., None] * focal
        d = px[:, 1] - px[:, 0]
        theta[hit] = np.mod(np.arctan2(d[:, 1], d[:, 0]), np.pi)
    return hit, theta


def match_styles(
    key: PRNGKeyArray,
    mask: Float[np.ndarray, "H W"],
    theta: Float[np.ndarray, "H W"],
    confidence: Float[np.ndarray, "H W"],
    camera: Camera,
    geometry,
    *,
    styles: dict[str, HairStyle] | None = None,
    n_strands: int = 800,
    n_points: int = 24,
    scale: int = 4,
    orientation_weight: float = 0.3,
    sdf: HeadSDF | None = None,
    template=None,
    allowed: Float[np.ndarray, "H W"] | None = None,
) -> list[StyleMatch]:
    """Rank hairstyles by how well they explain a portrait's hair (database retrieval, §2.5).

    Each style is grown sparsely on the fitted head (``n_strands`` strands) and its visible
    strands are drawn in the portrait's camera at ``1 / scale`` of its resolution
    (:func:`strand_coverage`), then closed into a silhouette (a binary closing and hole filling
    of 2 pixels). The score adds the silhouette's F1 and ``orientation_weight`` times the
    agreement of the strands' image angles with the portrait's orientation map (the
    confidence-weighted mean of ``cos 2Δθ`` over pixels that both cover). F1 is the harmonic
    mean of the recall (the share of the hair mask, ``> 0.5``, block-averaged to the same
    resolution, that the silhouette covers) and the precision (the share of the silhouette on
    ``allowed`` pixels: where the portrait shows hair or something that may hide hair — a hat,
    the face in front of hair behind the head; hair over the background or the clothes is
    wrong). Bald styles score the
    ``0.1 − 20 · f`` for a hair-mask fraction ``f`` of the image, so they win only when there is
    almost no hair (``f`` below about half a percent).

    Args:
        key: JAX PRNG key for the sparse growth (the same key gives the same ranking).
        mask: ``(H, W)`` hair mask in ``[0, 1]`` (:func:`~machlib.hair.hair_mask`).
        theta: ``(H, W)`` strand angle in ``[0, π)`` (:func:`~machlib.hair.orientation_map`).
        confidence: ``(H, W)`` orientation confidence, ``≥ 0``.
        camera: the fitted :class:`~machlib.Camera` of the portrait (``image_size == (W, H)``).
        geometry: the fitted head (a :class:`~machlib.geometry.GeometryResult`, a
            :class:`~machlib.Mesh` with the template topology, or a template).
        styles: name → :class:`HairStyle` candidates (default :data:`~machlib.hair.HAIR_STYLES`).
        n_strands: strands grown per style, ``≥ 1``.
        n_points: points per strand, ``≥ 2``.
        scale: integer downscale of the comparison images, ``≥ 1``.
        orientation_weight: weight of the orientation term, ``≥ 0``.
        sdf: the head's :class:`~machlib.hair.HeadSDF` (built when ``None``).
        template: the template whose scalp mask applies to a fitted mesh.
        allowed: ``(H, W)`` mask in ``[0, 1]`` of the pixels where visible hair is plausible
            (default: the hair mask itself, which makes F1 the Dice overlap).

    Returns:
        :class:`StyleMatch` items, best first.

    Raises:
        InputError: mismatched shapes, a camera of another size, or bad options.
    """
    mask = np.asarray(mask, np.float64)
    theta = np.asarray(theta, np.float64)
    confidence = np.asarray(confidence, np.float64)
    if mask.ndim != 2 or theta.shape != mask.shape or confidence.shape != mask.shape:
        raise InputError(f"match_styles: mask, theta and confidence must share an (H, W) shape, got "
                         f"{mask.shape}, {theta.shape}, {confidence.shape}")
    h, w = mask.shape
    if tuple(camera.image_size) != (w, h):
        raise InputError(f"match_styles: camera.image_size {camera.image_size} != the mask's (W, H) {(w, h)}")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise InputError(f"match_styles: scale must be an int >= 1, got {scale!r}")
    if not float(orientation_weight) >= 0:
        raise InputError(f"match_styles: orientation_weight must be >= 0, got {orientation_weight!r}")
    styles = HAIR_STYLES if styles is None else styles
    if not styles or not all(isinstance(s, HairStyle) for s in styles.values()):
        raise InputError("match_styles: styles must be a non-empty dict of HairStyle")
    mesh, template = _resolve_geometry(geometry, template, "match_styles")
    small = _scaled_camera(camera, scale)
    sw, sh = small.image_size

    def pool(x):
        x = x[: sh * scale, : sw * scale]
        return x.reshape(sh, scale, sw, scale).mean((1, 3))

    target = pool((mask > 0.5).astype(np.float64)) > 0.5
    if allowed is None:
        ok_px = target
    else:
        allowed = np.asarray(allowed, np.float64)
        if allowed.shape != mask.shape:
            raise InputError(f"match_styles: allowed must have shape {mask.shape}, got {allowed.shape}")
        ok_px = (pool((allowed > 0.5).astype(np.float64)) > 0.5) | target
    c2 = pool(confidence * np.cos(2 * theta))
    s2 = pool(confidence * np.sin(2 * theta))
    tgt_theta = 0.5 * np.arctan2(s2, c2)
    tgt_conf = np.hypot(c2, s2)
    hair_fraction = float(target.mean())
    out = []
    for name, style in styles.items():
        if style.bald:
            out.append(StyleMatch(name, 0.1 - 20.0 * hair_fraction, 0.0, 0.0))
            continue
        grown = grow_style(key, style, mesh, n_strands=n_strands, n_points=n_points, sdf=sdf, template=template)
        hit, ang = strand_coverage(np.asarray(grown.points), small, mesh=mesh)
        sil = ndimage.binary_fill_holes(ndimage.binary_closing(hit, iterations=2)) | hit
        n_sil, n_tgt = float(sil.sum()), float(target.sum())
        precision = float((sil & ok_px).sum()) / n_sil if n_sil else 0.0
        recall = float((sil & target).sum()) / n_tgt if n_tgt else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        both = hit & target
        wgt = tgt_conf[both]
        orient = float(np.sum(wgt * np.cos(2 * (ang[both] - tgt_theta[both]))) / wgt.sum()) if wgt.sum() > 0 else 0.0
        out.append(StyleMatch(name, f1 + float(orientation_weight) * orient, f1, orient))
    return sorted(out, key=lambda m: (-m.score, m.name))
