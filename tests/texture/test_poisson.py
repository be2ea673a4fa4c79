"""Gradient-domain (Poisson) blending: exact agreement with a dense direct solve, the seamless
property, implicit-differentiation gradients, jit/vmap and input validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from helpers import x64
from machlib.texture import poisson_blend, poisson_residual

N = 12


def _mask(n=N):
    """An irregular region: a blob touching the left image border (Neumann there), a notch, and a
    separate 2 × 2 island; every part borders texels outside it."""
    m = np.zeros((n, n))
    m[2:9, 0:7] = 1.0  # touches the left border
    m[4:6, 3:5] = 0.0  # a hole inside it
    m[9, 2:4] = 1.0  # a bump below
    m[8:10, 9:11] = 1.0  # an island
    return m


def _images(n=N, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, (n, n, c)), rng.uniform(0.0, 1.0, (n, n, c))


def _dense_solve(source, target, mask, *, guide="source", source_mask=None, screen=0.0):
    """The blend by a dense direct solve of the Poisson equation (independent of machlib).

    For every texel p inside the mask: Σ_{q ∈ N_p} (f_p − f_q) + λ f_p = Σ_{q ∈ N_p} v_pq + λ s_p,
    N_p the in-image 4-neighbours, f = target outside the mask.
    """
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    squeeze = source.ndim == 2
    if squeeze:
        source, target = source[..., None], target[..., None]
    h, w, c = source.shape
    inside = np.asarray(mask) > 0.5
    trust = None if source_mask is None else np.asarray(source_mask) > 0.5
    cells = [(i, j) for i in range(h) for j in range(w) if inside[i, j]]
    index = {p: k for k, p in enumerate(cells)}
    out = target.copy()
    for ch in range(c):
        s, t = source[..., ch], target[..., ch]
        A = np.zeros((len(cells), len(cells)))
        b = np.zeros(len(cells))
        for k, (i, j) in enumerate(cells):
            A[k, k] += screen
            b[k] += screen * s[i, j]
            for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                qi, qj = i + di, j + dj
                if not (0 <= qi < h and 0 <= qj < w):
                    continue
                vs, vt = s[i, j] - s[qi, qj], t[i, j] - t[qi, qj]
                v = vt if guide == "mixed" and abs(vt) > abs(vs) else vs
                if trust is not None and not (trust[i, j] and trust[qi, qj]):
                    v = vt
                A[k, k] += 1.0
                b[k] += v
                if inside[qi, qj]:
                    A[k, index[(qi, qj)]] -= 1.0
                else:
                    b[k] += t[qi, qj]
        f = np.linalg.solve(A, b)
        for k, (i, j) in enumerate(cells):
            out[i, j, ch] = f[k]
    return out[..., 0] if squeeze else out


def _blend64(*args, **kw):
    kw.setdefault("tol", 1e-12)
    kw.setdefault("iterations", 2000)
    return np.asarray(poisson_blend(*args, **kw))


@pytest.mark.parametrize(
    "options",
    [{}, {"guide": "mixed"}, {"guide": "mixed", "source_mask": "half"}, {"screen": 0.05, "source_mask": "half"}],
    ids=["source", "mixed", "mixed+source_mask", "screen+source_mask"],
)
def test_matches_dense_direct_solve(options):
    options = dict(options)
    source, target = _images()
    mask = _mask()
    if options.get("source_mask") == "half":
        sm = np.ones((N, N))
        sm[:, :3] = 0.0  # the left part of the region is not trusted
        sm[6, 5] = 0.0
        options["source_mask"] = sm
    ref = _dense_solve(source, target, mask, **options)
    with x64():
        out = _blend64(jnp.asarray(source), jnp.asarray(target), jnp.asarray(mask), **options)
        assert out.dtype == np.float64
        np.testing.assert_allclose(out, ref, atol=1e-8)
        # outside the mask the target is kept exactly
        np.testing.assert_array_equal(out[mask < 0.5], target[mask < 0.5])
        # the residual of the exact solution is ~0, that of the target is not
        kw = {k: v for k, v in options.items() if k in ("guide", "source_mask", "screen")}
        res = np.asarray(poisson_residual(out, source, target, mask, **kw))
        assert res.shape == (3,) and np.all(res < 1e-8), res
        assert np.all(np.asarray(poisson_residual(target, source, target, mask, **kw)) > 1e-2)


def test_grayscale_and_cascade_give_the_same_answer():
    """(H, W) images, and a 16 × 16 problem solved with the coarse warm start (one coarser level):
    the cascade changes only the initial guess, not the answer."""
    rng = np.random.default_rng(2)
    n = 16
    source, target = rng.uniform(size=(n, n)), rng.uniform(size=(n, n))
    mask = np.zeros((n, n))
    mask[3:13, 1:10] = 1.0
    mask[5:8, 10:15] = 1.0
    ref = _dense_solve(source, target, mask)
    with x64():
        out = _blend64(source, target, mask, levels=1)
        assert out.shape == (n, n)
        np.testing.assert_allclose(out, ref, atol=1e-8)
        assert np.ndim(poisson_residual(out, source, target, mask)) == 0


def _square(n=24, margin=2):
    mask = np.zeros((n, n))
    mask[margin : n - margin, margin : n - margin] = 1.0
    return mask


def test_flat_source_takes_the_target_level_unless_screened():
    n = 24
    target = np.broadcast_to(np.array([0.2, 0.5, 0.8]), (n, n, 3)).copy()
    source = np.full((n, n, 3), 0.9)
    mask = _square(n)
    plain = np.asarray(poisson_blend(source, target, mask, tol=1e-7))
    np.testing.assert_allclose(plain, target, atol=1e-4)  # flat source: no gradients, all target
    screened = np.asarray(poisson_blend(source, target, mask, screen=0.25, tol=1e-7))
    # λ = 0.25 → the correction decays by r ≈ 0.61 per texel (r + 1/r = 2 + λ): 10 texels from
    # every edge the centre keeps the source's value up to ~4 r¹⁰ ≈ 3 % of the mismatch
    share = (screened - target) / (source - target)  # 0: target's level, 1: source's
    assert np.all(share[12, 12] > 0.95) and np.all(share[12, 12] <= 1.0 + 1e-6)
    row = share[12, 2:12, 0]  # from the edge to the middle
    assert 0.0 < row[0] and np.all(np.diff(row) > 0)


def test_source_offset_by_a_constant_is_seamless():
    """A source that equals the target up to a constant blends back into the target exactly: no
    jump at the mask boundary, the source's detail preserved inside."""
    n = 24
    g = (np.arange(n) + 0.5) / n
    u, v = np.meshgrid(g, g)
    target = np.stack([0.4 + 0.2 * np.sin(5 * u) * np.cos(3 * v), 0.3 + 0.3 * u * v, 0.5 + 0.1 * np.cos(7 * v)], -1)
    source = target + np.array([0.35, -0.2, 0.15])  # same gradients, different level
    mask = _square(n)
    out = np.asarray(poisson_blend(source, target, mask, tol=1e-7))
    np.testing.assert_allclose(out, target, atol=2e-4)
    # a naive paste has a jump across the boundary, the blend has none
    paste = np.where(mask[..., None] > 0.5, source, target)
    jump = lambda img: np.abs(img[2:22, 1] - img[2:22, 2]).max()  # noqa: E731
    assert jump(paste) > 0.1
    assert jump(out) < jump(target) + 1e-3


@pytest.mark.slow
def test_gradients_match_finite_differences():
    n = 7
    rng = np.random.default_rng(3)
    mask = np.zeros((n, n))
    mask[1:5, 2:6] = 1.0
    mask[5, 3] = 1.0
    trust = np.ones((n, n))
    trust[1:3, 2] = 0.0
    with x64():
        s = jnp.asarray(rng.uniform(size=(n, n, 2)))
        t = jnp.asarray(rng.uniform(size=(n, n, 2)))
        f = lambda s, t: poisson_blend(s, t, mask, guide="mixed", source_mask=trust, screen=0.1,  # noqa: E731
                                       tol=1e-13, iterations=500)
        check_grads(f, (s, t), order=1, modes=["rev"], eps=1e-6, atol=1e-6, rtol=1e-6)
        # the derivatives are exact (implicit differentiation): dense Jacobian vs the solve
        jac = jax.jacrev(lambda s: poisson_blend(s, t, mask, tol=1e-13, iterations=500))(s)
        eps = 1e-6
        e = np.zeros((n, n, 2))
        e[2, 3, 1] = eps
        fd = (_dense_solve(s + e, t, mask) - _dense_solve(s - e, t, mask)) / (2 * eps)
        np.testing.assert_allclose(np.asarray(jac)[..., 2, 3, 1], fd, atol=1e-7)


def test_jit_equals_eager_and_vmap_equals_loop():
    n, batch = 16, 3
    rng = np.random.default_rng(4)
    src = jnp.asarray(rng.uniform(size=(batch, n, n, 3)), jnp.float32)
    tgt = jnp.asarray(rng.uniform(size=(batch, n, n, 3)), jnp.float32)
    masks = np.zeros((batch, n, n), np.float32)
    masks[0, 3:12, 3:12] = 1.0
    masks[1, 0:8, 5:15] = 1.0
    masks[2, 6:10, 2:14] = 1.0
    masks = jnp.asarray(masks)
    kw = dict(guide="mixed", screen=0.01, tol=1e-6)
    eager = poisson_blend(src[0], tgt[0], masks[0], **kw)
    assert eager.dtype == jnp.float32 and eager.shape == (n, n, 3)
    ref = _dense_solve(src[0], tgt[0], masks[0], guide="mixed", screen=0.01)
    np.testing.assert_allclose(eager, ref, atol=1e-4)  # float32 is close to the exact answer
    jitted = jax.jit(lambda s, t, m: poisson_blend(s, t, m, **kw))(src[0], tgt[0], masks[0])
    np.testing.assert_allclose(jitted, eager, atol=1e-6)
    batched = jax.vmap(lambda s, t, m: poisson_blend(s, t, m, **kw))(src, tgt, masks)
    looped = jnp.stack([poisson_blend(src[i], tgt[i], masks[i], **kw) for i in range(batch)])
    assert batched.shape == (batch, n, n, 3)
    np.testing.assert_allclose(batched, looped, atol=1e-5)
    # each member is a genuine solution of its own problem
    for i in range(batch):
        assert np.all(np.asarray(poisson_residual(batched[i], src[i], tgt[i], masks[i], guide="mixed",
                                                  screen=0.01)) < 1e-4)


@pytest.mark.parametrize(
    "case",
    ["target_shape", "mask_shape", "source_mask_shape", "guide", "screen", "iterations", "tol", "levels", "tiny",
     "rank"],
)
def test_bad_inputs_raise_naming_the_function(case):
    s = np.zeros((8, 8, 3), np.float32)
    t, m = s.copy(), np.zeros((8, 8), np.float32)
    args, kw = [s, t, m], {}
    if case == "target_shape":
        args[1] = np.zeros((8, 9, 3), np.float32)
    elif case == "mask_shape":
        args[2] = np.zeros((8, 9), np.float32)
    elif case == "source_mask_shape":
        kw["source_mask"] = np.zeros((9, 8), np.float32)
    elif case == "guide":
        kw["guide"] = "target"
    elif case == "screen":
        kw["screen"] = -0.1
    elif case == "iterations":
        kw["iterations"] = -1
    elif case == "tol":
        kw["tol"] = -1e-3
    elif case == "levels":
        kw["levels"] = -1
    elif case == "tiny":
        args = [np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2))]
    elif case == "rank":
        args = [np.zeros((4, 4, 3, 1)), np.zeros((4, 4, 3, 1)), np.zeros((4, 4))]
    with pytest.raises((ValueError, TypeError), match="poisson_blend"):
        poisson_blend(*args, **kw)


def test_residual_bad_inputs_raise_naming_the_function():
    s = np.zeros((8, 8, 3), np.float32)
    m = np.zeros((8, 8), np.float32)
    with pytest.raises((ValueError, TypeError), match="poisson_residual"):
        poisson_residual(np.zeros((8, 7, 3)), s, s, m)
    with pytest.raises((ValueError, TypeError), match="poisson_residual"):
        poisson_residual(s, s, s, m, guide="nope")


def test_warm_start_gives_the_same_blend():
    """complete_texture's solves start from the half-resolution solution (``warm``): the
    result is the cold solve's to the solver tolerance, for both plain and screened blends
    with a partly trusted source."""
    from machlib.texture._poisson import _blend

    rng = np.random.default_rng(3)
    n = 96
    yy, xx = np.mgrid[0:n, 0:n] / n
    source = jnp.asarray(np.stack([np.sin(7 * xx + c) * np.cos(5 * yy) for c in range(3)], -1)
                         + 0.05 * rng.normal(size=(n, n, 3)), jnp.float32)
    target = jnp.asarray(0.3 + 0.1 * rng.normal(size=(n, n, 3)), jnp.float32)
    mask = jnp.asarray(((xx - 0.5) ** 2 + (yy - 0.45) ** 2 < 0.12).astype(np.float32))
    trust = jnp.asarray((xx < 0.7).astype(np.float32))
    for screen in (0.0, 1e-3):
        kw = dict(guide="source", levels=2, tol=1e-6, iterations=500, screen=screen)
        cold = _blend(source, target, mask, trust, **kw)
        warm = _blend(source, target, mask, trust, warm=True, **kw)
        np.testing.assert_allclose(np.asarray(warm), np.asarray(cold), atol=1e-4)
        assert float(jnp.abs(warm - target).max()) > 0.1  # the blend did change the region
