"""Stage 1 of the geometry fit: the camera and the parametric human's shape under the landmarks.

The head's 478 landmarks are a fixed linear function of the human's parameters
(:func:`machlib.human.human_points` on the landmark model), so this stage optimises the camera
(rotation vector and translation; intrinsics fixed), MakeHuman's macro variables (gender, age,
muscle, weight, height, proportions and the African/Asian/Caucasian blend) and the mirror-tied
local modifiers of the head and neck, the optax way (``init``/``step``/``run``):

``L = L_lmk + λ_depth · L_depth + λ_mod · Σ a² + λ_phen · Σ θ²``

* parameters are unconstrained and mapped into their ranges: macro values ``sigmoid(θ)``, race
  ``softmax(θ)``, two-sided sliders ``tanh(s)``, single-target sliders ``sigmoid(s)`` — every
  step is a valid human;
* the landmarks are symmetrised (``(p + flip(p[mirror])) / 2``): the shape is symmetric by
  construction;
* ``L_lmk`` is the pseudo-Huber projection loss with residuals measured in units of
  ``scale`` pixels (the face's size / 256), so the priors weigh the same at any image size;
* ``L_depth`` pulls the landmarks' relative depths toward MediaPipe's relative ``z``.

Stage 2 (:func:`machlib.geometry.geometry_fit`) then refines the result with Make-A-Character's
triplane residual.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float

from .._device import to_device
from .._camera import Camera, intrinsics_from_fov, project, world_to_camera
from .._facemesh import LIPS_INNER, RIGHT_EYE
from .._mesh import Mesh
from ..human import (
    PHENOTYPE_NAMES,
    HumanModel,
    HumanParams,
    attribute_human,
    default_phenotype,
    human_points,
    symmetric_sliders,
    symmetrize_points,
)
from ._fit import grouped_adam

__all__ = [
    "HumanFitConfig",
    "HumanFitProblem",
    "HumanFitParams",
    "HumanFitState",
    "HumanFit",
    "human_fit",
    "FITTED_PHENOTYPE",
    "FITTED_EXPRESSIONS",
    "HumanPrior",
    "residual_config",
    "STAGE1_WEIGHTS",
    "STAGE2_WEIGHTS",
    "expression_basis",
    "HumanStage",
    "fit_human",
    "human_problem",
    "initial_params",
]

#: The macro variables stage 1 fits. Muscle, weight, proportions, cup size and firmness do not
#: move the head's landmarks at all in MakeHuman (they shape the body); height scales the whole
#: head, which one view cannot tell from the camera's distance; the race blend is a strong
#: face-shape knob that landmarks should not decide. Those stay at the prior (MakeHuman's average,
#: or what the caller sets, e.g. from a prompt's attributes).
FITTED_PHENOTYPE = ("gender", "age")
_RACE = slice(len(PHENOTYPE_NAMES) - 3, len(PHENOTYPE_NAMES))

#: The facial actions stage 1 fits (left and right tied), so the photo's expression does not bend
#: the identity's shape. Gaze, sideways jaw and mouth shifts and the tongue are left out, and so
#: are the actions that press or roll the lips into each other (``mouthClose``, ``mouthPress``,
#: ``mouthRoll*``): fitted to a closed mouth they push one lip through the other.
FITTED_EXPRESSIONS = (
    "browDown", "browInnerUp", "browOuterUp", "cheekPuff", "cheekSquint", "eyeBlink", "eyeSquint", "eyeWide",
    "jawForward", "jawOpen", "mouthDimple", "mouthFrown", "mouthFunnel", "mouthLowerDown",
    "mouthPucker", "mouthShrugLower", "mouthShrugUpper", "mouthSmile", "mouthStretch", "mouthUpperUp", "noseSneer",
)

#: Landmark weights (relative to the detector's confidence) per stage. Stage 1 (the human and the
#: photo's facial actions): the irises low (they follow the gaze); the lids and inner lips in full,
#: they tell how far the eyes and the mouth are open (the contact term keeps closed lips from
#: crossing); the skin of the upper lids above their margins (``lid_folds``) low: MakeHuman's
#: ``eyeBlink`` lowers it with the margin while FaceMesh keeps it near the crease, so in full it
#: held closed eyes open (t1_face5, eyes shut: lid aperture 13 px against the photo's 2 px at 1.0,
#: 8 px at 0.1). Stage 2 (the residual): the lid margins, inner lips and irises are left to stage
#: 1's facial actions, so the residual cannot close an eye or a mouth through itself.
STAGE1_WEIGHTS = {"inner_lips": 1.0, "lids": 1.0, "lid_folds": 0.1, "irises": 0.3}
#: Landmark weights of stage 2 (see :data:`STAGE1_WEIGHTS`).
STAGE2_WEIGHTS = {"inner_lips": 0.05, "lids": 0.05, "lid_folds": 1.0, "irises": 0.0}

#: The right upper lid's skin above its margin (FaceMesh's second and third rings over the eye;
#: the left's are their mirror images).
_LID_FOLDS = (247, 30, 29, 27, 28, 56, 190, 113, 225, 224, 223, 222, 221, 189)


def _landmark_groups() -> dict:
    from ._landmarks import mirror_permutation

    perm = mirror_permutation()
    corners = {33, 133}
    lids = [i for i in RIGHT_EYE if i not in corners]
    return {"inner_lips": list(LIPS_INNER), "lids": lids + [int(perm[i]) for i in lids],
            "lid_folds": list(_LID_FOLDS) + [int(perm[i]) for i in _LID_FOLDS],
            "irises": list(range(468, 478))}


def _stage_weights(weights: np.ndarray, table: dict) -> np.ndarray:
    w = np.array(weights, np.float32)
    for name, idx in _landmark_groups().items():
        w[idx] *= table[name]
    return w


class HumanPrior(NamedTuple):
    """What is known about the human before the fit (e.g. from a prompt's attributes).

    Attributes:
        phenotype: ``(11,)`` phenotype the fit starts from and its prior pulls toward.
        sliders: ``(S,)`` symmetric slider values the prior pulls toward (the order of
            :func:`machlib.human.symmetric_sliders`).
        fixed: names of phenotype entries to hold at ``phenotype`` instead of fitting them
            (e.g. ``("gender", "age")`` when the prompt says "an elderly woman").
    """

    phenotype: np.ndarray
    sliders: np.ndarray
    fixed: tuple = ()

    @classmethod
    def from_attributes(cls, attributes) -> "HumanPrior":
        """The prior an attribute set gives (:func:`machlib.human.attribute_human`): stated
        gender and age are held fixed, the build sets muscle and weight, shape words set sliders.

        Example:
            >>> from machlib.geometry import HumanPrior
            >>> HumanPrior.from_attributes({"gender": "female"}).fixed
            ('gender',)
        """
        ph, sliders, why = attribute_human(attributes)
        fixed = tuple(n for n in ("gender", "age") if n in why)
        return cls(ph, sliders, fixed)


def expression_basis(unit_names) -> np.ndarray:
    """``(U, E)`` float32 map from :data:`FITTED_EXPRESSIONS` values to the model's units (a
    ``Left``/``Right`` pair shares one value)."""
    names = list(unit_names)
    B = np.zeros((len(names), len(FITTED_EXPRESSIONS)), np.float32)
    for e, stem in enumerate(FITTED_EXPRESSIONS):
        hits = [i for i, n in enumerate(names) if n in (stem, stem + "Left", stem + "Right")]
        if not hits:
            raise ValueError(f"expression_basis: no facial action named {stem!r}")
        B[hits, e] = 1.0
    return B


class HumanFitConfig(eqx.Module):
    """Hyper-parameters of stage 1 (a frozen pytree; ``steps`` is static).

    Attributes:
        steps: Adam steps.
        lr_shape: learning rate of the unconstrained shape parameters.
        lr_rotation: learning rate of the camera rotation vector (radians).
        lr_translation: learning rate of the camera translation (metres).
        lambda_modifiers: prior weight on the squared slider values.
        lambda_phenotype: prior weight on the squared macro logits (pulls toward MakeHuman's
            average human).
        lambda_depth: weight of the relative-depth term (0 disables it).
        lambda_expression: prior weight on the squared facial-action values.
        lambda_contact: weight of the contact term: the squared amount (mm) by which a contact
            pair's gap (the lips', the eye corners') closes below half its template value.
        delta: pseudo-Huber radius of the landmark loss, in ``scale`` units.
    """

    steps: int = eqx.field(static=True, default=200)
    lr_shape: float = 0.08
    lr_rotation: float = 0.02
    lr_translation: float = 0.01
    lambda_modifiers: float = 1.0
    lambda_phenotype: float = 0.01
    lambda_depth: float = 5e-3
    lambda_expression: float = 0.2
    lambda_contact: float = 10.0
    delta: float = 0.5

    def __check_init__(self):
        if self.steps < 1:
            raise ValueError(f"HumanFitConfig: steps must be >= 1, got {self.steps}")
        if self.delta <= 0:
            raise ValueError(f"HumanFitConfig: delta must be > 0, got {self.delta}")


class HumanFitProblem(eqx.Module):
    """The fixed data of stage 1.

    Attributes:
        landmarks: the human's targets on the 478 landmarks (:class:`~machlib.human.HumanModel`).
        basis: ``(M, S)`` map from the ``S`` symmetric slider values to the model's ``M`` sliders.
        expressions: ``(U, E)`` map from the fitted facial actions to the model's units.
        contacts: the human's targets on the contact pairs' points (``2P``).
        contact_dir: ``(P, 3)`` unit directions from each pair's second point to its first on
            the template.
        contact_gap: ``(P,)`` the template's gaps, metres.
        single: ``(S,)`` float, 1 for single-target sliders (range ``[0, 1]``).
        mirror: ``(K,)`` int landmark mirror permutation.
        fitted: ``(11,)`` float, 1 for the phenotype entries that are fitted.
        prior: ``(11,)`` phenotype the prior pulls toward and the fit starts from (the entries
            that are not fitted keep these values).
        prior_logits: ``(11,)`` the prior as logits.
        slider_prior: ``(S,)`` slider values the prior pulls toward (and the fit starts from).
        focal: ``(2,)`` focal lengths in pixels.
        principal: ``(2,)`` principal point in pixels.
        scale: pixels per loss unit (the face's size / 256).
        image_size: ``(width, height)`` (static).
    """

    landmarks: HumanModel
    basis: Float[Array, "M S"]
    expressions: Float[Array, "U E"]
    contacts: HumanModel
    contact_dir: Float[Array, "P 3"]
    contact_gap: Float[Array, "P"]
    single: Float[Array, "S"]
    mirror: Array
    fitted: Float[Array, "11"]
    prior: Float[Array, "11"]
    prior_logits: Float[Array, "11"]
    slider_prior: Float[Array, "S"]
    focal: Float[Array, "2"]
    principal: Float[Array, "2"]
    scale: Float[Array, ""]
    image_size: tuple[int, int] = eqx.field(static=True, default=(512, 512))


class HumanFitParams(eqx.Module):
    """Unconstrained variables of stage 1.

    Attributes:
        phenotype: ``(11,)`` logits (macro: ``sigmoid``; race: ``softmax``).
        sliders: ``(S,)`` raw slider values (``tanh`` or ``sigmoid``).
        expression: ``(E,)`` raw facial-action values (``sigmoid``).
        rotation: ``(3,)`` camera rotation vector.
        translation: ``(3,)`` camera translation, metres.
    """

    phenotype: Float[Array, "11"]
    sliders: Float[Array, "S"]
    expression: Float[Array, "E"]
    rotation: Float[Array, "3"]
    translation: Float[Array, "3"]


class HumanFitState(NamedTuple):
    """Optimiser state: parameters, optax state and the step counter."""

    params: HumanFitParams
    opt_state: optax.OptState
    step: Array


class HumanFit(NamedTuple):
    """The functions of stage 1 (like an ``optax.GradientTransformation``).

    Attributes:
        init: ``init(params) -> HumanFitState``.
        step: ``step(state, targets) -> (state, metrics)`` (pure).
        run: ``run(state, targets, num_steps)``: ``lax.scan`` of ``step`` under ``jit``.
        loss: ``loss(params, targets) -> (total, metrics)``.
        camera: ``camera(params) -> Camera``.
        human: ``human(params) -> HumanParams`` (the constrained values).
        landmarks: ``landmarks(params) -> (K, 3)`` symmetrised landmark positions.
    """

    init: Callable
    step: Callable
    run: Callable
    loss: Callable
    camera: Callable
    human: Callable
    landmarks: Callable


def _phenotype(problem: HumanFitProblem, logits) -> Array:
    logits = jnp.asarray(logits)
    macro = jax.nn.sigmoid(logits)
    race = jax.nn.softmax(logits[_RACE])
    value = macro.at[_RACE].set(race)
    return jnp.where(problem.fitted > 0, value, problem.prior.astype(value.dtype))


def _logits(phenotype: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_phenotype` for the fitted entries (clipped away from 0 and 1)."""
    p = np.clip(np.asarray(phenotype, np.float64), 1e-3, 1 - 1e-3)
    out = np.log(p / (1 - p))
    race = p[_RACE] / p[_RACE].sum()
    out[_RACE] = np.log(race) - np.log(race).mean()
    return out


def _sliders(problem: HumanFitProblem, raw) -> Array:
    """``(S,)`` slider values in their ranges."""
    raw = jnp.asarray(raw)
    return jnp.where(problem.single > 0, jax.nn.sigmoid(raw), jnp.tanh(raw))


def human_fit(problem: HumanFitProblem, config: HumanFitConfig = HumanFitConfig()) -> HumanFit:
    """Build stage 1 of the geometry fit for a problem: ``init``, ``step``, ``run``.

    Args:
        problem: the :class:`HumanFitProblem`.
        config: the :class:`HumanFitConfig`.

    Returns:
        A :class:`HumanFit`; the batch of ``step`` is a
        :class:`~machlib.geometry.LandmarkTargets`.
    """
    optimizer = grouped_adam(config.lr_shape, config.lr_rotation, config.lr_translation, config.steps)

    # the intrinsics are constants of the problem; only the extrinsics are parameters
    fixed = Camera(jnp.zeros(3, problem.focal.dtype), jnp.zeros(3, problem.focal.dtype), problem.focal,
                   problem.principal, image_size=problem.image_size)

    def camera(params: HumanFitParams) -> Camera:
        return fixed.replace_extrinsics(params.rotation, params.translation)

    def human(params: HumanFitParams) -> HumanParams:
        values = _sliders(problem, params.sliders)
        dtype = values.dtype
        expression = problem.expressions.astype(dtype) @ jax.nn.sigmoid(params.expression)
        return HumanParams(_phenotype(problem, params.phenotype), problem.basis.astype(dtype) @ values, expression)

    def landmarks_of(hp: HumanParams) -> Array:
        p = human_points(problem.landmarks, hp)
        flip = jnp.asarray([-1.0, 1.0, 1.0], p.dtype)
        return 0.5 * (p + p[problem.mirror] * flip)

    def landmarks(params: HumanFitParams) -> Array:
        return landmarks_of(human(params))

    def loss(params: HumanFitParams, targets):
        hp = human(params)
        X = landmarks_of(hp)
        cam = camera(params)
        w = targets.weights / jnp.maximum(jnp.sum(targets.weights), 1e-12)
        r = (project(X, cam) - targets.points) / problem.scale
        per = jnp.sqrt(jnp.sum(r * r, -1) + config.delta**2) - config.delta
        l_lmk = jnp.sum(w * per)
        values = _sliders(problem, params.sliders)
        l_mod = jnp.sum((values - problem.slider_prior.astype(values.dtype)) ** 2)
        l_phen = jnp.sum(jnp.where(problem.fitted > 0, params.phenotype - problem.prior_logits, 0.0) ** 2)
        l_expr = jnp.sum(jax.nn.sigmoid(params.expression) ** 2)
        P = problem.contact_gap.shape[0]
        l_contact = 0.0
        # the neutral identity, and posed: the points are linear in the expression, so the posed
        # ones add the facial actions' offsets (relative to the eyes' anchor, the last row)
        neutral = human_points(problem.contacts, HumanParams(hp.phenotype, hp.modifiers, jnp.zeros_like(hp.expression)))
        units = problem.contacts.units.apply(hp.expression.astype(neutral.dtype))
        for C in (neutral + (units[:-1] - units[-1]), neutral):
            gap = jnp.sum((C[:P] - C[P:]) * problem.contact_dir.astype(C.dtype), -1)
            l_contact = l_contact + jnp.sum(jax.nn.relu(1000.0 * (0.5 * problem.contact_gap - gap)) ** 2)
        total = l_lmk + config.lambda_modifiers * l_mod + config.lambda_phenotype * l_phen
        total = total + config.lambda_expression * l_expr + config.lambda_contact * l_contact
        if config.lambda_depth:
            z = world_to_camera(X, cam)[:, 2]
            zm = jnp.maximum(jnp.sum(w * z), 1e-3)
            pred = (z - zm) * problem.focal[0] / zm / problem.scale
            tgt = (targets.depth - jnp.sum(w * targets.depth)) / problem.scale
            total = total + config.lambda_depth * jnp.sum(w * (pred - tgt) ** 2)
        dist = jnp.sqrt(jnp.sum((project(X, cam) - targets.points) ** 2, -1) + 1e-12)
        valid = targets.weights > 0
        metrics = {
            "loss": total,
            "landmark": l_lmk,
            "modifiers": l_mod,
            "contact": l_contact,
            "landmark_px": jnp.sum(jnp.where(valid, dist, 0.0)) / jnp.maximum(jnp.sum(valid), 1),
        }
        return total, metrics

    def init(params: HumanFitParams) -> HumanFitState:
        return HumanFitState(params, optimizer.init(params), jnp.zeros((), jnp.int32))

    def step(state: HumanFitState, targets):
        (_, metrics), grads = jax.value_and_grad(loss, has_aux=True)(state.params, targets)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return HumanFitState(optax.apply_updates(state.params, updates), opt_state, state.step + 1), metrics

    @eqx.filter_jit
    def _run(state, targets, num_steps):
        return jax.lax.scan(lambda s, _: step(s, targets), state, None, length=num_steps)

    def run(state: HumanFitState, targets, num_steps: int):
        if not isinstance(num_steps, int) or num_steps < 0:
            raise ValueError(f"HumanFit.run: num_steps must be an int >= 0, got {num_steps!r}")
        return _run(state, targets, num_steps)

    return HumanFit(init, step, run, loss, camera, human, landmarks)


def initial_params(problem: HumanFitProblem, rotation, translation, *, dtype=jnp.float32) -> HumanFitParams:
    """The prior's phenotype and sliders, a neutral expression, and the given camera."""
    S = problem.basis.shape[1]
    a = jnp.clip(problem.slider_prior.astype(dtype), -0.98, 0.98)
    # tanh⁻¹ for two-sided sliders; logit (from about 0.02) for single-target ones
    single = jnp.clip(a, 0.02, 0.98)
    raw = jnp.where(problem.single > 0, jnp.log(single / (1 - single)), jnp.arctanh(a)).astype(dtype)
    E = problem.expressions.shape[1]
    return HumanFitParams(jnp.asarray(problem.prior_logits, dtype), raw.reshape(S), jnp.full((E,), -3.0, dtype),
                          jnp.asarray(rotation, dtype), jnp.asarray(translation, dtype))


def fitted_mask() -> np.ndarray:
    """``(11,)`` float32, 1 for the :data:`FITTED_PHENOTYPE` entries."""
    return np.array([1.0 if n in FITTED_PHENOTYPE else 0.0 for n in PHENOTYPE_NAMES], np.float32)


class HumanStage(NamedTuple):
    """What the first stage of a human template's fit found (:attr:`GeometryResult.human`).

    Attributes:
        params: the fitted :class:`~machlib.human.HumanParams`: phenotype, sliders, and the
            photo's expression (the facial actions of :data:`FITTED_EXPRESSIONS`).
        camera: the stage-1 :class:`~machlib.Camera`.
        residuals: ``(K, 2)`` stage-1 landmark residuals in pixels.
        history: per-step stage-1 metrics (numpy).
        points: ``(n, 3)`` head points after both stages (skin, then helpers), head space, with
            the photo's expression (the surface that matches the photo; ``GeometryResult.mesh``).
        neutral_points: ``(n, 3)`` the same head with a neutral expression (the avatar's rest
            shape: the fitted human without its facial actions, plus the stage-2 residual).
        stage1_points: ``(n, 3)`` head points of the fitted human alone (with the expression).
        landmarks: ``(K, 3)`` the landmarks' positions after both stages.
        compile_seconds: stage-1 compile time.
        fit_seconds: stage-1 optimisation time.
        held: names of the phenotype entries held at the prior's value instead of fitted
            (:attr:`HumanPrior.fixed`, e.g. ``("gender",)`` when a prompt or a classifier said
            "a woman"); the others are what the landmarks gave.
    """

    params: HumanParams
    camera: Camera
    residuals: np.ndarray
    history: dict
    points: np.ndarray
    neutral_points: np.ndarray
    stage1_points: np.ndarray
    landmarks: np.ndarray
    compile_seconds: float
    fit_seconds: float
    held: tuple = ()


def residual_config(*, resolution: int = 64, steps: int = 200, levels: int = 4):
    """The second stage's configuration for human templates: a coarse, smooth, small residual
    triplane (``λ_tv = 400``, ``λ_offset = 0.05``) that refines the fitted human instead of
    sculpting it.

    Args:
        resolution: the residual map's size (64: about 3 mm per texel on the face).
        steps: Adam steps.
        levels: offset pyramid levels (``resolution / 2^(levels−1)`` is the coarsest).

    Returns:
        A :class:`~machlib.geometry.GeometryFitConfig`.
    """
    from ._fit import GeometryFitConfig

    return GeometryFitConfig(resolution=resolution, levels=levels, steps=steps, lambda_tv=400.0, lambda_offset=0.05)


def _compiled(problem, state, targets, config):
    """Stage 1's whole run, compiled once per config and argument shapes."""
    from ._fit import _compile_once

    return _compile_once(human_fit, problem, state, targets, config)


def human_problem(template, image_size, *, fov_degrees: float = 25.0, scale: float = 1.0,
                  prior: HumanPrior | None = None) -> HumanFitProblem:
    """The :class:`HumanFitProblem` of a human template for an image size.

    Args:
        template: a template with ``human`` set.
        image_size: ``(width, height)``.
        fov_degrees: vertical field of view of the fixed intrinsics.
        scale: pixels per loss unit.
        prior: a :class:`HumanPrior` (default: MakeHuman's average human, sliders at 0, gender
            and age fitted).
    """
    from ._landmarks import mirror_permutation


    basis, _, single = _sliders_cached()
    S = basis.shape[1]
    if prior is None:
        prior = HumanPrior(np.asarray(default_phenotype()), np.zeros(S), ())
    prior_np = np.asarray(prior.phenotype, np.float64)
    sliders = np.asarray(prior.sliders, np.float32)
    if prior_np.shape != (len(PHENOTYPE_NAMES),) or sliders.shape != (S,):
        raise ValueError(f"human_problem: prior must have an ({len(PHENOTYPE_NAMES)},) phenotype and ({S},) sliders, "
                         f"got {prior_np.shape} and {sliders.shape}")
    unknown = [n for n in prior.fixed if n not in PHENOTYPE_NAMES]
    if unknown:
        raise ValueError(f"human_problem: unknown phenotype names {unknown} in prior.fixed")
    fitted = fitted_mask() * np.array([0.0 if n in prior.fixed else 1.0 for n in PHENOTYPE_NAMES], np.float32)
    focal, principal = intrinsics_from_fov(image_size, fov_degrees=fov_degrees)
    return HumanFitProblem(
        landmarks=template.human.landmarks, basis=to_device(basis),
        expressions=to_device(expression_basis(template.human.landmarks.unit_names)),
        contacts=template.human.contacts, contact_dir=_head_constants(template.human)[1],
        contact_gap=to_device(template.human.contact_gap),
        single=to_device(single, np.float32),
        mirror=to_device(mirror_permutation()), fitted=to_device(fitted),
        prior=to_device(prior_np, np.float32), prior_logits=to_device(_logits(prior_np), np.float32),
        slider_prior=to_device(sliders),
        focal=focal.astype(jnp.float32), principal=principal.astype(jnp.float32),
        scale=to_device(scale, np.float32), image_size=tuple(int(s) for s in image_size),
    )


_SLIDERS: list = []


def _sliders_cached():
    if not _SLIDERS:
        _SLIDERS.append(symmetric_sliders())
    return _SLIDERS[0]


def head_points(template, params: HumanParams) -> np.ndarray:
    """The template's head points (skin, then helpers) for human parameters, symmetrised."""
    head = template.human
    P = human_points(head.model, params)
    return np.asarray(symmetrize_points(P, head.topology.mirror), np.float32)


def fit_human(landmarks, template, image_size, *, config=None, human_config=None, fov_degrees: float = 25.0,
              use_confidence: bool = True, prior: HumanPrior | None = None):
    """The two-stage geometry fit of a human template (called by
    :func:`~machlib.geometry.fit_landmarks`).

    Stage 1 fits the camera and the human (:func:`human_fit`); stage 2 fits Make-A-Character's
    triplane as a residual on that human (:func:`~machlib.geometry.geometry_fit` with the
    stage-1 surface as the base map, its exact landmarks, its camera as the start).

    Returns:
        A :class:`~machlib.geometry.GeometryResult` whose ``human`` is the :class:`HumanStage`.
    """
    import time

    from ._fit import (
        GeometryResult,
        LandmarkTargets,
        _scan_program,
        compile_program,
        compile_program_async,
        geometry_fit,
        landmark_weights,
    )
    from ._quality import separate_surfaces

    start = time.perf_counter()
    config = residual_config() if config is None else config
    human_config = HumanFitConfig() if human_config is None else human_config
    points = np.asarray(landmarks.points, np.float32)
    if points.shape != (478, 2):
        raise ValueError(f"fit_landmarks: {points.shape[0]} landmarks given, the human template defines 478")
    confidence = landmark_weights(template, confidence=landmarks.confidence if use_confidence else None)
    weights = _stage_weights(confidence, STAGE1_WEIGHTS)
    box = np.ptp(points[weights > 0], axis=0)
    scale = max(float(np.hypot(*box)) / 256.0, 1e-3)
    problem = human_problem(template, image_size, fov_degrees=fov_degrees, scale=scale, prior=prior)
    targets = LandmarkTargets(to_device(points), to_device(weights), to_device(landmarks.depth, np.float32))
    head = template.human
    ns = head.topology.num_skin
    X0 = _head_constants(head)[0]
    # the set-up and the glue between the stages run as compiled programs too (a first call
    # would otherwise compile about a hundred small programs, one per eager operation)
    start1, c_start = compile_program(_stage1_start, human_config, problem, X0, targets)
    state = start1(human_config, problem, X0, targets)
    R = config.resolution
    raster = _raster(template.mesh, R)
    consts = (to_device(template.landmark_uv, np.float32), to_device(_offset_mask(template, R)),
              to_device(head.topology.mirror), raster, bool(template.symmetric), ns)
    targets2 = targets._replace(weights=to_device(_stage_weights(confidence, STAGE2_WEIGHTS)))
    vertex_uv = to_device(template.mesh.vertex_uv(), np.float32)
    # The two stages' runs compile in background threads while this one compiles the glue and
    # the finish (XLA releases the GIL: on two cores a cold fit's compilation takes about half
    # the wall time). Stage 2's arguments' shapes do not depend on stage 1's result: its
    # programs are traced on placeholders of the glue's output shapes (the programs are those
    # of a sequential compilation).
    t_compile = time.perf_counter()
    wait1 = compile_program_async(_scan_program, human_fit, human_config, problem, state, targets)
    shaped = _placeholders(eqx.filter_eval_shape(_between_stages, human_config, config, problem, state.params,
                                                 head.model, consts, targets.points))
    wait2 = compile_program_async(_scan_program, geometry_fit, config, shaped[6], shaped[7], targets2)
    bridge, _ = compile_program(_between_stages, human_config, config, problem, state.params, head.model,
                                consts, targets.points)
    finish, _ = compile_program(_after_stage2, config, shaped[6], shaped[7].params, vertex_uv)
    del shaped
    compiled2, _ = wait2()
    compiled, c1 = wait1()
    compile_s = c_start + (time.perf_counter() - t_compile)
    t1 = time.perf_counter()
    state, metrics1 = compiled(human_fit, human_config, problem, state, targets)
    jax.block_until_ready(state)
    t2 = time.perf_counter()

    # stage 2: the residual triplane on the fitted human
    hp, cam1, L1, res1, P1, P0, problem2, state2 = bridge(human_config, config, problem, state.params, head.model,
                                                          consts, targets.points)
    t4 = time.perf_counter()
    state2, metrics2 = compiled2(geometry_fit, config, problem2, state2, targets2)
    jax.block_until_ready(state2)
    t5 = time.perf_counter()
    tp, cam, d_skin = finish(config, problem2, state2.params, vertex_uv)
    hp = jax.tree.map(np.asarray, hp)
    L1, res1, P1, P0 = (np.asarray(x) for x in (L1, res1, P1, P0))
    d_skin = _smooth_in_space(np.asarray(d_skin), P0[:ns])
    d_all = np.concatenate([d_skin, d_skin[head.helper_anchor]])
    final = (P1 + d_all).astype(np.float32)
    neutral = (P0 + d_all).astype(np.float32)
    # MakeHuman's lips rest 0.3 mm apart and its morphs can press them through each other: part
    # what crosses near the mouth and the eyes (a fraction of a millimetre) on the neutral head
    # (the avatar's rest surface; the posed one only serves to read the photo's texture)
    neutral[:ns] = separate_surfaces(neutral[:ns], head.topology.faces, candidates=_contact_faces(template, L1))[0]
    F = head.topology.faces[head.landmark_faces]
    L2 = np.einsum("kc,kcd->kd", head.landmark_bary, final[F]).astype(np.float32)
    res2 = _project_np(L2, cam) - points
    mesh = Mesh(final[:ns], template.mesh.faces, template.mesh.uv, template.mesh.faces_uv)
    stage = HumanStage(hp, cam1, res1, {k: np.asarray(v) for k, v in metrics1.items()}, final, neutral, P1,
                       L2.astype(np.float32), c1, t2 - t1, tuple(prior.fixed) if prior is not None else ())
    history = {k: np.asarray(v) for k, v in metrics2.items()}
    fit_s = (t2 - t1) + (t5 - t4)
    return GeometryResult(
        mesh=mesh, camera=cam, triplane=tp, residuals=res2, history=history, compile_seconds=compile_s,
        fit_seconds=fit_s, human=stage, setup_seconds=max((time.perf_counter() - start) - compile_s - fit_s, 0.0),
    )


def _placeholders(shaped):
    """Zeros (numpy: no program compiles) for the :class:`jax.ShapeDtypeStruct` leaves of
    :func:`equinox.filter_eval_shape`'s result, its other leaves kept: arguments to trace and
    compile a program on before the real ones exist."""
    def one(x):
        if not isinstance(x, jax.ShapeDtypeStruct):
            return x
        if getattr(x, "weak_type", False):  # a numpy array would make the program's input strongly typed
            raise TypeError("_placeholders: a weakly typed leaf")
        return np.zeros(x.shape, x.dtype)

    return jax.tree.map(one, shaped)


def _stage1_start(human_config, problem, X0, targets):
    """Stage 1's initial state: the closed-form camera and the prior's human (one program)."""
    from ._fit import init_camera

    rot, trans = init_camera(X0, targets.points, problem.focal, problem.principal, weights=targets.weights)
    return human_fit(problem, human_config).init(initial_params(problem, rot, trans))


def _between_stages(human_config, config, problem, params, model, consts, points):
    """Stage 1's results and stage 2's problem and initial state (one program): the fitted human,
    its camera, landmarks and residuals, the head's points with and without the photo's
    expression, and the residual triplane's base map."""
    from ._fit import GeometryProblem, geometry_fit, zero_params
    from ._triplane import encode

    landmark_uv, offset_mask, mirror, raster, symmetric, ns = consts
    fit1 = human_fit(problem, human_config)
    hp = fit1.human(params)
    cam1 = fit1.camera(params)
    L1 = fit1.landmarks(params)
    res1 = project(L1, cam1) - points
    P1 = symmetrize_points(human_points(model, hp), mirror)
    P0 = symmetrize_points(human_points(model, HumanParams(hp.phenotype, hp.modifiers,
                                                           jnp.zeros_like(hp.expression))), mirror)
    base = encode(P1[:ns], raster)
    problem2 = GeometryProblem(
        base=base, landmark_uv=landmark_uv, focal=problem.focal, principal=problem.principal, symmetric=symmetric,
        image_size=problem.image_size, landmark_base=L1, offset_mask=offset_mask,
    )
    state2 = geometry_fit(problem2, config).init(zero_params(config, cam1.rotation, cam1.translation))
    return hp, cam1, L1, res1, P1, P0, problem2, state2


def _after_stage2(config, problem2, params, vertex_uv):
    """Stage 2's triplane, camera and the skin's displacement (one program)."""
    from ._fit import geometry_fit
    from ._triplane import decode

    fit2 = geometry_fit(problem2, config)
    tp = fit2.triplane(params)
    return tp, fit2.camera(params), decode(tp - problem2.base, vertex_uv)


def _project_np(points: np.ndarray, camera: Camera) -> np.ndarray:
    """:func:`~machlib.project` in numpy for one concrete camera (no compiled program)."""
    from .._camera import _rotation_matrix_np

    Xc = points.astype(np.float64) @ _rotation_matrix_np(np.asarray(camera.rotation)).T + np.asarray(camera.translation)
    z = Xc[:, 2:3]
    return (Xc[:, :2] / z * np.asarray(camera.focal) + np.asarray(camera.principal)).astype(np.float32)


_HEAD_CONSTANTS: dict = {}


def _head_constants(head):
    """``(X0, contact_dir)`` of a human head, once per head per process (one small program): the
    template's landmarks and the unit directions of its contact pairs."""
    hit = _HEAD_CONSTANTS.get(id(head))
    if hit is None or hit[0] is not head:
        if getattr(head, "landmark_points", None) is not None and getattr(head, "contact_dir", None) is not None:
            X0, contact_dir = to_device(head.landmark_points), to_device(head.contact_dir)  # built with the template
        else:
            X0, contact_dir = _head_constants_jit(head.landmarks, head.contacts, head.params, len(head.contact_gap))
        hit = _HEAD_CONSTANTS[id(head)] = (head, X0, contact_dir)
    return hit[1], hit[2]


@functools.partial(jax.jit, static_argnums=3)
def _head_constants_jit(landmarks, contacts, params, P):
    C = human_points(contacts, params)
    d = C[:P] - C[P:]
    n = jnp.linalg.norm(d, axis=1, keepdims=True)
    return human_points(landmarks, params), d / jnp.maximum(n, 1e-12)


#: Width (metres) of the Gaussian that smooths the residual displacement over space: surfaces
#: closer than this (the lids across the eye, the lips) move together and cannot fold through
#: each other, however far apart the UV layout puts them.
RESIDUAL_SMOOTHING = 0.0025


def _smooth_in_space(d: np.ndarray, points: np.ndarray, sigma: float = RESIDUAL_SMOOTHING) -> np.ndarray:
    """Gaussian-weighted average of per-vertex displacements over Euclidean neighbourhoods."""
    from scipy.spatial import cKDTree

    tree = cKDTree(points)
    pairs = tree.query_pairs(3.0 * sigma, output_type="ndarray")
    i = np.concatenate([pairs[:, 0], pairs[:, 1], np.arange(len(points))])
    j = np.concatenate([pairs[:, 1], pairs[:, 0], np.arange(len(points))])
    w = np.exp(-np.sum((points[i] - points[j]) ** 2, 1) / (2 * sigma * sigma))
    num = np.zeros_like(d, dtype=np.float64)
    np.add.at(num, i, w[:, None] * d[j])
    den = np.bincount(i, w, minlength=len(points))
    return (num / den[:, None]).astype(np.float32)


def _contact_faces(template, landmarks: np.ndarray) -> np.ndarray:
    """Skin faces within 2 cm of the mouth's and the eyes' openings (where surfaces can cross)."""
    from scipy.spatial import cKDTree

    topo = template.human.topology
    key = np.asarray(landmarks)[[13, 14, 78, 308, 159, 145, 386, 374, 33, 133, 263, 362]]
    centres = template.human.skin[topo.faces].mean(1)
    return np.flatnonzero(cKDTree(key).query(centres)[0] < 0.02)


_MASKS: dict = {}


def _offset_mask(template, R: int) -> np.ndarray:
    """``(R, R)`` 0 over the eye openings and the lips (stage 1's facial actions shape those; a
    residual there would cross the lids or the lips), feathered to 1 around them."""
    key = (id(template), R)
    if key not in _MASKS:
        from PIL import Image
        from scipy import ndimage

        reg = template.regions
        m = np.clip(np.asarray(reg["eyes"]) + np.asarray(reg["lips"]), 0, 1)
        n = m.shape[0]
        m = ndimage.binary_dilation(m > 0.05, iterations=max(1, n // 32))
        m = ndimage.gaussian_filter(m.astype(np.float32), n / 64)
        m = np.asarray(Image.fromarray(np.clip(m, 0, 1).astype(np.float32)).resize((R, R), Image.BILINEAR))
        _MASKS[key] = (template, np.clip(1.0 - 1.5 * m, 0.0, 1.0).astype(np.float32))
    return _MASKS[key][1]


@functools.partial(jax.jit)
def _init_camera(X, points, focal, principal, weights):
    from ._fit import init_camera

    return init_camera(X, points, focal, principal, weights=weights)


_RASTERS: dict = {}


def _raster(mesh, R: int):
    from ._triplane import uv_raster

    key = (id(mesh), R)
    hit = _RASTERS.get(key)
    if hit is None or hit[0] is not mesh:
        hit = _RASTERS[key] = (mesh, uv_raster(mesh, R))
    return hit[1]
