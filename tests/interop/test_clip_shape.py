"""DreamFace's CLIP shape score (eqs. 2-3) with a tiny, randomly initialised CLIPModel saved to disk."""

import numpy as np
import pytest

from machlib._errors import WeightsMissingError
from machlib.geometry._select import ShapeScorer, candidate_pool, render_shape, select_shape
from machlib.interop._clip import CLIP_ANCHOR_TEXT, ClipShapeScorer, relative_clip_score

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SIZE = 32


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    from tiny_models import save_tiny_clip

    return save_tiny_clip(tmp_path_factory.mktemp("clip"), image_size=SIZE, max_positions=16)


@pytest.fixture(scope="module")
def scorer(clip_dir):
    return ClipShapeScorer(clip_dir, views=3, lights=2, size=SIZE)


@pytest.mark.slow
def test_scores_rank_all_candidates_deterministically(scorer):
    assert isinstance(scorer, ShapeScorer)
    pool = candidate_pool(n_random=2)
    s1 = scorer.score("a woman with a round face", pool)
    s2 = scorer.score("a woman with a round face", pool)
    assert s1.shape == (len(pool),) and np.isfinite(s1).all()
    np.testing.assert_array_equal(s1, s2)
    ranked = select_shape("a woman with a round face", pool, scorer=scorer, k=len(pool))
    assert sorted(m.candidate.name for m in ranked) == sorted(c.name for c in pool)
    assert [m.score for m in ranked] == sorted((m.score for m in ranked), reverse=True)
    # the oval preset is the mean mesh: its relative term is 0, so its score is λ_d·s_d only
    assert abs(s1[0]) <= 1.0 + 1e-9


@pytest.mark.slow
def test_score_is_eq3_recomputed_by_hand(clip_dir, scorer):
    from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer

    model = CLIPModel.from_pretrained(clip_dir).eval()
    tok = CLIPTokenizer.from_pretrained(clip_dir)
    proc = CLIPImageProcessor.from_pretrained(clip_dir)
    pool = candidate_pool(n_random=1)[1:4]  # round, v-shaped, square

    def image_mean(params):
        renders = render_shape(params, yaws=(0.0, -45.0, 45.0), lights=2, size=SIZE)
        assert renders.shape == (6, SIZE, SIZE, 3)
        with torch.no_grad():
            pix = proc(images=list(renders), return_tensors="pt")["pixel_values"]
            emb = model.get_image_features(pixel_values=pix)
            emb = emb if isinstance(emb, torch.Tensor) else emb.pooler_output
        return emb.double().mean(0).numpy()

    def text(t):
        ids = tok([t], return_tensors="pt", padding=True, truncation=True)
        with torch.no_grad():
            emb = model.get_text_features(**ids)
            emb = emb if isinstance(emb, torch.Tensor) else emb.pooler_output
        return emb.double()[0].numpy()

    def unit(x):
        return x / np.linalg.norm(x)

    e_t, a_t = text("a man with a square jaw"), text(CLIP_ANCHOR_TEXT)
    a_i = image_mean(np.zeros_like(pool[0].params))
    expected = []
    for c in pool:
        e_i = image_mean(c.params)
        expected.append(0.7 * unit(e_i) @ unit(e_t) + 1.3 * unit(e_i - a_i) @ unit(e_t - a_t))
    scorer.lambda_d, scorer.lambda_r = 0.7, 1.3
    try:
        got = scorer.score("a man with a square jaw", pool)
    finally:
        scorer.lambda_d, scorer.lambda_r = 1.0, 1.0
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_relative_clip_score_by_hand():
    e = np.array([[3.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    t, ai, at = np.array([0.0, 2.0, 0.0]), np.array([1.0, 0.0, 0.0]), np.array([1.0, 1.0, 0.0])
    s = relative_clip_score(e, t, ai, at, lambda_d=0.5, lambda_r=2.0)
    # s_d: 0, 1/√2, 0; s_r: (1,0,0)·(-1,1,0)/√2 = -1/√2, (0,1,0)·(-1,1,0)/√2 = 1/√2, 0 (the anchor itself)
    np.testing.assert_allclose(s, [2.0 * -2**-0.5, 0.5 * 2**-0.5 + 2.0 * 2**-0.5, 0.0], atol=1e-12)
    with pytest.raises((ValueError, TypeError), match="expected|d"):
        relative_clip_score(e, t[:2], ai, at)


def test_missing_or_incomplete_weights(tmp_path, clip_dir):
    with pytest.raises(WeightsMissingError, match="no CLIP model folder"):
        ClipShapeScorer(tmp_path / "nope")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(WeightsMissingError, match=r"incomplete, missing model\.safetensors.*tokenizer"):
        ClipShapeScorer(tmp_path)
    with pytest.raises(ValueError, match="views"):
        ClipShapeScorer(clip_dir, views=2)


@pytest.mark.slow
def test_front_only_and_custom_views(clip_dir):
    one = ClipShapeScorer(clip_dir, views=1, lights=1, size=SIZE)
    assert one.renders(candidate_pool(n_random=0)[0].params).shape == (1, SIZE, SIZE, 3)
    custom = ClipShapeScorer(clip_dir, views=(0.0, 30.0), lights=np.array([[0.0, 0.0, 1.0]]), size=SIZE)
    assert custom.renders(candidate_pool(n_random=0)[0].params).shape == (2, SIZE, SIZE, 3)
