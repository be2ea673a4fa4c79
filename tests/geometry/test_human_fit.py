"""The two-stage fit of the human template: synthetic recovery, real portraits (no
self-intersections, no spikes), the stage-1 optax pieces, jit/vmap."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import machlib
from machlib import look_at, project, world_to_camera
from machlib.geometry import (
    GeometryFitConfig,
    HumanFitConfig,
    LandmarkTargets,
    Landmarks,
    default_template,
    detect_landmarks,
    fit_landmarks,
    human_fit,
    human_problem,
    initial_params,
    init_camera,
    mirror_permutation,
    self_intersections,
    spikes,
)
from machlib.human import HumanParams, human_points, phenotype, symmetric_sliders, symmetrize_points

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def template():
    return default_template()


def _umeyama(A, B):
    """A aligned to B by the best similarity (rotation, translation, scale)."""
    ma, mb = A.mean(0), B.mean(0)
    A0, B0 = A - ma, B - mb
    U, S, Vt = np.linalg.svd(B0.T @ A0)
    D = np.eye(3)
    D[2, 2] = np.sign(np.linalg.det(U @ Vt))
    R = U @ D @ Vt
    s = (S * np.diag(D)).sum() / (A0**2).sum()
    return s * A0 @ R.T + mb


def _synthetic(template, seed):
    """Landmarks of a random human (phenotype, sliders) seen by a random camera."""
    rng = np.random.default_rng(seed)
    basis, names, single = symmetric_sliders()
    values = np.clip(rng.normal(0.0, 0.3, len(names)), -1, 1)
    values[single] = np.abs(values[single])
    hp = HumanParams(phenotype(gender=rng.uniform(0, 1), age=rng.uniform(0.3, 0.9)),
                     jnp.asarray(basis @ values, jnp.float32), jnp.zeros(52))
    L = np.asarray(symmetrize_points(human_points(template.human.landmarks, hp), mirror_permutation()))
    yaw, pitch = np.radians(rng.uniform(-25, 25)), np.radians(rng.uniform(-12, 12))
    eye = np.array([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)]) * rng.uniform(0.5, 0.9)
    cam = look_at(jnp.asarray(eye), jnp.zeros(3), image_size=(512, 512))
    px = np.asarray(project(jnp.asarray(L), cam))
    z = np.asarray(world_to_camera(jnp.asarray(L), cam))[:, 2]
    depth = (z - z.mean()) * float(cam.focal[0]) / z.mean()
    lm = Landmarks(px.astype(np.float32), depth.astype(np.float32), np.ones(478, np.float32),
                   np.r_[px.min(0), px.max(0)].astype(np.float32))
    return lm, L


@pytest.mark.parametrize("seed", [0, 1])
def test_synthetic_recovery_within_2mm(template, seed):
    lm, truth = _synthetic(template, seed)
    r = fit_landmarks(lm, template, (512, 512))
    err = np.linalg.norm(_umeyama(r.human.landmarks, truth) - truth, axis=1)
    assert np.median(err) <= 0.002
    assert np.linalg.norm(r.residuals, axis=1).mean() < 2.0  # lids and inner lips are left to stage 1
    assert r.human.points.shape == template.human.points.shape


def test_held_gender_and_age_are_reported_in_words(template):
    """A prompt's gender and age are held by stage 1 and reported in words; without them the
    report gives no gender or age (one view's landmarks do not tell them)."""
    from machlib.geometry import HumanPrior
    from machlib.pipeline import FitOutput, human_report

    lm, _ = _synthetic(template, 0)
    prior = HumanPrior.from_attributes({"gender": "male", "age_group": "elderly"})
    r = fit_landmarks(lm, template, (512, 512), human_prior=prior)
    assert set(r.human.held) == {"gender", "age"}
    i = list(machlib.human.PHENOTYPE_NAMES).index("gender")
    assert float(r.human.params.phenotype[i]) == pytest.approx(1.0)
    report = human_report(FitOutput(np.zeros((512, 512, 3), np.uint8), lm, template, r, {}))["stage1"]
    assert report["gender"] == "male" and report["age_years"] > 60 and sorted(report["held"]) == ["age", "gender"]
    free = fit_landmarks(lm, template, (512, 512))
    assert free.human.held == ()
    report = human_report(FitOutput(np.zeros((512, 512, 3), np.uint8), lm, template, free, {}))["stage1"]
    assert report["gender"] is None and report["age_years"] is None and report["held"] == []


@pytest.fixture(scope="module")
def portraits():
    import skimage.data

    return {"hopper": machlib.default_portrait(), "astronaut": skimage.data.astronaut()}


@pytest.mark.parametrize("name", ["hopper", "astronaut"])
def test_real_portraits_no_self_intersections_no_spikes(template, portraits, name):
    img = portraits[name]
    r = fit_landmarks(detect_landmarks(img), template, (img.shape[1], img.shape[0]))
    topo = template.human.topology
    h = r.human
    neutral = h.neutral_points[: topo.num_skin]
    assert self_intersections(neutral, topo.faces) == 0
    stage1 = np.asarray(human_points(template.human.model, HumanParams(
        jnp.asarray(h.params.phenotype), jnp.asarray(h.params.modifiers), jnp.zeros(52))))[: topo.num_skin]
    # the residual refines: no vertex rises more than 2 mm out of its neighbours' average
    assert spikes(neutral, stage1, topo.faces).max() < 0.002
    assert np.abs(neutral - stage1).max() < 0.012
    d1 = np.linalg.norm(h.residuals, axis=1).mean()
    d2 = np.linalg.norm(r.residuals, axis=1).mean()
    assert d2 < d1 < 3.0  # stage 2 refines stage 1, which already lands within a few pixels
    assert r.compile_seconds >= 0 and r.fit_seconds > 0 and r.setup_seconds > 0
    assert r.total_seconds == pytest.approx(r.setup_seconds + r.compile_seconds + r.fit_seconds)


def test_stage1_pieces_are_pure(template):
    """``human_fit``'s step under jit equals eager, and vmap over two faces equals a loop."""
    problem = human_problem(template, (512, 512), scale=1.0)
    fit = human_fit(problem, HumanFitConfig(steps=10))
    cases = [_synthetic(template, s)[0] for s in (3, 4)]
    targets = [LandmarkTargets(jnp.asarray(lm.points), jnp.ones(478), jnp.asarray(lm.depth)) for lm in cases]
    X0 = human_points(template.human.landmarks, template.human.params)
    states = []
    for t in targets:
        rot, trans = init_camera(X0, t.points, problem.focal, problem.principal)
        states.append(fit.init(initial_params(problem, rot, trans)))
    eager = [fit.step(s, t)[0] for s, t in zip(states, targets)]
    jitted = [jax.jit(fit.step)(s, t)[0] for s, t in zip(states, targets)]
    for a, b in zip(eager, jitted):
        np.testing.assert_allclose(a.params.sliders, b.params.sliders, atol=1e-5)
    stack = lambda xs: jax.tree.map(lambda *x: jnp.stack(x), *xs)  # noqa: E731
    ran, metrics = jax.vmap(fit.run, in_axes=(0, 0, None))(stack(states), stack(targets), 10)
    for i, (s, t) in enumerate(zip(states, targets)):
        single, m = fit.run(s, t, 10)
        np.testing.assert_allclose(ran.params.rotation[i], single.params.rotation, atol=1e-4)
        np.testing.assert_allclose(metrics["loss"][i], m["loss"], rtol=2e-3)  # float32 rounding in a batch
    assert float(metrics["loss"][0, -1]) < float(metrics["loss"][0, 0])
    hp = jax.vmap(fit.human)(ran.params)
    assert hp.phenotype.shape == (2, 11)


def test_stage1_loss_gradients_match_finite_differences(template):
    """float64: the stage-1 loss (landmarks, priors, contact, depth) against finite differences in
    every unconstrained parameter."""
    from jax.test_util import check_grads

    from helpers import x64

    with x64():
        problem = human_problem(template, (512, 512), scale=1.0)
        problem = jax.tree.map(lambda x: x.astype(jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x, problem)
        fit = human_fit(problem, HumanFitConfig(steps=1))
        lm, _ = _synthetic(template, 5)
        targets = LandmarkTargets(jnp.asarray(lm.points, jnp.float64), jnp.ones(478, jnp.float64),
                                  jnp.asarray(lm.depth, jnp.float64))
        X0 = human_points(problem.landmarks, template.human.params)
        rot, trans = init_camera(X0, targets.points, problem.focal, problem.principal)
        params = initial_params(problem, rot, trans, dtype=jnp.float64)
        rng = np.random.default_rng(0)
        params = jax.tree.map(lambda x: x + 0.1 * jnp.asarray(rng.normal(size=x.shape)), params)
        check_grads(lambda p: fit.loss(p, targets)[0], (params,), order=1, modes=("rev",), eps=1e-6)


def test_residual_stage_gradients_with_exact_landmarks_and_mask():
    """The second stage's loss with ``landmark_base`` and ``offset_mask`` against finite
    differences (float64, a tiny problem)."""
    from jax.test_util import check_grads

    from helpers import x64
    from machlib.geometry import GeometryParams, GeometryProblem, geometry_fit

    with x64():
        R = 8
        rng = np.random.default_rng(1)
        base = jnp.asarray(rng.normal(0, 0.05, (R, R, 3)))
        uv = jnp.asarray(rng.uniform(0.1, 0.9, (6, 2)))
        problem = GeometryProblem(base, uv, jnp.array([500.0, 500.0]), jnp.array([32.0, 32.0]), symmetric=False,
                                  image_size=(64, 64), landmark_base=jnp.asarray(rng.normal(0, 0.05, (6, 3))),
                                  offset_mask=jnp.asarray(rng.uniform(0, 1, (R, R))))
        fit = geometry_fit(problem, GeometryFitConfig(resolution=R, levels=2, lambda_offset=0.05))
        params = GeometryParams((jnp.asarray(rng.normal(0, 0.01, (4, 4, 3))), jnp.asarray(rng.normal(0, 0.01, (8, 8, 3)))),
                                jnp.asarray([3.1, 0.05, 0.02]), jnp.asarray([0.0, 0.0, 1.0]))
        targets = LandmarkTargets(jnp.asarray(rng.uniform(20, 44, (6, 2))), jnp.ones(6), jnp.zeros(6))
        check_grads(lambda p: fit.loss(p, targets)[0], (params,), order=1, modes=("rev",), eps=1e-6)
