"""Strand rasterization and Kajiya-Kay shading terms shared by the preview renderers (numpy).

:func:`machlib.hair.render_strands`, the hair library's retrieval renders and
:func:`machlib._scene.render_scene` draw strands with these: segments sampled densely in the
image, z-tested against a depth buffer and each other. They depend on nothing but numpy, so the
scene renderer sits below the hair package.
"""

from __future__ import annotations

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
    n = np.zeros_like(verts)
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    return _unit(n)


def _strand_pass(points, R, t, focal, principal, size, zhead, depth_bias):
    """Z-buffer the strands' segments by dense sampling.

    Segments are grouped by their number of samples so that each group is one broadcast
    ``(segments, samples)`` array; the z-buffer is a ``np.minimum.at`` over int64 keys that hold
    the quantised depth in the high bits and the sample's id in the low bits.

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
    won = buf != big
    # the nearest strand sample per pixel; it shows unless the head is in front of it
    zwin = zlo + (buf >> id_bits) / zscale
    won &= zwin < zhead.reshape(-1) + depth_bias
    ident = buf[won] & ((1 << id_bits) - 1)
    j, k = ident // kmax, ident % kmax
    return won.reshape(h, w), segs[j], (k + 0.5) / counts[j]


def _kajiya_kay_terms(points: np.ndarray, seg: np.ndarray, frac: np.ndarray, L: np.ndarray, cam_center: np.ndarray,
                      shininess: float, root_shadow_length: float, root_shadow: float):
    """Per drawn strand sample: its strand index, position, ``sin(T, L)``, the Kajiya-Kay
    highlight ``(sin_l · sin_v − (T·L)(T·V))^shininess`` and the root occlusion factor."""
    p = points.shape[1]
    pp = points if p > 1 else np.concatenate([points, points], 1)
    nseg = pp.shape[1] - 1
    flat = pp.reshape(-1, 3)
    strand = seg // nseg
    a = strand * pp.shape[1] + seg % nseg
    pa, pb = flat[a], flat[a + 1]
    T = _unit(pb - pa)
    pos = pa + frac[:, None] * (pb - pa)
    V = _unit(cam_center - pos)
    tl, tv = T @ L, np.sum(T * V, 1)
    sin_l = np.sqrt(np.clip(1.0 - tl * tl, 0.0, 1.0))
    sin_v = np.sqrt(np.clip(1.0 - tv * tv, 0.0, 1.0))
    spec = np.clip(sin_l * sin_v - tl * tv, 0.0, 1.0) ** shininess
    seglen = np.linalg.norm(np.diff(pp, axis=1), axis=2)  # (S, P-1)
    arc0 = np.cumsum(seglen, 1) - seglen
    arc = arc0.reshape(-1)[seg] + frac * seglen.reshape(-1)[seg]
    x = np.clip(arc / root_shadow_length, 0.0, 1.0)
    ao = 1.0 - root_shadow * (1.0 - x * x * (3.0 - 2.0 * x))
    return strand, pos, sin_l, spec, ao
