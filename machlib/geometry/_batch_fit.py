"""The two-stage fit of a human template over many faces as one compiled program.

:func:`fit_human_batch` does what :func:`~machlib.geometry.fit_human` does for one face, for a
list of faces: the set-up, stage 1 (camera + human), the glue between the stages, stage 2 (the
residual triplane) and the skin's displacement, for every face inside one ``lax.map`` (the same
phase functions ``fit_human`` compiles one by one); only the host-side finish (smoothing the
displacement over space, parting crossed lips and lids) runs per face. The faces' intrinsics,
loss scale and weights are mapped arrays, so faces of different image sizes share the program,
and padding the list to a fixed length (``pad_to``) makes every batch reuse it. A test checks
that both paths give the same fit (tests/test_batch.py).
"""

from __future__ import annotations

import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._camera import Camera, intrinsics_from_fov
from .._mesh import Mesh
from ._fit import (
    GeometryResult,
    LandmarkTargets,
    _scan_program,
    compile_program,
    geometry_fit,
    landmark_weights,
)
from ._human_fit import (
    STAGE1_WEIGHTS,
    STAGE2_WEIGHTS,
    HumanFitConfig,
    HumanStage,
    _after_stage2,
    _between_stages,
    _contact_faces,
    _head_constants,
    _offset_mask,
    _project_np,
    _raster,
    _smooth_in_space,
    _stage1_start,
    _stage_weights,
    human_fit,
    human_problem,
    residual_config,
)
from ._quality import separate_surfaces

__all__ = ["fit_human_batch"]

# one canonical static image size for the shared problem: only focal and principal (mapped per
# face) enter the computation, so faces of any size run in the same program
_CANON = (512, 512)


def _whole_fit(human_config, config, problem, X0, model, consts, vertex_uv, targets, weights2, focal, principal,
               scale):
    """Both stages of every face, one face after another inside one program (``lax.map``)."""

    def one(a):
        tgt, w2, f, p, s = a
        prob = eqx.tree_at(lambda q: (q.focal, q.principal, q.scale), problem, (f, p, s))
        state = _stage1_start(human_config, prob, X0, tgt)
        state, m1 = _scan_program(human_fit, human_config, prob, state, tgt)
        hp, cam1, L1, res1, P1, P0, problem2, state2 = _between_stages(human_config, config, prob, state.params,
                                                                       model, consts, tgt.points)
        state2, m2 = _scan_program(geometry_fit, config, problem2, state2, tgt._replace(weights=w2))
        tp, cam, d_skin = _after_stage2(config, problem2, state2.params, vertex_uv)
        return (hp, cam1.rotation, cam1.translation, L1, res1, P1, P0, m1, m2, tp, cam.rotation, cam.translation,
                d_skin)

    return jax.lax.map(one, (targets, weights2, focal, principal, scale))


def fit_human_batch(landmarks, template, image_sizes, *, pad_to: int | None = None, config=None,
                    human_config=None, fov_degrees: float = 25.0, use_confidence: bool = True) -> list:
    """The two-stage fit of a human template for many faces, as one compiled program.

    Args:
        landmarks: a sequence of ``n ≥ 1`` :class:`~machlib.geometry.Landmarks` (478 points each).
        template: a template with ``human`` set (:func:`~machlib.geometry.default_template`).
        image_sizes: ``n`` ``(width, height)`` pairs, one per face.
        pad_to: run the program on this many faces (``≥ n``; the last face is repeated and its
            copies dropped), so that batches of fewer faces reuse the compiled program;
            default ``n``.
        config, human_config, fov_degrees, use_confidence: as for
            :func:`~machlib.geometry.fit_landmarks` (the same for every face).

    Returns:
        ``n`` :class:`~machlib.geometry.GeometryResult`, as ``fit_landmarks`` gives for each face
        on its own (to float rounding). Their ``compile_seconds`` and ``fit_seconds`` are the
        program's divided by ``n`` (both stages: so are the ``HumanStage``'s);
        ``setup_seconds`` is each face's own host-side work plus its share of the batch's.

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

    # per face: targets, stage weights, intrinsics and loss scale (as fit_human)
    faces = []
    for lm, size in zip(landmarks, sizes):
        points = np.asarray(lm.points, np.float32)
        if points.shape != (478, 2):
            raise ValueError(f"fit_human_batch: {points.shape[0]} landmarks given, the human template defines 478")
        confidence = landmark_weights(template, confidence=lm.confidence if use_confidence else None)
        weights = _stage_weights(confidence, STAGE1_WEIGHTS)
        box = np.ptp(points[weights > 0], axis=0)
        focal, principal = intrinsics_from_fov(size, fov_degrees=fov_degrees)
        faces.append({
            "points": points, "size": size, "focal": focal.astype(jnp.float32),
            "principal": principal.astype(jnp.float32),
            "scale": jnp.asarray(max(float(np.hypot(*box)) / 256.0, 1e-3), jnp.float32),
            "targets": LandmarkTargets(jnp.asarray(points), jnp.asarray(weights),
                                       jnp.asarray(lm.depth, jnp.float32)),
            "weights2": jnp.asarray(_stage_weights(confidence, STAGE2_WEIGHTS)),
        })
    order = list(range(n)) + [n - 1] * (B - n)

    def stack(key):
        return jax.tree.map(lambda *xs: jnp.stack(xs), *[faces[i][key] for i in order])

    problem = human_problem(template, _CANON, fov_degrees=fov_degrees)
    R = config.resolution
    consts = (jnp.asarray(template.landmark_uv, jnp.float32), jnp.asarray(_offset_mask(template, R)),
              jnp.asarray(head.topology.mirror), _raster(template.mesh, R), bool(template.symmetric), ns)
    vertex_uv = jnp.asarray(template.mesh.vertex_uv(), jnp.float32)
    args = (human_config, config, problem, _head_constants(head)[0], head.model, consts, vertex_uv,
            stack("targets"), stack("weights2"), stack("focal"), stack("principal"), stack("scale"))
    t0 = time.perf_counter()
    program, compile_s = compile_program(_whole_fit, *args)
    t1 = time.perf_counter()
    out = jax.block_until_ready(program(*args))
    t2 = time.perf_counter()
    hp_all, rot1, trans1, L1s, res1s, P1s, P0s, m1, m2, tps, rots, transs, d_skins = jax.tree.map(np.asarray, out)
    shared = ((t0 - start) + (t1 - t0 - compile_s)) / n

    results = []
    for i, f in enumerate(faces):
        t = time.perf_counter()
        hp = jax.tree.map(lambda x, i=i: x[i], hp_all)
        cam1 = Camera(jnp.asarray(rot1[i]), jnp.asarray(trans1[i]), f["focal"], f["principal"], image_size=f["size"])
        cam = Camera(jnp.asarray(rots[i]), jnp.asarray(transs[i]), f["focal"], f["principal"], image_size=f["size"])
        L1, P1, P0 = L1s[i], P1s[i], P0s[i]
        d_skin = _smooth_in_space(d_skins[i], P0[:ns])
        d_all = np.concatenate([d_skin, d_skin[head.helper_anchor]])
        final = (P1 + d_all).astype(np.float32)
        neutral = (P0 + d_all).astype(np.float32)
        neutral[:ns] = separate_surfaces(neutral[:ns], head.topology.faces,
                                         candidates=_contact_faces(template, L1))[0]
        F = head.topology.faces[head.landmark_faces]
        L2 = np.einsum("kc,kcd->kd", head.landmark_bary, final[F]).astype(np.float32)
        res2 = _project_np(L2, cam) - f["points"]
        mesh = Mesh(final[:ns], template.mesh.faces, template.mesh.uv, template.mesh.faces_uv)
        stage = HumanStage(hp, cam1, res1s[i], {k: v[i] for k, v in m1.items()}, final, neutral, P1, L2,
                           compile_s / n, (t2 - t1) / n)
        results.append(GeometryResult(
            mesh=mesh, camera=cam, triplane=jnp.asarray(tps[i]), residuals=res2,
            history={k: v[i] for k, v in m2.items()}, compile_seconds=compile_s / n, fit_seconds=(t2 - t1) / n,
            human=stage, setup_seconds=shared + time.perf_counter() - t,
        ))
    return results
