"""Glasses worn in the portrait: are there any, where are the frames, what style and colour.

Without a trained network, the landmarks say where frames can be and the image says whether
they are there. Everything is measured in the face's *eye-line frame*: origin between the iris
centres, ``u`` along the eye line (towards the image-right eye), ``v`` down the face, both in
units of the iris distance ``d`` (about 63 mm on an adult). The portrait is resampled into that
frame at :data:`_S` samples per ``d``, so the analysis does not depend on the photo's resolution
or the head's roll.

Image evidence is the luminance gradient (Gaussian derivatives, σ = 1.2 samples), divided by its
median over the face's skin around the eyes (eyes and brows left out): a frame edge is a
gradient many times that of the skin it sits on. Three pieces of a frame are looked for:

* the **bridge** over the nose between the eyes (``|u| ≤ 0.1``, ``−0.45 ≤ v ≤ 0.2``): a
  horizontal line across the whole nose, which skin never has. Per row of the frame, the 25th
  percentile over ``u`` of the vertical gradient (the line must cross the whole bridge), after
  a maximum over ``±0.04 d`` in ``v`` (a bridge may arch); the score is the best row's value;
* the **rims** around each eye: the strongest closed contour around the eye centre, found by
  dynamic programming over a polar grid (64 angles × radii ``0.2–0.62 d``, the radius changing
  by at most 0.02 d between neighbouring angles), scoring the gradient across the contour. The
  score is the mean over the lower half of the contour (the upper half meets the brows), the
  smaller of the two eyes' (both lenses must show);
* the **lens tint**: the mean luminance inside the rims against the cheeks (sunglasses).

The presence score is a logistic function of the bridge and rim scores (log scale), set so that
the offline portraits without glasses and drawn frames on them separate with a margin (see
``tests/texture/test_glasses.py``). Where present, the mask of the frames is the two rim
contours and the bridge, drawn at the frame's measured thickness (the extent of the edge
response across the contour, at least ``0.05 d``), plus what the contours miss (a second,
weaker rim; a browline's top): the pixels of the lens zone (within ``0.78 d`` of an eye, above
``v = 0.55``, off the nose ridge) whose colour differs from a ``0.26 d`` median of their
surroundings by more than 0.09 (0.25 over the brows, which are dark themselves), in connected
strokes of at least ``0.02 d²``. Inside the lenses (the rim contours shrunk by half the frame's
thickness and ``0.04 d``) the portrait's own lids, wrinkles and brows show through the glass, so
only reflections (pixels brighter than their surroundings by more than 0.15, nearly grey) are
kept there, or the whole lens when it is tinted (luminance below 0.6 of the cheeks'). Outside
the lenses a stroke counts only where it meets the frame (a temple, a second rim) or lies above
the bridge's level (a browline); creases and bags under the lower rim are skin. Widened by
``grow``, this is the *footprint* that texture completion treats as unseen. The eye openings
(from the landmarks) are cut out of it, so the eyes themselves stay the portrait's own.

The style comes from the rim contours: their aspect ratio, how much of their bounding box they
fill (round ≈ π/4, rectangular ≈ 1), how much higher the upper outer part sits than the upper
inner part (cat-eye), the lower rim against the upper (half-rim), and the tint (sunglasses).
The colour is the median colour of the pixels on the bridge and the upper rims. Each contour's
extent down the face (``top`` and ``bottom`` in ``evidence["rim_shape"]``, ``v`` from the iris
line) says where the frames sit on the face (:func:`machlib.character.glasses_lens`).

A face-parsing network (:func:`machlib.interop.parse_face`, the ``eye_g`` class) can replace the
image evidence: pass its glasses mask as ``parsed``.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
from jaxtyping import Float, Shaped

from .._errors import InputError
from .._typing import AnyArray
from .._validate import check_face_image

__all__ = ["GlassesDetection", "detect_glasses"]

_S = 80  # samples per iris distance in the eye-line frame
_U = (-1.25, 1.25)
_V = (-0.75, 0.95)
_RIGHT_EYE = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
_LEFT_EYE = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
_RIGHT_BROW = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
_LEFT_BROW = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
_FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
              152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
_ANGLES = 64
_RADII = np.arange(0.20, 0.785, 0.01)
#: logistic presence model on log evidence: z = a·log(bridge / b0) + b·log(rims / r0), each term clipped
_W_BRIDGE, _W_RIMS, _BRIDGE0, _RIMS0 = 2.5, 1.5, 1.2, 2.0
_REF_PCT = 65
_COLOR_STEP = 0.09
_BROW_STEP = 0.25
_TINTED = 0.6  # lens luminance / cheeks below which the lenses hide the eyes (sunglasses)
_REFLECTION_STEP = 0.15  # a reflection on a clear lens: this much brighter than its surroundings


class GlassesDetection(NamedTuple):
    """What :func:`detect_glasses` found.

    Attributes:
        present: ``score >= threshold``.
        score: presence probability in ``[0, 1]``.
        mask: ``(H, W)`` float32 footprint of the frames in the portrait (0 where absent; eye
            openings cut out), for texture completion to treat as unseen.
        style: a ``glasses`` word of :data:`machlib.text.VOCABULARY` (``round``, ``square``,
            ``cat-eye``, ``half-rim``, ``sunglasses``) or ``None`` when absent.
        color: median sRGB colour in ``[0, 1]`` of the frame pixels (bridge and upper rims), or
            ``None`` when absent.
        evidence: the numbers behind the decision (bridge and rim contrast, rim shape, tint, ...).
        source: ``"image"`` (landmarks + image evidence) or ``"parser"`` (a parsing network's mask).
    """

    present: bool
    score: float
    mask: np.ndarray
    style: Optional[str]
    color: Optional[tuple]
    evidence: dict
    source: str


def _frame(points: np.ndarray):
    a, b = points[468], points[473]
    d = float(np.linalg.norm(b - a))
    if not d > 2.0:
        raise InputError(f"detect_glasses: the iris centres are {d:.2f} px apart; the face is too small")
    ex = (b - a) / d
    ey = np.array([-ex[1], ex[0]])
    return (a + b) / 2.0, ex, ey, d


def _to_frame(xy: np.ndarray, o, ex, ey, d) -> np.ndarray:
    q = (np.asarray(xy, np.float64) - o) / d
    return np.stack([q @ ex, q @ ey], -1)


def _grid_index(uv: np.ndarray) -> np.ndarray:
    """Eye-line coordinates → fractional (row, col) of the resampled grid."""
    return np.stack([(uv[..., 1] - _V[0]) * _S, (uv[..., 0] - _U[0]) * _S], -1)


def _poly_mask(shape, rc: np.ndarray) -> np.ndarray:
    from skimage.draw import polygon

    m = np.zeros(shape, bool)
    rr, cc = polygon(rc[:, 0], rc[:, 1], shape=shape)
    m[rr, cc] = True
    return m


def _ring_dp(evidence: np.ndarray, valid: np.ndarray, max_step: int = 2) -> np.ndarray:
    """Best closed contour through a polar ``(angles, radii)`` evidence grid: radius index per
    angle, changing by at most ``max_step`` between neighbouring angles (two turns unrolled,
    the second kept, so the ends meet up to the step limit)."""
    n, m = evidence.shape
    e = np.where(valid, evidence, 0.0)
    e2 = np.concatenate([e, e, e], 0)
    score = e2[0].copy()
    back = np.zeros((3 * n, m), np.int64)
    idx = np.arange(m)
    for j in range(1, 3 * n):
        best = np.full(m, -np.inf)
        arg = np.zeros(m, np.int64)
        for s in range(-max_step, max_step + 1):
            src = idx + s
            ok = (src >= 0) & (src < m)
            cand = np.where(ok, score[np.clip(src, 0, m - 1)] - 0.05 * abs(s), -np.inf)
            better = cand > best
            best = np.where(better, cand, best)
            arg = np.where(better, np.clip(src, 0, m - 1), arg)
        score = best + e2[j]
        back[j] = arg
    path = np.zeros(3 * n, np.int64)
    path[-1] = int(np.argmax(score))
    for j in range(3 * n - 1, 0, -1):
        path[j - 1] = back[j, path[j]]
    return path[n:2 * n]


def detect_glasses(
    image: Shaped[AnyArray, "H W 3"],
    landmarks,
    *,
    threshold: float = 0.5,
    grow: float = 0.02,
    parsed: Optional[Float[AnyArray, "H W"]] = None,
) -> GlassesDetection:
    """Detect glasses in a portrait from its landmarks and the image (or a parser's mask).

    See the module documentation for the method. Not differentiable (a detector, run once per
    portrait); about 0.1 s for a 512² portrait.

    Args:
        image: ``(H, W, 3)`` uint8 RGB portrait.
        landmarks: its :class:`~machlib.geometry.Landmarks` (MediaPipe's 478 points with irises).
        threshold: presence probability from which the glasses count as present.
        grow: widen the footprint by this many iris distances on each side (frame edges blur into
            the skin around them).
        parsed: optional ``(H, W)`` glasses mask from a face-parsing network (e.g.
            ``parsing_to_regions(parse_face(image, parser))["glasses"]``). When given it decides:
            present if it covers at least 2% of the eye region, and it is the footprint.

    Returns:
        A :class:`GlassesDetection`.

    Raises:
        InputError: a bad image, landmarks that are not 478 points, a tiny face, ``threshold``
            outside ``(0, 1)`` or a negative ``grow``.

    Example:
        >>> import numpy as np
        >>> from machlib import default_portrait
        >>> from machlib.geometry import MediaPipeDetector
        >>> from machlib.texture import detect_glasses
        >>> photo = default_portrait()  # Grace Hopper wears glasses
        >>> g = detect_glasses(photo, MediaPipeDetector()(photo))
        >>> g.present, g.mask.shape == photo.shape[:2]
        (True, True)
    """
    from scipy import ndimage

    fn = "detect_glasses"
    img, pts = check_face_image(fn, image, landmarks)
    if not 0.0 < threshold < 1.0:
        raise InputError(f"{fn}: threshold must be in (0, 1), got {threshold!r}")
    if not grow >= 0.0:
        raise InputError(f"{fn}: grow must be >= 0 (iris distances), got {grow!r}")
    h, w = img.shape[:2]
    o, ex, ey, d = _frame(pts)

    # ---- the eye-line frame: resample the portrait
    gh, gw = int(round((_V[1] - _V[0]) * _S)), int(round((_U[1] - _U[0]) * _S))
    vv, uu = np.meshgrid(_V[0] + (np.arange(gh) + 0.5) / _S, _U[0] + (np.arange(gw) + 0.5) / _S, indexing="ij")
    xy = o + d * (uu[..., None] * ex + vv[..., None] * ey)  # pixel (x, y), centres at +0.5
    coords = [xy[..., 1] - 0.5, xy[..., 0] - 0.5]
    rgb = np.stack([ndimage.map_coordinates(img[..., c].astype(np.float32) / 255.0, coords, order=1, mode="nearest")
                    for c in range(3)], -1)
    inside_img = (xy[..., 0] >= 0) & (xy[..., 0] < w) & (xy[..., 1] >= 0) & (xy[..., 1] < h)
    lum = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    sigma = max(1.2, 0.6 * _S / d)  # no finer than the photo's own pixels
    # colour gradient (frames may differ from skin in hue more than in brightness): per pixel the
    # direction and strength of the largest change over the three channels (Di Zenzo's tensor)
    gys = [ndimage.gaussian_filter(rgb[..., c], sigma, order=(1, 0)) for c in range(3)]
    gxs = [ndimage.gaussian_filter(rgb[..., c], sigma, order=(0, 1)) for c in range(3)]
    jxx = sum(g * g for g in gxs)
    jyy = sum(g * g for g in gys)
    jxy = sum(a * b for a, b in zip(gxs, gys))
    lam = 0.5 * (jxx + jyy + np.sqrt((jxx - jyy) ** 2 + 4 * jxy ** 2))
    ang = 0.5 * np.arctan2(2 * jxy, jxx - jyy)
    grad = np.sqrt(lam)
    gx, gy = grad * np.cos(ang), grad * np.sin(ang)

    def region(idx):
        return _poly_mask((gh, gw), _grid_index(_to_frame(pts[list(idx)], o, ex, ey, d)))

    face = region(_FACE_OVAL) & inside_img
    eyes = ndimage.binary_dilation(region(_RIGHT_EYE) | region(_LEFT_EYE), iterations=max(1, int(0.04 * _S)))
    brows = ndimage.binary_dilation(region(_RIGHT_BROW) | region(_LEFT_BROW), iterations=max(1, int(0.04 * _S)))
    skin = face & ~eyes & ~brows & (np.abs(vv) < 0.7)
    ref = float(np.percentile(grad[skin], _REF_PCT)) if skin.sum() > 50 else float(np.percentile(grad, _REF_PCT))
    ref = max(ref, 2e-3)  # very smooth or flat images: a floor on the skin's own texture
    evid = grad / ref
    horiz = np.maximum(np.abs(gy) - 0.5 * np.abs(gx), 0.0) / ref  # edges of horizontal lines

    # ---- bridge: a horizontal line across the nose between the eyes
    inner_u = _to_frame(pts[[133, 362, 168]], o, ex, ey, d)[:, 0]
    half = float(np.clip(0.2 * (inner_u[1] - inner_u[0]), 0.03, 0.06))
    mid = float(np.clip(inner_u[2], inner_u[0] + half, inner_u[1] - half))
    band = np.abs(uu[0] - mid) <= half
    rows = (vv[:, 0] >= -0.32) & (vv[:, 0] <= 0.18)
    b = ndimage.maximum_filter1d(horiz, size=max(1, int(0.06 * _S)) | 1, axis=0)
    b = np.where(face, b, 0.0)
    row_score = np.percentile(b[:, band], 25, axis=1)
    row_score = np.where(rows, row_score, 0.0)
    bridge_row = int(np.argmax(row_score))
    bridge = float(row_score[bridge_row])

    # ---- rims: the strongest closed contour around each eye
    theta = 2 * np.pi * np.arange(_ANGLES) / _ANGLES
    rings, ring_scores, ring_lower, ring_upper, shapes, ring_valid = [], [], [], [], [], []
    for k, idx in enumerate((_RIGHT_EYE, _LEFT_EYE)):
        eye_uv = _to_frame(pts[list(idx)], o, ex, ey, d)
        c = eye_uv.mean(0)
        outward = -1.0 if k == 0 else 1.0  # +u is outward for the image-right eye
        dirs = np.stack([np.cos(theta), 0.8 * np.sin(theta)], -1)
        puv = c + _RADII[None, :, None] * dirs[:, None, :]  # (A, R, 2)
        rc = _grid_index(puv)
        # gradient across the contour: along the (elliptic) normal
        nrm = np.stack([np.cos(theta) * 0.8, np.sin(theta)], -1)
        nrm /= np.linalg.norm(nrm, axis=-1, keepdims=True)
        gxs = ndimage.map_coordinates(gx, [rc[..., 0], rc[..., 1]], order=1, mode="nearest")
        gys = ndimage.map_coordinates(gy, [rc[..., 0], rc[..., 1]], order=1, mode="nearest")
        across = np.abs(gxs * nrm[:, None, 0] + gys * nrm[:, None, 1]) / ref
        ok = ndimage.map_coordinates((face & ~eyes).astype(np.float32), [rc[..., 0], rc[..., 1]], order=0) > 0.5
        # keep to where lenses are: not past the nose's midline
        ok &= (puv[..., 0] * outward > 0.06)
        # a lower rim sits below the lower lid's creases
        ok &= ~((np.sin(theta)[:, None] > 0.35) & (_RADII[None, :] < 0.28))
        path = _ring_dp(np.minimum(across, 12.0), ok)
        r_sel = _RADII[path]
        e_sel = across[np.arange(_ANGLES), path] * ok[np.arange(_ANGLES), path]
        lower = (np.sin(theta) > 0.35)
        upper = (np.sin(theta) < -0.35)
        ring_lower.append(float(np.mean(e_sel[lower])))
        ring_valid.append(float(np.mean(ok[lower][:, (_RADII >= 0.28) & (_RADII <= 0.45)])))
        ring_upper.append(float(np.mean(e_sel[upper])))
        contour = c + r_sel[:, None] * dirs
        rings.append(contour)
        ring_scores.append(float(np.mean(e_sel)))
        # shape of the contour, in the image-right eye's orientation (outer side +u)
        q = (contour - c) * np.array([outward, 1.0])
        wid, hei = np.ptp(q[:, 0]), np.ptp(q[:, 1])
        x2 = np.append(q[:, 0], q[0, 0])
        y2 = np.append(q[:, 1], q[0, 1])
        area = 0.5 * abs(np.sum(x2[:-1] * y2[1:] - x2[1:] * y2[:-1]))
        top_outer = q[(q[:, 0] > 0.15 * wid) & (q[:, 1] < 0), 1]
        top_inner = q[(q[:, 0] < -0.15 * wid) & (q[:, 1] < 0), 1]
        rise = float(top_inner.min() - top_outer.min()) if top_outer.size and top_inner.size else 0.0
        top = q[:, 1] < np.median(q[:, 1])
        slope = float(np.polyfit(q[top, 0], q[top, 1], 1)[0]) if top.sum() > 3 else 0.0
        shapes.append({"aspect": float(wid / max(hei, 1e-6)), "fill": float(area / max(wid * hei, 1e-6)),
                       "outer_rise": rise, "top_slope": slope, "width": float(wid), "height": float(hei),
                       # the contour's extent down the face from the iris line (v of the eye-line frame)
                       "top": float(contour[:, 1].min()), "bottom": float(contour[:, 1].max())})
    # both lenses must show; an eye turned away (most of its lower rim off the face) does not count
    seen = [x for x, ok in zip(ring_lower, ring_valid) if ok > 0.6]
    rims = float(min(seen)) if seen else 0.0
    # lens tint: inside the rims against the skin below them
    lens_in = np.zeros((gh, gw), bool)
    for contour in rings:
        lens_in |= _poly_mask((gh, gw), _grid_index(contour))
    lens_in &= face & ~ndimage.binary_dilation(eyes, iterations=2)
    cheeks = face & (vv > 0.75) & (np.abs(uu) > 0.2) & (np.abs(uu) < 0.8)
    tint = float(np.median(lum[lens_in]) / max(np.median(lum[cheeks]), 1e-3)) if lens_in.any() and cheeks.any() else 1.0

    evidence = {
        "iris_distance_px": round(d, 2),
        "skin_gradient": round(ref, 5),
        "bridge": round(bridge, 3),
        "rims_lower": [round(x, 3) for x in ring_lower],
        "rims_upper": [round(x, 3) for x in ring_upper],
        "rims": round(rims, 3),
        "rims_valid": [round(x, 3) for x in ring_valid],
        "lens_tint": round(tint, 3),
        "rim_shape": [{k: round(v, 3) for k, v in s.items()} for s in shapes],
    }

    if parsed is not None:
        pm = np.asarray(parsed, np.float32)
        if pm.shape != (h, w):
            raise InputError(f"{fn}: parsed must have the image's shape {(h, w)}, got {pm.shape}")
        pm_f = ndimage.map_coordinates(pm, coords, order=1, mode="constant") > 0.5
        zone = face & (np.abs(vv) < 0.7) & (np.abs(uu) < 1.1)
        cover = float(pm_f[zone].mean()) if zone.any() else 0.0
        evidence["parsed_fraction"] = round(cover, 4)
        score = float(np.clip(cover / 0.02, 0.0, 1.0))
        present = cover >= 0.02
        source = "parser"
    else:
        z = (_W_BRIDGE * np.clip(np.log(max(bridge, 1e-6) / _BRIDGE0), -2.0, 3.0)
             + _W_RIMS * np.clip(np.log(max(rims, 1e-6) / _RIMS0), -2.0, 3.0))
        score = float(1.0 / (1.0 + np.exp(-z)))
        present = score >= threshold
        source = "image"
    if not present:
        return GlassesDetection(False, score, np.zeros((h, w), np.float32), None, None, evidence, source)

    # ---- the footprint, in the eye-line frame, then back to the image
    if parsed is not None:
        frame_mask = pm_f
    else:
        frame_mask = np.zeros((gh, gw), bool)
        from skimage.draw import line

        def stroke(poly):
            rc = np.round(_grid_index(poly)).astype(np.int64)
            for (r0, c0), (r1, c1) in zip(rc[:-1], rc[1:]):
                rr, cc = line(r0, c0, r1, c1)
                keep = (rr >= 0) & (rr < gh) & (cc >= 0) & (cc < gw)
                frame_mask[rr[keep], cc[keep]] = True

        for contour in rings:
            stroke(np.concatenate([contour, contour[:1]]))
        v_b = vv[bridge_row, 0]
        inner = [min(np.abs(r[:, 0])) for r in rings]
        stroke(np.array([[-inner[0] - 0.02, v_b], [inner[1] + 0.02, v_b]]))
        # the frame's thickness: how far across the contour the edge response stays high
        strong = (evid > 3.0) & face
        thick = 0.05
        for t in np.arange(0.05, 0.13, 0.01):
            near = ndimage.binary_dilation(frame_mask, iterations=int(round(t * _S / 2)))
            ring_band = near & ~ndimage.binary_dilation(frame_mask, iterations=int(round((t - 0.01) * _S / 2)))
            if ring_band.any() and strong[ring_band].mean() > 0.5:
                thick = t
            else:
                break
        evidence["frame_thickness"] = round(float(thick), 3)
        frame_mask = ndimage.binary_dilation(frame_mask, iterations=max(1, int(round(thick * _S / 2))))
        # frames the contour missed (a second, weaker rim; a browline's top): pixels of the frame
        # zone that differ from the skin around them (a 0.26 d median) by more than _COLOR_STEP
        zone = np.zeros((gh, gw), bool)
        for idx in (_RIGHT_EYE, _LEFT_EYE):
            c = _to_frame(pts[list(idx)], o, ex, ey, d).mean(0)
            r = np.hypot(uu - c[0], (vv - c[1]) / 0.85)
            zone |= (r <= _RADII[-1]) & (r >= 0.15)
        zone &= face & ~eyes & (vv >= vv[bridge_row, 0] - 0.25) & (vv <= 0.55)
        zone &= ~((np.abs(uu - mid) < 0.12) & (vv > vv[bridge_row, 0] + 0.08))  # the nose ridge below the bridge
        local = np.stack([ndimage.median_filter(rgb[..., ch], size=int(0.26 * _S) | 1) for ch in range(3)], -1)
        # over the brows only what differs much more (a dark rim on them, not the brows themselves)
        step = np.where(brows, _BROW_STEP, _COLOR_STEP)
        differs = zone & (np.linalg.norm(rgb - local, axis=-1) > step)
        # inside the lenses the portrait's own skin, wrinkles, lids and brows show through: only
        # reflections (much brighter than the skin around them) are hidden there, or, with tinted
        # lenses (sunglasses), the whole lens
        lens = np.zeros((gh, gw), bool)
        for contour in rings:
            lens |= _poly_mask((gh, gw), _grid_index(contour))
        lens = ndimage.binary_erosion(lens, iterations=max(1, round((thick / 2 + 0.04) * _S)))
        if tint < _TINTED:
            differs |= lens & face
        else:
            lum_local = local @ np.array([0.299, 0.587, 0.114], np.float32)
            reflection = (lum - lum_local > _REFLECTION_STEP) & (rgb.max(-1) - rgb.min(-1) < 0.25)
            differs &= ~lens | reflection
        # and outside the lenses only strokes that meet the frame (a temple, a second rim), or
        # strokes above the bridge's level (a browline's top); creases and bags below are skin
        near = ndimage.binary_dilation(frame_mask, iterations=round(0.04 * _S))
        outside = differs & ~lens
        lab_o, n_o = ndimage.label(outside)
        if n_o:
            low = vv > vv[bridge_row, 0] + 0.1
            touches = ndimage.maximum(near, lab_o, index=np.arange(1, n_o + 1)) > 0
            lower = ndimage.mean(low, lab_o, index=np.arange(1, n_o + 1)) > 0.5
            differs = (differs & lens) | np.isin(lab_o, np.flatnonzero(touches & ~lower) + 1) \
                | (outside & near & low)
        evidence["lens_interior_fraction"] = round(float((lens & face).sum() / max(face.sum(), 1)), 4)
        differs = ndimage.binary_opening(differs, iterations=1)
        lab, n = ndimage.label(differs)
        if n:
            sizes = ndimage.sum(differs, lab, index=np.arange(1, n + 1))
            keep = np.flatnonzero(sizes >= 0.02 * _S * _S) + 1  # long strokes, not freckles or creases
            frame_mask |= ndimage.binary_dilation(np.isin(lab, keep), iterations=1)
    color_px = frame_mask & (vv <= vv[bridge_row, 0] + 0.05) & face & ~eyes
    color = None
    if color_px.any():  # the frame's own pixels: those least like the skin around them
        skin_rgb = np.median(rgb[skin], 0) if skin.any() else np.median(rgb.reshape(-1, 3), 0)
        cand = rgb[color_px]
        dist = np.linalg.norm(cand - skin_rgb, axis=1)
        color = tuple(float(x) for x in np.median(cand[dist >= np.percentile(dist, 85)], 0))
    foot = ndimage.binary_dilation(frame_mask, iterations=max(0, int(round(grow * _S)))) if grow > 0 else frame_mask
    foot &= ~eyes

    # back to the image: each pixel near the eyes looks up its eye-line coordinates
    x0, x1 = xy[..., 0].min(), xy[..., 0].max()
    y0, y1 = xy[..., 1].min(), xy[..., 1].max()
    c0, c1 = int(max(0, np.floor(x0))), int(min(w, np.ceil(x1) + 1))
    r0, r1 = int(max(0, np.floor(y0))), int(min(h, np.ceil(y1) + 1))
    mask = np.zeros((h, w), np.float32)
    if c1 > c0 and r1 > r0:
        py, px = np.mgrid[r0:r1, c0:c1]
        uv = _to_frame(np.stack([px + 0.5, py + 0.5], -1), o, ex, ey, d)
        g = _grid_index(uv) - 0.5
        mask[r0:r1, c0:c1] = ndimage.map_coordinates(foot.astype(np.float32), [g[..., 0], g[..., 1]], order=1,
                                                     mode="constant")
    style = _style(shapes, ring_lower, ring_upper, tint)
    return GlassesDetection(True, score, mask, style, color, evidence, source)


def _style(shapes, lower, upper, tint) -> str:
    """A ``glasses`` word from the rim contours (see the module documentation)."""
    if tint < 0.45:
        return "sunglasses"
    aspect = float(np.mean([s["aspect"] for s in shapes]))
    fill = float(np.mean([s["fill"] for s in shapes]))
    if np.mean(lower) < 0.35 * np.mean(upper):
        return "half-rim"
    if aspect < 1.25:
        return "round"
    # wide lenses: a rectangle fills its bounding box (superellipse ≈ 0.9), a lens narrowing to
    # its lower inner side (cat-eye) does not (≈ 0.78)
    return "cat-eye" if fill < 0.82 else "square"
