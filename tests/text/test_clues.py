"""Visual clues (issue 5): attribute-driven face layouts, OpenPose-style keypoint images and
canny-style edge maps."""

import inspect

import numpy as np
import pytest

from machlib.text import _clues
from machlib.text._clues import (
    FACE_ATTRIBUTE_VALUES,
    N_FACE_KEYPOINTS,
    FaceLayout,
    edge_image,
    face_layout,
    keypoint_image,
    visual_clues,
)

# OpenPose / dlib 68-point face layout + 2 pupils: index → index of its mirror partner
_MIRROR = np.array(
    list(range(16, -1, -1))  # jaw
    + list(range(26, 16, -1))  # brows
    + [27, 28, 29, 30]  # bridge (centre line)
    + [35, 34, 33, 32, 31]  # nose base
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]  # eyes
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer lips
    + [64, 63, 62, 61, 60, 67, 66, 65]  # inner lips
    + [69, 68]  # pupils
)
JAW, R_BROW, L_BROW = slice(0, 17), slice(17, 22), slice(22, 27)
BRIDGE, NOSE_BASE, R_EYE, L_EYE = slice(27, 31), slice(31, 36), slice(36, 42), slice(42, 48)
OUTER_LIPS, INNER_LIPS = slice(48, 60), slice(60, 68)


def _width(kp, sl):
    return float(np.ptp(kp[sl, 0]))


def _height(kp, sl):
    return float(np.ptp(kp[sl, 1]))


def test_mirror_table_is_an_involution():
    assert len(_MIRROR) == N_FACE_KEYPOINTS == 70
    np.testing.assert_array_equal(_MIRROR[_MIRROR], np.arange(70))


def test_shapes_dtypes_and_values():
    layout = face_layout(size=256)
    assert isinstance(layout, FaceLayout) and layout.size == 256
    assert layout.keypoints.shape == (70, 2) and layout.keypoints.dtype == np.float32
    expected = {"face", "right_brow", "left_eye_upper", "nose_tip", "lips_upper", "mouth_line"}
    assert expected <= set(layout.curves)
    for c in layout.curves.values():
        assert c.ndim == 2 and c.shape[1] == 2 and c.shape[0] >= 2 and c.dtype == np.float32
    for image in (keypoint_image(layout, size=256), edge_image(layout, size=256)):
        assert image.shape == (256, 256, 3) and image.dtype == np.uint8
        assert set(np.unique(image)) == {0, 255}
        np.testing.assert_array_equal(image[..., 0], image[..., 1])
    clues = visual_clues({"face_shape": "round"}, size=128)
    assert set(clues) == {"openpose", "canny"}
    assert all(v.shape == (128, 128, 3) and v.dtype == np.uint8 for v in clues.values())


def test_deterministic():
    a = face_layout(face_shape="heart", eyebrow="bushy", age_group="elderly", size=300)
    b = face_layout(face_shape="heart", eyebrow="bushy", age_group="elderly", size=300)
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    assert a.curves.keys() == b.curves.keys()
    for k in a.curves:
        np.testing.assert_array_equal(a.curves[k], b.curves[k])
    c1, c2 = visual_clues({"nose": "button"}, size=128), visual_clues({"nose": "button"}, size=128)
    np.testing.assert_array_equal(c1["canny"], c2["canny"])


def _all_combinations():
    yield {}
    for arg, values in FACE_ATTRIBUTE_VALUES.items():
        for v in values:
            yield {arg: v}


@pytest.mark.parametrize("attrs", list(_all_combinations()), ids=lambda a: "-".join(a.values()) or "default")
def test_anatomical_order_and_symmetry(attrs):
    size = 256
    layout = face_layout(**attrs, size=size)
    kp = layout.keypoints.astype(np.float64)
    # inside the image, face centred, about the middle 55 % of the height
    assert (kp > 0).all() and (kp < size).all()
    for c in layout.curves.values():
        assert (c > 0).all() and (c < size).all()
    face = layout.curves["face"]
    assert 0.45 * size < np.ptp(face[:, 1]) < 0.65 * size
    assert abs(face[:, 1].mean() - size / 2) < 0.08 * size
    # brows above eyes above nose base above mouth above chin
    eyes_y = kp[36:48, 1].mean()
    assert kp[17:27, 1].max() < kp[36:48, 1].min()
    assert eyes_y < kp[BRIDGE, 1].max() < kp[NOSE_BASE, 1].min()
    assert kp[NOSE_BASE, 1].max() < kp[OUTER_LIPS, 1].min()
    assert kp[OUTER_LIPS, 1].max() < kp[8, 1]
    assert np.argmax(kp[JAW, 1]) == 8  # chin is the lowest jaw point
    # subject's right (image left) features have smaller x
    assert kp[R_EYE, 0].max() < size / 2 < kp[L_EYE, 0].min()
    assert kp[0, 0] < kp[R_EYE, 0].min() and kp[16, 0] > kp[L_EYE, 0].max()
    assert kp[48, 0] < kp[51, 0] < kp[54, 0]
    # pupils inside their eyes
    assert kp[36, 0] < kp[68, 0] < kp[39, 0] and kp[42, 0] < kp[69, 0] < kp[45, 0]
    # symmetric about the vertical centre line
    np.testing.assert_allclose(kp[:, 0] + kp[_MIRROR, 0], size, atol=1e-3)
    np.testing.assert_allclose(kp[:, 1], kp[_MIRROR, 1], atol=1e-3)
    for name in layout.curves:
        if name.startswith("right_"):
            right, left = layout.curves[name], layout.curves["left_" + name[6:]]
            np.testing.assert_allclose(right[:, 0] + left[:, 0], size, atol=1e-3)


def test_face_shapes():
    def aspect(shape):
        kp = face_layout(face_shape=shape).keypoints
        return _width(kp, JAW) / (kp[8, 1] - kp[27, 1])

    assert aspect("round") > aspect("oval") > aspect("long")
    assert aspect("square") > aspect("oval")

    def jaw_ratio(shape):  # width at the jaw angle / width at ear level
        kp = face_layout(face_shape=shape).keypoints
        return (kp[13, 0] - kp[3, 0]) / (kp[16, 0] - kp[0, 0])

    assert jaw_ratio("square") > jaw_ratio("oval") > jaw_ratio("v-shaped")
    assert jaw_ratio("heart") < jaw_ratio("oval")

    def chin_width(shape):
        kp = face_layout(face_shape=shape).keypoints
        return kp[9, 0] - kp[7, 0]

    assert chin_width("square") > chin_width("oval") > chin_width("v-shaped")


def test_eye_shapes():
    def opening(shape):
        kp = face_layout(eye_shape=shape).keypoints
        return (kp[40, 1] + kp[41, 1] - kp[37, 1] - kp[38, 1]) / 2 / _width(kp, R_EYE)

    assert opening("round") > opening("almond") > opening("narrow")

    def outer_lift(shape):  # inner-corner y − outer-corner y (image y points down)
        kp = face_layout(eye_shape=shape).keypoints
        return kp[39, 1] - kp[36, 1]

    assert outer_lift("upturned") > outer_lift("almond") > 0 > outer_lift("downturned")
    assert "right_eye_crease" not in face_layout(eye_shape="monolid").curves
    assert "right_eye_crease" in face_layout(eye_shape="almond").curves


def test_eyebrows():
    def arch(kind):  # middle of the brow above the straight line through its ends
        kp = face_layout(eyebrow=kind).keypoints[R_BROW]
        return (kp[0, 1] + kp[4, 1]) / 2 - kp[2, 1]

    assert arch("arched") > arch("straight") + 3
    assert abs(arch("straight")) < 2.0

    def thickness(kind):  # area of the closed brow outline / its length
        x, y = face_layout(eyebrow=kind).curves["right_brow"].astype(np.float64).T
        area = 0.5 * abs(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]))
        return area / np.ptp(x)

    assert thickness("thick") > 2.5 * thickness("thin")
    assert thickness("bushy") > 2.5 * thickness("thin")

    def rise(kind):  # inner end y − tail y
        kp = face_layout(eyebrow=kind).keypoints[R_BROW]
        return kp[4, 1] - kp[0, 1]

    assert rise("sword-like") > rise("straight") + 5


def test_noses():
    def width(kind):
        return _width(face_layout(nose=kind).keypoints, NOSE_BASE)

    def length(kind):
        kp = face_layout(nose=kind).keypoints
        return kp[33, 1] - kp[27, 1]

    assert width("wide") > width("straight") > width("narrow")
    assert width("large") > width("small")
    assert length("large") > length("small")
    assert length("aquiline") > length("button")


def test_mouths():
    def lips(kind):
        kp = face_layout(mouth=kind).keypoints
        return _width(kp, OUTER_LIPS), _height(kp, OUTER_LIPS)

    assert lips("full")[1] > lips("thin")[1] * 1.8
    assert lips("wide")[0] > lips("small")[0] * 1.4


def test_age_and_gender():
    adult, old = face_layout(age_group="adult"), face_layout(age_group="elderly")
    assert old.keypoints[33, 1] - old.keypoints[27, 1] > adult.keypoints[33, 1] - adult.keypoints[27, 1]
    ear = lambda lay: np.ptp(lay.curves["right_ear"][:, 1])  # noqa: E731
    assert ear(old) > ear(adult)
    assert any(k.startswith("wrinkle_") for k in old.curves)
    assert not any(k.startswith("wrinkle_") for k in adult.curves)
    assert edge_image(old).sum() > edge_image(adult).sum()

    heavy = face_layout(age_group="young adult", wrinkles="heavy")
    light = face_layout(age_group="elderly", wrinkles="light")
    assert {"right_wrinkle_nasolabial", "wrinkle_forehead_2", "left_wrinkle_marionette"} <= set(heavy.curves)
    assert [k for k in light.curves if "wrinkle" in k] == ["right_wrinkle_nasolabial", "left_wrinkle_nasolabial"]
    assert not any("wrinkle" in k for k in face_layout(age_group="elderly", wrinkles="none").curves)

    def jaw(gender):
        kp = face_layout(gender=gender).keypoints
        return kp[13, 0] - kp[3, 0]

    assert jaw("male") > jaw("neutral") > jaw("female")


def test_drawing_follows_the_layout():
    layout = face_layout(size=512)
    kimg = keypoint_image(layout)[..., 0]
    for x, y in layout.keypoints:
        assert kimg[int(y), int(x)] == 255  # pixel (i, j) covers [j, j+1) × [i, i+1)
    assert kimg.mean() < 0.05 * 255
    eimg = edge_image(layout)[..., 0]
    for c in layout.curves.values():
        x, y = np.floor(c).astype(int).T
        assert (eimg[y, x] == 255).all()
    # 1-pixel lines: 2×2 blocks fully on only where lines meet or cross
    on = eimg > 0
    blocks = on[:-1, :-1] & on[1:, :-1] & on[:-1, 1:] & on[1:, 1:]
    assert blocks.sum() < 0.02 * on.sum()
    # rescaling: a layout built at 512 draws at 256 like one built at 256
    small = face_layout(size=256)
    np.testing.assert_array_equal(keypoint_image(layout, size=256), keypoint_image(small, size=256))
    dots = (keypoint_image(layout, size=256) > 0).sum()
    assert (keypoint_image(layout, size=256, radius=1) > 0).sum() < dots


def test_visual_clues_reads_a_dict():
    ref = visual_clues({"face_shape": "long", "mouth": "full"}, size=128)
    other = visual_clues({"face_shape": "long", "lips": "full", "hair": "bob", "glasses": None}, size=128)
    np.testing.assert_array_equal(ref["canny"], other["canny"])
    assert not np.array_equal(ref["canny"], visual_clues(None, size=128)["canny"])
    # spellings and an integer age
    a = face_layout(face_shape="V_shaped", eyebrow="Willow Leaf", age_group="elderly")
    b = face_layout(face_shape="v-shaped", eyebrow="willow-leaf", age_group="elderly")
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    np.testing.assert_array_equal(visual_clues({"age": 75}, size=128)["canny"],
                                  visual_clues({"age_group": "elderly"}, size=128)["canny"])


@pytest.mark.parametrize("arg", list(FACE_ATTRIBUTE_VALUES))
def test_unknown_values_raise(arg):
    with pytest.raises((ValueError, TypeError), match=f"{arg}.*{FACE_ATTRIBUTE_VALUES[arg][0]}"):
        face_layout(**{arg: "zigzag"})


def test_bad_arguments_raise():
    with pytest.raises((ValueError, TypeError), match="face_shape"):
        visual_clues({"face_shape": "triangle"})
    with pytest.raises((ValueError, TypeError), match="eye_shape"):
        face_layout(eye_shape=3)
    with pytest.raises((ValueError, TypeError), match="size"):
        face_layout(size=8)
    with pytest.raises((ValueError, TypeError), match="radius"):
        keypoint_image(face_layout(), radius=0)


def test_public_surface():
    # visual_clues(attributes=None, *, size): ``attributes`` is data (None = no attributes)
    allowed = {("visual_clues", "attributes")}
    for name in _clues.__all__:
        obj = getattr(_clues, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert inspect.getdoc(obj), name
        if inspect.isfunction(obj):
            for p in inspect.signature(obj).parameters.values():
                ok = p.default is p.empty or p.kind is p.KEYWORD_ONLY or (name, p.name) in allowed
                assert ok, (name, p.name)
