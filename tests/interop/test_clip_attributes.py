"""Zero-shot CLIP gender and age group (issue 17, item 6) with a tiny, randomly initialised
CLIPModel saved to disk: loading, the zero-shot computation by hand, and read_attributes with it."""

import numpy as np
import pytest

from machlib._errors import InputError, WeightsMissingError
from machlib.interop import ATTRIBUTE_PROMPTS, ClipAttributeClassifier

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SIZE = 32


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    from tiny_models import save_tiny_clip

    return save_tiny_clip(tmp_path_factory.mktemp("clip_attr"), image_size=SIZE, max_positions=64)


@pytest.fixture(scope="module")
def classifier(clip_dir):
    return ClipAttributeClassifier(clip_dir)


def _face(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (48, 40, 3), dtype=np.uint8)


def test_zero_shot_probabilities_match_a_hand_computation(clip_dir, classifier):
    from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer

    face = _face()
    probs = classifier.probabilities(face)
    assert set(probs) == {"gender", "age_group"}
    for field, p in probs.items():
        assert set(p) == set(ATTRIBUTE_PROMPTS[field]) and abs(sum(p.values()) - 1) < 1e-9
    model = CLIPModel.from_pretrained(clip_dir).eval()
    tok = CLIPTokenizer.from_pretrained(clip_dir)
    pix = CLIPImageProcessor.from_pretrained(clip_dir)(images=[face], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        img = model.visual_projection(model.vision_model(pixel_values=pix).pooler_output).double()[0]
        img = img / img.norm()
        values = list(ATTRIBUTE_PROMPTS["gender"])
        sims = []
        for v in values:
            t = tok(list(ATTRIBUTE_PROMPTS["gender"][v]), padding=True, return_tensors="pt")
            e = model.text_projection(model.text_model(**t).pooler_output).double()
            e = e / e.norm(dim=1, keepdim=True)
            sims.append(float((e @ img).mean()))
        z = model.logit_scale.exp().item() * np.array(sims)
    expect = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    np.testing.assert_allclose([probs["gender"][v] for v in values], expect, rtol=1e-6)
    value, p = classifier.classify(face)["gender"]
    assert value == values[int(np.argmax(expect))] and p == max(probs["gender"].values())
    assert classifier.classify(face) == classifier.classify(face)  # deterministic


def test_read_attributes_with_the_clip_classifier(classifier):
    from machlib import default_portrait
    from machlib.character import AttributeClassifier, read_attributes
    from machlib.geometry import MediaPipeDetector
    from machlib.text import VOCABULARY

    assert isinstance(classifier, AttributeClassifier)
    photo = default_portrait()
    r = read_attributes(photo, MediaPipeDetector()(photo), classifier=classifier)
    assert r.sources["gender"] == r.sources["age_group"] == "classifier" and not r.notices
    assert r.attributes.gender in VOCABULARY["gender"] and r.attributes.age_group in VOCABULARY["age_group"]
    assert 0 < r.evidence["gender"]["probability"] <= 1


def test_missing_or_bad_folders_and_prompts(tmp_path, clip_dir):
    with pytest.raises(WeightsMissingError, match="no CLIP model folder"):
        ClipAttributeClassifier(tmp_path / "nothing")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(WeightsMissingError, match="incomplete"):
        ClipAttributeClassifier(tmp_path / "half")
    with pytest.raises(InputError, match="vocabulary"):
        ClipAttributeClassifier(clip_dir, prompts={"gender": {"robot": ("a photo of a robot",)}})
    with pytest.raises(InputError, match="unknown field"):
        ClipAttributeClassifier(clip_dir, prompts={"mood": {"happy": ("a happy face",)}})


def test_bad_face_crops_raise(classifier):
    with pytest.raises(InputError, match="uint8"):
        classifier.probabilities(np.zeros((8, 8, 3), np.float32))
