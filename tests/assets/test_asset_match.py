"""Asset matching by text embeddings (machlib.assets._match)."""

import sys

import numpy as np
import pytest

from machlib._errors import WeightsMissingError
from machlib.assets import (
    Asset,
    AssetManifest,
    AssetMatch,
    ClipTextEmbedder,
    Embedder,
    LexicalEmbedder,
    SentenceTransformerEmbedder,
    builtin_manifest,
    default_embedder,
    match_assets,
)
from machlib.hair import HAIR_STYLES
from machlib.text import _embed

LEX = LexicalEmbedder()
MANIFEST = builtin_manifest()


def _ids(prompt, **kw):
    return [m.asset.id for m in match_assets(prompt, MANIFEST, embedder=LEX, **kw)]


def test_bob_with_bangs():
    assert _ids("a woman with a short bob and bangs", kind="hairstyle")[0] == "bob"


def test_big_curly_afro():
    assert _ids("big curly afro", kind="hairstyle")[0] == "afro"


def test_long_hair_tied_back():
    assert "ponytail" in _ids("long hair tied back", kind="hairstyle", k=2)


@pytest.mark.parametrize("prompt, kind, expected", [
    ("aviator sunglasses", None, "glasses_aviator"),
    ("a man with a goatee", "beard", "beard_goatee"),
    ("light blue eyes", "iris", "iris_blue"),
    ("wearing a business suit and tie", "garment", "garment_suit"),
    ("elegant updo", "hairstyle", "bun"),
    ("wavy shoulder length hair", None, "wavy"),
])
def test_other_kinds(prompt, kind, expected):
    assert _ids(prompt, kind=kind)[0] == expected


def test_kind_filter():
    got = match_assets("round glasses and a big afro", MANIFEST, kind="glasses", k=10, embedder=LEX)
    assert got and all(m.asset.kind == "glasses" for m in got)
    assert got[0].asset.id == "glasses_round"
    assert len(got) == len(MANIFEST.of_kind("glasses"))  # k larger than the candidates
    everything = match_assets("round glasses and a big afro", MANIFEST, k=2, embedder=LEX)
    assert {m.asset.id for m in everything} == {"glasses_round", "afro"}


def test_attribute_phrases():
    got = match_assets(["short hair", "bob", "bangs"], MANIFEST, kind="hairstyle", k=1, embedder=LEX)
    assert got[0].asset.id == "bob"


def test_scores_sorted_in_range_and_deterministic():
    a = match_assets("long straight black hair", MANIFEST, k=len(MANIFEST), embedder=LEX)
    b = match_assets("long straight black hair", MANIFEST, k=len(MANIFEST), embedder=LexicalEmbedder())
    assert a == b
    assert len(a) == len(MANIFEST)
    scores = [m.score for m in a]
    assert all(-1.0 <= s <= 1.0 for s in scores)
    assert scores == sorted(scores, reverse=True)
    assert all(isinstance(m, AssetMatch) and isinstance(m.score, float) for m in a)


def test_ties_are_ordered_by_id():
    assets = tuple(Asset(i, "beard", "full beard", f"beard/{i}.data") for i in ("zeta", "alpha", "mid"))
    got = match_assets("beard", AssetManifest(assets), embedder=LEX)
    assert [m.asset.id for m in got] == ["alpha", "mid", "zeta"]
    assert len({m.score for m in got}) == 1


def test_lexical_embedder_properties():
    texts = ["Short BOB with bangs!", "short bob, fringe", "", "the a with"]
    e = LEX.embed(texts)
    assert e.shape == (4, 4096) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e[:2], axis=1), 1.0, rtol=1e-5)
    assert not e[2].any() and not e[3].any()  # no features → zero row
    assert e[0] @ e[1] > 0.6  # case, punctuation and the bangs/fringe synonym do not matter
    np.testing.assert_array_equal(e, LexicalEmbedder().embed(texts))
    assert isinstance(LEX, Embedder)
    with pytest.raises((ValueError, TypeError), match="LexicalEmbedder"):
        LexicalEmbedder(dim=4)


def test_custom_embedder_is_used_and_checked():
    class Const:
        def embed(self, texts):
            return np.ones((len(texts), 3), np.float32) / np.sqrt(3)

    got = match_assets("anything", MANIFEST, kind="beard", k=2, embedder=Const())
    assert [m.asset.id for m in got] == sorted(a.id for a in MANIFEST.of_kind("beard"))[:2]
    assert got[0].score == pytest.approx(1.0)

    class Bad:
        def embed(self, texts):
            return np.ones((len(texts) + 1, 3), np.float32)

    with pytest.raises(ValueError, match="match_assets: embedder returned shapes"):
        match_assets("anything", MANIFEST, embedder=Bad())


@pytest.mark.parametrize("kwargs, msg", [
    (dict(prompt=""), "match_assets: prompt"),
    (dict(prompt="   "), "match_assets: prompt"),
    (dict(prompt=[]), "match_assets: prompt"),
    (dict(prompt="bob", k=0), "match_assets: k must be"),
    (dict(prompt="bob", kind="hat"), "match_assets: kind must be one of"),
])
def test_bad_inputs(kwargs, msg):
    kwargs = {"manifest": MANIFEST, "embedder": LEX, **kwargs}
    with pytest.raises((ValueError, TypeError), match=msg):
        match_assets(kwargs.pop("prompt"), kwargs.pop("manifest"), **kwargs)


def test_empty_candidate_set():
    m = AssetManifest((Asset("x", "beard", "goatee", "beard/x.data"),))
    assert match_assets("glasses", m, kind="glasses", embedder=LEX) == []


def test_sentence_transformer_missing_path(tmp_path):
    with pytest.raises(WeightsMissingError, match="SentenceTransformerEmbedder: no sentence-transformers model folder"):
        SentenceTransformerEmbedder(tmp_path / "nope")


def test_sentence_transformer_missing_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # makes the import fail
    with pytest.raises(ImportError, match="SentenceTransformerEmbedder needs the 'sentence-transformers' package"):
        SentenceTransformerEmbedder(tmp_path)


def test_clip_missing_path(tmp_path):
    with pytest.raises(WeightsMissingError, match="ClipTextEmbedder: no CLIP text model folder"):
        ClipTextEmbedder(tmp_path / "nope")


def test_clip_missing_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match="ClipTextEmbedder needs the 'transformers' package"):
        ClipTextEmbedder(tmp_path)


def test_default_embedder_decision(tmp_path, monkeypatch):
    _embed._default_for.cache_clear()
    monkeypatch.setenv("MACHLIB_TEXT_EMBEDDER", "lexical")
    assert isinstance(default_embedder(), LexicalEmbedder)
    # auto without the model distribution or package: lexical fallback
    monkeypatch.setenv("MACHLIB_TEXT_EMBEDDER", "auto")
    monkeypatch.setattr(_embed, "_bundled_sentence_model", lambda: None)
    _embed._default_for.cache_clear()
    assert isinstance(default_embedder(), LexicalEmbedder)
    # auto with a model folder but without sentence-transformers: lexical fallback
    monkeypatch.setattr(_embed, "_bundled_sentence_model", lambda: tmp_path)
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    _embed._default_for.cache_clear()
    assert isinstance(default_embedder(), LexicalEmbedder)
    # an explicit path is honoured, and its errors are raised
    monkeypatch.setenv("MACHLIB_TEXT_EMBEDDER", str(tmp_path / "missing"))
    with pytest.raises(WeightsMissingError, match="SentenceTransformerEmbedder"):
        default_embedder()
    _embed._default_for.cache_clear()
    # match_assets without an embedder uses the default
    monkeypatch.setenv("MACHLIB_TEXT_EMBEDDER", "lexical")
    assert match_assets("big curly afro", MANIFEST, kind="hairstyle", k=1)[0].asset.id == "afro"
    _embed._default_for.cache_clear()


def test_clip_text_embedder_end_to_end_with_a_tiny_random_clip(tmp_path):
    """A tiny random CLIP text encoder with projection, saved like a checkpoint, loads and embeds;
    matching with it ranks every asset deterministically."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tiny_models import save_clip_tokenizer

    torch.manual_seed(0)
    config = transformers.CLIPTextConfig(vocab_size=514, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, max_position_embeddings=77, projection_dim=24,
                                         bos_token_id=512, eos_token_id=513, pad_token_id=513)
    transformers.CLIPTextModelWithProjection(config).save_pretrained(tmp_path / "clip")
    save_clip_tokenizer(tmp_path / "clip" / "tokenizer", model_max_length=77)
    embedder = ClipTextEmbedder(tmp_path / "clip")
    x = embedder.embed(["a short bob with bangs", "big curly afro", "a short bob with bangs"])
    assert x.shape == (3, 24) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(x[0], x[2], atol=1e-6)
    assert not np.allclose(x[0], x[1])
    manifest = builtin_manifest()
    first = match_assets("a short bob", manifest, kind="hairstyle", k=20, embedder=embedder)
    again = match_assets("a short bob", manifest, kind="hairstyle", k=20, embedder=embedder)
    assert [m.asset.id for m in first] == [m.asset.id for m in again]
    assert len(first) == sum(a.kind == "hairstyle" for a in manifest.assets) == len(HAIR_STYLES)
