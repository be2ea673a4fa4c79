"""Gradient-domain (Poisson) image blending, Pérez, Gangnet & Blake 2003, solved in JAX.

Inside a region ``Ω`` (the mask) the blended image ``f`` solves the discrete Poisson equation

    ``Σ_{q ∈ N_p} (f_p − f_q) = Σ_{q ∈ N_p} v_pq``  for every texel ``p ∈ Ω``,

with ``f = target`` outside ``Ω`` (Dirichlet boundary) and ``N_p`` the 4-neighbours of ``p`` that
lie in the image (a neighbour outside the image is simply absent: Neumann at the image border).
The guidance field ``v_pq`` is the source's difference ``s_p − s_q`` (``guide="source"``,
Pérez's "seamless cloning") or, per channel, whichever of the source's and the target's
difference is larger in magnitude (``guide="mixed"``, Pérez's eq. 13). With a ``source_mask``,
differences with an end outside it follow the target (gradient-domain compositing of a source
that is only partly valid).

The system ``A y = b`` for the unknowns inside ``Ω`` is symmetric positive definite (as long as
every connected part of ``Ω`` touches a texel outside it) and is solved matrix-free by conjugate
gradients with the 5-point Laplacian, preconditioned by one multigrid V-cycle (damped Jacobi
smoothing, bilinear transfers, rediscretised coarse masks; the coarsest grid, at most 128
texels a side by default, is solved by Jacobi-preconditioned CG to a loose tolerance, or
directly by a Cholesky factor when it has at most 1024 texels): the iteration count hardly
grows with the resolution, and a 1024² blend converges in a handful of iterations.

An optional screening term (``screen``, Bhat, Curless, Cohen & Zitnick 2008) adds
``λ (f_p − s_p)`` to each equation, so the boundary correction decays over ``~1/√λ`` texels.

The solve is wrapped in :func:`jax.lax.custom_linear_solve`, so derivatives with respect to
``source`` and ``target`` are exact (implicit differentiation: one more CG solve per cotangent)
instead of backpropagating through the iterations.
"""

from __future__ import annotations

import functools
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Shaped

from .._errors import InputError

__all__ = ["poisson_blend", "poisson_residual"]

Guide = Literal["source", "mixed"]


# --------------------------------------------------------------------------------------------
# the discrete operator


def _neighbour_sum(x: Array) -> Array:
    """Sum of the 4-neighbours of every texel of ``x (H, W, C)``; absent neighbours count 0."""
    p = jnp.pad(x, ((1, 1), (1, 1), (0, 0)))
    return p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]


def _degree(h: int, w: int, dtype) -> Array:
    """Number of in-image 4-neighbours of every texel, ``(H, W, 1)``."""
    return _neighbour_sum(jnp.ones((h, w, 1), dtype))


def _laplacian(x: Array, degree: Array) -> Array:
    """Graph Laplacian ``Σ_q (x_p − x_q)`` over in-image neighbours (positive semi-definite)."""
    return degree * x - _neighbour_sum(x)


def _guidance_divergence(source: Array, target: Array, guide: str, trust: Array | None) -> Array:
    """``Σ_{q ∈ N_p} v_pq`` for every texel: the right-hand side of the guided equation."""
    ds_x = source[:, :-1] - source[:, 1:]  # v(p, right neighbour) for the source
    ds_y = source[:-1, :] - source[1:, :]  # v(p, lower neighbour)
    dt_x = target[:, :-1] - target[:, 1:]
    dt_y = target[:-1, :] - target[1:, :]
    if guide == "mixed":
        ds_x = jnp.where(jnp.abs(dt_x) > jnp.abs(ds_x), dt_x, ds_x)
        ds_y = jnp.where(jnp.abs(dt_y) > jnp.abs(ds_y), dt_y, ds_y)
    if trust is not None:  # edges leaving the trusted texels follow the target
        ds_x = jnp.where((trust[:, :-1] > 0) & (trust[:, 1:] > 0), ds_x, dt_x)
        ds_y = jnp.where((trust[:-1, :] > 0) & (trust[1:, :] > 0), ds_y, dt_y)
    # each edge adds +v to its first texel and -v to its second one
    gx = jnp.pad(ds_x, ((0, 0), (0, 1), (0, 0))) - jnp.pad(ds_x, ((0, 0), (1, 0), (0, 0)))
    gy = jnp.pad(ds_y, ((0, 1), (0, 0), (0, 0))) - jnp.pad(ds_y, ((1, 0), (0, 0), (0, 0)))
    return gx + gy


def _system(source: Array, target: Array, m: Array, guide: str, trust: Array | None = None, screen=0.0):
    """``(matvec, b)`` of the masked system ``m·(L + λ)(m·y) = m·(div v − L((1 − m)·t) + λ·s)``."""
    h, w, _ = source.shape
    deg = _degree(h, w, source.dtype)

    def matvec(y):
        my = m * y
        return m * (_laplacian(my, deg) + screen * my)

    rhs = _guidance_divergence(source, target, guide, trust) - _laplacian((1 - m) * target, deg) + screen * source
    return matvec, m * rhs


# --------------------------------------------------------------------------------------------
# multigrid-preconditioned conjugate gradients (per channel, matrix-free)


class _Level(NamedTuple):
    """One level of the multigrid hierarchy: mask ``(h, w, 1)``, degree, screening weight."""

    m: Array
    deg: Array
    screen: Array | float


def _hierarchy(m: Array, screen, levels: int) -> list[_Level]:
    """Masks of the coarser grids: a coarse texel is inside when at least half its children are.

    Each level down doubles the texel size, so the screening weight (in texel units) grows 4×;
    below the finest level a tiny extra screening keeps every coarse operator positive definite
    (a coarse mask may lose its last Dirichlet texel), which changes the preconditioner only,
    never the solution.
    """
    h, w, _ = m.shape
    out = [_Level(m, _degree(h, w, m.dtype), screen)]
    for _ in range(levels):
        h, w, _ = m.shape
        if min(h, w) < 8:
            break
        m = (_down(m) >= 0.5).astype(m.dtype)
        screen = 4.0 * screen
        out.append(_Level(m, _degree(*m.shape[:2], m.dtype), screen + 1e-4))
    return out


_BARRIER = jax.lax.optimization_barrier  # stencil chains fused by XLA recompute neighbours

#: coarsening stops here; the coarsest grid is solved by CG. Coarsening on to 32² (a direct
#: solve) or 64² took as many outer iterations (or one or two more) and no less time in the
#: completion's 1024² solves
_COARSE_SIDE = 128
_COARSE_TOL, _COARSE_ITERATIONS = 1e-2, 200
_DENSE_MAX = 1024  # the coarsest grid is solved directly when it has at most this many texels


def _apply(level: _Level, y: Array) -> Array:
    """The level's operator ``m·(L + λ)(m·y)``."""
    my = level.m * y
    return level.m * (_laplacian(my, level.deg) + level.screen * my)


def _coarse_factor(level: _Level):
    """Cholesky factor of the coarsest operator as a dense matrix (identity on outside texels)."""
    h, w, _ = level.m.shape
    n = h * w
    eye = jnp.eye(n, dtype=level.m.dtype).reshape(n, h, w, 1)
    a = jax.vmap(lambda e: _apply(level, e).reshape(-1))(eye)  # symmetric: rows = columns
    a = a + jnp.diag(1.0 - level.m.reshape(-1))
    return jnp.linalg.cholesky(a)


def _vcycle(hier: list[_Level], chol, r: Array, i: int = 0, sweeps: int = 1, omega: float = 0.8) -> Array:
    """One symmetric V-cycle on ``A_i x = r`` from ``x = 0`` (a linear map of ``r``).

    Damped Jacobi pre- and post-smoothing, restriction = transpose of the bilinear
    prolongation, rediscretised coarse operators, a direct solve on the coarsest grid:
    symmetric and positive definite, so it is a valid conjugate-gradient preconditioner. When
    the coarsest grid is too large to factor (the default at 1024²: 128²) it is solved by
    Jacobi-preconditioned CG to a loose tolerance instead, which makes the cycle slightly
    nonlinear; :func:`_pcg`'s Polak–Ribière step tolerates that.
    """
    lv = hier[i]
    dinv = lv.m / (lv.deg + lv.screen)
    if i == len(hier) - 1:
        if chol is not None:
            h, w, c = r.shape
            rr = (lv.m * r).reshape(h * w, c)
            x = jax.scipy.linalg.cho_solve((chol, True), rr).reshape(h, w, c)
            return lv.m * x
        # a coarse grid too large to factor: Jacobi-preconditioned CG to a loose tolerance
        # (slightly nonlinear, which the Polak–Ribière outer iteration tolerates)
        return _pcg(functools.partial(_apply, lv), lv.m * r, lambda q: dinv * q, tol=_COARSE_TOL,
                    iterations=_COARSE_ITERATIONS)
    barrier = _BARRIER
    x = barrier(omega * dinv * r)
    for _ in range(sweeps - 1):
        x = barrier(x + omega * dinv * (r - _apply(lv, x)))
    h, w, c = r.shape
    mc = hier[i + 1].m
    hc, wc = mc.shape[:2]
    rc = barrier(mc * _restrict(lv.m * (r - _apply(lv, x)), hc, wc))
    x = barrier(x + lv.m * _up(mc * _vcycle(hier, chol, rc, i + 1, sweeps, omega), h, w))
    for _ in range(sweeps):
        x = barrier(x + omega * dinv * (r - _apply(lv, x)))
    return x


def _pcg(matvec, b: Array, precondition, *, tol: float, iterations: int, scale: Array | None = None) -> Array:
    """Preconditioned conjugate gradients for ``matvec(x) = b`` from ``x = 0``, every channel its
    own system (Polak–Ribière ``β``, robust to a slightly inexact preconditioner).

    Stops when each channel's residual norm is below ``tol`` times its ``‖b‖`` (or, given,
    ``tol`` times ``scale``, a ``(C,)`` norm: for a correction ``A e = b − A x₀`` of a warm
    start ``x₀``, the norm of the original ``b``) or after ``iterations`` steps (a
    ``while_loop``: jit- and vmap-safe; not differentiated directly).

    The preconditioner is applied at the start of each step (on the residual the previous step
    left), so the compiled program holds one copy of it (a multigrid V-cycle: most of the
    program) instead of a second one before the loop, and no step preconditions a residual
    that is not used; the iterates are those of the textbook ordering.
    """

    def dot(u, v):
        return jnp.sum(u * v, axis=(0, 1))

    tiny = jnp.finfo(b.dtype).tiny
    bb = dot(b, b)
    threshold = (tol**2) * (bb if scale is None else scale**2)

    def cond(state):
        k, _, r, _, _, _ = state
        return (k < iterations) & jnp.any(dot(r, r) > threshold)

    def body(state):
        k, x, r, z, p, rz = state  # z, p, rz: the previous step's (zero before the first: β = 0)
        z_new = precondition(r)
        rz_new = dot(r, z_new)
        beta = jnp.where(rz > tiny, dot(r, z_new - z) / jnp.where(rz > tiny, rz, 1.0), 0.0)
        p = z_new + jnp.maximum(beta, 0.0) * p
        ap = matvec(p)
        pap = dot(p, ap)
        alpha = jnp.where(pap > tiny, rz_new / jnp.where(pap > tiny, pap, 1.0), 0.0)
        return k + 1, x + alpha * p, r - alpha * ap, z_new, p, rz_new

    zero = jnp.zeros_like(b)
    state = (jnp.asarray(0), zero, b, zero, zero, jnp.zeros_like(bb))
    return jax.lax.while_loop(cond, body, state)[1]


def _cg(matvec, b: Array, *, tol: float, iterations: int) -> Array:
    """Plain (unpreconditioned) conjugate gradients: :func:`_pcg` with the identity."""
    return _pcg(matvec, b, lambda r: r, tol=tol, iterations=iterations)


# --------------------------------------------------------------------------------------------
# grid transfers


def _down(x: Array) -> Array:
    """2× box downsampling of ``(H, W, C)`` (odd sizes: the last row/column is repeated)."""
    h, w, c = x.shape
    x = jnp.pad(x, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return x.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2, c).mean(axis=(1, 3))


def _up_axis(x: Array, axis: int) -> Array:
    """Cell-centred linear 2× upsampling along ``axis`` (weights 3/4, 1/4; edges clamped)."""
    n = x.shape[axis]
    pad = [(0, 0)] * x.ndim
    pad[axis] = (1, 1)
    p = jnp.pad(x, pad, mode="edge")
    take = lambda a, b: jax.lax.slice_in_dim(p, a, b, axis=axis)  # noqa: E731
    centre, prev, nxt = take(1, n + 1), take(0, n), take(2, n + 2)
    even, odd = 0.75 * centre + 0.25 * prev, 0.75 * centre + 0.25 * nxt
    out = jnp.stack([even, odd], axis=axis + 1)
    return out.reshape(*x.shape[:axis], 2 * n, *x.shape[axis + 1:])


def _up_axis_t(f: Array, n: int, axis: int) -> Array:
    """The transpose of :func:`_up_axis` (``f`` has ``2n`` texels along ``axis``): the
    restriction that pairs with linear prolongation."""
    shape = f.shape[:axis] + (n, 2) + f.shape[axis + 1:]
    f = f.reshape(shape)
    even = jax.lax.index_in_dim(f, 0, axis=axis + 1, keepdims=False)
    odd = jax.lax.index_in_dim(f, 1, axis=axis + 1, keepdims=False)
    sl = lambda a, lo, hi: jax.lax.slice_in_dim(a, lo, hi, axis=axis)  # noqa: E731
    # c[j] = ¾ (even[j] + odd[j]) + ¼ even[j+1] + ¼ odd[j−1]; the clamped edges fold back
    even_next = jnp.concatenate([sl(even, 1, n), sl(odd, n - 1, n)], axis=axis)
    odd_prev = jnp.concatenate([sl(even, 0, 1), sl(odd, 0, n - 1)], axis=axis)
    return 0.75 * (even + odd) + 0.25 * (even_next + odd_prev)


def _restrict(f: Array, hc: int, wc: int) -> Array:
    """The transpose of ``_up(·, h, w)`` from a ``(hc, wc, C)`` grid: sums, not averages."""
    h, w, _ = f.shape
    f = jnp.pad(f, ((0, 2 * hc - h), (0, 2 * wc - w), (0, 0)))
    return _up_axis_t(_up_axis_t(f, wc, 1), hc, 0)


def _up(x: Array, h: int, w: int) -> Array:
    """Bilinear 2× upsampling of a :func:`_down` result back to ``(h, w, C)`` (a stencil, not
    ``jax.image.resize``'s dense weight matrices)."""
    return _up_axis(_up_axis(x, 0), 1)[:h, :w]


def _warm_start(source, target, m, trust, guide: str, levels: int, tol: float, iterations: int, screen):
    """A starting guess for the fine solve from the same blend solved at half the resolution.

    The blend is the guidance image (the source where its differences are followed, the
    target where they are not) plus a smooth membrane correction: the correction is solved on
    the 2× box-downsampled problem (coarse mask: at least half the children inside; screening
    ×4 per halving, as in :func:`_hierarchy`) and upsampled bilinearly onto the fine guidance
    image, which keeps its high frequencies. What the coarse grid cannot represent (the
    correction along the mask's edge) is left to the fine solve, which then needs a few
    iterations instead of a dozen: the result is the fine solution to the same tolerance.
    """
    h, w, _ = source.shape
    guided = source if trust is None else jnp.where(trust > 0, source, target)
    src_c, tgt_c, guided_c = _down(source), _down(target), _down(guided)
    m_c = (_down(m) >= 0.5).astype(m.dtype)
    trust_c = None if trust is None else (_down(trust) >= 0.5).astype(m.dtype)
    f_c = _solve(src_c, tgt_c, m_c, trust_c, guide, max(levels - 1, 0), tol, iterations, 4.0 * screen)
    return guided + _up(f_c - guided_c, h, w)


def _solve(source, target, m, trust, guide: str, levels: int, tol: float, iterations: int, screen=0.0,
           warm: bool = False):
    """Blend: the masked system solved by multigrid-preconditioned CG (``levels`` coarser grids;
    0 gives plain CG). ``warm``: start from :func:`_warm_start` (forward use: the tangent and
    cotangent solves then stop at ``tol`` of the primal's ``‖b‖`` instead of their own)."""
    matvec, b = _system(source, target, m, guide, trust, screen)
    hier = _hierarchy(jax.lax.stop_gradient(m), screen, levels)
    coarsest = hier[-1]
    chol = None
    if len(hier) > 1 and coarsest.m.shape[0] * coarsest.m.shape[1] <= _DENSE_MAX:
        chol = _coarse_factor(coarsest)
    if len(hier) > 1:
        precondition = functools.partial(_vcycle, hier, chol)
    else:
        precondition = lambda r: r  # noqa: E731
    if warm and min(source.shape[:2]) >= 32:
        x0 = jax.lax.stop_gradient(
            m * _warm_start(source, target, m, trust, guide, levels, tol, iterations, screen))
        scale = jax.lax.stop_gradient(jnp.sqrt(jnp.sum(b * b, axis=(0, 1))))
        solve = functools.partial(_pcg, precondition=precondition, tol=tol, iterations=iterations, scale=scale)
        y = x0 + jax.lax.custom_linear_solve(matvec, b - matvec(x0), lambda mv, rhs: solve(mv, rhs),
                                             symmetric=True)
        return (1 - m) * target + m * y
    solve = functools.partial(_pcg, precondition=precondition, tol=tol, iterations=iterations)
    y = jax.lax.custom_linear_solve(matvec, b, lambda mv, rhs: solve(mv, rhs), symmetric=True)
    return (1 - m) * target + m * y


def _auto_levels(h: int, w: int) -> int:
    """Halve until the shorter side is at most ``_COARSE_SIDE`` texels: the number of coarser
    multigrid levels."""
    levels, side_h, side_w = 0, h, w
    while min(side_h, side_w) > _COARSE_SIDE:
        side_h, side_w = (side_h + 1) // 2, (side_w + 1) // 2
        levels += 1
    return levels


def _binary(mask, dtype):
    return (jax.lax.stop_gradient(mask) > 0.5).astype(dtype)[..., None]


@functools.partial(jax.jit, static_argnames=("guide", "levels", "tol", "iterations", "warm"))
def _blend_jit(source, target, mask, trust, screen, *, guide, levels, tol, iterations, warm=False):
    m = _binary(mask, source.dtype)
    return _solve(source, target, m, _binary(trust, source.dtype), guide, levels, tol, iterations, screen, warm)


def _blend(source, target, mask, trust, *, guide, levels, tol, iterations, screen=0.0, warm=False):
    """The jitted solve. ``trust=None`` (every texel trusted) and the screening weight are
    passed as arrays, so every blend of one size and guide shares one compiled program (its
    multigrid solver takes seconds to compile on a CPU). ``warm``: start the fine solve from
    the half-resolution solution (:func:`_warm_start`; same result to ``tol``, fewer fine
    iterations; for forward use)."""
    if trust is None:
        trust = jnp.ones(mask.shape, source.dtype)
    screen = jnp.asarray(screen, source.dtype)
    return _blend_jit(source, target, mask, trust, screen, guide=guide, levels=levels, tol=tol,
                      iterations=iterations, warm=warm)


def _prepare(fn: str, source, target, mask, source_mask=None):
    source, target, mask = jnp.asarray(source), jnp.asarray(target), jnp.asarray(mask)
    if source_mask is not None:
        source_mask = jnp.asarray(source_mask)
        if source_mask.shape != source.shape[:2]:
            raise InputError(
                f"{fn}: source_mask must have shape {source.shape[:2]} (H, W), got {source_mask.shape}"
            )
    if source.ndim not in (2, 3):
        raise InputError(f"{fn}: source must have shape (H, W) or (H, W, C), got {source.shape}")
    if target.shape != source.shape:
        raise InputError(f"{fn}: target must have the shape of source {source.shape}, got {target.shape}")
    if mask.shape != source.shape[:2]:
        raise InputError(f"{fn}: mask must have shape {source.shape[:2]} (H, W), got {mask.shape}")
    if min(source.shape[:2]) < 3:
        raise InputError(f"{fn}: images must be at least 3 × 3 texels, got {source.shape}")
    dtype = jnp.result_type(source.dtype, target.dtype, jnp.float32)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.float32
    squeeze = source.ndim == 2
    if squeeze:
        source, target = source[..., None], target[..., None]
    if source_mask is not None:
        source_mask = source_mask.astype(dtype)
    return source.astype(dtype), target.astype(dtype), mask.astype(dtype), source_mask, squeeze


def _check_options(fn: str, guide, tol, iterations, levels, screen=0.0):
    if not (isinstance(screen, (int, float)) and screen >= 0):
        raise InputError(f"{fn}: screen must be a number >= 0, got {screen!r}")
    if guide not in ("source", "mixed"):
        raise InputError(f"{fn}: guide must be 'source' or 'mixed', got {guide!r}")
    if not (isinstance(iterations, int) and iterations >= 0):
        raise InputError(f"{fn}: iterations must be an int >= 0, got {iterations!r}")
    if not tol >= 0:
        raise InputError(f"{fn}: tol must be >= 0, got {tol!r}")
    if levels is not None and not (isinstance(levels, int) and levels >= 0):
        raise InputError(f"{fn}: levels must be None or an int >= 0, got {levels!r}")


def poisson_blend(
    source: Shaped[ArrayLike, "H W *C"],
    target: Shaped[ArrayLike, "H W *C"],
    mask: Shaped[ArrayLike, "H W"],
    *,
    guide: Guide = "source",
    source_mask: Shaped[ArrayLike, "H W"] | None = None,
    screen: float = 0.0,
    iterations: int = 500,
    tol: float = 1e-5,
    levels: int | None = None,
) -> Float[Array, "H W *C"]:
    """Seamlessly clone ``source`` into ``target`` inside ``mask`` (gradient-domain blending).

    Solves the discrete Poisson equation of the module docstring: inside the mask the result
    has (in the least-squares sense) the source's texel differences, outside it equals the
    target, so the source's detail is kept while its colour is shifted smoothly to meet the
    target along the mask boundary — no seam.

    Each channel is an independent problem. Pure JAX: jit-, vmap- and grad-safe; differentiable
    with respect to ``source`` and ``target`` (the mask is thresholded and not differentiated).

    Args:
        source: ``(H, W)`` or ``(H, W, C)`` float image whose gradients fill the region (e.g.
            linear or sRGB colour in ``[0, 1]``; any units, the result has the same ones).
        target: same shape, the image kept outside the region (its values just outside the
            region are the boundary condition).
        mask: ``(H, W)``, the region to fill; values ``> 0.5`` are inside (soft masks are
            thresholded). Every connected part of it should border at least one texel outside
            it; a mask covering the whole image leaves the result defined only up to a constant.
        guide: ``"source"`` (seamless cloning) or ``"mixed"`` (per channel, the stronger of the
            source and target differences: keeps target texture showing through).
        source_mask: optional ``(H, W)`` mask (``> 0.5``) of the texels where the source is
            valid: a texel difference with an end outside it follows the target instead
            (gradient-domain compositing of a partly observed source: the jump at the edge of
            the observed part is not copied, the mismatch spreads smoothly over the region).
        screen: weight ``λ >= 0`` of a data term ``λ (f_p − s_p)²`` per texel (the *screened*
            Poisson equation ``Σ_q (f_p − f_q) + λ f_p = Σ_q v_pq + λ s_p``): the result is
            also pulled toward the source's own values, so the boundary mismatch fades over
            about ``1 / √λ`` texels instead of shifting the whole region. ``0`` is plain
            Poisson blending.
        iterations: maximum conjugate-gradient iterations at full size (static).
        tol: stop when each channel's residual norm is below ``tol · ‖b‖`` (relative).
        levels: number of coarser grids of the multigrid preconditioner; ``None`` halves the
            image until its shorter side is at most 128 texels. ``0``: plain conjugate
            gradients at full size.

    Returns:
        The blended image, same shape as ``source``, float (``float32`` unless the inputs are
        ``float64``).

    Raises:
        InputError: mismatched shapes, images smaller than 3 × 3, bad options.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.texture import poisson_blend
        >>> target = jnp.zeros((32, 32))
        >>> source = jnp.full((32, 32), 5.0)  # flat: its gradients are zero
        >>> mask = jnp.zeros((32, 32)).at[8:24, 8:24].set(1.0)
        >>> out = poisson_blend(source, target, mask)
        >>> float(jnp.abs(out).max()) < 1e-3  # the flat source takes the target's level 0
        True
    """
    fn = "poisson_blend"
    _check_options(fn, guide, tol, iterations, levels, screen)
    source, target, mask, trust, squeeze = _prepare(fn, source, target, mask, source_mask)
    h, w = mask.shape
    levels = _auto_levels(h, w) if levels is None else levels
    out = _blend(source, target, mask, trust, guide=guide, levels=levels, tol=float(tol), iterations=iterations,
                 screen=float(screen))
    return out[..., 0] if squeeze else out


def poisson_residual(
    image: Shaped[ArrayLike, "H W *C"],
    source: Shaped[ArrayLike, "H W *C"],
    target: Shaped[ArrayLike, "H W *C"],
    mask: Shaped[ArrayLike, "H W"],
    *,
    guide: Guide = "source",
    source_mask: Shaped[ArrayLike, "H W"] | None = None,
    screen: float = 0.0,
) -> Float[Array, "*C"]:
    """Relative residual ``‖A y − b‖ / ‖b‖`` of ``image`` as a solution of :func:`poisson_blend`'s
    equation (per channel; 0 for an exact solution). A diagnostic for convergence checks.

    ``y`` is ``image`` inside the mask; texels outside the mask are ignored (they are the
    target's by definition). ``‖b‖ = 0`` (nothing to solve) gives the absolute residual.

    Args:
        image: candidate result, shape of ``source``.
        source, target, mask, guide, source_mask, screen: as for :func:`poisson_blend`.

    Returns:
        ``(C,)`` relative residual norms (a scalar for ``(H, W)`` images).

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.texture import poisson_blend, poisson_residual
        >>> src = jnp.linspace(0, 1, 24 * 24).reshape(24, 24)
        >>> tgt = jnp.zeros((24, 24))
        >>> mask = jnp.zeros((24, 24)).at[4:20, 4:20].set(1.0)
        >>> out = poisson_blend(src, tgt, mask, tol=1e-6)
        >>> bool(poisson_residual(out, src, tgt, mask) < 1e-5)
        True
    """
    fn = "poisson_residual"
    if guide not in ("source", "mixed"):
        raise InputError(f"{fn}: guide must be 'source' or 'mixed', got {guide!r}")
    source, target, mask, trust, squeeze = _prepare(fn, source, target, mask, source_mask)
    image = jnp.asarray(image, source.dtype)
    if squeeze:
        image = image[..., None]
    if image.shape != source.shape:
        raise InputError(f"{fn}: image must have the shape of source {source.shape}, got {image.shape}")
    m = _binary(mask, source.dtype)
    matvec, b = _system(source, target, m, guide, None if trust is None else _binary(trust, source.dtype), screen)
    r = matvec(m * image) - b
    rn = jnp.sqrt(jnp.sum(r * r, axis=(0, 1)))
    bn = jnp.sqrt(jnp.sum(b * b, axis=(0, 1)))
    out = rn / jnp.where(bn > 0, bn, 1.0)
    return out[0] if squeeze else out
