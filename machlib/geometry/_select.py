"""Coarse shape selection (DreamFace §4.1): rank candidate head shapes against a prompt.

DreamFace samples candidates ``β ~ N(0, 1)`` from a shape space, renders each from the front and
the left/right 3/4 views under several directional lights, embeds the renders with CLIP and keeps
the candidate whose mean image embedding best matches the prompt (eq. 3). Here:

* :func:`candidate_pool` builds the candidates (:class:`ShapeCandidate`): the ``face_shape``
  presets of :data:`~machlib.geometry.FACE_SHAPE_PRESETS` and random samples of
  :func:`~machlib.geometry.sample_shapes`, each with a text description;
* :func:`select_shape` ranks them with a :class:`ShapeScorer`; the offline default,
  :class:`AttributeShapeScorer`, compares the prompt with each candidate's description (text
  embeddings) and with the attributes read from the prompt; ``machlib.interop.ClipShapeScorer``
  is DreamFace's CLIP image–text score for users with CLIP weights;
* :func:`render_shape` renders a candidate the way the CLIP scorer sees it (grey material, front
  and ±45° views, directional lights): numpy, no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Optional, Protocol, Union, runtime_checkable

import jax
import numpy as np
from jaxtyping import Float

from .._mesh import Mesh
from .._preview import orbit_camera
from .._scene import ScenePart, _srgb_to_linear, render_scene
from ..human import SHAPE_SLIDERS, HumanParams, attribute_human, symmetric_sliders
from ..text import FaceAttributes, parse_prompt
from ..text._embed import default_embedder
from ._template import Template
from ._variations import (
    _INDEX,
    _OUTLINE,
    FACE_SHAPE_PRESETS,
    NUM_SHAPE_PARAMS,
    apply_shape,
    describe_shape,
    face_shape_preset,
    sample_shapes,
)

__all__ = [
    "ShapeCandidate",
    "human_candidate_pool",
    "describe_human",
    "ShapeMatch",
    "ShapeScorer",
    "AttributeShapeScorer",
    "candidate_pool",
    "select_shape",
    "shape_prompt",
    "directional_lights",
    "render_shape",
]


class ShapeCandidate(NamedTuple):
    """One candidate head shape.

    Attributes:
        name: a label: the preset name (``"round"``) or ``"sample-007"`` for random samples.
        params: ``(B,)`` float32 numpy shape parameters (:data:`~machlib.geometry.SHAPE_BASIS_NAMES`),
            or for a human candidate its ``(S,)`` symmetric slider values
            (:func:`machlib.human.symmetric_sliders`).
        description: text of the shape (:func:`~machlib.geometry.describe_shape` or
            :func:`describe_human`).
        human: for a candidate of the parametric human (:func:`human_candidate_pool`), its
            :class:`~machlib.human.HumanParams`; ``None`` for the template's analytic shape space.

    Example:
        >>> from machlib.geometry import candidate_pool
        >>> c = candidate_pool(n_random=0)[1]
        >>> c.name, c.description.startswith("a round face")
        ('round', True)
    """

    name: str
    params: np.ndarray
    description: str
    human: object = None


class ShapeMatch(NamedTuple):
    """A ranked candidate and its score (higher is better; the scale depends on the scorer).

    Example:
        >>> from machlib.assets import LexicalEmbedder
        >>> from machlib.geometry import AttributeShapeScorer, candidate_pool, select_shape
        >>> m = select_shape("a long face", candidate_pool(n_random=0), k=1,
        ...                  scorer=AttributeShapeScorer(LexicalEmbedder()))[0]
        >>> m.candidate.name, isinstance(m.score, float)
        ('long', True)
    """

    candidate: ShapeCandidate
    score: float


@runtime_checkable
class ShapeScorer(Protocol):
    """Anything with ``score(prompt, candidates, *, attributes) -> (n,)`` scores, higher = better.

    ``attributes`` is the :class:`~machlib.text.FaceAttributes` read from (or given for) the
    prompt; a scorer may ignore it (the CLIP scorer does).

    Example:
        >>> from machlib.geometry import AttributeShapeScorer, ShapeScorer
        >>> isinstance(AttributeShapeScorer(), ShapeScorer)
        True
    """

    def score(self, prompt: str, candidates: Sequence[ShapeCandidate], *, attributes=None) -> np.ndarray:
        """Score every candidate against the prompt."""
        ...


def candidate_pool(
    *, key: Optional[jax.Array] = None, n_random: int = 24, scale: float = 1.0, include_presets: bool = True,
) -> list[ShapeCandidate]:
    """The candidates of coarse shape selection: presets and ``β ~ N(0, scale²)`` samples.

    DreamFace samples its candidates from ``N(0, 1)``; the presets (one per ``face_shape`` value,
    :data:`~machlib.geometry.FACE_SHAPE_PRESETS`) make sure every named shape is in the pool.

    Args:
        key: PRNG key of the random samples; ``None``: ``jax.random.key(0)`` (deterministic).
        n_random: number of random samples.
        scale: their standard deviation.
        include_presets: put the presets first.

    Returns:
        The candidates: presets (named after their shape) then samples ``sample-000``, ...

    Raises:
        ValueError: negative ``n_random``, or an empty pool.

    Example:
        >>> from machlib.geometry import candidate_pool
        >>> pool = candidate_pool(n_random=3)
        >>> [c.name for c in pool][:2], len(pool)
        (['oval', 'round'], 10)
    """
    if isinstance(n_random, bool) or not isinstance(n_random, (int, np.integer)) or n_random < 0:
        raise ValueError(f"candidate_pool: n_random must be an int >= 0, got {n_random!r}")
    out = []
    if include_presets:
        for name in FACE_SHAPE_PRESETS:
            p = np.asarray(face_shape_preset(name), np.float32)
            out.append(ShapeCandidate(name, p, describe_shape(p)))
    if n_random:
        betas = np.asarray(sample_shapes(jax.random.key(0) if key is None else key, int(n_random), scale=scale))
        for i, b in enumerate(betas):
            out.append(ShapeCandidate(f"sample-{i:03d}", b.astype(np.float32), describe_shape(b)))
    if not out:
        raise ValueError("candidate_pool: the pool is empty (include_presets=False and n_random=0)")
    return out


_AGE_WORDS = ((0.16, "a child"), (0.3, "a teenager"), (0.52, "a young adult"), (0.64, "an adult"),
              (0.78, "a middle-aged adult"), (1.01, "an elderly adult"))


def describe_human(params, *, names=None, threshold: float = 0.5) -> str:
    """Words for a human's shape: gender and age, then the shape attributes its sliders show.

    A shape phrase (``"a round face"``, ``"a wide nose"``) is used when the sliders point along
    that phrase's slider pattern (:data:`machlib.human.SHAPE_SLIDERS`) by at least ``threshold``
    of the pattern's own strength.

    Args:
        params: a :class:`~machlib.human.HumanParams`.
        names: the symmetric slider names (default: :func:`machlib.human.symmetric_sliders`').
        threshold: the fraction of a pattern needed to name it.

    Returns:
        The description.

    Example:
        >>> import numpy as np
        >>> from machlib.human import HumanParams, attribute_human, symmetric_sliders
        >>> from machlib.geometry import describe_human
        >>> basis, names, _ = symmetric_sliders()
        >>> ph, s, _ = attribute_human({"gender": "female", "face_shape": "round", "nose": "wide"})
        >>> describe_human(HumanParams(ph, basis @ s, np.zeros(52, np.float32)))
        'the face of a young woman, a wide nose, a round face'
    """
    basis, snames, _ = symmetric_sliders()
    names = snames if names is None else names
    values = np.linalg.lstsq(basis, np.asarray(params.modifiers, np.float64), rcond=None)[0]
    index = {n: i for i, n in enumerate(names)}
    ph = np.asarray(params.phenotype, np.float64)
    who = "woman" if ph[0] < 0.35 else "man" if ph[0] > 0.65 else "person"
    age = next(w for limit, w in _AGE_WORDS if ph[1] < limit)
    head = f"the face of {age.replace('adult', who) if who != 'person' else age}"
    if age == "a child" or age == "a teenager":
        head = f"the face of {'a girl' if who == 'woman' else 'a boy' if who == 'man' else age}"
    phrases = []
    for (field, value), pattern in SHAPE_SLIDERS.items():
        target = np.zeros(len(names))
        for k, v in pattern.items():
            if k in index:
                target[index[k]] = v
        norm2 = float(target @ target)
        if norm2 > 0 and float(values @ target) / norm2 >= threshold:
            noun = {"face_shape": "face", "eye_shape": "eyes", "nose": "nose", "mouth": "lips", "eyebrow": "eyebrows"}[field]
            phrases.append((float(values @ target) / norm2, f"{value} {noun}"))
    seen, words = set(), []
    for _, p in sorted(phrases, key=lambda x: -x[0]):
        noun = p.split()[-1]
        if noun not in seen:
            seen.add(noun)
            words.append(p if noun in ("lips", "eyes", "eyebrows") else f"{'an' if p[0] in 'aeiou' else 'a'} {p}")
    return ", ".join([head] + words)


def human_candidate_pool(attributes=None, *, key: Optional[jax.Array] = None, n_random: int = 24,
                         scale: float = 0.3) -> list[ShapeCandidate]:
    """Candidates of coarse shape selection in the parametric human's space.

    The human the attributes describe (:func:`machlib.human.attribute_human`), each ``face_shape``
    pattern added to it, and ``n_random`` samples around it: every symmetric slider moved by
    ``N(0, scale²)`` (clipped to its range), and gender and age jittered when the attributes do
    not state them.

    Args:
        attributes: a :class:`~machlib.text.FaceAttributes` or mapping (``None``: MakeHuman's
            average human).
        key: PRNG key of the samples; ``None``: ``jax.random.key(0)``.
        n_random: number of random samples.
        scale: their standard deviation (slider units).

    Returns:
        :class:`ShapeCandidate` s with ``human`` set: ``"described"``, ``"face-round"``, …,
        ``"sample-000"``, …

    Example:
        >>> from machlib.geometry import human_candidate_pool
        >>> pool = human_candidate_pool({"gender": "male"}, n_random=2)
        >>> pool[0].name, pool[0].human is not None, len(pool)
        ('described', True, 10)
    """
    if isinstance(n_random, bool) or not isinstance(n_random, (int, np.integer)) or n_random < 0:
        raise ValueError(f"human_candidate_pool: n_random must be an int >= 0, got {n_random!r}")
    basis, names, single = symmetric_sliders()
    ph, base, why = attribute_human(attributes if attributes is not None else {}, names=names)
    index = {n: i for i, n in enumerate(names)}
    units = 52

    def make(name, phen, sliders):
        sliders = np.clip(sliders, np.where(single, 0.0, -1.0), 1.0).astype(np.float32)
        hp = HumanParams(np.asarray(phen, np.float32), (basis @ sliders).astype(np.float32), np.zeros(units, np.float32))
        return ShapeCandidate(name, sliders, describe_human(hp, names=names), hp)

    out = [make("described", ph, base)]
    face_sliders = {k for (field, _), pattern in SHAPE_SLIDERS.items() if field == "face_shape" for k in pattern}
    for (field, value), pattern in SHAPE_SLIDERS.items():
        if field != "face_shape":
            continue
        s = base.copy()
        for k in face_sliders:  # another face shape replaces the described one
            s[index[k]] = 0.0
        for k, v in pattern.items():
            s[index[k]] = v
        out.append(make(f"face-{value}", ph, s))
    if n_random:
        rng_key = jax.random.key(0) if key is None else key
        k1, k2 = jax.random.split(rng_key)
        noise = np.asarray(jax.random.normal(k1, (int(n_random), len(names)))) * float(scale)
        jitter = np.asarray(jax.random.uniform(k2, (int(n_random), 2), minval=-0.15, maxval=0.15))
        for i in range(int(n_random)):
            p = ph.copy()
            if "gender" not in why:
                p[0] = np.clip(p[0] + 3 * jitter[i, 0], 0, 1)
            if "age" not in why:
                p[1] = np.clip(p[1] + jitter[i, 1], 0.3, 1.0)
            out.append(make(f"sample-{i:03d}", p, base + noise[i]))
    return out


# ---------------------------------------------------------------------------------------------
# Attribute → parameter directions (what a prompt's attributes say about the shape parameters)

# (field, value) -> {component: direction}; agreement is a sigmoid of the signed amount
_ATTRIBUTE_DIRECTIONS: dict[tuple[str, str], dict[str, float]] = {
    ("nose", "wide"): {"nose_width": 1.0},
    ("nose", "narrow"): {"nose_width": -1.0},
    ("nose", "large"): {"nose_length": 0.7, "nose_projection": 0.7, "nose_width": 0.4},
    ("nose", "small"): {"nose_length": -0.7, "nose_projection": -0.7, "nose_width": -0.4},
    ("nose", "button"): {"nose_length": -1.0, "nose_projection": -0.5},
    ("nose", "upturned"): {"nose_length": -1.0},
    ("nose", "aquiline"): {"nose_projection": 1.0, "nose_length": 0.5},
    ("nose", "high-bridged"): {"nose_projection": 1.0},
    ("mouth", "full"): {"lip_fullness": 1.0},
    ("mouth", "thin"): {"lip_fullness": -1.0},
    ("mouth", "wide"): {"mouth_width": 1.0},
    ("mouth", "small"): {"mouth_width": -1.0, "lip_fullness": -0.3},
    ("build", "heavy"): {"cheek_fullness": 1.0, "face_width": 0.6, "jaw_width": 0.4},
    ("build", "slim"): {"cheek_fullness": -1.0, "face_width": -0.4},
}
_SHAPE_FIELDS = ("face_shape", "nose", "mouth", "build")


def _attribute_agreement(attributes, params: np.ndarray, sigma: float) -> tuple[np.ndarray, int]:
    """Per candidate mean agreement in [0, 1] with the shape-related attributes, and their count."""
    terms = []
    if attributes is None:
        return np.zeros(len(params)), 0
    face = getattr(attributes, "face_shape", None)
    if face is not None and face in FACE_SHAPE_PRESETS:
        idx = [_INDEX[n] for n in _OUTLINE]
        target = np.asarray(face_shape_preset(face), np.float64)[idx]
        d2 = np.sum((params[:, idx] - target) ** 2, axis=1)
        terms.append(np.exp(-0.5 * d2 / sigma**2))
    for field in _SHAPE_FIELDS[1:]:
        value = getattr(attributes, field, None)
        direction = _ATTRIBUTE_DIRECTIONS.get((field, value)) if value is not None else None
        if direction:
            amount = sum(w * params[:, _INDEX[c]] for c, w in direction.items())
            norm = float(np.sqrt(sum(w * w for w in direction.values())))
            terms.append(1.0 / (1.0 + np.exp(-2.0 * amount / norm)))
    if not terms:
        return np.zeros(len(params)), 0
    return np.mean(terms, axis=0), len(terms)


def _human_agreement(attributes, candidates) -> np.ndarray:
    """Per human candidate, mean agreement in [0, 1] with the attributes: for each field the
    attributes set, ``exp(−‖s − s*‖² / (2 · 0.3²))`` over the sliders its pattern names, and for a
    stated gender or age, ``exp(−(v − v*)² / (2 · 0.1²))``."""
    if attributes is None:
        return np.zeros(len(candidates))
    _, names, _ = symmetric_sliders()
    index = {n: i for i, n in enumerate(names)}
    ph, target, why = attribute_human(attributes, names=names)
    terms = []
    for field in ("face_shape", "eye_shape", "nose", "mouth", "eyebrow"):
        value = getattr(attributes, field, None) if not isinstance(attributes, dict) else attributes.get(field)
        pattern = SHAPE_SLIDERS.get((field, value))
        if not pattern:
            continue
        idx = [index[k] for k in pattern if k in index]
        d2 = np.array([np.sum((np.asarray(c.params, np.float64)[idx] - target[idx]) ** 2) for c in candidates])
        terms.append(np.exp(-0.5 * d2 / 0.3**2))
    for k, var in ((0, "gender"), (1, "age")):
        if var in why:
            d2 = np.array([(float(np.asarray(c.human.phenotype)[k]) - float(ph[k])) ** 2 for c in candidates])
            terms.append(np.exp(-0.5 * d2 / 0.1**2))
    return np.mean(terms, axis=0) if terms else np.zeros(len(candidates))


class AttributeShapeScorer:
    """The offline shape scorer: text similarity to the description plus attribute agreement.

    ``score = text_weight · cos(E(prompt), E(description)) + attribute_weight · agreement``, where
    ``E`` is a text :class:`~machlib.assets.Embedder` (:func:`~machlib.assets.default_embedder`
    when ``None``: the packaged MiniLM when installed, else the lexical embedder) and
    ``agreement ∈ [0, 1]`` is the mean, over the shape-related attributes of the prompt, of:

    * ``face_shape``: ``exp(−‖β_o − β_o*‖² / 2σ²)`` with ``β_o`` the face-outline components and
      ``β*`` the preset of the requested shape (1 for the preset itself);
    * ``nose``, ``mouth``, ``build``: a sigmoid of the signed amount of the components that the
      value names (``wide`` nose → ``nose_width`` > 0, ``full`` lips → ``lip_fullness`` > 0, ...).

    Args:
        embedder: the text embedder.
        text_weight: weight of the text similarity.
        attribute_weight: weight of the attribute agreement.
        sigma: the face-shape agreement's width, in standard deviations of ``β``.

    Example:
        >>> from machlib.assets import LexicalEmbedder
        >>> from machlib.geometry import AttributeShapeScorer, candidate_pool
        >>> pool = candidate_pool(n_random=0)
        >>> s = AttributeShapeScorer(LexicalEmbedder()).score("a square jaw", pool)
        >>> pool[int(s.argmax())].name
        'square'
    """

    def __init__(self, embedder=None, *, text_weight: float = 1.0, attribute_weight: float = 1.0,
                 sigma: float = 1.5):
        if text_weight < 0 or attribute_weight < 0 or not sigma > 0:
            raise ValueError(f"AttributeShapeScorer: weights must be >= 0 and sigma > 0, got {text_weight!r}, "
                             f"{attribute_weight!r}, {sigma!r}")
        self.embedder = embedder
        self.text_weight = float(text_weight)
        self.attribute_weight = float(attribute_weight)
        self.sigma = float(sigma)

    def score(self, prompt: str, candidates: Sequence[ShapeCandidate], *, attributes=None) -> np.ndarray:
        """Scores ``(n,)`` float64 of the candidates for ``prompt`` (attributes parsed when ``None``).

        Example:
            >>> from machlib.assets import LexicalEmbedder
            >>> from machlib.geometry import AttributeShapeScorer, candidate_pool
            >>> AttributeShapeScorer(LexicalEmbedder()).score("a round face", candidate_pool(n_random=2)).shape
            (9,)
        """
        candidates = list(candidates)
        if attributes is None:
            attributes = parse_prompt(prompt).attributes
        emb = default_embedder() if self.embedder is None else self.embedder
        q = np.asarray(emb.embed([prompt]), np.float64)
        d = np.asarray(emb.embed([c.description for c in candidates]), np.float64)
        if q.ndim != 2 or d.shape != (len(candidates), q.shape[1]):
            raise ValueError(f"AttributeShapeScorer: embedder returned shapes {q.shape} and {d.shape}")
        qn = q / max(float(np.linalg.norm(q)), 1e-12)
        dn = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
        text = dn @ qn[0]
        if candidates and all(c.human is not None for c in candidates):
            agree = _human_agreement(attributes, candidates)
        else:
            params = np.stack([np.asarray(c.params, np.float64) for c in candidates]) if candidates else \
                np.zeros((0, NUM_SHAPE_PARAMS))
            agree, _ = _attribute_agreement(attributes, params, self.sigma)
        return self.text_weight * text + self.attribute_weight * agree

    def __repr__(self) -> str:
        return (f"AttributeShapeScorer({self.embedder!r}, text_weight={self.text_weight}, "
                f"attribute_weight={self.attribute_weight}, sigma={self.sigma})")


_FIELD_NOUNS = {"face_shape": "face", "nose": "nose", "mouth": "lips", "build": "build",
                "eye_shape": "eyes", "eyebrow": "eyebrows"}


def shape_prompt(attributes) -> str:
    """A short prompt for shape selection from attributes, e.g. ``"the face of a woman, a round face"``.

    Args:
        attributes: a :class:`~machlib.text.FaceAttributes`.

    Returns:
        The prompt (gender and age, then the shape-related attributes).

    Example:
        >>> from machlib.text import FaceAttributes
        >>> from machlib.geometry import shape_prompt
        >>> shape_prompt(FaceAttributes(gender="male", face_shape="square", nose="wide"))
        'the face of a man, a square face, a wide nose'
    """
    if not isinstance(attributes, FaceAttributes):
        raise TypeError(f"shape_prompt: expected FaceAttributes, got {type(attributes).__name__}")
    who = {"female": "a woman", "male": "a man"}.get(attributes.gender or "", "a person")
    if attributes.age_group in ("child", "teen", "elderly"):
        who = f"{'an' if attributes.age_group == 'elderly' else 'a'} {attributes.age_group} " + who.split()[-1]
        who = who.replace("child person", "child").replace("teen person", "teenager")
    parts = [f"the face of {who}"]
    for field, noun in _FIELD_NOUNS.items():
        value = getattr(attributes, field)
        if value is not None and value != "none":
            phrase = f"{value} {noun}"
            parts.append(f"{'an' if phrase[0] in 'aeiou' else 'a'} {phrase}" if noun != "lips" else phrase)
    return ", ".join(parts)


def select_shape(
    prompt_or_attributes,
    candidates: Sequence[ShapeCandidate],
    *,
    scorer: Optional[ShapeScorer] = None,
    k: int = 5,
) -> list[ShapeMatch]:
    """Rank candidate shapes against a prompt (DreamFace §4.1's coarse geometry selection).

    Args:
        prompt_or_attributes: a prompt, or :class:`~machlib.text.FaceAttributes` (turned into a
            prompt with :func:`shape_prompt`). A prompt is parsed with
            :func:`machlib.text.parse_prompt` for the scorer's ``attributes``.
        candidates: the pool (:func:`candidate_pool`).
        scorer: a :class:`ShapeScorer`; ``None``: :class:`AttributeShapeScorer` with the default
            embedder. ``machlib.interop.ClipShapeScorer`` is DreamFace's CLIP score.
        k: number of matches returned.

    Returns:
        Up to ``k`` :class:`ShapeMatch`, best first; equal scores (to 1e-9) keep pool order.

    Raises:
        ValueError: an empty prompt or pool, ``k`` < 1, or a scorer returning the wrong shape.

    Example:
        >>> from machlib.assets import LexicalEmbedder
        >>> from machlib.geometry import AttributeShapeScorer, candidate_pool, select_shape
        >>> ms = select_shape("a woman with a round face", candidate_pool(n_random=8),
        ...                   scorer=AttributeShapeScorer(LexicalEmbedder()), k=2)
        >>> ms[0].candidate.name, len(ms)
        ('round', 2)
    """
    if isinstance(prompt_or_attributes, FaceAttributes):
        attributes = prompt_or_attributes
        prompt = shape_prompt(attributes)
    elif isinstance(prompt_or_attributes, str) and prompt_or_attributes.strip():
        prompt = prompt_or_attributes
        attributes = parse_prompt(prompt).attributes
    else:
        raise ValueError(f"select_shape: expected a non-empty prompt or FaceAttributes, got {prompt_or_attributes!r}")
    candidates = list(candidates)
    if not candidates or not all(isinstance(c, ShapeCandidate) for c in candidates):
        raise ValueError("select_shape: candidates must be a non-empty list of ShapeCandidate")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"select_shape: k must be an int >= 1, got {k!r}")
    scorer = AttributeShapeScorer() if scorer is None else scorer
    scores = np.asarray(scorer.score(prompt, candidates, attributes=attributes), np.float64)
    if scores.shape != (len(candidates),):
        raise ValueError(f"select_shape: scorer returned shape {scores.shape}, expected ({len(candidates)},)")
    order = sorted(range(len(candidates)), key=lambda i: (-round(float(scores[i]), 9), i))
    return [ShapeMatch(candidates[i], float(scores[i])) for i in order[:int(k)]]


# ---------------------------------------------------------------------------------------------
# Rendering candidates (grey material, several views and directional lights)


def directional_lights(n: int) -> Float[np.ndarray, "n 3"]:
    """``n`` unit directions toward distant lights, spread over the front hemisphere (+z).

    A golden-angle spiral over the cap within 70° of the +z axis (the first light is frontal);
    deterministic. DreamFace renders every candidate under 10 directional lights.

    Args:
        n: number of lights (≥ 1).

    Returns:
        ``(n, 3)`` float64 unit vectors in head space.

    Example:
        >>> from machlib.geometry import directional_lights
        >>> d = directional_lights(10)
        >>> d.shape, d[0].tolist(), bool((d[:, 2] > 0.3).all())
        ((10, 3), [0.0, 0.0, 1.0], True)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"directional_lights: n must be an int >= 1, got {n!r}")
    i = np.arange(int(n), dtype=np.float64)
    cos_max = np.cos(np.radians(70.0))
    cz = 1.0 - (1.0 - cos_max) * np.sqrt(i / max(int(n) - 1, 1))
    sz = np.sqrt(np.clip(1.0 - cz * cz, 0.0, None))
    phi = i * np.pi * (3.0 - np.sqrt(5.0))
    out = np.stack([sz * np.sin(phi), sz * np.cos(phi), cz], 1)
    out[np.abs(out) < 1e-15] = 0.0
    return out


def render_shape(
    params: Float[np.ndarray, "B"],
    *,
    template: Optional[Template] = None,
    yaws: Sequence[float] = (0.0, -45.0, 45.0),
    lights: Union[int, np.ndarray] = 4,
    size: int = 224,
    albedo: float = 0.72,
    ambient: float = 0.3,
    background: int = 255,
    distance: float = 0.68,
    human=None,
) -> np.ndarray:
    """Render a shape candidate as DreamFace's CLIP selection sees it: grey, several views × lights.

    The template deformed by ``params`` (:func:`~machlib.geometry.apply_shape`) is drawn by
    machlib's preview renderer (:func:`machlib._scene.render_scene`), rasterized once per view
    (orbit cameras looking at the face) and shaded once per light: Lambert in linear light with
    a grey albedo plus ambient, no texture and no highlight, so the renders show geometry.

    Args:
        params: ``(B,)`` shape parameters.
        template: the head; ``None``: :func:`~machlib.geometry.default_template`.
        yaws: camera yaws in degrees (0 = front, −45/+45 = the right/left 3/4 views).
        lights: number of directional lights (:func:`directional_lights`) or ``(L, 3)`` directions
            toward the lights (head space).
        size: image size in pixels (square).
        albedo: grey level of the material (display value: a surface facing the light shows it).
        ambient: ambient fraction.
        background: grey level of the background (0–255).
        distance: camera distance in metres.
        human: a human candidate's :class:`~machlib.human.HumanParams` (``params`` is then only
            its label): the human template's head for those parameters is rendered.

    Returns:
        ``(len(yaws) · L, size, size, 3)`` uint8 RGB renders, view-major.

    Example:
        >>> import numpy as np
        >>> from machlib.geometry import render_shape, shape_params
        >>> render_shape(np.asarray(shape_params()), lights=2, size=32).shape
        (6, 32, 32, 3)
    """
    from ._template import default_template

    template = default_template() if template is None else template
    dirs = directional_lights(int(lights)) if np.ndim(lights) == 0 else np.asarray(lights, np.float64)
    if dirs.ndim != 2 or dirs.shape[1] != 3 or len(dirs) == 0:
        raise ValueError(f"render_shape: lights must be an int >= 1 or an (L, 3) array, got shape {dirs.shape}")
    dirs = dirs / np.maximum(np.linalg.norm(dirs, axis=1, keepdims=True), 1e-12)
    if human is not None:
        from ._human_fit import head_points

        if getattr(template, "human", None) is None:
            raise ValueError("render_shape: a human candidate needs the human template")
        verts = head_points(template, human)[: template.human.topology.num_skin].astype(np.float64)
    else:
        verts = np.asarray(apply_shape(template, np.asarray(params, np.float32)), np.float64)
    faces = np.asarray(template.mesh.faces)
    part = ScenePart(Mesh(verts, faces, np.zeros((len(verts), 2)), faces),
                     color=_srgb_to_linear(np.full(3, float(albedo))), specular=0.0)
    size = int(size)
    images = []
    for yaw in yaws:
        cam = orbit_camera(float(yaw), distance=distance, image_size=(size, size), target=(0.0, -0.025, 0.0))
        rgb = render_scene([part], cam, light_dir=dirs, ambient=ambient, supersample=1,
                           background=(int(background),) * 3)
        images.extend(rgb)
    return np.stack(images)
