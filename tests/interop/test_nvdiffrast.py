"""machlib.interop's nvdiffrast backend.

Everywhere: without nvdiffrast (or without a CUDA device) every ``*_nvdiffrast`` function raises
:class:`~machlib.interop.NvdiffrastMissingError` with the install hint; and the conversions
(row flip, ``id + 1``, ``(u, v)`` → three weights, y-up derivatives) are checked against a
stand-in ``nvdiffrast.torch`` that follows nvdiffrast's documented layout (computed by machlib's
own renderer, forward only).

With nvdiffrast and a CUDA device: parity with :mod:`machlib.render` — triangle ids identical away
from edges on random meshes, interpolate / texture values within 1e-4, gradients close.
"""

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import machlib.interop as mi
from helpers import uv_sphere
from machlib import MachlibError, look_at, rotation_matrix
from machlib import render as R
from machlib.interop import _nvdiffrast as nv

ROOT = Path(__file__).resolve().parents[2]
HAVE_NVDIFFRAST = mi.nvdiffrast_available()
needs_gpu = pytest.mark.skipif(not HAVE_NVDIFFRAST, reason="needs nvdiffrast and a CUDA device (PyTorch)")
#: a pixel is "away from edges" when every barycentric weight of its triangle exceeds this
AWAY = 2e-2


def _scene(seed: int, *, size=(64, 64), n_u=24, n_v=14):
    """A randomly rotated UV sphere in a camera 3.5 m away (about 50 px across), in clip space."""
    rng = np.random.default_rng(seed)
    mesh = uv_sphere(n_u, n_v)
    rot = np.asarray(rotation_matrix(jnp.asarray(rng.normal(size=3) * 1.5, jnp.float32)))
    verts = np.asarray(mesh.vertices, np.float32) @ rot.T
    eye = np.array([0.0, 0.0, 3.5]) + rng.uniform(-0.3, 0.3, 3)
    cam = look_at(jnp.asarray(eye, jnp.float32), jnp.zeros(3), image_size=(size[1], size[0]), fov_degrees=40.0)
    clip = R.to_clip(jnp.asarray(verts), cam)
    return clip, jnp.asarray(mesh.faces, jnp.int32), mesh


# ------------------------------------------------------------------------------------------------
# missing backend (runs everywhere)


def _calls():
    clip = jnp.array([[-1.0, -1.0, 0.0, 1.0], [1.0, -1.0, 0.0, 1.0], [-1.0, 1.0, 0.0, 1.0]])
    tri = jnp.array([[0, 1, 2]])
    rast = R.rasterize(clip, tri, image_size=(4, 4))
    return [
        lambda: mi.rasterize_nvdiffrast(clip, tri, image_size=(4, 4)),
        lambda: mi.interpolate_nvdiffrast(jnp.eye(3), rast, tri),
        lambda: mi.texture_nvdiffrast(jnp.ones((2, 2, 3)), jnp.full((4, 2), 0.5)),
        lambda: mi.antialias_nvdiffrast(jnp.ones((4, 4, 3)), rast, clip, tri),
    ]


def test_error_type_is_an_import_error_and_a_machlib_error():
    assert issubclass(mi.NvdiffrastMissingError, ImportError)
    assert issubclass(mi.NvdiffrastMissingError, MachlibError)


def test_available_is_a_bool():
    assert isinstance(mi.nvdiffrast_available(), bool)


@pytest.mark.skipif(HAVE_NVDIFFRAST, reason="nvdiffrast is installed here")
def test_missing_backend_raises_install_hint():
    for call in _calls():
        with pytest.raises(mi.NvdiffrastMissingError) as info:
            call()
        msg = str(info.value)
        assert "pip install" in msg and "github.com/NVlabs/nvdiffrast" in msg and "CUDA" in msg


def test_missing_backend_raises_install_hint_in_a_clean_process():
    """With ``nvdiffrast`` made unimportable (wherever this runs): the clear error, no crash."""
    code = (
        "import sys\n"
        "sys.modules['nvdiffrast'] = None; sys.modules['nvdiffrast.torch'] = None\n"
        "import jax.numpy as jnp, machlib.interop as mi\n"
        "assert 'torch' not in sys.modules, 'importing machlib.interop imported torch'\n"
        "assert mi.nvdiffrast_available() is False\n"
        "try:\n"
        "    mi.texture_nvdiffrast(jnp.ones((2, 2, 3)), jnp.full((4, 2), 0.5))\n"
        "except mi.NvdiffrastMissingError as e:\n"
        "    assert 'pip install' in str(e) and 'NVlabs/nvdiffrast' in str(e), str(e)\n"
        "    print('ok')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("ok")


def test_missing_torch_is_reported_not_raised_by_available():
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "import machlib.interop as mi\n"
        "assert mi.nvdiffrast_available() is False\n"
        "try:\n"
        "    mi.rasterize_nvdiffrast([[0.0, 0.0, 0.0, 1.0]] * 3, [[0, 1, 2]], image_size=(4, 4))\n"
        "except mi.NvdiffrastMissingError as e:\n"
        "    assert 'PyTorch' in str(e), str(e)\n"
        "    print('ok')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("ok")


# ------------------------------------------------------------------------------------------------
# conversions, against a stand-in with nvdiffrast's documented layout (runs everywhere)


class _FakeDr:
    """``nvdiffrast.torch``'s documented conventions, computed by machlib's renderer (forward only):
    rasters store the bottom row first, ``(u, v, z/w, id + 1)`` with ``u, v`` the weights of
    corners 0 and 1 and zeros where empty; derivatives ``(du/dX, du/dY, dv/dX, dv/dY)`` with Y up."""

    def __init__(self, torch):
        self.torch = torch

    class RasterizeCudaContext:
        def __init__(self, device=None):
            self.device = device

    def _t(self, x):
        return self.torch.tensor(np.ascontiguousarray(np.asarray(x, np.float32)))

    def rasterize(self, ctx, pos, tri, resolution, ranges=None, grad_db=True):
        assert pos.ndim == 3 and tri.dtype == self.torch.int32
        rasts, dbs = [], []
        for p in pos.detach().numpy():
            r = R.rasterize(p, tri.numpy(), image_size=resolution[::-1], derivatives=True)  # nvdiffrast: (H, W)
            ids, b, g = np.asarray(r.triangle), np.asarray(r.barycentric), np.asarray(r.barycentric_grad)
            hit = ids >= 0
            rasts.append(np.stack([b[..., 0], b[..., 1], np.where(hit, r.depth, 0.0), np.where(hit, ids + 1, 0)], -1)[::-1])
            dbs.append(np.stack([g[..., 0, 0], -g[..., 0, 1], g[..., 1, 0], -g[..., 1, 1]], -1)[::-1])
        return self._t(rasts), self._t(dbs)

    def interpolate(self, attr, rast, tri, rast_db=None, diff_attrs=None):
        a = attr.detach().numpy()
        r = rast.detach().numpy()
        t = tri.numpy()
        ids = np.round(r[..., 3]).astype(int) - 1
        hit = (ids >= 0)[..., None]
        corner = t[np.maximum(ids, 0)]  # (B, H, W, 3)
        a = np.broadcast_to(a, (r.shape[0],) + a.shape[1:])
        bidx = np.arange(r.shape[0])[:, None, None]
        a0, a1, a2 = (a[bidx, corner[..., k]] for k in range(3))  # (B, H, W, C)
        u, v = r[..., 0:1], r[..., 1:2]
        out = np.where(hit, u * a0 + v * a1 + (1.0 - u - v) * a2, 0.0)
        if diff_attrs is None:
            return self._t(out), self._t(np.zeros(out.shape[:-1] + (0,)))
        db = rast_db.detach().numpy()
        dsdu, dsdv = a0 - a2, a1 - a2
        dx = db[..., 0:1] * dsdu + db[..., 2:3] * dsdv
        dy = db[..., 1:2] * dsdu + db[..., 3:4] * dsdv
        da = np.where(hit, np.stack([dx, dy], -1).reshape(out.shape[:-1] + (-1,)), 0.0)
        return self._t(out), self._t(da)

    def texture(self, tex, uv, uv_da=None, mip_level_bias=None, mip=None, filter_mode="auto", boundary_mode="wrap",
                max_mip_level=None):
        t = tex.detach().numpy()[0]
        coords = uv.detach().numpy()[0]
        g = None if uv_da is None else uv_da.detach().numpy()[0].reshape(coords.shape + (2,))
        bias = 0.0 if mip_level_bias is None else mip_level_bias.detach().numpy()[0]
        out = R.texture(t, coords, g, filter=filter_mode, boundary=boundary_mode, max_mip_level=max_mip_level,
                        mip_level_bias=bias)
        return self._t(np.asarray(out)[None])

    def antialias(self, color, rast, pos, tri, topology_hash=None, pos_gradient_boost=1.0):
        r = rast.detach().numpy()[:, ::-1]
        ids = np.round(r[..., 3]).astype(np.int32) - 1
        u, v = r[..., 0], r[..., 1]
        bary = np.stack([u, v, 1.0 - u - v], -1) * (ids >= 0)[..., None]
        depth = np.where(ids >= 0, r[..., 2], 1.0)
        col = color.detach().numpy()[:, ::-1]
        out = R.antialias(col, R.Raster(ids, bary, depth), pos.detach().numpy(), tri.numpy())
        return self._t(np.asarray(out)[:, ::-1])


@pytest.fixture
def fake_backend(monkeypatch):
    torch = pytest.importorskip("torch")
    fake = _FakeDr(torch)
    monkeypatch.setattr(nv, "_probe", lambda: (torch, fake, torch.device("cpu"), ""))
    monkeypatch.setattr(nv, "_CONTEXTS", {})
    return fake


# The stand-in recomputes machlib's render inside the callback, i.e. in another compilation: on a
# GPU its float32 rounding may differ slightly (fused multiply-adds), hence 1e-4 rather than 0; a
# wrong conversion (row flip, weight order, sign) is off by O(1).
CONV_TOL = 1e-4


def test_conversions_rasterize(fake_backend):
    clip, tri, _ = _scene(0)
    want = R.rasterize(clip, tri, image_size=(64, 64), derivatives=True)
    got = mi.rasterize_nvdiffrast(clip, tri, image_size=(64, 64), derivatives=True)
    np.testing.assert_array_equal(np.asarray(got.triangle), np.asarray(want.triangle))
    np.testing.assert_allclose(np.asarray(got.barycentric), np.asarray(want.barycentric), atol=CONV_TOL)
    np.testing.assert_allclose(np.asarray(got.depth), np.asarray(want.depth), atol=CONV_TOL)
    np.testing.assert_allclose(np.asarray(got.barycentric_grad), np.asarray(want.barycentric_grad), atol=CONV_TOL)
    plain = mi.rasterize_nvdiffrast(clip, tri, image_size=(64, 64))
    assert plain.barycentric_grad is None and plain.triangle.shape == (64, 64)


def test_conversions_batched_and_jit(fake_backend):
    clips = jnp.stack([_scene(s)[0] for s in (1, 2)])
    tri = _scene(1)[1]
    got = jax.jit(lambda c: mi.rasterize_nvdiffrast(c, tri, image_size=(48, 32)))(clips)
    assert got.triangle.shape == (2, 32, 48) and got.barycentric.shape == (2, 32, 48, 3)
    for b in range(2):
        want = R.rasterize(clips[b], tri, image_size=(48, 32))
        np.testing.assert_array_equal(np.asarray(got.triangle[b]), np.asarray(want.triangle))


def test_conversions_interpolate(fake_backend):
    clip, tri, mesh = _scene(3)
    rast = R.rasterize(clip, tri, image_size=(64, 64), derivatives=True)
    uv, fuv = jnp.asarray(mesh.uv, jnp.float32), jnp.asarray(mesh.faces_uv, jnp.int32)
    want, dwant = R.interpolate(uv, rast, fuv, derivatives=True)
    got, dgot = mi.interpolate_nvdiffrast(uv, rast, fuv, derivatives=True)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=CONV_TOL)
    np.testing.assert_allclose(np.asarray(dgot), np.asarray(dwant), atol=CONV_TOL)
    np.testing.assert_allclose(np.asarray(mi.interpolate_nvdiffrast(uv, rast, fuv)), np.asarray(want), atol=CONV_TOL)


def test_conversions_texture(fake_backend):
    rng = np.random.default_rng(4)
    tex = jnp.asarray(rng.uniform(size=(16, 16, 3)), jnp.float32)
    uv = jnp.asarray(rng.uniform(-0.1, 1.1, size=(5, 7, 2)), jnp.float32)
    grad = jnp.asarray(rng.normal(size=(5, 7, 2, 2)) * 0.05, jnp.float32)
    for boundary in ("clamp", "wrap", "zero"):
        np.testing.assert_allclose(np.asarray(mi.texture_nvdiffrast(tex, uv, boundary=boundary)),
                                   np.asarray(R.texture(tex, uv, boundary=boundary)), atol=CONV_TOL)
    got = mi.texture_nvdiffrast(tex, uv, uv_grad=grad, filter="linear-mipmap-linear")
    want = R.texture(tex, uv, grad, filter="linear-mipmap-linear")
    assert got.shape == (5, 7, 3)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=CONV_TOL)
    got = mi.texture_nvdiffrast(tex, uv, filter="linear-mipmap-linear", mip_level_bias=1.5)
    np.testing.assert_allclose(np.asarray(got), np.asarray(R.texture(tex, uv, filter="linear-mipmap-linear",
                                                                      mip_level_bias=1.5)), atol=CONV_TOL)


def test_conversions_antialias(fake_backend):
    clip, tri, _ = _scene(5)
    rast = R.rasterize(clip, tri, image_size=(64, 64))
    color = jnp.concatenate([rast.barycentric, (rast.triangle >= 0)[..., None].astype(jnp.float32)], -1)
    want = R.antialias(color, rast, clip, tri)
    got = mi.antialias_nvdiffrast(color, rast, clip, tri)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=CONV_TOL)


def test_input_errors_name_the_function(fake_backend):
    # (under the tests the jaxtyping hook may reject a shape first: a TypeError naming the argument)
    with pytest.raises((ValueError, TypeError), match="rasterize_nvdiffrast|clip_pos"):
        mi.rasterize_nvdiffrast(jnp.zeros((3, 3)), jnp.array([[0, 1, 2]]), image_size=(4, 4))
    with pytest.raises((ValueError, TypeError), match="texture_nvdiffrast|tex"):
        mi.texture_nvdiffrast(jnp.zeros((4, 4)), jnp.zeros((2, 2)))
    with pytest.raises((ValueError, TypeError), match="texture_nvdiffrast|filter"):
        mi.texture_nvdiffrast(jnp.zeros((4, 4, 3)), jnp.zeros((2, 2)), filter="cubic")
    with pytest.raises(ValueError, match="interpolate_nvdiffrast"):
        mi.interpolate_nvdiffrast(jnp.zeros((3, 2)), R.rasterize(jnp.zeros((3, 4)), jnp.array([[0, 1, 2]]), image_size=(4, 4)),
                                  jnp.array([[0, 1, 2]]), derivatives=True)


# ------------------------------------------------------------------------------------------------
# parity with machlib.render (needs nvdiffrast and a CUDA device)


@pytest.fixture(autouse=True)
def _full_float32():
    """machlib's references in full float32 on GPUs (XLA may use TF32 for f32 contractions)."""
    with jax.default_matmul_precision("highest"):
        yield


def _away(rast) -> np.ndarray:
    """Covered pixels well inside their triangle (no rasterizer may reasonably disagree there)."""
    return np.all(np.asarray(rast.barycentric) > AWAY, axis=-1) & (np.asarray(rast.triangle) >= 0)


@needs_gpu
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_parity_rasterize(seed):
    clip, tri, _ = _scene(seed, size=(96, 128))
    want = R.rasterize(clip, tri, image_size=(128, 96), derivatives=True)
    got = mi.rasterize_nvdiffrast(clip, tri, image_size=(128, 96), derivatives=True)
    away = _away(want)
    assert away.sum() > 1000
    np.testing.assert_array_equal(np.asarray(got.triangle)[away], np.asarray(want.triangle)[away])
    np.testing.assert_allclose(np.asarray(got.barycentric)[away], np.asarray(want.barycentric)[away], atol=1e-4)
    np.testing.assert_allclose(np.asarray(got.depth)[away], np.asarray(want.depth)[away], atol=1e-4)
    gw, gg = np.asarray(want.barycentric_grad)[away], np.asarray(got.barycentric_grad)[away]
    np.testing.assert_allclose(gg, gw, atol=1e-4 * max(1.0, float(np.abs(gw).max())))
    # empty pixels agree too (outside the silhouette, away from it)
    empty = (np.asarray(want.triangle) < 0) & (np.asarray(got.triangle) < 0)
    assert np.all(np.asarray(got.depth)[empty] == 1.0) and np.all(np.asarray(got.barycentric)[empty] == 0.0)


@needs_gpu
def test_parity_rasterize_batched_triangle_soup():
    rng = np.random.default_rng(7)
    n = 40
    xy = rng.uniform(-1.0, 1.0, size=(2, 3 * n, 2))
    z = np.repeat(rng.uniform(-0.9, 0.9, size=(2, n, 1)), 3, axis=1) + rng.uniform(-0.05, 0.05, size=(2, 3 * n, 1))
    clip = jnp.asarray(np.concatenate([xy, z, np.ones((2, 3 * n, 1))], -1), jnp.float32)
    tri = jnp.arange(3 * n, dtype=jnp.int32).reshape(n, 3)
    got = mi.rasterize_nvdiffrast(clip, tri, image_size=(80, 64))
    for b in range(2):
        want = R.rasterize(clip[b], tri, image_size=(80, 64))
        away = _away(want)
        np.testing.assert_array_equal(np.asarray(got.triangle[b])[away], np.asarray(want.triangle)[away])


@needs_gpu
def test_parity_interpolate_values_and_gradients():
    clip, tri, mesh = _scene(11)
    rast = R.rasterize(clip, tri, image_size=(64, 64), derivatives=True)
    uv, fuv = jnp.asarray(mesh.uv, jnp.float32), jnp.asarray(mesh.faces_uv, jnp.int32)
    want, dwant = R.interpolate(uv, rast, fuv, derivatives=True)
    got, dgot = mi.interpolate_nvdiffrast(uv, rast, fuv, derivatives=True)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-4)
    np.testing.assert_allclose(np.asarray(dgot), np.asarray(dwant), atol=1e-4)
    w = jnp.asarray(np.random.default_rng(0).normal(size=want.shape), jnp.float32)
    g_want = jax.grad(lambda a: jnp.sum(w * R.interpolate(a, rast, fuv)))(uv)
    g_got = jax.grad(lambda a: jnp.sum(w * mi.interpolate_nvdiffrast(a, rast, fuv)))(uv)
    np.testing.assert_allclose(np.asarray(g_got), np.asarray(g_want), atol=1e-4)


@needs_gpu
def test_parity_texture_values_and_gradients():
    rng = np.random.default_rng(12)
    tex = jnp.asarray(rng.uniform(size=(32, 32, 3)), jnp.float32)
    uv = jnp.asarray(rng.uniform(-0.2, 1.2, size=(40, 50, 2)), jnp.float32)
    for boundary in ("clamp", "wrap", "zero"):
        np.testing.assert_allclose(np.asarray(mi.texture_nvdiffrast(tex, uv, boundary=boundary)),
                                   np.asarray(R.texture(tex, uv, boundary=boundary)), atol=1e-4)
    # isotropic footprints: both rules pick the same level of detail
    scale = np.exp(rng.uniform(np.log(0.01), np.log(0.5), size=(40, 50)))
    grad = jnp.asarray(scale[..., None, None] * np.eye(2), jnp.float32)
    got = mi.texture_nvdiffrast(tex, uv, uv_grad=grad, filter="linear-mipmap-linear")
    want = R.texture(tex, uv, grad, filter="linear-mipmap-linear")
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-4)
    w = jnp.asarray(rng.normal(size=(40, 50, 3)), jnp.float32)
    for argnum, atol in ((0, 1e-4), (1, 1e-3)):
        g_want = jax.grad(lambda t, c: jnp.sum(w * R.texture(t, c)), argnums=argnum)(tex, uv)
        g_got = jax.grad(lambda t, c: jnp.sum(w * mi.texture_nvdiffrast(t, c)), argnums=argnum)(tex, uv)
        np.testing.assert_allclose(np.asarray(g_got), np.asarray(g_want), atol=atol * max(1.0, float(jnp.abs(g_want).max())))


@needs_gpu
def test_parity_gradient_to_vertex_positions():
    """rasterize → interpolate: d/d(clip) agree when only pixels away from edges are weighted."""
    clip, tri, mesh = _scene(13)
    rast0 = R.rasterize(clip, tri, image_size=(64, 64))
    w = jnp.asarray(_away(rast0)[..., None] * np.random.default_rng(1).normal(size=(64, 64, 2)), jnp.float32)
    uv, fuv = jnp.asarray(mesh.uv, jnp.float32), jnp.asarray(mesh.faces_uv, jnp.int32)

    def loss(render_fn, interp_fn):
        return lambda c: jnp.sum(w * interp_fn(uv, render_fn(c, tri, (64, 64)), fuv))

    g_want = jax.grad(loss(R.rasterize, R.interpolate))(clip)
    g_got = jax.grad(loss(mi.rasterize_nvdiffrast, mi.interpolate_nvdiffrast))(clip)
    assert np.all(np.isfinite(np.asarray(g_got)))
    scale = float(jnp.abs(g_want).max())
    np.testing.assert_allclose(np.asarray(g_got), np.asarray(g_want), atol=2e-3 * scale)


@needs_gpu
def test_antialias_touches_only_silhouettes_and_passes_position_gradients():
    clip, tri, _ = _scene(14)
    rast = mi.rasterize_nvdiffrast(clip, tri, image_size=(64, 64))
    ids = np.asarray(rast.triangle)
    color = (rast.triangle >= 0).astype(jnp.float32)[..., None] * jnp.array([0.9, 0.6, 0.3])
    out = np.asarray(mi.antialias_nvdiffrast(color, rast, clip, tri))
    changed = np.any(np.abs(out - np.asarray(color)) > 1e-6, axis=-1)
    cov = ids >= 0
    border = np.zeros_like(cov)
    border[:, :-1] |= cov[:, :-1] != cov[:, 1:]
    border[:, 1:] |= cov[:, :-1] != cov[:, 1:]
    border[:-1] |= cov[:-1] != cov[1:]
    border[1:] |= cov[:-1] != cov[1:]
    assert changed.any() and not np.any(changed & ~border)
    g = jax.grad(lambda c: jnp.sum(mi.antialias_nvdiffrast(color, rast, c, tri)))(clip)
    assert np.all(np.isfinite(np.asarray(g))) and float(jnp.abs(g).max()) > 0.0
