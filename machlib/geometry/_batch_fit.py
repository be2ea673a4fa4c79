"""The two-stage fit of a human template over many faces in one compiled program per stage.

:func:`fit_human_batch` does what :func:`~machlib.geometry.fit_human` does for one face, for a
list of faces: stage 1 (camera + human) for all faces in one ``lax.map`` of the compiled
``lax.scan``, the per-face glue (the fitted human's surface, its triplane encoding), then
stage 2 (the residual triplane) for all faces in a second ``lax.map``. The faces' intrinsics and
loss scale are mapped arrays, so faces of different image sizes share the programs, and padding
the list to a fixed length (``pad_to``) makes every batch reuse them. The per-face steps are
those of ``fit_human``; a test checks that both give the same fit (tests/test_batch.py).
"""

from __future__ import annotations

import dataclasses
import functools
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._camera import intrinsics_from_fov, project
from .._mesh import Mesh
from ..human import HumanParams, human_points
from ._fit import (
    GeometryProblem,
    GeometryResult,
    LandmarkTargets,
    geometry_fit,
    landmark_weights,
    zero_params,
)
from ._human_fit import (
    STAGE1_WEIGHTS,
    STAGE2_WEIGHTS,
    HumanFitConfig,
    HumanStage,
    _contact_faces,
    _init_camera,
    _offset_mask,
    _raster,
    _smooth_in_space,
    _stage_weights,
    head_points,
    human_fit,
    human_problem,
    initial_params,
    residual_config,
)
from ._quality import separate_surfaces
from ._triplane import decode, encode

__all__ = ["fit_human_batch"]

# one canonical static image size for the shared problems: only focal and principal (mapped per
# face) enter the loss, so faces of any size run in the same program
_CANON = (512, 512)
_PROGRAMS: dict = {}
_PROGRAMS_MAX = 8


def _stack(trees):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _unstack(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


def _stage1(problem, states, targets, focal, principal, scale, *, config):
    def one(a):
        state, tgt, f, p, s = a
        prob = eqx.tree_at(lambda q: (q.focal, q.principal, q.scale), problem, (f, p, s))
        fit = human_fit(prob, config)
        return jax.lax.scan(lambda c, _: fit.step(c, tgt), state, None, length=config.steps)

    return jax.lax.map(one, (states, targets, focal, principal, scale))


def _stage2(problem, states, targets, base, focal, principal, landmark_base, *, config):
    def one(a):
        state, tgt, b, f, p, lb = a
        prob = eqx.tree_at(lambda q: (q.base, q.focal, q.principal, q.landmark_base), problem, (b, f, p, lb))
        fit = geometry_fit(prob, config)
        return jax.lax.scan(lambda c, _: fit.step(c, tgt), state, None, length=config.steps)

    return jax.lax.map(one, (states, targets, base, focal, principal, landmark_base))


def _compiled(fn, config, *args):
    """``fn`` over a batch, compiled once per config and argument shapes (so per batch size)."""
    leaves, treedef = jax.tree.flatten(args)
    key = (fn, config, treedef, tuple((np.shape(x), str(getattr(x, "dtype", type(x)))) for x in leaves))
    if key not in _PROGRAMS:
        if len(_PROGRAMS) >= _PROGRAMS_MAX:
            _PROGRAMS.pop(next(iter(_PROGRAMS)))
        _PROGRAMS[key] = eqx.filter_jit(functools.partial(fn, config=config)).lower(*args).compile()
    return _PROGRAMS[key]


def fit_human_batch(landmarks, template, image_sizes, *, pad_to: int | None = None, config=None,
                    human_config=None, fov_degrees: float = 25.0, use_confidence: bool = True) -> list:
    """The two-stage fit of a human template for many faces, each stage one compiled program.

    Args:
        landmarks: a sequence of ``n ≥ 1`` :class:`~machlib.geometry.Landmarks` (478 points each).
        template: a template with ``human`` set (:func:`~machlib.geometry.default_template`).
        image_sizes: ``n`` ``(width, height)`` pairs, one per face.
        pad_to: run the programs on this many faces (``≥ n``; the last face is repeated and its
            copies dropped), so that batches of fewer faces reuse the compiled programs;
            default ``n``.
        config, human_config, fov_degrees, use_confidence: as for
            :func:`~machlib.geometry.fit_landmarks` (the same for every face).

    Returns:
        ``n`` :class:`~machlib.geometry.GeometryResult`, as ``fit_landmarks`` gives for each face
        on its own (to float rounding). Their ``compile_seconds`` and ``fit_seconds`` are the
        batch's divided by ``n``; ``setup_seconds`` is each face's own glue plus its share of
        the batch's.

    Raises:
        ValueError: no faces, mismatched lengths, ``pad_to < n``, a template without ``human``,
            or landmarks that are not ``(478, 2)``.
    """
    start = time.perf_counter()
    n = len(landmarks)
    if n < 1 or len(image_sizes) != n:
        raise ValueError(f"fit_human_batch: need n >= 1 landmarks and as many image sizes, got {n} and "
                         f"{len(image_sizes)}")
    B = n if pad_to is None else int(pad_to)
    if B < n:
        raise ValueError(f"fit_human_batch: pad_to ({B}) must be >= the number of faces ({n})")
    if getattr(template, "human", None) is None:
        raise ValueError("fit_human_batch: the template has no parametric human (template.human)")
    config = residual_config() if config is None else config
    human_config = HumanFitConfig() if human_config is None else human_config
    head = template.human
    ns = head.topology.num_skin
    sizes = [tuple(int(s) for s in size) for size in image_sizes]

    # stage 1, per face: targets, intrinsics, scale, the closed-form camera, the initial state
    shared = human_problem(template, _CANON, fov_degrees=fov_degrees)
    X0 = jnp.asarray(human_points(head.landmarks, head.params))
    faces = []
    for lm, size in zip(landmarks, sizes):
        points = np.asarray(lm.points, np.float32)
        if points.shape != (478, 2):
            raise ValueError(f"fit_human_batch: {points.shape[0]} landmarks given, the human template defines 478")
        confidence = landmark_weights(template, confidence=lm.confidence if use_confidence else None)
        weights = _stage_weights(confidence, STAGE1_WEIGHTS)
        box = np.ptp(points[weights > 0], axis=0)
        scale = jnp.asarray(max(float(np.hypot(*box)) / 256.0, 1e-3), jnp.float32)
        focal, principal = intrinsics_from_fov(size, fov_degrees=fov_degrees)
        focal, principal = focal.astype(jnp.float32), principal.astype(jnp.float32)
        problem = dataclasses.replace(shared, focal=focal, principal=principal, scale=scale, image_size=size)
        targets = LandmarkTargets(jnp.asarray(points), jnp.asarray(weights), jnp.asarray(lm.depth, jnp.float32))
        rot, trans = _init_camera(X0, targets.points, problem.focal, problem.principal, targets.weights)
        fit1 = human_fit(problem, human_config)
        faces.append({"points": points, "confidence": confidence, "problem": problem, "targets": targets,
                      "fit1": fit1, "state": fit1.init(initial_params(problem, rot, trans))})
    order = list(range(n)) + [n - 1] * (B - n)
    args1 = (shared, _stack([faces[i]["state"] for i in order]), _stack([faces[i]["targets"] for i in order]),
             *(jnp.stack([getattr(faces[i]["problem"], k) for i in order]) for k in ("focal", "principal", "scale")))
    t0 = time.perf_counter()
    program1 = _compiled(_stage1, human_config, *args1)
    t1 = time.perf_counter()
    states1, metrics1 = jax.block_until_ready(program1(*args1))
    t2 = time.perf_counter()

    # the glue between the stages, per face (as fit_human)
    R = config.resolution
    raster = _raster(template.mesh, R)
    landmark_uv = jnp.asarray(template.landmark_uv, jnp.float32)
    offset_mask = jnp.asarray(_offset_mask(template, R))
    problems2 = []
    for i, f in enumerate(faces):
        params = _unstack(states1.params, i)
        fit1 = f["fit1"]
        hp = jax.tree.map(np.asarray, fit1.human(params))
        cam1 = fit1.camera(params)
        L1 = np.asarray(fit1.landmarks(params))
        P1 = head_points(template, HumanParams(*(jnp.asarray(x) for x in (hp.phenotype, hp.modifiers, hp.expression))))
        P0 = head_points(template, HumanParams(jnp.asarray(hp.phenotype), jnp.asarray(hp.modifiers),
                                               jnp.zeros_like(jnp.asarray(hp.expression))))
        base = encode(jnp.asarray(P1[:ns]), raster)
        problem2 = GeometryProblem(
            base=base, landmark_uv=landmark_uv, focal=f["problem"].focal, principal=f["problem"].principal,
            symmetric=bool(template.symmetric), image_size=f["problem"].image_size,
            landmark_base=jnp.asarray(L1, jnp.float32), offset_mask=offset_mask,
        )
        fit2 = geometry_fit(problem2, config)
        f.update(hp=hp, cam1=cam1, L1=L1, P1=P1, P0=P0, base=base, problem2=problem2, fit2=fit2,
                 res1=np.asarray(project(jnp.asarray(L1), cam1)) - f["points"],
                 history1={k: np.asarray(v[i]) for k, v in metrics1.items()},
                 state2=fit2.init(zero_params(config, cam1.rotation, cam1.translation)),
                 targets2=f["targets"]._replace(weights=jnp.asarray(_stage_weights(f["confidence"], STAGE2_WEIGHTS))))
        problems2.append(problem2)

    # stage 2: the residual triplane of every face in one program
    shared2 = dataclasses.replace(problems2[0], image_size=_CANON)
    args2 = (shared2, _stack([faces[i]["state2"] for i in order]), _stack([faces[i]["targets2"] for i in order]),
             *(jnp.stack([getattr(problems2[i], k) for i in order])
               for k in ("base", "focal", "principal", "landmark_base")))
    t3 = time.perf_counter()
    program2 = _compiled(_stage2, config, *args2)
    t4 = time.perf_counter()
    states2, metrics2 = jax.block_until_ready(program2(*args2))
    t5 = time.perf_counter()

    results = []
    batch_compile, batch_fit = ((t1 - t0) + (t4 - t3)) / n, ((t2 - t1) + (t5 - t4)) / n
    shared_setup = (t0 - start) / n
    for i, f in enumerate(faces):
        t = time.perf_counter()
        fit2 = f["fit2"]
        params2 = _unstack(states2.params, i)
        tp = fit2.triplane(params2)
        cam = fit2.camera(params2)
        disp = tp - f["base"]
        d_skin = np.asarray(decode(disp, jnp.asarray(template.mesh.vertex_uv(), jnp.float32)))
        d_skin = _smooth_in_space(d_skin, f["P0"][:ns])
        d_all = np.concatenate([d_skin, d_skin[head.helper_anchor]])
        final = (f["P1"] + d_all).astype(np.float32)
        neutral = (f["P0"] + d_all).astype(np.float32)
        neutral[:ns] = separate_surfaces(neutral[:ns], head.topology.faces,
                                         candidates=_contact_faces(template, f["L1"]))[0]
        F = head.topology.faces[head.landmark_faces]
        L2 = np.einsum("kc,kcd->kd", head.landmark_bary, final[F]).astype(np.float32)
        res2 = np.asarray(project(jnp.asarray(L2), cam)) - f["points"]
        mesh = Mesh(final[:ns], template.mesh.faces, template.mesh.uv, template.mesh.faces_uv)
        stage = HumanStage(f["hp"], f["cam1"], f["res1"], f["history1"], final, neutral, f["P1"], L2,
                           (t1 - t0) / n, (t2 - t1) / n)
        history = {k: np.asarray(v[i]) for k, v in metrics2.items()}
        own = time.perf_counter() - t
        results.append(GeometryResult(mesh=mesh, camera=cam, triplane=tp, residuals=res2, history=history,
                                      compile_seconds=batch_compile, fit_seconds=batch_fit, human=stage,
                                      setup_seconds=own + shared_setup + ((t3 - t2) / n)))
    return results
