"""Benchmark: machlib.render (pure JAX) against an eager PyTorch renderer and nvdiffrast.

Run from the repository root::

    PYTHONPATH=. python benchmarks/render.py                 # full run, writes the docs tables
    PYTHONPATH=. python benchmarks/render.py --quick         # smoke run, still checks answers
    PYTHONPATH=. python benchmarks/render.py --device gpu    # JAX and PyTorch on the GPU (+ nvdiffrast)

Scenes, both rendered at 512 × 512 in a frontal camera (:func:`machlib.look_at`,
:func:`machlib.render.to_clip`), textured with the template's UVs and a 1024² texture
(:func:`machlib.geometry.template_albedo`):

* **template**: the default template head (:func:`machlib.geometry.default_template`, ~41k
  triangles);
* **dense**: a UV sphere of ~100k triangles with a similar screen footprint.

Operations, each with back-face culling on and off:

* ``rasterize`` (visibility, barycentrics, depth);
* ``rasterize + interpolate + texture`` with bilinear filtering, and with trilinear mip-mapped
  filtering (barycentric derivatives, UV derivatives, a mip pyramid built once);
* ``antialias`` of the textured frame, timed on its own.

Implementations, side by side in one process:

* **JAX**: the primitives of :mod:`machlib.render` composed in one ``jax.jit`` per operation,
  with the rasterizer's fragment capacity fixed to the scene's count (the hot path inside a fit);
  compile time (``lower(...).compile()``) is reported apart. The public eager call
  ``machlib.render.rasterize(...)``, which sizes its buffer with an extra pass every call, is
  timed too.
* **PyTorch, eager**: a straightforward vectorised implementation written in this file — the
  same candidate-fragment z-buffer (``repeat_interleave`` + ``scatter_reduce``), perspective-
  correct barycentrics, ``grid_sample`` for the bilinear taps and a ``avg_pool2d`` mip pyramid.
* **numpy**: ``machlib._raster.rasterize_np``, the host rasterizer of the previews, turntables and
  identity renders (:func:`machlib._scene.render_scene`), in the ``rasterize`` rows (visibility and
  barycentrics from the same projected points and depths).
* **nvdiffrast** (``RasterizeCudaContext``), when ``import nvdiffrast.torch`` works and CUDA is
  present; otherwise the table says so. nvdiffrast has no back-face culling: it appears in the
  unculled rows.

Answers are checked before anything is timed: PyTorch's (and nvdiffrast's) triangle ids equal
JAX's on every pixel away from triangle edges, and their colours agree there. The results table
is printed and written as Markdown (``--out``) and as a reStructuredText fragment (``--rst``).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from importlib import metadata
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
sys.path.insert(0, str(_HERE.parent))

import _common as C  # noqa: E402

DEVICE = C.select_device()  # before JAX is imported
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

if DEVICE == "gpu":  # full float32 contractions (no TF32), as PyTorch's default for matmuls
    jax.config.update("jax_default_matmul_precision", "highest")
import numpy as np  # noqa: E402

import machlib  # noqa: E402
from machlib import render as R  # noqa: E402
from machlib._raster import rasterize_np  # noqa: E402

#: Target stated in the issue: one 512² template frame (rasterize + interpolate + texture).
TARGET_FRAME_MS = 50.0
RESOLUTION = (512, 512)  # (height, width)
TEX_RES = 1024
#: a pixel counts as "away from edges" when every barycentric weight of its triangle exceeds this
EDGE_BARY = 1e-3
#: share of those pixels on which PyTorch's triangle ids must equal JAX's: not 1, because without
#: culling a front and a back face can tie in depth to the last bit, and XLA's fused multiply-adds
#: (on GPUs) round the two depths differently from PyTorch's separate multiplies and adds
TORCH_AGREE = 0.9999


# ----------------------------------------------------------------------------------------------
# Scenes


@functools.lru_cache(maxsize=2)
def template_mesh_and_albedo(resolution: int = TEX_RES):
    """The default template's mesh and its ``(R, R, 3)`` float32 albedo in ``[0, 1]``.

    :func:`machlib.geometry.default_template` needs MediaPipe (for its face-oval mask); where
    MediaPipe is missing (a bare GPU machine) the same procedural mesh is built directly.
    """
    from machlib import geometry as G

    try:
        template = G.default_template()
    except ImportError:
        from machlib.geometry._template import Template, _procedural_mesh

        template = Template(_procedural_mesh(), np.zeros((1, 2)), np.ones(1, bool), True, {}, "procedural")
    albedo = G.template_albedo(resolution, template=template).astype(np.float32) / 255.0
    return template.mesh, albedo


def uv_sphere(n_u: int, n_v: int, radius: float):
    """A closed UV sphere, ``n_u · (2 n_v − 2)`` triangles, counter-clockwise from outside.

    ``u`` is the azimuth (``u = 0.5`` faces +z), ``v`` the polar angle from the top pole; the seam
    column has its own UVs. Returns ``(vertices, faces, uv, faces_uv)`` as numpy arrays.
    """
    u = np.arange(n_u + 1) / n_u
    v = np.arange(n_v + 1) / n_v
    az, pol = np.pi * (2.0 * u - 1.0), np.pi * v
    # vertices: top pole, (n_v - 1) rings of n_u, bottom pole
    ring_az, ring_pol = np.meshgrid(az[:-1], pol[1:-1])
    rings = np.stack([np.sin(ring_az) * np.sin(ring_pol), np.cos(ring_pol), np.cos(ring_az) * np.sin(ring_pol)], -1)
    verts = radius * np.concatenate([[[0.0, 1.0, 0.0]], rings.reshape(-1, 3), [[0.0, -1.0, 0.0]]], 0)
    bottom = 1 + (n_v - 1) * n_u
    UU, VV = np.meshgrid(u, v)
    uvs = np.stack([UU.ravel(), VV.ravel()], 1)
    c = np.arange(n_u)
    cn = (c + 1) % n_u
    gid = lambda r, col: 1 + r * n_u + col  # noqa: E731
    tid = lambda r, col: r * (n_u + 1) + col  # noqa: E731
    faces, fuv = [], []
    # top cap, quads between rings (two triangles each), bottom cap
    faces.append(np.stack([np.zeros_like(c), gid(0, c), gid(0, cn)], 1))
    fuv.append(np.stack([tid(0, c), tid(1, c), tid(1, c + 1)], 1))
    for r in range(n_v - 2):
        a, b, cc, d = gid(r, c), gid(r, cn), gid(r + 1, c), gid(r + 1, cn)
        ta, tb, tc, td = tid(r + 1, c), tid(r + 1, c + 1), tid(r + 2, c), tid(r + 2, c + 1)
        faces += [np.stack([a, cc, d], 1), np.stack([a, d, b], 1)]
        fuv += [np.stack([ta, tc, td], 1), np.stack([ta, td, tb], 1)]
    faces.append(np.stack([gid(n_v - 2, c), np.full_like(c, bottom), gid(n_v - 2, cn)], 1))
    fuv.append(np.stack([tid(n_v - 1, c), tid(n_v, c), tid(n_v - 1, c + 1)], 1))
    return (verts.astype(np.float32), np.concatenate(faces).astype(np.int32), uvs.astype(np.float32),
            np.concatenate(fuv).astype(np.int32))


class Scene:
    """A mesh in a camera, with its texture, mip pyramid and antialiasing topology."""

    def __init__(self, name, vertices, faces, uv, faces_uv, tex, eye):
        self.name = name
        height, width = RESOLUTION
        self.resolution = RESOLUTION
        cam = machlib.look_at(jnp.asarray(eye, jnp.float32), jnp.asarray([0.0, eye[1], 0.0], jnp.float32),
                              image_size=(width, height))
        self.clip = R.to_clip(jnp.asarray(vertices, jnp.float32), cam)
        # the numpy rasterizer's inputs: pixel coordinates and camera depths of the same vertices
        self.pixels = np.asarray(machlib.project(jnp.asarray(vertices, jnp.float32), cam), np.float64)
        self.depth = np.asarray(machlib.world_to_camera(jnp.asarray(vertices, jnp.float32), cam)[:, 2], np.float64)
        self.faces = np.asarray(faces)
        self.tri = jnp.asarray(faces, jnp.int32)
        self.uv = jnp.asarray(uv, jnp.float32)
        self.faces_uv = jnp.asarray(faces_uv, jnp.int32)
        self.tex = jnp.asarray(tex, jnp.float32)
        self.mip = R.build_mip(self.tex)
        self.topology = jnp.asarray(R.antialias_topology(np.asarray(faces)), jnp.int32)
        self.num_triangles = int(faces.shape[0])
        self.capacity = {cull: R.fragment_count(self.clip, self.tri, image_size=RESOLUTION[::-1], cull_backfaces=cull)
                         for cull in (True, False)}


def build_scenes(quick: bool) -> list[Scene]:
    mesh, albedo = template_mesh_and_albedo()
    scenes = [Scene("template", np.asarray(mesh.vertices), np.asarray(mesh.faces), np.asarray(mesh.uv),
                    np.asarray(mesh.faces_uv), albedo, eye=(0.0, -0.02, 0.9))]
    if not quick:
        v, f, uv, fuv = uv_sphere(256, 196, 0.13)  # 99,840 triangles
        scenes.append(Scene("dense", v, f, uv, fuv, albedo, eye=(0.0, 0.0, 0.9)))
    return scenes


# ----------------------------------------------------------------------------------------------
# JAX


def jax_ops(scene: Scene, cull: bool) -> dict:
    """``{op: (compile seconds, run)}``: each op jitted with the scene's capacity, compiled once;
    ``run()`` returns blocked outputs ``(triangle ids, colour)``."""
    cap = max(scene.capacity[cull], 1)
    res = scene.resolution

    def rast(clip, tri):
        r = R.rasterize(clip, tri, image_size=res[::-1], cull_backfaces=cull, capacity=cap)
        return r.triangle, r.barycentric, r.depth

    def bilinear(clip, tri, uv, fuv, tex):
        r = R.rasterize(clip, tri, image_size=res[::-1], cull_backfaces=cull, capacity=cap)
        return r.triangle, R.texture(tex, R.interpolate(uv, r, fuv))

    def trilinear(clip, tri, uv, fuv, tex, mip):
        r = R.rasterize(clip, tri, image_size=res[::-1], cull_backfaces=cull, capacity=cap, derivatives=True)
        tc, dtc = R.interpolate(uv, r, fuv, derivatives=True)
        return r.triangle, R.texture(tex, tc, dtc, filter="linear-mipmap-linear", mip=mip)

    def aa(color, ids, bary, depth, clip, tri, topo):
        return R.antialias(color, R.Raster(ids, bary, depth), clip, tri, topology=topo)

    s = scene
    args = {
        "rasterize": (rast, (s.clip, s.tri)),
        "bilinear": (bilinear, (s.clip, s.tri, s.uv, s.faces_uv, s.tex)),
        "trilinear": (trilinear, (s.clip, s.tri, s.uv, s.faces_uv, s.tex, s.mip)),
    }
    out = {}
    for name, (fn, a) in args.items():
        t, compiled = C.timed(lambda fn=fn, a=a: jax.jit(fn).lower(*a).compile())
        out[name] = (t, lambda compiled=compiled, a=a: jax.block_until_ready(compiled(*a)))
    ids, bary, depth = out["rasterize"][1]()
    color = out["bilinear"][1]()[1]
    a = (color, ids, bary, depth, s.clip, s.tri, s.topology)
    t, compiled = C.timed(lambda: jax.jit(aa).lower(*a).compile())
    out["antialias"] = (t, lambda: jax.block_until_ready(compiled(*a)))
    out["eager"] = (0.0, lambda: jax.block_until_ready(
        R.rasterize(s.clip, s.tri, image_size=res[::-1], cull_backfaces=cull).triangle))
    return out


# ----------------------------------------------------------------------------------------------
# The PyTorch version


def torch_renderer(torch, scene: Scene, device):
    """The same rasterize + interpolate + texture, eagerly in PyTorch (float32).

    Returns ``{"rasterize", "bilinear", "trilinear"}`` callables of the culling flag, giving
    ``(ids (H, W) int64, colour (H, W, 3) or None)``.
    """
    F = torch.nn.functional
    height, width = scene.resolution
    dev = torch.device(device)
    clip = torch.tensor(np.asarray(scene.clip), device=dev)
    tri = torch.tensor(np.asarray(scene.tri), dtype=torch.long, device=dev)
    uv = torch.tensor(np.asarray(scene.uv), device=dev)
    fuv = torch.tensor(np.asarray(scene.faces_uv), dtype=torch.long, device=dev)
    tex = torch.tensor(np.asarray(scene.tex), device=dev).permute(2, 0, 1)[None].contiguous()  # (1, C, R, R)
    mips = [tex]
    while mips[-1].shape[-1] > 1 and mips[-1].shape[-1] % 2 == 0 and mips[-1].shape[-2] % 2 == 0:
        mips.append(F.avg_pool2d(mips[-1], 2))
    num_tri = tri.shape[0]
    size = torch.tensor([width - 1.0, height - 1.0], device=dev)
    rows = torch.arange(height * width, device=dev) // width
    cols = torch.arange(height * width, device=dev) % width
    centre = torch.stack([cols, rows], -1).float() + 0.5  # (P, 2) pixel centres

    def screen():
        w = clip[:, 3]
        ok = w > 1e-9 * (1.0 + clip[:, 2].abs())
        inv = 1.0 / torch.where(ok, w, torch.ones_like(w))
        x = (clip[:, 0] * inv + 1.0) * (0.5 * width)
        y = (1.0 - clip[:, 1] * inv) * (0.5 * height)
        return torch.stack([x, y], -1), clip[:, 2] * inv, ok

    def visibility(cull):
        xy, z, ok = screen()
        p, zt = xy[tri], z[tri]  # (F, 3, 2), (F, 3)
        a, b, c = p[:, 0], p[:, 1], p[:, 2]
        area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
        lo = torch.minimum(torch.maximum(torch.ceil(p.amin(1) - 0.5), torch.zeros_like(size)), size + 1.0)
        hi = torch.minimum(torch.maximum(torch.floor(p.amax(1) - 0.5), torch.full_like(size, -1.0)), size)
        ext = (hi - lo + 1.0).clamp(min=0.0)
        valid = ok[tri].all(1) & (area.abs() > 1e-12) & torch.isfinite(p).all(2).all(1)
        valid &= ~(zt < -1.0).all(1) & ~(zt > 1.0).all(1)
        if cull:
            valid &= area < 0.0
        count = (ext[:, 0] * ext[:, 1]).long() * valid
        # one candidate fragment per pixel centre in each triangle's clipped bounding box
        t = torch.repeat_interleave(torch.arange(num_tri, device=dev), count)
        start = torch.cumsum(count, 0) - count
        local = torch.arange(t.shape[0], device=dev) - start[t]
        ex = ext[t, 0].long().clamp(min=1)
        px = lo[t, 0].long() + local % ex
        py = lo[t, 1].long() + local // ex
        cx, cy = px.float() + 0.5, py.float() + 0.5
        a, b, c = p[t, 0], p[t, 1], p[t, 2]
        inv = 1.0 / area[t]
        l0 = ((b[:, 0] - cx) * (c[:, 1] - cy) - (b[:, 1] - cy) * (c[:, 0] - cx)) * inv
        l1 = ((c[:, 0] - cx) * (a[:, 1] - cy) - (c[:, 1] - cy) * (a[:, 0] - cx)) * inv
        l2 = ((a[:, 0] - cx) * (b[:, 1] - cy) - (a[:, 1] - cy) * (b[:, 0] - cx)) * inv
        zz = l0 * zt[t, 0] + l1 * zt[t, 1] + l2 * zt[t, 2]
        inside = (l0 >= 0) & (l1 >= 0) & (l2 >= 0) & (zz >= -1.0) & (zz <= 1.0)
        pix, zz, t = (py * width + px)[inside], zz[inside], t[inside]
        zbuf = torch.full((height * width,), float("inf"), device=dev).scatter_reduce(0, pix, zz, "amin")
        win = zz == zbuf[pix]
        ids = torch.full((height * width,), num_tri, dtype=torch.long, device=dev)
        ids = ids.scatter_reduce(0, pix[win], t[win], "amin")
        return torch.where(ids == num_tri, torch.full_like(ids, -1), ids)

    def barycentrics(ids, derivatives):
        """Perspective-correct barycentrics at the pixel centres (and their d/dx, d/dy)."""
        corner = clip[tri[ids.clamp(min=0)]]  # (P, 3, 4)
        w = corner[..., 3]
        sx = (corner[..., 0] / w + 1.0) * (0.5 * width)
        sy = (1.0 - corner[..., 1] / w) * (0.5 * height)
        area = (sx[:, 1] - sx[:, 0]) * (sy[:, 2] - sy[:, 0]) - (sy[:, 1] - sy[:, 0]) * (sx[:, 2] - sx[:, 0])
        qx, qy = centre[:, 0], centre[:, 1]
        e0 = (sx[:, 1] - qx) * (sy[:, 2] - qy) - (sy[:, 1] - qy) * (sx[:, 2] - qx)
        e1 = (sx[:, 2] - qx) * (sy[:, 0] - qy) - (sy[:, 2] - qy) * (sx[:, 0] - qx)
        lin = torch.stack([e0, e1, area - e0 - e1], -1) / area[:, None]
        persp = lin / w
        total = persp.sum(-1, keepdim=True)
        bary = persp / total
        if not derivatives:
            return bary, None
        # the edge functions are linear in the pixel position: ∂lin/∂x, ∂lin/∂y per triangle
        dx = torch.stack([sy[:, 1] - sy[:, 2], sy[:, 2] - sy[:, 0], sy[:, 0] - sy[:, 1]], -1) / area[:, None]
        dy = torch.stack([sx[:, 2] - sx[:, 1], sx[:, 0] - sx[:, 2], sx[:, 1] - sx[:, 0]], -1) / area[:, None]
        grads = []
        for d in (dx, dy):
            dp = d / w
            grads.append((dp - bary * dp.sum(-1, keepdim=True)) / total)
        return bary, torch.stack(grads, -1)  # (P, 3, 2)

    def sample(level, coords):  # bilinear taps, texel centres at (j + 0.5) / R, clamped
        grid = (coords * 2.0 - 1.0).view(1, height, width, 2)
        return F.grid_sample(level, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def shade(cull, filt):
        ids = visibility(cull)
        hit = (ids >= 0)[:, None]
        bary, dbary = barycentrics(ids, filt == "trilinear")
        corner_uv = uv[fuv[ids.clamp(min=0)]]  # (P, 3, 2)
        tc = torch.where(hit, (bary[..., None] * corner_uv).sum(1), torch.zeros_like(bary[:, :2]))
        if filt == "bilinear":
            col = sample(tex, tc)
        else:
            dtc = torch.einsum("pkd,pkc->pcd", dbary, corner_uv)  # (P, 2 uv, 2 xy)
            dtc = torch.where(hit[..., None], dtc, torch.zeros_like(dtc))
            texels = dtc * torch.tensor([tex.shape[-1], tex.shape[-2]], dtype=dtc.dtype, device=dev)[:, None]
            rho2 = (texels * texels).sum(1).amax(-1)
            lod = (0.5 * torch.log2(rho2.clamp(min=1e-20))).clamp(0.0, len(mips) - 1.0).view(1, 1, height, width)
            col = torch.zeros_like(sample(tex, tc))
            for i, level in enumerate(mips):
                weight = (1.0 - (lod - i).abs()).clamp(min=0.0)
                col = col + sample(level, tc) * weight
        return ids.view(height, width), col[0].permute(1, 2, 0)

    return {
        "rasterize": lambda cull: (visibility(cull).view(height, width), None),
        "bilinear": lambda cull: shade(cull, "bilinear"),
        "trilinear": lambda cull: shade(cull, "trilinear"),
    }


# ----------------------------------------------------------------------------------------------
# nvdiffrast


def nvdiffrast_status(torch) -> tuple[object | None, str]:
    """``(nvdiffrast.torch module or None, why not)``."""
    try:
        import nvdiffrast.torch as dr
    except Exception as e:  # noqa: BLE001 - ImportError, or a failing plugin build
        return None, f"nvdiffrast: not installed ({type(e).__name__})"
    if not torch.cuda.is_available():
        return None, "nvdiffrast: installed, but PyTorch has no CUDA device"
    return dr, ""


def nvdiffrast_renderer(torch, dr, scene: Scene):
    """The same operations through nvdiffrast (``RasterizeCudaContext``), on the GPU.

    Returns ``{op: fn}`` with ``fn()`` giving ``(ids, colour)`` in machlib's row order (nvdiffrast
    stores the bottom row first) and triangle ids ``-1`` where empty (nvdiffrast: id + 1, 0 empty).
    """
    dev = torch.device("cuda")
    ctx = dr.RasterizeCudaContext(device=dev)
    height, width = scene.resolution
    pos = torch.tensor(np.asarray(scene.clip), device=dev)[None].contiguous()
    tri = torch.tensor(np.asarray(scene.tri), dtype=torch.int32, device=dev).contiguous()
    uv = torch.tensor(np.asarray(scene.uv), device=dev).contiguous()
    fuv = torch.tensor(np.asarray(scene.faces_uv), dtype=torch.int32, device=dev).contiguous()
    tex = torch.tensor(np.asarray(scene.tex), device=dev)[None].contiguous()  # (1, R, R, C), row 0 = v 0
    mip = dr.texture_construct_mip(tex)
    topo = dr.antialias_construct_topology_hash(tri)

    def to_machlib(rast, col):
        ids = rast[0, ..., 3].flip(0).round().long() - 1
        return ids, None if col is None else col[0].flip(0)

    def rasterize():
        rast, _ = dr.rasterize(ctx, pos, tri, (height, width), grad_db=False)
        return rast

    def bilinear():
        rast = rasterize()
        tc, _ = dr.interpolate(uv, rast, fuv)
        return rast, dr.texture(tex, tc, filter_mode="linear", boundary_mode="clamp")

    def trilinear():
        rast, db = dr.rasterize(ctx, pos, tri, (height, width))
        tc, dtc = dr.interpolate(uv, rast, fuv, rast_db=db, diff_attrs="all")
        return rast, dr.texture(tex, tc, dtc, filter_mode="linear-mipmap-linear", boundary_mode="clamp", mip=mip)

    def synced(fn):
        def run():
            out = fn()
            torch.cuda.synchronize()
            return out
        return run

    rast0, col0 = bilinear()

    def antialias():
        return rast0, dr.antialias(col0, rast0, pos, tri, topology_hash=topo)

    ops = {
        "rasterize": synced(lambda: (rasterize(), None)),
        "bilinear": synced(bilinear),
        "trilinear": synced(trilinear),
        "antialias": synced(antialias),
    }
    return ops, to_machlib


# ----------------------------------------------------------------------------------------------
# Checks


check = C.check


def compare(name, jax_ids, jax_bary, jax_col, ids, col, *, min_agree=1.0, col_tol=2e-3) -> dict:
    """Triangle ids equal away from edges; colours close where the ids agree (away from edges)."""
    jax_ids = np.asarray(jax_ids)
    ids = np.asarray(ids)
    away = np.all(np.asarray(jax_bary) > EDGE_BARY, axis=-1) & (jax_ids >= 0)
    same = jax_ids == ids
    agree = float(same[away].mean()) if away.any() else 1.0
    overall = float(same.mean())
    out = {"agree": agree, "overall": overall, "away_pixels": int(away.sum())}
    check(agree >= min_agree, f"{name}: triangle ids agree on {agree:.5%} of the {away.sum()} covered pixels away "
          f"from edges (all pixels: {overall:.4%})")
    if jax_col is not None and col is not None:
        m = away & same
        d = float(np.max(np.abs(np.asarray(jax_col)[m] - np.asarray(col)[m]))) if m.any() else 0.0
        out["col"] = d
        check(d <= col_tol, f"{name}: colours agree there (max |Δ| {d:.1e} <= {col_tol:.0e})")
    return out


def interleaved(fns: dict, repeats: int) -> dict[str, list[float]]:
    """Time each function ``repeats`` times, alternating between them."""
    times = {k: [] for k in fns}
    for _ in range(max(1, repeats)):
        for k, fn in fns.items():
            times[k].append(C.timed(fn)[0])
    return times


def fmt(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:.0f}"


# ----------------------------------------------------------------------------------------------


OPS = {
    "rasterize": "rasterize",
    "bilinear": "rasterize + interpolate + texture (bilinear)",
    "trilinear": "rasterize + interpolate + texture (trilinear mip)",
    "antialias": "antialias (of the bilinear frame)",
    "eager": "`machlib.render.rasterize` called eagerly (sizes its buffer each call)",
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 timed repeats, template scene culled only")
    ap.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                    help="cpu (default; sets JAX_PLATFORMS=cpu) or gpu (JAX's default GPU backend, PyTorch on CUDA)")
    ap.add_argument("--out", default=None, help="Markdown table path (default docs/benchmarks/render.md; "
                    "--quick and --device gpu write nothing unless given)")
    ap.add_argument("--rst", default=None, help="reStructuredText table path (default: --out with .rst.inc)")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per operation (default 10; 3 with --quick)")
    ap.add_argument("--png", default=None, help="also write the template frames (JAX | PyTorch | nvdiffrast) here")
    args = ap.parse_args(argv)

    try:
        import torch
    except ImportError:
        raise SystemExit("render.py: PyTorch is needed for the comparison (pip install -e .[bench])") from None

    cores = C.core_count()
    torch.set_num_threads(cores)
    repeats = args.repeats or (3 if args.quick else 10)
    default_out = None if (args.quick or args.device == "gpu") else "docs/benchmarks/render.md"
    out_md = args.out or default_out
    out_rst = args.rst or (str(Path(out_md).with_suffix(".rst.inc")) if out_md else None)
    torch_dev = "cuda" if args.device == "gpu" and torch.cuda.is_available() else "cpu"
    jax_backend = jax.default_backend()
    if args.device == "gpu" and jax_backend == "cpu":
        print("WARNING: --device gpu but JAX has no GPU backend; JAX runs on the CPU", flush=True)
    dr, dr_why = nvdiffrast_status(torch)
    info = C.machine_info()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    versions = f"jax {jax.__version__}, jaxlib {metadata.version('jaxlib')}, torch {torch.__version__}"
    if dr is not None:
        try:
            versions += f", nvdiffrast {metadata.version('nvdiffrast')}"
        except metadata.PackageNotFoundError:
            versions += ", nvdiffrast (version unknown)"
    gpu_name = torch.cuda.get_device_name(0) if torch_dev == "cuda" else ""
    jax_dev = str(jax.devices()[0])
    print(f"# render benchmark ({'quick' if args.quick else 'full'}, device {args.device})")
    print(f"{info['machine']} | {info['cpu']} | {info['date']} | {versions}")
    print(f"JAX on {jax_dev}; PyTorch on {torch_dev} {gpu_name}; {dr_why or 'nvdiffrast available'}\n", flush=True)

    scenes = build_scenes(args.quick)
    culls = (True,) if args.quick else (True, False)
    rows, results, checks = [], {}, []
    frame_png = {}
    for scene in scenes:
        print(f"\nscene {scene.name}: {scene.num_triangles} triangles, {RESOLUTION[1]}x{RESOLUTION[0]}, "
              f"{TEX_RES}² texture; candidate fragments culled {scene.capacity[True]}, unculled {scene.capacity[False]}")
        tr = torch_renderer(torch, scene, torch_dev)
        ndr = nvdiffrast_renderer(torch, dr, scene) if dr is not None else None
        for cull in culls:
            tag = "culled" if cull else "unculled"
            print(f"\n[{scene.name}, {tag}] JAX: compile ...", flush=True)
            ops = jax_ops(scene, cull)
            ids, bary, _ = ops["rasterize"][1]()
            _, col_b = ops["bilinear"][1]()
            _, col_t = ops["trilinear"][1]()
            coverage = float(np.mean(np.asarray(ids) >= 0))
            check(0.1 < coverage < 0.95, f"JAX frame covers {coverage:.1%} of the image")
            print(f"[{scene.name}, {tag}] checking PyTorch against JAX ...", flush=True)
            t_ids, _ = tr["rasterize"](cull)
            checks.append(compare("torch rasterize", ids, bary, None, t_ids.cpu(), None, min_agree=TORCH_AGREE))
            _, t_col = tr["bilinear"](cull)
            checks.append(compare("torch bilinear", ids, bary, col_b, t_ids.cpu(), t_col.cpu(), min_agree=TORCH_AGREE))
            _, t_colt = tr["trilinear"](cull)
            checks.append(compare("torch trilinear", ids, bary, col_t, t_ids.cpu(), t_colt.cpu(), min_agree=TORCH_AGREE,
                                  col_tol=5e-3))
            numpy_rast = functools.partial(rasterize_np, scene.pixels, scene.faces, RESOLUTION[::-1],
                                           depth=scene.depth, cull_backfaces=cull)
            checks.append(compare("numpy rasterize_np", ids, bary, None, numpy_rast()[0], None, min_agree=TORCH_AGREE))
            fns = {f"jax {k}": v[1] for k, v in ops.items()}
            fns["numpy rasterize"] = numpy_rast
            tsync = (lambda f: (lambda: (f(), torch.cuda.synchronize()))) if torch_dev == "cuda" else (lambda f: f)
            for k in ("rasterize", "bilinear", "trilinear"):
                fns[f"torch {k}"] = tsync(lambda k=k: tr[k](cull))
            if ndr is not None and not cull:
                nops, to_m = ndr
                rast, _ = nops["rasterize"]()
                n_ids, _ = to_m(rast, None)
                checks.append(compare("nvdiffrast rasterize", ids, bary, None, n_ids.cpu(), None, min_agree=0.999))
                rast, n_col = nops["bilinear"]()
                checks.append(compare("nvdiffrast bilinear", ids, bary, col_b, *[x.cpu() for x in to_m(rast, n_col)],
                                      min_agree=0.999))
                rast, n_colt = nops["trilinear"]()
                # nvdiffrast picks the mip level from the footprint's major axis (machlib: the longer
                # screen-axis footprint), so trilinear colours are compared loosely
                checks.append(compare("nvdiffrast trilinear", ids, bary, col_t, *[x.cpu() for x in to_m(rast, n_colt)],
                                      min_agree=0.999, col_tol=0.05))
                for k in ("rasterize", "bilinear", "trilinear", "antialias"):
                    fns[f"nvdiffrast {k}"] = nops[k]
                if scene.name == "template":
                    frame_png["nvdiffrast"] = [x.cpu().numpy() for x in to_m(rast, n_colt)][::-1]
            if scene.name == "template" and cull == culls[-1]:
                frame_png["jax"] = (np.asarray(col_t), np.asarray(ids))
                frame_png["torch"] = (t_colt.cpu().numpy(), t_ids.cpu().numpy())
            print(f"[{scene.name}, {tag}] warm-up, then {repeats} interleaved timed runs per operation ...", flush=True)
            for fn in fns.values():
                fn()
            times = interleaved(fns, repeats)
            med = {k: C.median(v) * 1e3 for k, v in times.items()}
            results[(scene.name, tag)] = {"times": times, "compile": {k: v[0] for k, v in ops.items()}}
            for op in ("rasterize", "bilinear", "trilinear", "antialias", "eager"):
                j = med[f"jax {op}"]
                t = med.get(f"torch {op}")
                n = med.get(f"nvdiffrast {op}")
                h = med.get(f"numpy {op}")
                if dr is None:
                    n_txt = "not installed" if "not installed" in dr_why else "no CUDA"
                elif op == "eager":
                    n_txt = "–"
                else:
                    n_txt = fmt(n) if n is not None else "– (no culling)"
                comp = ops[op][0]
                rows.append([
                    scene.name, tag, OPS[op], fmt(comp) if op != "eager" else "–", fmt(j),
                    fmt(t) if t is not None else "–", n_txt, fmt(h) if h is not None else "–",
                    f"**{t / j:.1f}×**" if t is not None else "",
                ])
                print("  " + " | ".join(rows[-1]), flush=True)

    if args.png and frame_png:
        from PIL import Image

        # coverage over a grey background (empty pixels sample the texture at uv = 0)
        tiles = [np.where((ids >= 0)[..., None], col, 0.2) for col, ids in
                 (frame_png[k] for k in ("jax", "torch", "nvdiffrast") if k in frame_png)]
        strip = np.concatenate(tiles, axis=1)
        Path(args.png).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((np.clip(strip, 0, 1) * 255 + 0.5).astype(np.uint8)).save(args.png)
        print(f"wrote {args.png} ({', '.join(k for k in ('jax', 'torch', 'nvdiffrast') if k in frame_png)})")

    # ------------------------------------------------------------------------------------------
    frame = C.median(results[("template", "culled")]["times"]["jax bilinear"]) * 1e3
    frame_t = C.median(results[("template", "culled")]["times"]["jax trilinear"]) * 1e3
    on = f"{cores} CPU cores" if jax_backend == "cpu" else jax_dev
    met = frame <= TARGET_FRAME_MS
    headers = ["Scene", "Culling", "Operation", "JAX compile (s)", "JAX (ms)", f"PyTorch eager, {torch_dev} (ms)",
               "nvdiffrast (ms)", "numpy `rasterize_np` (ms)", "PyTorch / JAX"]
    targets = [
        f"One 512² template frame (rasterize + interpolate + texture, culled) ≤ {TARGET_FRAME_MS:g} ms on 2 CPU "
        f"cores: **{frame:.1f} ms on {on} (bilinear; {frame_t:.1f} ms trilinear) — "
        f"{'met' if met else 'NOT met'}**" + ("" if jax_backend == "cpu" else " (GPU run: the target is for CPUs)") + ".",
    ]
    agree = min(c["agree"] for c in checks)
    col_worst = max(c.get("col", 0.0) for c in checks)
    notes = [
        f"Machine: {info['machine']}; CPU: {info['cpu']}; date: {info['date']}; {versions}; Python {info['python']}; "
        f"JAX on {jax_dev}, PyTorch on {torch_dev}{' (' + gpu_name + ')' if gpu_name else ''}, float32; "
        f"torch.set_num_threads({cores}). {dr_why or 'nvdiffrast: RasterizeCudaContext.'}"
        + (" JAX matmul precision 'highest' (no TF32)." if args.device == "gpu" else ""),
        f"Scenes at {RESOLUTION[1]} × {RESOLUTION[0]}: the default template head "
        f"({scenes[0].num_triangles} triangles) and a UV sphere of {scenes[-1].num_triangles} triangles, frontal "
        f"camera (25° field of view), {TEX_RES}² texture (`template_albedo`); the trilinear rows use a mip pyramid "
        "built once outside the timed call (nvdiffrast: `texture_construct_mip`).",
        f"Times are medians of {repeats} runs after compilation and a warm-up run, all implementations alternating; "
        "JAX is timed with `jax.block_until_ready`, PyTorch on CUDA with `torch.cuda.synchronize()`. JAX rows are "
        "one `jax.jit` per operation with the rasterizer's fragment capacity fixed to the scene's count "
        "(`machlib.render.fragment_count`); compile = `lower(...).compile()`. The eager row is the public call, "
        "which counts the fragments (an extra compiled pass and a host sync) before rasterizing. "
        f"1-min load average {load_before:.2f} before and {os.getloadavg()[0]:.2f} after the run.",
        f"Answer checks (all passed): PyTorch's triangle ids equal JAX's on ≥ {TORCH_AGREE:.2%} of the covered pixels "
        f"whose barycentrics all exceed {EDGE_BARY:g} (worst agreement over all checks {agree:.4%}; without culling a "
        f"front and a back face may tie in depth to the last bit), and the bilinear and trilinear colours agree where "
        f"the ids do (max |Δ| {col_worst:.1e})" + ("; nvdiffrast's ids agree on ≥ 99.9 % of those pixels and its "
                                                   "bilinear colours to 2e-3." if dr is not None else "."),
        "numpy: `machlib._raster.rasterize_np`, the previews' host rasterizer (row spans solved from the edge planes, "
        "a depth test per candidate), on the same projected pixels and camera depths, one thread, float64; its "
        f"triangle ids are checked like PyTorch's (≥ {TORCH_AGREE:.2%} of the covered pixels away from edges).",
        "PyTorch: a straightforward eager implementation of the same algorithm (bounding-box candidate fragments with "
        "`repeat_interleave`, a two-pass z-buffer with `scatter_reduce`, perspective-correct barycentrics and their "
        "analytic screen derivatives, `grid_sample(align_corners=False, padding_mode='border')` taps, an `avg_pool2d` "
        "pyramid blended per pixel by the same level-of-detail rule). No PyTorch antialias: that row compares JAX "
        "with nvdiffrast only.",
    ]
    md = ["# Rendering: JAX vs eager PyTorch vs nvdiffrast", "", C.markdown_table(headers, rows), "",
          "**Targets**", ""]
    md += [f"- {t}" for t in targets] + ["", "**Notes**", ""] + [f"- {n}" for n in notes]
    rst_rows = [[C.rst_inline(c) for c in r] for r in rows]
    rst = ["..", "   Generated by benchmarks/render.py; do not edit by hand.", "",
           C.rst_table(headers, rst_rows), "", "**Targets**", ""]
    rst += [f"* {C.rst_inline(t)}" for t in targets] + ["", "**Notes**", ""]
    rst += [f"* {C.rst_inline(n)}" for n in notes]
    C.emit_tables(md, rst, out_md, out_rst)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
