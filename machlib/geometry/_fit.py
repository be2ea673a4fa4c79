"""Geometry fitting (Make-A-Character §2.3, eq. 5): camera and triplane under landmark
projection, total-variation and symmetry losses, the optax way.

``L = L_lmk + λ_tv · L_tv + λ_sym · L_sym (+ λ_depth · L_depth)``

* the triplane is parameterised as the template's triplane plus a sum of bilinearly upsampled
  offset maps at resolutions ``R/2^(L-1) … R`` (a multi-resolution preconditioner: the losses are
  evaluated on the full-resolution map exactly as in the paper, but coarse offsets move whole
  regions at once, so a few hundred Adam steps converge);
* ``L_tv`` is taken on the displacement from the template, so the regulariser does not flatten
  the template's own shape (with a zero template it is eq. 3 verbatim);
* ``L_depth`` (on by default, weak) is a term pulling the landmarks' relative depths toward
  MediaPipe's relative ``z``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Float

from .._cache import classic_emitters_known
from .._camera import (
    Camera,
    intrinsics_from_fov,
    matrix_to_rotvec,
    project,
    world_to_camera,
)
from ._losses import landmark_residuals, symmetry_loss, total_variation
from ._triplane import decode

__all__ = [
    "GeometryFitConfig",
    "GeometryProblem",
    "GeometryParams",
    "LandmarkTargets",
    "GeometryFitState",
    "GeometryFit",
    "geometry_fit",
    "triplane_from_params",
    "init_camera",
    "learning_rate_schedule",
    "zero_params",
    "GeometryResult",
    "fit_landmarks",
    "landmark_weights",
]


class GeometryFitConfig(eqx.Module):
    """Hyper-parameters of the geometry fit (a frozen pytree; sizes are static).

    Attributes:
        resolution: triplane size ``R`` in texels.
        levels: number of offset pyramid levels (``R / 2^(levels-1)`` is the coarsest).
        steps: optimisation steps run by :func:`machlib.geometry.fit_landmarks` (and the length of
            the learning-rate schedule of :func:`machlib.geometry.geometry_fit`).
        lr_shape: Adam learning rate of the offset maps (metres per step).
        lr_rotation: Adam learning rate of the camera rotation vector (radians per step).
        lr_translation: Adam learning rate of the camera translation (metres per step).
        lambda_tv: weight of the total variation of the displacement.
        lambda_sym: weight of the symmetry loss (ignored for asymmetric templates).
        lambda_depth: weight of the relative-depth term (0 disables it).
        lambda_offset: weight of the mean squared displacement from the template, in mm²
            (0 disables it; the second stage of a human template's fit uses it so the triplane
            refines the fitted human instead of sculpting it).
        delta: pseudo-Huber radius of the landmark loss, pixels.
    """

    resolution: int = eqx.field(static=True, default=256)
    levels: int = eqx.field(static=True, default=6)
    steps: int = eqx.field(static=True, default=300)
    lr_shape: float = 2e-3
    lr_rotation: float = 2e-2
    lr_translation: float = 1e-2
    lambda_tv: float = 100.0
    lambda_sym: float = 1e2
    lambda_depth: float = 5e-3
    lambda_offset: float = 0.0
    delta: float = 0.5

    def __check_init__(self):
        if self.resolution < 4 or self.resolution % (2 ** (self.levels - 1)):
            raise ValueError(
                f"GeometryFitConfig: resolution {self.resolution} must be >= 4 and divisible by "
                f"2^(levels-1) = {2 ** (self.levels - 1)}"
            )
        if self.levels < 1 or self.steps < 1:
            raise ValueError(
                f"GeometryFitConfig: levels and steps must be >= 1, got {self.levels} and {self.steps}"
            )


class GeometryProblem(eqx.Module):
    """The fixed data of a fit: template triplane, landmark UVs, intrinsics, symmetry.

    Attributes:
        base: ``(R, R, 3)`` template triplane.
        landmark_uv: ``(K, 2)`` landmark UV coordinates.
        focal: ``(2,)`` fixed focal lengths in pixels.
        principal: ``(2,)`` fixed principal point in pixels.
        symmetric: apply the symmetry loss (static).
        image_size: ``(width, height)`` (static).
        landmark_base: optional ``(K, 3)`` exact landmark positions on the template surface;
            when given, a landmark is ``landmark_base + decode(triplane − base, uv)`` (the
            displacement is sampled, the surface point is exact), otherwise
            ``decode(triplane, uv)``.
        offset_mask: optional ``(R, R)`` weights in ``[0, 1]`` multiplying the displacement
            (0 where the triplane may not move the surface, e.g. across the lips and eyelids).
    """

    base: Float[Array, "R R 3"]
    landmark_uv: Float[Array, "K 2"]
    focal: Float[Array, "2"]
    principal: Float[Array, "2"]
    symmetric: bool = eqx.field(static=True, default=True)
    image_size: tuple[int, int] = eqx.field(static=True, default=(512, 512))
    landmark_base: Float[Array, "K 3"] | None = None
    offset_mask: Float[Array, "R R"] | None = None


class GeometryParams(eqx.Module):
    """Optimised variables: offset pyramid (coarse → fine) and camera extrinsics.

    Attributes:
        offsets: tuple of ``(r_l, r_l, 3)`` offset maps, coarsest first.
        rotation: ``(3,)`` camera rotation vector.
        translation: ``(3,)`` camera translation, metres.
    """

    offsets: tuple
    rotation: Float[Array, "3"]
    translation: Float[Array, "3"]


class LandmarkTargets(NamedTuple):
    """The observations of one face (the ``batch`` of :attr:`GeometryFit.step`).

    Attributes:
        points: ``(K, 2)`` detected landmarks, pixels.
        weights: ``(K,)`` non-negative weights (confidence × template validity).
        depth: ``(K,)`` relative depth in pixels (MediaPipe ``z · W``), used by ``λ_depth``.
    """

    points: Float[Array, "K 2"]
    weights: Float[Array, "K"]
    depth: Float[Array, "K"]


class GeometryFitState(NamedTuple):
    """Optimiser state: parameters, optax state and the step counter."""

    params: GeometryParams
    opt_state: optax.OptState
    step: Array


class GeometryFit(NamedTuple):
    """The three functions of a fit (like an ``optax.GradientTransformation``).

    Attributes:
        init: ``init(params) -> GeometryFitState``.
        step: ``step(state, targets) -> (state, metrics)``; pure, jit it yourself or use ``run``.
        run: ``run(state, targets, num_steps) -> (state, metrics)``: ``lax.scan`` of ``step``
            under ``jit``; ``metrics`` are stacked per step. ``num_steps`` is static.
        loss: ``loss(params, targets) -> (total, metrics)``.
        camera: ``camera(params) -> Camera``.
        triplane: ``triplane(params) -> (R, R, 3)``.
    """

    init: Callable
    step: Callable
    run: Callable
    loss: Callable
    camera: Callable
    triplane: Callable


def _upsample_axis(x: Array, s: int, axis: int) -> Array:
    """Bilinear upsampling by the integer factor ``s`` along ``axis`` (texel centres at
    ``(j + 0.5) / n``, edges clamped), as ``s`` two-tap blends of shifted slices interleaved by a
    reshape: O(output) work, where ``jax.image.resize`` contracts with a dense ``(n·s) × n``
    interpolation matrix. Equal to ``jax.image.resize(..., method="linear")`` up to rounding."""
    n = x.shape[axis]

    def part(v, a, b):
        return jax.lax.slice_in_dim(v, a, b, axis=axis)

    xp = jnp.concatenate([part(x, 0, 1), x, part(x, n - 1, n)], axis)  # clamp at the edges
    prev, cur, nxt = part(xp, 0, n), part(xp, 1, n + 1), part(xp, 2, n + 2)
    phases = []
    for p in range(s):
        c = (p + 0.5) / s - 0.5  # where output phase p samples, in input texels from its centre
        phases.append((-c) * prev + (1.0 + c) * cur if c < 0 else (1.0 - c) * cur + c * nxt)
    out = jnp.stack(phases, axis + 1)  # (..., n, s, ...) -> (..., n·s, ...)
    return out.reshape(x.shape[:axis] + (n * s,) + x.shape[axis + 1 :])


def _upsample(off: Array, R: int) -> Array:
    """``(r, r, C)`` → ``(R, R, C)`` bilinear upsampling (``R / r`` an integer)."""
    s = R // off.shape[0]
    if s == 1:
        return off
    if s <= 4:  # fine levels: two-tap blends beat the dense matmul on CPU (docs/benchmarks)
        return _upsample_axis(_upsample_axis(off, s, 0), s, 1)
    return jax.image.resize(off, (R, R) + off.shape[2:], method="linear")  # coarse: small matmuls


@jax.jit
def triplane_from_params(base: Float[ArrayLike, "R R 3"], offsets: tuple) -> Float[Array, "R R 3"]:
    """Template triplane plus the bilinearly upsampled sum of an offset pyramid.

    Upsampling follows the texel-centre convention with clamped edges (the same numbers as
    ``jax.image.resize(..., method="linear")``).

    Args:
        base: ``(R, R, 3)`` template map.
        offsets: tuple of ``(r, r, 3)`` maps with ``r`` dividing ``R``.

    Returns:
        ``(R, R, 3)`` map.
    """
    base = jnp.asarray(base)
    R = base.shape[0]
    out = base
    for off in offsets:
        off = jnp.asarray(off)
        if R % off.shape[0] or off.shape[0] != off.shape[1]:
            raise ValueError(f"triplane_from_params: offset of shape {off.shape} does not divide R = {R}")
        out = out + _upsample(off, R)
    return out


def init_camera(
    points_3d: Float[ArrayLike, "K 3"],
    points_2d: Float[ArrayLike, "K 2"],
    focal: Float[ArrayLike, "2"],
    principal: Float[ArrayLike, "2"],
    *,
    weights: Float[ArrayLike, "K"] | None = None,
) -> tuple[Float[Array, "3"], Float[Array, "3"]]:
    """Closed-form camera initialisation from 3D↔2D landmark pairs (scaled orthographic).

    Fits ``x ≈ s · R[:2] X + t`` by least squares, projects the 2×3 block to the nearest pair of
    orthonormal rows, completes ``R`` with their cross product, and places the camera at depth
    ``f / s``. Pure JAX (jit/vmap-safe).

    Args:
        points_3d: ``(K, 3)`` template landmark positions (metres).
        points_2d: ``(K, 2)`` detected landmarks (pixels).
        focal: ``(2,)`` focal lengths.
        principal: ``(2,)`` principal point.
        weights: optional ``(K,)`` weights.

    Returns:
        ``(rotation, translation)``: rotation vector and translation of the world → camera map.
    """
    X = jnp.asarray(points_3d)
    x = jnp.asarray(points_2d, dtype=X.dtype)
    w = jnp.ones(X.shape[0], X.dtype) if weights is None else jnp.asarray(weights, X.dtype)
    w = w / jnp.maximum(jnp.sum(w), jnp.finfo(X.dtype).tiny)
    Xm = jnp.sum(w[:, None] * X, 0)
    xm = jnp.sum(w[:, None] * x, 0)
    Xc, xc = X - Xm, (x - xm) / jnp.asarray(focal, X.dtype)  # normalised image coordinates
    A = jnp.linalg.solve((Xc * w[:, None]).T @ Xc, (Xc * w[:, None]).T @ xc).T  # (2, 3)
    U, S, Vt = jnp.linalg.svd(A, full_matrices=False)
    rows = U @ Vt  # nearest orthonormal rows
    s = jnp.mean(S)
    R = jnp.concatenate([rows, jnp.cross(rows[0], rows[1])[None]], 0)
    depth = 1.0 / s  # camera depth of the landmarks' centroid
    # the centroid lands on xm at that depth: R Xm + t = depth · (xm_normalised, 1)
    xm_n = (xm - jnp.asarray(principal, X.dtype)) / jnp.asarray(focal, X.dtype)
    RXm = R @ Xm
    t = jnp.array([xm_n[0] * depth - RXm[0], xm_n[1] * depth - RXm[1], depth - RXm[2]])
    return matrix_to_rotvec(R), t


def learning_rate_schedule(lr: float, steps: int) -> optax.Schedule:
    """The fit's learning-rate schedule: a linear warm-up over ``min(10, steps / 10)`` steps
    (Adam's first full-size steps would throw the landmarks off), then cosine decay to 5 %.

    Args:
        lr: peak learning rate.
        steps: total number of steps.

    Returns:
        An ``optax`` schedule (step → learning rate).
    """
    warmup = min(10, max(steps // 10, 1))
    return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(steps, warmup + 1), end_value=0.05 * lr)


def grouped_adam(lr_shape: float, lr_rotation: float, lr_translation: float, steps: int) -> optax.GradientTransformation:
    """Adam with :func:`learning_rate_schedule` and one peak learning rate for the camera's
    ``rotation``, one for its ``translation`` and one for every other parameter (the shape).

    The same updates as ``optax.multi_transform`` of three ``optax.adam`` (Adam is elementwise and
    the schedule is linear in its peak), as one transformation: a smaller compiled step.
    """
    base = learning_rate_schedule(1.0, steps)

    def scale(updates, params=None):
        del params
        out = jax.tree.map(lambda u: -lr_shape * u, updates)
        return eqx.tree_at(lambda q: (q.rotation, q.translation), out,
                           (-lr_rotation * updates.rotation, -lr_translation * updates.translation))

    return optax.chain(optax.scale_by_adam(), optax.scale_by_schedule(base), optax.stateless(scale))


def geometry_fit(problem: GeometryProblem, config: GeometryFitConfig = GeometryFitConfig()) -> GeometryFit:
    """Build the geometry fit for a problem: ``init``, ``step``, ``run`` (optax style).

    Args:
        problem: the :class:`GeometryProblem` (template triplane, landmark UVs, intrinsics).
        config: the :class:`GeometryFitConfig`.

    Returns:
        A :class:`GeometryFit`. Batch faces with ``jax.vmap(fit.run, in_axes=(0, 0, None))``;
        on a CPU, ``jax.lax.map(lambda a: fit.run(a[0], a[1], n), (states, targets))`` is about
        2× faster per face (one face's maps stay in cache; see :doc:`/benchmarks`).

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.geometry import GeometryFitConfig, GeometryProblem, LandmarkTargets, geometry_fit
        >>> from machlib.geometry import GeometryParams
        >>> base = jnp.zeros((8, 8, 3)).at[..., 2].set(0.0)
        >>> problem = GeometryProblem(base, jnp.array([[0.25, 0.25], [0.75, 0.75]]),
        ...     jnp.array([100.0, 100.0]), jnp.array([32.0, 32.0]), symmetric=False, image_size=(64, 64))
        >>> fit = geometry_fit(problem, GeometryFitConfig(resolution=8, levels=2))
        >>> params = GeometryParams((jnp.zeros((4, 4, 3)), jnp.zeros((8, 8, 3))), jnp.zeros(3),
        ...                         jnp.array([0.0, 0.0, 1.0]))
        >>> targets = LandmarkTargets(jnp.array([[30.0, 30.0], [34.0, 34.0]]), jnp.ones(2), jnp.zeros(2))
        >>> state, metrics = fit.run(fit.init(params), targets, 100)
        >>> bool(metrics["landmark_px"][-1] < metrics["landmark_px"][0])
        True
    """
    R = config.resolution
    if problem.base.shape != (R, R, 3):
        raise ValueError(
            f"geometry_fit: problem.base has shape {problem.base.shape}, config.resolution is {R}"
        )
    optimizer = grouped_adam(config.lr_shape, config.lr_rotation, config.lr_translation, config.steps)

    # the intrinsics are constants of the problem; only the extrinsics are parameters
    fixed = Camera(jnp.zeros(3, problem.focal.dtype), jnp.zeros(3, problem.focal.dtype), problem.focal,
                   problem.principal, image_size=problem.image_size)

    def camera(params: GeometryParams) -> Camera:
        return fixed.replace_extrinsics(params.rotation, params.translation)

    def triplane(params: GeometryParams):
        tp = triplane_from_params(problem.base, params.offsets)
        if problem.offset_mask is None:
            return tp
        return problem.base + problem.offset_mask[..., None].astype(tp.dtype) * (tp - problem.base)

    def points(tp):
        if problem.landmark_base is None:
            return decode(tp, problem.landmark_uv)
        return problem.landmark_base + decode(tp - problem.base, problem.landmark_uv)

    def loss(params: GeometryParams, targets: LandmarkTargets):
        tp = triplane(params)
        cam = camera(params)
        V = points(tp)
        r = project(V, cam) - targets.points
        per = jnp.sqrt(jnp.sum(r * r, axis=-1) + config.delta**2) - config.delta
        l_lmk = jnp.sum(targets.weights * per) / jnp.maximum(jnp.sum(targets.weights), jnp.finfo(per.dtype).tiny)
        disp = tp - problem.base
        l_tv = total_variation(disp)
        l_sym = symmetry_loss(tp) if problem.symmetric else jnp.zeros((), tp.dtype)
        total = l_lmk + config.lambda_tv * l_tv + config.lambda_sym * l_sym
        if config.lambda_offset:
            total = total + config.lambda_offset * jnp.mean(jnp.sum((1000.0 * disp) ** 2, -1))
        if config.lambda_depth:
            z = world_to_camera(V, cam)[:, 2]
            w = targets.weights / jnp.maximum(jnp.sum(targets.weights), 1e-12)
            zm = jnp.maximum(jnp.sum(w * z), 1e-3)  # in front of the camera; finite if not
            pred = (z - zm) * problem.focal[0] / zm  # relative depth in pixels
            tgt = targets.depth - jnp.sum(w * targets.depth)
            l_depth = jnp.sum(w * (pred - tgt) ** 2)
            total = total + config.lambda_depth * l_depth
        dist = jnp.sqrt(jnp.sum(r * r, -1) + 1e-12)
        wsum = jnp.maximum(jnp.sum(targets.weights > 0), 1)
        metrics = {
            "loss": total,
            "landmark": l_lmk,
            "tv": l_tv,
            "symmetry": l_sym,
            "landmark_px": jnp.sum(jnp.where(targets.weights > 0, dist, 0.0)) / wsum,
        }
        return total, metrics

    def init(params: GeometryParams) -> GeometryFitState:
        return GeometryFitState(params, optimizer.init(params), jnp.zeros((), jnp.int32))

    def step(state: GeometryFitState, targets: LandmarkTargets):
        (_, metrics), grads = jax.value_and_grad(loss, has_aux=True)(state.params, targets)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return GeometryFitState(params, opt_state, state.step + 1), metrics

    @eqx.filter_jit
    def _run(state, targets, num_steps):
        return jax.lax.scan(lambda s, _: step(s, targets), state, None, length=num_steps)

    def run(state: GeometryFitState, targets: LandmarkTargets, num_steps: int):
        if not isinstance(num_steps, int) or num_steps < 0:
            raise ValueError(f"GeometryFit.run: num_steps must be an int >= 0, got {num_steps!r}")
        return _run(state, targets, num_steps)

    return GeometryFit(init, step, run, loss, camera, triplane)


def zero_params(config: GeometryFitConfig, rotation, translation, *, dtype=jnp.float32) -> GeometryParams:
    """Zero offsets at every pyramid level plus the given camera extrinsics."""
    R = config.resolution
    sizes = [R // 2 ** (config.levels - 1 - l) for l in range(config.levels)]
    return GeometryParams(
        offsets=tuple(jnp.zeros((s, s, 3), dtype) for s in sizes),
        rotation=jnp.asarray(rotation, dtype),
        translation=jnp.asarray(translation, dtype),
    )


class GeometryResult(NamedTuple):
    """Result of :func:`fit_landmarks`.

    Attributes:
        mesh: the fitted :class:`~machlib.Mesh` (template topology and UVs).
        camera: the fitted :class:`~machlib.Camera`.
        triplane: ``(R, R, 3)`` fitted position map.
        residuals: ``(K, 2)`` per-landmark pixel residuals (projected − detected); rows of
            landmarks the template does not define are zero.
        history: per-step metrics (numpy arrays of length ``steps``).
        compile_seconds: time spent tracing and compiling the fit's programs (about zero when a
            fit with the same configuration and shapes was compiled earlier in the process); for
            a human template this includes the set-up and between-stage programs.
        fit_seconds: time of the compiled optimisation.
        human: for a template made from the parametric human, the first stage's
            :class:`~machlib.geometry.HumanStage` (the fitted human, its camera and residuals);
            the times above then cover both stages.
        setup_seconds: everything else in the call: the template's maps, camera
            initialisation, building the problem and the result (running their compiled
            programs, and for the procedural template the first-call compilations of its eager
            set-up). ``setup_seconds + compile_seconds + fit_seconds`` is the wall time of the
            call (:attr:`total_seconds`); landmark detection and template loading are not in it.
    """

    mesh: object
    camera: Camera
    triplane: Array
    residuals: np.ndarray
    history: dict
    compile_seconds: float
    fit_seconds: float
    human: object = None
    setup_seconds: float = 0.0

    @property
    def total_seconds(self) -> float:
        """Wall time of the :func:`fit_landmarks` call: set-up + compile + fit."""
        return self.setup_seconds + self.compile_seconds + self.fit_seconds


_COMPILED: dict = {}  # (program, static key, abstract signature of the arguments) -> compiled executable
_COMPILED_MAX = 16
_COMPILED_LOCK = threading.Lock()

#: XLA options of machlib's compiled fits: LLVM's expensive passes off (a tenth less compile time
#: on CPU for the same results: the fits' programs are small loops, not big kernels), and XLA's
#: classic CPU fusion emitters instead of the MLIR ones (stage 1's program: 5.2 -> 3.0 s CPU to
#: compile, bit-identical results; in other programs transcendental functions may round
#: differently in the last bit). :func:`machlib._cache.enable_compilation_cache` sets the same
#: emitters for every program of a command (:data:`machlib._cache.XLA_CPU_FLAGS`); both only on
#: the jaxlib releases the option was checked on (:data:`machlib._cache.FLAGS_CHECKED_ON`).
#: The backend optimisation level is XLA's default (3), stated so that it holds whoever calls: the
#: command line and the batch workers compile everything else at level 2
#: (:data:`machlib._cache.XLA_CPU_FLAGS`), which for these programs saves no compile time but
#: would round differently from a library user's fit of the same photo.
COMPILER_OPTIONS = {"xla_llvm_disable_expensive_passes": True, "xla_backend_optimization_level": 3,
                    **({"xla_cpu_use_fusion_emitters": False} if classic_emitters_known() else {})}


def _signature(leaf):
    if isinstance(leaf, (jax.Array, np.ndarray, np.generic)):
        return (np.shape(leaf), str(leaf.dtype))
    return ("static", leaf)  # eqx.filter_jit treats non-array leaves as static: their value counts


def compile_program(fn, *args, key=()):
    """``fn(*args)`` under ``eqx.filter_jit``, lowered and compiled once per ``fn``, ``key`` and
    argument signature (shapes and dtypes; the values of non-array leaves) and reused.

    Returns ``(compiled, seconds)``: the executable (call it with arguments of the same
    signature) and the time spent tracing and compiling in this call (0 when reused). ``fn``
    should be a module-level function (its identity is part of the key); options that change
    the program go in ``key`` or in static leaves."""
    import time

    sig = _program_key(fn, args, key)
    hit = _cached_program(sig)
    if hit is not None:
        return hit, 0.0
    t = time.perf_counter()
    compiled = eqx.filter_jit(fn).lower(*args).compile(COMPILER_OPTIONS)
    _remember(sig, compiled)
    return compiled, time.perf_counter() - t


def _program_key(fn, args, key):
    leaves, treedef = jax.tree.flatten(args)
    return (fn, key, treedef, tuple(_signature(x) for x in leaves))


def _cached_program(sig):
    with _COMPILED_LOCK:
        return _COMPILED.get(sig)


def _remember(sig, compiled) -> None:
    # under a lock: programs may be compiled from several threads (compile_program_async,
    # threaded callers); without it two evictions can pop the same key (KeyError)
    with _COMPILED_LOCK:
        if sig not in _COMPILED and len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.pop(next(iter(_COMPILED)))
        _COMPILED[sig] = compiled


def compile_program_async(fn, *args, key=()):
    """:func:`compile_program` with XLA's compilation in a background thread.

    ``fn`` is traced and lowered here (Python, under the GIL); the compilation itself, which
    releases the GIL, runs in a thread, so that the caller can trace and compile other programs
    meanwhile (on two cores a cold fit's programs then compile side by side). Returns a function
    that waits for the thread and returns ``(compiled, seconds)`` like :func:`compile_program`
    (``seconds``: from this call to the end of the compilation; an error of the compilation is
    raised there). The executable is the one :func:`compile_program` would build. With a single
    usable core it compiles here, before returning (a thread would only add overhead)."""
    import os
    import time

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cores < 2:
        done = compile_program(fn, *args, key=key)
        return lambda: done
    sig = _program_key(fn, args, key)
    hit = _cached_program(sig)
    if hit is not None:
        return lambda: (hit, 0.0)
    t = time.perf_counter()
    lowered = eqx.filter_jit(fn).lower(*args)
    box: dict = {}

    def work():
        try:
            box["compiled"] = lowered.compile(COMPILER_OPTIONS)
        except BaseException as e:  # noqa: BLE001 (re-raised in the caller's thread)
            box["error"] = e
        box["seconds"] = time.perf_counter() - t

    thread = threading.Thread(target=work, name=f"machlib-compile-{getattr(fn, '__name__', 'program')}", daemon=True)
    thread.start()

    def wait():
        thread.join()
        if "error" in box:
            raise box["error"]
        _remember(sig, box["compiled"])
        return box["compiled"], box["seconds"]

    return wait


def _scan_program(factory, config, problem, state, targets):
    fit = factory(problem, config)
    return jax.lax.scan(lambda s, _: fit.step(s, targets), state, None, length=config.steps)


def _compile_once(factory, problem, state, targets, config):
    """A fit's whole ``lax.scan`` of ``factory(problem, config).step``, compiled once per
    factory, config and argument shapes and reused: fitting faces one after another in a process
    then compiles only the first time."""
    compiled, _ = compile_program(_scan_program, factory, config, problem, state, targets)
    return functools.partial(compiled, factory, config)


def _compiled_program(problem, state, targets, config):
    """The whole triplane fit (``lax.scan`` of :func:`geometry_fit`'s step), compiled once per
    config and argument shapes."""
    return _compile_once(geometry_fit, problem, state, targets, config)


def landmark_weights(template, *, confidence: np.ndarray | None = None) -> np.ndarray:
    """Per-landmark weights: the template's validity times detector confidence (``(K,)``)."""
    w = np.asarray(template.landmark_valid, dtype=np.float32)
    if confidence is not None:
        w = w * np.clip(np.asarray(confidence, dtype=np.float32), 0.05, 1.0)
    return w


def fit_landmarks(
    landmarks,
    template,
    image_size: tuple[int, int],
    *,
    config: GeometryFitConfig | None = None,
    human_config=None,
    human_prior=None,
    fov_degrees: float = 25.0,
    use_confidence: bool = True,
) -> GeometryResult:
    """Fit the template to detected landmarks: camera initialisation, then ``config.steps``
    compiled steps of :func:`geometry_fit`.

    Args:
        landmarks: a :class:`~machlib.geometry.Landmarks` (points, depth, confidence).
        template: the :class:`~machlib.geometry.Template`.
        image_size: ``(width, height)`` of the portrait.
        config: the :class:`GeometryFitConfig` (of the second stage for a human template);
            ``None``: the default (:data:`HUMAN_RESIDUAL_CONFIG` for a human template).
        human_config: the :class:`~machlib.geometry.HumanFitConfig` of the first stage (human
            templates only); ``None``: the default.
        human_prior: a :class:`~machlib.geometry.HumanPrior` for the first stage (e.g. from the
            prompt's attributes; human templates only).
        fov_degrees: vertical field of view of the fixed intrinsics.
        use_confidence: weight landmarks by the detector's confidence.

    Returns:
        A :class:`GeometryResult`.

    For a template made from the parametric human (``template.human``, the default) the fit has
    two stages: :func:`~machlib.geometry.fit_human` (camera and human shape, ``human_config``),
    then ``config``'s triplane residual from that result; ``config`` defaults to
    :data:`HUMAN_RESIDUAL_CONFIG` there.
    """
    import time

    start = time.perf_counter()
    if getattr(template, "human", None) is not None:
        from ._human_fit import fit_human

        return fit_human(landmarks, template, image_size, config=config, human_config=human_config,
                         fov_degrees=fov_degrees, use_confidence=use_confidence, prior=human_prior)

    from ._triplane import decode_mesh

    config = GeometryFitConfig() if config is None else config
    points = np.asarray(landmarks.points, dtype=np.float32)
    if points.shape != (len(template.landmark_uv), 2):
        raise ValueError(
            f"fit_landmarks: {points.shape[0]} landmarks given, the template defines "
            f"{len(template.landmark_uv)}"
        )
    focal, principal = intrinsics_from_fov(image_size, fov_degrees=fov_degrees)
    base = template.position_map(config.resolution)
    weights = landmark_weights(template, confidence=landmarks.confidence if use_confidence else None)
    problem = GeometryProblem(
        base=base, landmark_uv=jnp.asarray(template.landmark_uv, jnp.float32),
        focal=focal.astype(jnp.float32), principal=principal.astype(jnp.float32),
        symmetric=bool(template.symmetric), image_size=tuple(int(s) for s in image_size),
    )
    X = decode(base, problem.landmark_uv)
    rot, trans = init_camera(X, points, focal, principal, weights=weights)
    fit = geometry_fit(problem, config)
    targets = LandmarkTargets(
        jnp.asarray(points), jnp.asarray(weights), jnp.asarray(landmarks.depth, jnp.float32)
    )
    state = fit.init(zero_params(config, rot, trans))
    t0 = time.perf_counter()
    compiled = _compiled_program(problem, state, targets, config)
    t1 = time.perf_counter()
    state, metrics = compiled(problem, state, targets)
    jax.block_until_ready(state)
    t2 = time.perf_counter()
    tp = fit.triplane(state.params)
    cam = fit.camera(state.params)
    res = np.array(landmark_residuals(tp, cam, problem.landmark_uv, targets.points))
    res[~np.asarray(template.landmark_valid)] = 0.0
    mesh = decode_mesh(tp, template.mesh)
    history = {k: np.asarray(v) for k, v in metrics.items()}
    return GeometryResult(
        mesh=mesh,
        camera=cam,
        triplane=tp,
        residuals=res,
        history=history,
        compile_seconds=t1 - t0,
        fit_seconds=t2 - t1,
        setup_seconds=(time.perf_counter() - start) - (t2 - t0),
    )
