"""Strand rasterization and Kajiya-Kay shading terms shared by the preview renderers (numpy).

:func:`machlib.hair.render_strands`, the hair library's retrieval renders and
:func:`machlib._scene.render_scene` draw strands with these: segments sampled densely in the
image, z-tested against a depth buffer and each other. They depend on nothing but numpy, so the
scene renderer sits below the hair package.
"""

from __future__ import annotations

import threading

import numpy as np

from ._errors import InputError

#: Strand colour where strands carry none (linear RGB): :data:`machlib.hair.DEFAULT_HAIR_COLOR`.
_DEFAULT_STRAND_COLOR: tuple[float, float, float] = (0.12, 0.07, 0.04)

_NEAR = 1e-3  # metres: strand points closer to the camera plane than this are not drawn
_SAMPLE_SPACING = 0.9  # supersampled pixels between samples along a projected segment
_CHUNK = 1 << 22  # samples per z-buffer pass (bounds memory)


def _linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.maximum(c, 0.0031308) ** (1.0 / 2.4) - 0.055)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _vertex_normals_np(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    fn = np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])
    if fn.dtype == np.float64:
        # each vertex sums its faces' normals in the order np.add.at over corners 0, 1, 2 does
        # (bincount adds in input order, in float64): the same floats, about twice as fast
        idx = faces.T.reshape(-1)
        n = np.stack([np.bincount(idx, weights=np.tile(fn[:, c], 3), minlength=len(verts)) for c in range(3)], 1)
        return _unit(n)
    n = np.zeros_like(verts)
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    return _unit(n)


def _strand_pass(points, R, t, focal, principal, size, zhead, depth_bias, width: int = 1):
    """Z-buffer the strands' segments by dense sampling.

    Segments are grouped by their number of samples so that each group is one broadcast
    ``(segments, samples)`` array; the z-buffer is a ``np.minimum.at`` over int64 keys that hold
    the quantised depth in the high bits and the sample's id in the low bits. ``width > 1``
    widens every strand to ``width`` pixels by a ``width × width`` minimum filter of that
    buffer: each pixel takes the nearest strand sample within the window, so strands keep
    occluding one another correctly.

    Returns ``(hit, seg, frac)``: a boolean ``(H, W)`` mask of pixels a strand wins, and for those
    pixels the winning flat segment index (``strand * (P - 1) + j``) and the position along it.
    """
    w, h = size
    s, p, _ = points.shape
    empty = (np.zeros((h, w), bool), np.zeros(0, np.int64), np.zeros(0))
    if s == 0:
        return empty
    if p == 1:  # a single point: a zero-length segment
        points = np.concatenate([points, points], 1)
        p = 2
    pc = points.reshape(-1, 3) @ R.T + t
    zz = pc[:, 2]
    safe = np.where(zz > _NEAR, zz, 1.0)
    px = pc[:, :2] / safe[:, None] * focal + principal
    ia = (np.arange(s)[:, None] * p + np.arange(p - 1)[None, :]).reshape(-1)
    ib = ia + 1
    xa, xb = px[ia], px[ib]
    ok = (zz[ia] > _NEAR) & (zz[ib] > _NEAR)
    ok &= ~(((xa[:, 0] < 0) & (xb[:, 0] < 0)) | ((xa[:, 0] > w) & (xb[:, 0] > w)))
    ok &= ~(((xa[:, 1] < 0) & (xb[:, 1] < 0)) | ((xa[:, 1] > h) & (xb[:, 1] > h)))
    segs = np.nonzero(ok)[0]
    if segs.size == 0:
        return empty
    a, b = ia[segs], ib[segs]
    x0, y0 = px[a, 0], px[a, 1]
    dx, dy = px[b, 0] - x0, px[b, 1] - y0
    iz0 = 1.0 / zz[a]
    diz = 1.0 / zz[b] - iz0
    counts = np.ceil(np.hypot(dx, dy) / _SAMPLE_SPACING).astype(np.int64) + 1
    counts = np.minimum(counts, 4 * (w + h))
    big_c = counts > 64  # long segments: round up to a power of two to bound the groups
    counts[big_c] = 1 << np.ceil(np.log2(counts[big_c])).astype(np.int64)
    kmax = int(counts.max())
    id_bits = max(int(np.ceil(np.log2(segs.size * kmax + 1))), 1)
    z_bits = min(62 - id_bits, 30)  # float32 depths carry no more than this
    if z_bits < 12:
        raise InputError("render_strands: too many strand samples; lower the resolution or the strand count")
    zused = zz[np.concatenate([a, b])]
    zlo, zhi = float(zused.min()), float(zused.max())
    zscale = ((1 << z_bits) - 1) / max(zhi - zlo, 1e-6)
    big = np.iinfo(np.int64).max
    hw = h * w
    buf = np.full(hw + 1, big, np.int64)  # the last entry collects samples outside the image
    f32 = np.float32
    x0, y0, dx, dy, iz0, diz = (v.astype(f32) for v in (x0, y0, dx, dy, iz0, diz))
    order = np.argsort(counts, kind="stable")
    cuts = np.flatnonzero(np.diff(counts[order])) + 1
    for group in np.split(order, cuts):
        n = int(counts[group[0]])
        u = ((np.arange(n, dtype=f32) + f32(0.5)) / f32(n))[None, :]
        step = max(1, _CHUNK // n)
        for i in range(0, group.size, step):
            g = group[i : i + step]
            x = x0[g, None] + dx[g, None] * u
            y = y0[g, None] + dy[g, None] * u
            inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
            pix = y.astype(np.int64) * w + x.astype(np.int64)
            pix[~inside] = hw
            z = f32(1.0) / (iz0[g, None] + diz[g, None] * u)  # perspective-correct depth
            zq = np.clip((z - f32(zlo)) * f32(zscale), 0, (1 << z_bits) - 1).astype(np.int64)
            key = (zq << id_bits) | ((g * kmax)[:, None] + np.arange(n)[None, :])
            np.minimum.at(buf, pix.reshape(-1), key.reshape(-1))
    buf = buf[:hw]
    if width > 1:
        grid = buf.reshape(h, w)
        wide = grid.copy()
        lo = -((width - 1) // 2)
        for dy in range(lo, lo + width):
            for dx in range(lo, lo + width):
                if dy or dx:
                    src = grid[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
                    dst = wide[max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)]
                    np.minimum(dst, src, out=dst)
        buf = wide.reshape(-1)
    won = buf != big
    # the nearest strand sample per pixel; it shows unless the head is in front of it
    zwin = zlo + (buf >> id_bits) / zscale
    won &= zwin < zhead.reshape(-1) + depth_bias
    ident = buf[won] & ((1 << id_bits) - 1)
    j, k = ident // kmax, ident % kmax
    return won.reshape(h, w), segs[j], (k + 0.5) / counts[j]


def _strand_geometry(points: np.ndarray, seg: np.ndarray, frac: np.ndarray):
    """Per drawn strand sample (``seg``, ``frac`` from :func:`_strand_pass`): its strand index,
    position, unit tangent (root → tip), arc length from the root in metres and arc fraction
    ``t`` in ``[0, 1]`` (0 at the root, 1 at the tip)."""
    p = points.shape[1]
    pp = points if p > 1 else np.concatenate([points, points], 1)
    nseg = pp.shape[1] - 1
    flat = pp.reshape(-1, 3)
    strand = seg // nseg
    a = strand * pp.shape[1] + seg % nseg
    pa, pb = flat[a], flat[a + 1]
    T = _unit(pb - pa)
    pos = pa + frac[:, None] * (pb - pa)
    seglen = np.linalg.norm(np.diff(pp, axis=1), axis=2)  # (S, P-1)
    arc0 = np.cumsum(seglen, 1) - seglen
    arc = arc0.reshape(-1)[seg] + frac * seglen.reshape(-1)[seg]
    total = seglen.sum(1)[strand]
    t = np.clip(arc / np.maximum(total, 1e-12), 0.0, 1.0)
    return strand, pos, T, arc, t


def _strand_jitter(num_strands: int, seed: int) -> np.ndarray:
    """A fixed ``(S,)`` pattern in ``[-1, 1]`` per strand (the same for a seed and count)."""
    return np.random.default_rng([int(seed), 0x5EED]).uniform(-1.0, 1.0, num_strands)


def _strand_albedo(colors: np.ndarray, strand: np.ndarray, t: np.ndarray, *, jitter: float, tip_bleach: float,
                   seed: int) -> np.ndarray:
    """Linear albedo of strand samples with per-strand melanin jitter and root-to-tip bleaching.

    A fibre's colour is ``exp(−D·√σ)`` with ``σ`` proportional to its melanin
    (:func:`machlib.hair.hair_color`), so scaling the melanin by ``m`` raises the colour to the
    power ``√m``. Each strand's melanin is scaled by ``(1 + jitter·u)²`` with ``u`` a fixed
    per-strand pattern in ``[-1, 1]`` (:func:`_strand_jitter`), and along the strand by
    ``1 − tip_bleach · t`` (``t`` the arc fraction: the tips, older and sun-bleached, are
    lighter than the roots). Pure dyes follow the same rule.
    """
    u = _strand_jitter(colors.shape[0], seed)
    expo = (1.0 + jitter * u)[strand] * np.sqrt(np.clip(1.0 - tip_bleach * t, 1e-3, 1.0))
    base = np.clip(colors[strand], 1e-4, 1.0)
    return base ** expo[:, None]


def _longitudinal(T: np.ndarray, L: np.ndarray, V: np.ndarray):
    """``(θ_h, cos φ)`` of strand samples: the longitudinal half angle
    ``θ_h = (asin(T·L) + asin(T·V)) / 2`` (radians, positive towards the tip) and the cosine of
    the azimuth between ``L`` and ``V`` projected on the plane normal to ``T``."""
    tl = np.clip(T @ L if L.ndim == 1 else np.sum(T * L, 1), -1.0, 1.0)
    tv = np.clip(np.sum(T * V, 1), -1.0, 1.0)
    theta_h = 0.5 * (np.arcsin(tl) + np.arcsin(tv))
    lp = (L[None] if L.ndim == 1 else L) - tl[:, None] * T
    vp = V - tv[:, None] * T
    cos_phi = np.sum(lp * vp, 1) / np.maximum(np.linalg.norm(lp, axis=1) * np.linalg.norm(vp, axis=1), 1e-12)
    return theta_h, np.clip(cos_phi, -1.0, 1.0), np.sqrt(np.clip(1.0 - tl * tl, 0.0, 1.0))


_SHADOW_CACHE: dict = {}  # (digest of the points, light, density) -> _DeepShadow; a few recent ones
_SHADOW_LOCK = threading.Lock()  # make's previews render on two threads: evictions must not race


def _deep_shadow(points: np.ndarray, L: np.ndarray, density: float) -> _DeepShadow:
    """A :class:`_DeepShadow`, reused while the same strands are rendered under the same light
    (a preview sheet renders one head many times)."""
    import hashlib

    digest = hashlib.blake2b(np.ascontiguousarray(points).tobytes(), digest_size=16).digest()
    key = (digest, points.shape, tuple(np.round(np.asarray(L, np.float64), 12)), float(density))
    with _SHADOW_LOCK:
        hit = _SHADOW_CACHE.get(key)
    if hit is None:
        hit = _DeepShadow(points, L, density=density)  # built outside the lock (numpy: both threads work)
        with _SHADOW_LOCK:
            if key not in _SHADOW_CACHE and len(_SHADOW_CACHE) >= 8:
                _SHADOW_CACHE.pop(next(iter(_SHADOW_CACHE)))
            hit = _SHADOW_CACHE.setdefault(key, hit)
    return hit


class _DeepShadow:
    """Self-shadowing of hair from one directional light: a deep opacity map.

    Strand points are binned into an orthographic grid seen from the
    light (``cells`` cells along the larger side of their extent, but no smaller than the
    strands' median point spacing) and into ``bins`` slices of
    depth along the light: a light-space depth histogram. Its running sum from the light's side
    gives, per cell, the number of points nearer the light than any depth; a query point's
    optical depth is that number (interpolated bilinearly across cells and linearly in depth)
    divided by the median number of points in an occupied cell, times ``density``. The
    transmittance is ``exp(−optical depth)``: 1 on the hair's lit surface, falling off inside
    the volume and on whatever lies under it (the scalp, the neck, a forehead under a fringe).
    """

    def __init__(self, points: np.ndarray, L: np.ndarray, *, density: float, cells: int = 64, bins: int = 48):
        self.density = float(density)
        L = L / np.linalg.norm(L)
        helper = np.array([0.0, 1.0, 0.0]) if abs(L[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
        e1 = _unit(np.cross(helper, L))
        self.frame = np.stack([e1, np.cross(L, e1), L])
        q = points.reshape(-1, 3).astype(np.float32) @ self.frame.T.astype(np.float32)
        self.lo = np.array([q[:, k].min() for k in range(3)], np.float64)
        span = np.array([q[:, k].max() for k in range(3)], np.float64) - self.lo
        # cells no smaller than the strands' point spacing, so that a strand crossing a cell
        # leaves a point in it
        step = float(np.median(np.linalg.norm(np.diff(points, axis=1), axis=2))) if points.shape[1] > 1 else 0.0
        self.cell = max(float(span[:2].max()) / (cells - 1), step, 1e-6)
        self.slab = max(float(span[2]), 1e-6) / bins
        self.n, self.bins = cells + 2, bins
        i = np.floor((q[:, 0] - self.lo[0]) / self.cell).astype(np.int64) + 1
        j = np.floor((q[:, 1] - self.lo[1]) / self.cell).astype(np.int64) + 1
        k = np.clip(np.floor((q[:, 2] - self.lo[2]) / self.slab).astype(np.int64), 0, bins - 1)
        hist = np.bincount((i * self.n + j) * bins + k, minlength=self.n * self.n * bins).reshape(self.n * self.n, bins)
        column = hist.sum(1)
        self.ref = max(float(np.median(column[column > 0])), 1.0) if column.any() else 1.0
        # front[c, e]: points of cell c in slices >= e (nearer the light than the slice edge e)
        front = np.zeros((self.n * self.n, bins + 1))
        front[:, :bins] = np.cumsum(hist[:, ::-1], 1)[:, ::-1]
        self.front = front.reshape(-1)

    def transmittance(self, pos: np.ndarray, bias: float = 0.0) -> np.ndarray:
        """``(N,)`` transmittance towards the light of ``(N, 3)`` points; ``bias`` metres of hair
        just in front of a point do not shadow it."""
        if pos.shape[0] == 0:
            return np.ones(0)
        q = pos @ self.frame.T
        fx = (q[:, 0] - self.lo[0]) / self.cell + 0.5
        fy = (q[:, 1] - self.lo[1]) / self.cell + 0.5
        fz = np.clip((q[:, 2] + bias - self.lo[2]) / self.slab, 0.0, self.bins)
        ix, iy, iz = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64), np.floor(fz).astype(np.int64)
        wx, wy, wz = fx - ix, fy - iy, fz - iz
        iz1 = np.minimum(iz + 1, self.bins)
        depth = np.zeros(pos.shape[0])
        for di, wi in ((0, 1.0 - wx), (1, wx)):
            for dj, wj in ((0, 1.0 - wy), (1, wy)):
                a, b = ix + di, iy + dj
                ok = (a >= 0) & (a < self.n) & (b >= 0) & (b < self.n)
                c = np.where(ok, a * self.n + b, 0) * (self.bins + 1)
                val = (1.0 - wz) * self.front[c + iz] + wz * self.front[c + iz1]
                depth += np.where(ok, wi * wj * val, 0.0)
        return np.exp(-self.density * depth / self.ref)
