"""BiSeNet face parsing: architecture parts, label maps from images, region masks, weight files,
and a tiny parser that learns a planted segmentation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from machlib import InputError, WeightsMissingError
from machlib.interop import (
    FACE_PARSING_CLASSES,
    FACE_REGIONS,
    BiSeNet,
    FaceParserConfig,
    load_face_parser,
    parse_face,
    parsing_to_regions,
    save_face_parser,
    save_state_dict,
)

TINY = FaceParserConfig.tiny()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _parser(seed=0):
    torch.manual_seed(seed)
    return BiSeNet(TINY).eval()


def test_config_round_trip_and_validation():
    assert FaceParserConfig.from_json(TINY.to_json()) == TINY
    assert FaceParserConfig().num_classes == len(FACE_PARSING_CLASSES) == 19
    with pytest.raises(ValueError, match="input_size"):
        FaceParserConfig(input_size=100)
    with pytest.raises(ValueError, match="widths"):
        FaceParserConfig(widths=(8, 16, 32))
    with pytest.raises(InputError, match="unknown fields"):
        FaceParserConfig.from_json('{"depth": 3}')


def test_bisenet_has_both_paths_arms_and_ffm():
    net = _parser()
    names = dict(net.named_modules())
    for part in ("spatial_path", "context_path.backbone", "context_path.arm16", "context_path.arm32", "fusion", "head"):
        assert part in names, part
    # the spatial path downsamples 8x, the context path's backbone 32x
    x = torch.zeros(1, 3, 64, 64)
    assert net.spatial_path(x).shape[-2:] == (8, 8)
    f8, f16, f32 = net.context_path.backbone(x)
    assert (f8.shape[-1], f16.shape[-1], f32.shape[-1]) == (8, 4, 2)
    assert net.context_path(x).shape == (1, TINY.context_width, 8, 8)
    assert net(x).shape == (1, 19, 64, 64)
    with pytest.raises(ValueError, match="multiples of 32"):
        net(torch.zeros(1, 3, 48, 40))


def test_parse_face_labels_follow_the_network():
    net = _parser()
    with torch.no_grad():  # plant: the head predicts "hair" everywhere
        head = net.head[-1]
        head.weight.zero_()
        head.bias.zero_()
        head.bias[FACE_PARSING_CLASSES.index("hair")] = 5.0
    img = (np.random.default_rng(0).random((50, 70, 3)) * 255).astype(np.uint8)
    labels = parse_face(img, net)
    assert labels.shape == (50, 70) and labels.dtype == np.int32
    assert (labels == 17).all()
    assert parsing_to_regions(labels)["hair"].all()


def test_parse_face_input_types_and_determinism():
    net = _parser(1)
    img = (np.random.default_rng(1).random((40, 40, 3)) * 255).astype(np.uint8)
    a = parse_face(img, net)
    np.testing.assert_array_equal(a, parse_face(img, net))
    np.testing.assert_array_equal(a, parse_face(img.astype(np.float32) / 255.0, net))
    j = parse_face(jnp.asarray(img), net)
    assert isinstance(j, jax.Array)
    np.testing.assert_array_equal(np.asarray(j), a)
    assert a.min() >= 0 and a.max() < 19
    assert parse_face(img, net, size=32).shape == (40, 40)
    with pytest.raises(ValueError, match="size"):
        parse_face(img, net, size=40)
    with pytest.raises((ValueError, TypeError)):
        parse_face(img[..., :2], net)


def test_parsing_to_regions_merges_classes():
    idx = {n: i for i, n in enumerate(FACE_PARSING_CLASSES)}
    labels = np.array([[idx["l_eye"], idx["r_eye"], idx["l_brow"]],
                       [idx["u_lip"], idx["mouth"], idx["nose"]],
                       [idx["skin"], idx["hair"], idx["background"]]], np.int32)
    r = parsing_to_regions(labels)
    assert set(r) == set(FACE_REGIONS)
    assert set(r) >= {"eyes", "brows", "lips", "mouth", "nose", "skin", "hair"}
    assert r["eyes"].tolist() == [[True, True, False], [False] * 3, [False] * 3]
    assert r["brows"].sum() == 1 and r["brows"][0, 2]
    assert r["lips"].tolist()[1] == [True, False, False]
    assert r["mouth"].tolist()[1] == [True, True, False]
    assert r["nose"][1, 2] and r["skin"][2, 0] and r["hair"][2, 1]
    assert not any(m[2, 2] for m in r.values())  # background is in no region
    rj = parsing_to_regions(jnp.asarray(labels))
    assert isinstance(rj["eyes"], jax.Array) and rj["eyes"].dtype == jnp.bool_
    np.testing.assert_array_equal(np.asarray(rj["mouth"]), r["mouth"])
    # a custom class list without lips
    small = parsing_to_regions(np.array([0, 1, 2]), classes=("background", "skin", "hair"))
    assert small["hair"].tolist() == [False, False, True] and not small["lips"].any()


def test_save_load_round_trip_and_errors(tmp_path):
    net = _parser(2)
    path = save_face_parser(tmp_path / "parser.safetensors", net)
    loaded = load_face_parser(path)
    assert loaded.config == TINY and not loaded.training
    img = (np.random.default_rng(2).random((64, 64, 3)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(parse_face(img, net), parse_face(img, loaded))
    with pytest.raises(WeightsMissingError, match="missing.safetensors"):
        load_face_parser(tmp_path / "missing.safetensors")
    bare = save_state_dict(tmp_path / "bare.safetensors", net.state_dict())
    with pytest.raises(InputError, match="do not fit"):  # defaults to the full-size config
        load_face_parser(bare)
    assert load_face_parser(bare, config=TINY).config == TINY
    (tmp_path / "bare.json").write_text(TINY.to_json())
    assert load_face_parser(bare).config == TINY
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x01\x02")
    with pytest.raises(InputError, match="bad.safetensors"):
        load_face_parser(bad)


def test_tiny_parser_learns_a_planted_segmentation():
    """Two colours, two classes: a few Adam steps must bring the cross-entropy well down."""
    torch.manual_seed(0)
    net = BiSeNet(TINY)
    rng = np.random.default_rng(0)
    images, labels = [], []
    for _ in range(4):
        lab = np.zeros((64, 64), np.int64)
        r0, c0 = rng.integers(8, 32, size=2)
        lab[r0 : r0 + 24, c0 : c0 + 24] = FACE_PARSING_CLASSES.index("skin")
        img = np.where(lab[..., None] > 0, [0.8, 0.6, 0.5], [0.1, 0.2, 0.6]) + 0.05 * rng.standard_normal((64, 64, 3))
        images.append(img)
        labels.append(lab)
    x = torch.tensor(np.stack(images).clip(0, 1), dtype=torch.float32).permute(0, 3, 1, 2)
    # the ImageNet normalisation parse_face applies
    x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    y = torch.tensor(np.stack(labels))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.3 * losses[0], losses
    pred = parse_face((images[0].clip(0, 1) * 255).astype(np.uint8), net.eval(), size=64)
    assert (pred == labels[0]).mean() > 0.9, (pred == labels[0]).mean()
