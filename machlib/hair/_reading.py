"""Reading the hairstyle a portrait shows: length, fringe, parting, volume and curl.

:func:`read_hairstyle` turns the 2D hair analysis (:func:`~machlib.hair.hair_mask`,
:func:`~machlib.hair.orientation_map`) and the face landmarks into a :class:`HairReading`, a
small set of words with the measurements behind them; :func:`style_agreement` scores a library
style against a reading (with the reasons), so that retrieval can use the reading beside the
silhouette score.

All measurements are in *face units*: the face height ``fh`` (face-oval top to chin) and width
``fw`` (face-oval width) of the landmarks, in the image (``x`` right, ``y`` down, see
:doc:`/conventions`). Sides are as seen in the image: ``"left"`` is the image's left, the
subject's right.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from jaxtyping import Float

from .._errors import InputError
from ..geometry import face_oval

__all__ = ["LENGTHS", "HairReading", "read_hairstyle", "style_agreement"]

#: The length words of a :class:`HairReading`, shortest first (``"tied back"`` is a gathered
#: style: not a position on this scale).
LENGTHS = ("none", "short", "chin", "shoulder", "long", "tied back")

_EYE_CORNERS = (33, 263)  # outer eye corners (MediaPipe FaceMesh)
_BROW_TOPS = (105, 334)
# tip position (tip row − chin row) / face height at the boundaries short|chin|shoulder|long
_LENGTH_EDGES = (-0.3, 0.25, 0.8)
_FRINGE_COVER = 0.15  # share of the forehead band covered by hair for a fringe
_SWEEP_DEG = 30.0  # mean strand angle off vertical in the forehead band for a side-swept fringe
_PARTING_SIDE = 0.12  # parting offset from the face centre (face widths) beyond which it is a side one
_CURL_EDGES = (0.40, 0.55)  # local orientation spread at the boundaries straight|wavy|curly
_MOUTH = 13  # upper lip's inner midpoint
_NOSE_TIP = 1
# tied back: hair behind the head (beyond the oval's back side by this many face widths) ...
_BEHIND = 0.1
# ... that reaches within this many face heights of the chin line (the nape: on the look-test
# portraits the short cuts' back hair ends 0.36 (t1_face4) and 0.81 (t1_face3) above it,
# t1_face1's knot 0.12)
_NAPE = 0.25
_TURNED = 0.1  # nose-tip offset from the oval's centre (face widths) beyond which a side is the back


@dataclasses.dataclass(frozen=True)
class HairReading:
    """What a portrait's hair looks like (the result of :func:`read_hairstyle`).

    Attributes:
        length: one of :data:`LENGTHS`: where the lowest hair tip lies against the chin line and
            a shoulder line ``0.8`` face heights below it; ``"tied back"`` where the hair looks
            short from the front but a tail or knot shows behind the neck (see
            :func:`read_hairstyle`); ``"none"`` when the mask holds (almost) no hair.
        fringe: ``"none"``, ``"straight"`` or ``"side-swept"``.
        parting: ``"left"``, ``"centre"``, ``"right"`` (as seen in the image) or ``"none"``.
        curl: ``"straight"``, ``"wavy"`` or ``"curly"``.
        volume: hair width beside the face at its widest above the chin, minus the face width,
            in face widths (``0``: hair flat to the head; about ``0.3`` for a full bob).
        tip: lowest hair tip below the chin, in face heights (negative: above the chin).
        reaches_border: the hair runs off the bottom of the image (the length is a lower bound).
        fringe_cover: share of the forehead band (``0.1 fh`` above the oval top to the brows, between the outer eye
            corners) covered by hair, in ``[0, 1]``.
        fringe_angle: confidence-weighted mean strand angle off vertical in the forehead band,
            degrees in ``[0, 90]`` (``0``: strands hang straight down).
        parting_x: the parting's offset from the face centre in face widths (``nan`` without
            one; negative: image left).
        curl_spread: confidence-weighted local spread of the strand orientation on the hair
            (one minus the doubled-angle coherence over a small window), in ``[0, 1]``.
        color: a hair-colour name given to :func:`read_hairstyle` (e.g. the melanin fit's), or
            ``None``.
        reasons: one sentence per word saying which measurement gave it.
        fringe_side: the side a side-swept fringe falls toward, ``"left"`` or ``"right"`` (as
            seen in the image); ``"none"`` for a straight fringe or none.
        nape: on a face turned to one side, the lowest hair behind the head (beyond the oval's
            back side) against the chin line, in face heights along the face's own vertical
            (negative: above the chin); ``nan`` on a frontal face or with no hair there.
    """

    length: str
    fringe: str
    parting: str
    curl: str
    volume: float
    tip: float
    reaches_border: bool
    fringe_cover: float
    fringe_angle: float
    parting_x: float
    curl_spread: float
    color: str | None = None
    reasons: tuple[str, ...] = ()
    fringe_side: str = "none"
    nape: float = float("nan")

    def to_dict(self) -> dict:
        """The reading as a JSON-ready dict (floats rounded to 3 decimals, ``nan`` → ``None``)."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float):
                v = None if not np.isfinite(v) else round(v, 3)
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out


def _largest_hair(hair: np.ndarray, seed_rows: np.ndarray) -> np.ndarray:
    """The hair components that reach the rows above the eyes (drops stray blobs)."""
    from scipy import ndimage

    labels, n = ndimage.label(hair)
    if n == 0:
        return hair
    keep = np.unique(labels[hair & seed_rows])
    keep = keep[keep > 0]
    if keep.size == 0:  # no hair above the eyes: keep the largest component
        sizes = ndimage.sum(hair, labels, np.arange(1, n + 1))
        keep = np.array([1 + int(np.argmax(sizes))])
    return np.isin(labels, keep)


def _nape(hair: np.ndarray, pts: np.ndarray, oval: np.ndarray, xx: np.ndarray, yy: np.ndarray) -> float:
    """The lowest hair behind the head against the chin line, in face heights along the face's
    own vertical (see :attr:`HairReading.nape`): ``nan`` on a frontal face, with no hair behind
    the head, or with hair hanging past the chin on the face's front side."""
    axis = pts[_EYE_CORNERS[1]] - pts[_EYE_CORNERS[0]]
    axis = axis / max(float(np.linalg.norm(axis)), 1e-9)
    if axis[0] < 0:
        axis = -axis  # image left to right
    down = np.array([-axis[1], axis[0]])
    centre = oval.mean(0)
    ou, ov = (oval - centre) @ axis, (oval - centre) @ down
    u0, u1, v_chin = float(ou.min()), float(ou.max()), float(ov.max())
    fw, fh = max(u1 - u0, 4.0), max(v_chin - float(ov.min()), 4.0)
    turn = (float((pts[_NOSE_TIP] - centre) @ axis) - 0.5 * (u0 + u1)) / fw
    if abs(turn) < _TURNED:
        return float("nan")
    hu = (xx[hair] - centre[0]) * axis[0] + (yy[hair] - centre[1]) * axis[1]
    hv = (xx[hair] - centre[0]) * down[0] + (yy[hair] - centre[1]) * down[1]
    # the face turns toward the nose: the back of the head is on the other side
    back = hu > u1 + _BEHIND * fw if turn < 0 else hu < u0 - _BEHIND * fw
    front = hu < u0 if turn < 0 else hu > u1
    if not back.any() or (front.any() and hv[front].max() > v_chin):
        return float("nan")
    return float((hv[back].max() - v_chin) / fh)


def read_hairstyle(
    mask: Float[np.ndarray, "H W"],
    orientation,
    landmarks,
    *,
    threshold: float = 0.5,
    color: str | None = None,
) -> HairReading:
    """Read length, fringe, parting, volume and curl of the hair in a portrait.

    * **length**: the lowest row of the hair (components that reach above the eyes, within
      1.5 face widths of the face centre; rows with fewer than ``max(3, 0.02 fw)`` hair pixels
      over ``0.15 fh`` end it) gives ``tip = (y_tip − y_chin) / fh``: ``short`` below
      ``−0.3``, ``chin`` below ``0.25``, ``shoulder`` below ``0.8``, else ``long``; hair that
      runs off the image bottom past ``0.25`` is ``long``.
    * **tied back**: a ``short`` or ``chin`` reading without a fringe becomes ``tied back`` when
      the face is turned to one side (the nose tip over ``0.1 fw`` off the oval's centre) and the
      hair behind the head (beyond the oval's back side by ``0.1 fw``) reaches within ``0.25 fh``
      of the chin line, measured along the face's own vertical (perpendicular to the eye line,
      so a tilted head reads the same), while no hair hangs past the chin on the face's front
      side: the hair is pulled back into a tail or a knot at the nape. A short cut's back hair
      ends well above that (0.36 and 0.81 fh above the chin on the look-test portraits turned
      aside, 0.12 for the knot of the one tied back). A frontal photo hides the tail behind the
      neck: it stays ``short``.
    * **fringe**: the forehead band (``0.1 fh`` above the face-oval top down to the brows, between
      the outer eye corners) covered by hair over ``15 %``; ``side-swept`` when its strands run over 30° off vertical
      (confidence-weighted doubled-angle mean of the orientation map) or cover one half of the
      band twice as much as the other, else ``straight``.
    * **parting**: in the band ``0.35 fh`` above the oval top, the column profile of
      ``Σ c sin 2θ`` (strands falling to the image right are positive) is smoothed; the
      parting is its strongest negative-to-positive crossing with both sides over a quarter of
      the profile's peak; ``centre`` within ``0.12 fw`` of the face centre, else ``left`` /
      ``right``; ``none`` without such a crossing.
    * **curl**: the confidence-weighted mean, over the hair, of one minus the doubled-angle
      coherence of the orientation in a 9 × 9 window: ``straight`` below ``0.40``, ``wavy``
      below ``0.55``, else ``curly`` (short straight cuts measure 0.33–0.38, long straight hair
      0.11–0.16 on the look-test portraits).
    * **volume**: the widest hair row above the chin minus the face width, in face widths.

    Args:
        mask: ``(H, W)`` hair probability in ``[0, 1]`` (:attr:`HairMask.mask`).
        orientation: the :class:`~machlib.hair.OrientationMap` of the same image (unbatched).
        landmarks: :class:`~machlib.geometry.Landmarks` of the face (pixel ``(x, y)``).
        threshold: mask value that counts as hair, in ``(0, 1)``.
        color: optional hair-colour name recorded in the reading.

    Returns:
        A :class:`HairReading`.

    Raises:
        InputError: a mask that is not ``(H, W)`` in ``[0, 1]``, an orientation map of another
            shape, landmarks not ``(K ≥ 468, 2)``, or a bad threshold.

    Example:
        >>> import numpy as np
        >>> from machlib import default_portrait
        >>> from machlib.geometry import detect_landmarks
        >>> from machlib.hair import hair_mask, orientation_map, read_hairstyle
        >>> img = default_portrait()
        >>> lm = detect_landmarks(img)
        >>> hm = hair_mask(img, lm)
        >>> om = orientation_map(img.mean(-1).astype(np.float32) / 255, mask=hm.mask)
        >>> r = read_hairstyle(hm.mask, om, lm)
        >>> r.length, r.fringe                       # her hair is under the cap
        ('short', 'none')
    """
    m = np.asarray(mask, np.float64)
    if m.ndim != 2 or not np.isfinite(m).all() or m.min() < 0 or m.max() > 1:
        raise InputError(f"read_hairstyle: mask must be a finite (H, W) array in [0, 1], got shape {m.shape}")
    h, w = m.shape
    theta = np.asarray(orientation.theta, np.float64)
    conf = np.asarray(orientation.confidence, np.float64)
    if theta.shape != (h, w) or conf.shape != (h, w):
        raise InputError(f"read_hairstyle: orientation must be an unbatched map of shape {(h, w)}, got {theta.shape}")
    if not hasattr(landmarks, "points"):
        raise InputError(f"read_hairstyle: landmarks must be a machlib.geometry.Landmarks, got {type(landmarks).__name__}")
    pts = np.asarray(landmarks.points, np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] < 468 or not np.isfinite(pts).all():
        raise InputError(f"read_hairstyle: landmarks.points must be finite (K, 2) with K >= 468, got {pts.shape}")
    if not 0.0 < float(threshold) < 1.0:
        raise InputError(f"read_hairstyle: threshold must be in (0, 1), got {threshold!r}")
    from scipy import ndimage

    oval = pts[np.asarray(face_oval())]
    x0, x1 = oval[:, 0].min(), oval[:, 0].max()
    y_top, y_chin = oval[:, 1].min(), oval[:, 1].max()
    fw, fh = max(x1 - x0, 4.0), max(y_chin - y_top, 4.0)
    cx = 0.5 * (x0 + x1)
    y_eye = float(pts[list(_EYE_CORNERS), 1].mean())
    y_brow = float(pts[list(_BROW_TOPS), 1].mean())
    ex = np.sort(pts[list(_EYE_CORNERS), 0])
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    reasons = []

    hair = (m > threshold) & (np.abs(xx - cx) < 1.5 * fw)
    hair = _largest_hair(hair, yy < y_eye)
    if hair.sum() < max(16.0, 0.02 * fw * fw):
        return HairReading("none", "none", "none", "straight", 0.0, float("nan"), False, 0.0, 0.0,
                           float("nan"), 0.0, color, ("length: (almost) no hair in the mask",))

    # --- length: walk down the row profile from the eyes --------------------------------------
    rows = hair.sum(1)
    full = rows >= max(3.0, 0.02 * fw)
    gap_max = max(2, round(0.15 * fh))
    r = int(np.clip(np.floor(y_eye), 0, h - 1))
    tip_row, gap = r, 0
    while r < h:
        if full[r]:
            tip_row, gap = r, 0
        else:
            gap += 1
            if gap > gap_max:
                break
        r += 1
    border = tip_row >= h - 3
    tip = (tip_row + 0.5 - y_chin) / fh
    if tip < _LENGTH_EDGES[0]:
        length = "short"
    elif tip < _LENGTH_EDGES[1]:
        length = "chin"
    elif tip < _LENGTH_EDGES[2] and not border:
        length = "shoulder"
    else:
        length = "long"
    reasons.append(f"length {length}: lowest hair {tip:+.2f} face heights from the chin"
                   + (" (runs off the image bottom)" if border else ""))

    # --- fringe ---------------------------------------------------------------------------------
    band_y0 = y_top - 0.1 * fh
    band_y1 = y_brow - 0.15 * (y_brow - y_top)
    band = (yy > band_y0) & (yy < band_y1) & (xx > ex[0]) & (xx < ex[1])
    cover = float(hair[band].mean()) if band.any() else 0.0
    c2 = conf * hair
    wsum = float(c2[band].sum())
    ms = 0.0
    if wsum > 1e-9:
        mc = float((c2 * np.cos(2 * theta))[band].sum()) / wsum
        ms = float((c2 * np.sin(2 * theta))[band].sum()) / wsum
        mean_theta = 0.5 * np.arctan2(ms, mc)  # (-π/2, π/2]
        angle = float(np.degrees(np.pi / 2 - abs(mean_theta)))
    else:
        angle = 0.0
    left_half = band & (xx < 0.5 * (ex[0] + ex[1]))
    right_half = band & ~left_half
    cl = float(hair[left_half].mean()) if left_half.any() else 0.0
    cr = float(hair[right_half].mean()) if right_half.any() else 0.0
    lopsided = max(cl, cr) > 2.0 * min(cl, cr) + 0.05
    fringe_side = "none"
    if cover < _FRINGE_COVER:
        fringe = "none"
    elif angle > _SWEEP_DEG or lopsided:
        fringe = "side-swept"
        # strands slanting down to the image right (sin 2θ > 0) fall toward the right; a fringe
        # that slants too little to tell falls toward the half of the band it covers more
        right = ms > 0 if angle > _SWEEP_DEG else cr > cl
        fringe_side = "right" if right else "left"
    else:
        fringe = "straight"
    reasons.append(f"fringe {fringe}: hair covers {cover:.0%} of the forehead band"
                   + (f", strands {angle:.0f} deg off vertical, left/right cover {cl:.2f}/{cr:.2f}" if cover >= _FRINGE_COVER else "")
                   + (f"; it falls toward the image {fringe_side}" if fringe_side != "none" else ""))

    # --- tied back: short from the front, a tail or knot behind the neck ------------------------
    nape = _nape(hair, pts, oval, xx, yy)
    if length in ("short", "chin") and fringe == "none" and np.isfinite(nape) and nape > -_NAPE:
        length = "tied back"
        reasons[0] = (f"length tied back: the hair ends {tip:+.2f} face heights from the chin in front, but "
                      f"behind the head it reaches {nape:+.2f} (a tail or knot at the nape)")

    # --- parting --------------------------------------------------------------------------------
    top = (yy > y_top - 0.35 * fh) & (yy < y_top + 0.05 * fh) & hair
    prof = (c2 * np.sin(2 * theta) * top).sum(0)
    prof = ndimage.gaussian_filter1d(prof, max(1.0, 0.04 * fw))
    parting, parting_x = "none", float("nan")
    peak = float(np.abs(prof).max())
    cols = np.flatnonzero(top.any(0))
    if peak > 1e-6 and cols.size > 4:
        lo, hi = cols.min(), cols.max()
        best, best_jump = None, 0.0
        reach = max(2, round(0.15 * fw))
        for c in range(lo + 1, hi):
            if prof[c - 1] < 0 <= prof[c]:
                left = prof[max(lo, c - reach):c].min()
                right = prof[c:min(hi + 1, c + reach)].max()
                if -left > 0.25 * peak and right > 0.25 * peak and right - left > best_jump:
                    best, best_jump = c, right - left
        if best is not None:
            parting_x = (best + 0.5 - cx) / fw
            parting = "centre" if abs(parting_x) < _PARTING_SIDE else ("left" if parting_x < 0 else "right")
    reasons.append(f"parting {parting}: " + ("no place where the strands on top fall apart both ways"
                                              if parting == "none" else
                                              f"strands on top fall apart at {parting_x:+.2f} face widths from the face centre"))

    # --- curl -----------------------------------------------------------------------------------
    k = 9
    cw = ndimage.uniform_filter(conf * np.cos(2 * theta), k)
    sw = ndimage.uniform_filter(conf * np.sin(2 * theta), k)
    cm = ndimage.uniform_filter(conf, k) + 1e-9
    spread_map = 1.0 - np.sqrt(cw**2 + sw**2) / cm
    wts = conf * hair
    spread = float((spread_map * wts).sum() / max(wts.sum(), 1e-9))
    curl = "straight" if spread < _CURL_EDGES[0] else ("wavy" if spread < _CURL_EDGES[1] else "curly")
    reasons.append(f"curl {curl}: local orientation spread {spread:.2f}")

    # --- volume ---------------------------------------------------------------------------------
    upper = hair & (yy < y_chin)
    if upper.any():
        big = float(w + 1)
        width = np.where(upper, xx, -big).max(1) - np.where(upper, xx, big).min(1)
        volume = float(max(0.0, (width[upper.any(1)].max() - fw) / fw))
    else:
        volume = 0.0
    reasons.append(f"volume {volume:.2f}: widest hair above the chin beyond the face, in face widths")
    return HairReading(length, fringe, parting, curl, volume, float(tip), bool(border), cover, angle,
                       float(parting_x), spread, color, tuple(reasons), fringe_side, nape)


def _style_length(style) -> str:
    if style.bald or style.length <= 0:
        return "none"
    if style.gather != "none":
        return "tied back"
    if style.length <= 0.12:
        return "short"
    if style.length <= 0.24:
        return "chin"
    if style.length <= 0.3:
        return "shoulder"
    return "long"


def style_agreement(reading: HairReading, style) -> tuple[float, tuple[str, ...]]:
    """How well a library style fits a :class:`HairReading`, with the reasons.

    The agreement is the sum of three terms (``[−6, 3]`` in all); the length, the most reliable
    reading, weighs most:

    * length: ``2 − 1.5 |Δ|`` over the scale none, short, chin, shoulder, long (``Δ`` in steps:
      ``2`` on the read length, ``0.5`` one step off, ``−1`` two steps off, ``−4`` four); a
      gathered style (ponytail, bun) scores ``0`` against a short or chin reading (a tied-back
      cut looks short from the front) and ``−2`` otherwise; against a ``"tied back"`` reading a
      gathered style scores ``2`` and a loose one its score against ``short`` less ``2.5``
      (``−0.5`` for a short cut, ``−5`` for long hair); where the reading's ``nape`` is known, a
      knot (the hair behind the head ends above the chin line, ``nape ≤ 0``) takes ``0.5`` off
      every gathered style but the low bun, and a tail (``nape > 0``) off the low bun;
    * fringe: ``+0.5`` when the style has a fringe (``bangs > 0``) and the reading one, or
      neither; ``−0.5`` otherwise;
    * curl: ``0.5 − 0.5 |Δ|`` over straight, wavy, curly, coily (``+0.5`` on the read curl,
      ``−1`` for the coily afro against straight hair).

    Args:
        reading: a :class:`HairReading`.
        style: a :class:`~machlib.hair.HairStyle`.

    Returns:
        ``(agreement, reasons)``: a float and one sentence per term.

    Example:
        >>> from machlib.hair import HAIR_STYLES, HairReading, style_agreement
        >>> r = HairReading("long", "none", "centre", "straight", 0.1, 1.2, True, 0.0, 0.0, 0.0, 0.2)
        >>> style_agreement(r, HAIR_STYLES["long straight"])[0] > style_agreement(r, HAIR_STYLES["bob"])[0]
        True
    """
    if not isinstance(reading, HairReading):
        raise InputError(f"style_agreement: reading must be a HairReading, got {type(reading).__name__}")
    scale = ("none", "short", "chin", "shoulder", "long")
    sl = _style_length(style)
    reasons = []
    if reading.length == "tied back":
        # a gathered style is what the photo shows; a loose one either hangs where the photo
        # shows no hair or misses the tail (a short cut looks most like it from the front)
        s_len = 2.0 if sl == "tied back" else 2.0 - 1.5 * abs(scale.index(sl) - scale.index("short")) - 2.5
        if sl == "tied back" and np.isfinite(reading.nape):
            # a knot at the nape ends above the chin line behind the head, a tail hangs past it
            knot = reading.nape <= 0.0
            if (style.gather == "low bun") != knot:
                s_len -= 0.5
    elif sl == "tied back":
        s_len = 0.0 if reading.length in ("short", "chin") else -2.0
    elif reading.length in scale:
        s_len = 2.0 - 1.5 * abs(scale.index(sl) - scale.index(reading.length))
    else:
        s_len = 0.0
    reasons.append(f"length: style {sl}, photo {reading.length} ({s_len:+.1f})")
    has_fringe = style.bangs > 0
    s_fr = 0.5 if has_fringe == (reading.fringe != "none") else -0.5
    reasons.append(f"fringe: style {'has one' if has_fringe else 'none'}, photo {reading.fringe} ({s_fr:+.1f})")
    curls = ("straight", "wavy", "curly", "coily")
    s_curl = 0.5 - 0.5 * abs(curls.index(style.curl) - curls.index(reading.curl))
    reasons.append(f"curl: style {style.curl}, photo {reading.curl} ({s_curl:+.1f})")
    return float(s_len + s_fr + s_curl), tuple(reasons)
