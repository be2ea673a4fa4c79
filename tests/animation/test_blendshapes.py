"""machlib.animation blendshapes: the 52 ARKit displacement fields, delta triplanes, the mouth cut."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import x64
from machlib.animation import (
    ARKIT_BLENDSHAPES, apply_blendshapes, blendshape_field, blendshape_triplanes, eye_blendshapes, face_frame,
    head_blendshapes, mouth_cut,
)
from machlib.geometry import procedural_template

IDX = {n: i for i, n in enumerate(ARKIT_BLENDSHAPES)}


@pytest.fixture(scope="module")
def setup():
    t = procedural_template()
    lm = np.asarray(t.landmark_positions(), np.float64)
    frame = face_frame(lm)
    deltas = head_blendshapes(t.mesh, template=t)
    return t, lm, frame, deltas


def _nearest(mesh_v, p):
    return int(np.argmin(np.linalg.norm(mesh_v - p, axis=1)))


def test_triplanes_shape_determinism_and_locality():
    a = blendshape_triplanes(resolution=64, template=procedural_template())
    b = blendshape_triplanes(resolution=64, template=procedural_template())
    assert a.shape == (52, 64, 64, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    # every blendshape moves something, and nothing moves far (< 4 cm)
    mag = np.linalg.norm(a, axis=-1).reshape(52, -1)
    assert np.all(mag.max(1) > 1e-4), [ARKIT_BLENDSHAPES[i] for i in np.flatnonzero(mag.max(1) <= 1e-4)]
    assert mag.max() < 0.04
    # the back of the head (u near 0 or 1) never moves
    assert np.abs(a[:, :, :4]).max() == 0 and np.abs(a[:, :, -4:]).max() == 0
    with pytest.raises((ValueError, TypeError), match="resolution"):
        blendshape_triplanes(resolution=16)


def test_left_and_right_mirror(setup):
    t, lm, frame, _ = setup
    v = np.asarray(t.mesh.vertices, np.float64)
    front = v[v[:, 2] > 0.03]
    mirrored = front * [-1, 1, 1]
    d = blendshape_field(front, frame)
    dm = blendshape_field(mirrored, frame)
    for left in ("eyeBlinkLeft", "mouthSmileLeft", "browOuterUpLeft", "cheekSquintLeft", "noseSneerLeft"):
        right = left.replace("Left", "Right")
        np.testing.assert_allclose(d[IDX[left]], dm[IDX[right]] * [-1, 1, 1], atol=2e-4, err_msg=left)


def test_blendshapes_do_what_their_names_say(setup):
    t, lm, frame, d = setup
    v = np.asarray(t.mesh.vertices, np.float64)

    def moved(name, landmark):
        return d[IDX[name], _nearest(v, lm[landmark])]

    # a blink brings the upper lid (386) down to the lower lid (374)
    up, low = lm[386] + moved("eyeBlinkLeft", 386), lm[374] + moved("eyeBlinkLeft", 374)
    assert np.linalg.norm(lm[386] - lm[374]) > 0.007 and abs(up[1] - low[1]) < 0.0015
    assert np.abs(moved("eyeBlinkLeft", 159)).max() < 1e-6  # the other eye stays open
    # the jaw drops the chin ~2 cm and leaves the upper lip and the nose where they are
    assert moved("jawOpen", 152)[1] < -0.015 and np.abs(moved("jawOpen", 0)).max() < 5e-4
    assert np.abs(moved("jawOpen", 1)).max() < 1e-6
    # a left smile lifts the left corner (291) only
    assert moved("mouthSmileLeft", 291)[1] > 0.003 and np.abs(moved("mouthSmileLeft", 61)).max() < 1e-4
    assert moved("browInnerUp", 107)[1] > 0.003 and moved("browDownLeft", 334)[1] < -0.003
    assert moved("mouthPucker", 0)[2] > 0.002
    puff = d[IDX["cheekPuff"]]
    right, left = np.argmax(np.where(v[:, 0] < 0, np.linalg.norm(puff, axis=1), 0)), np.argmax(
        np.where(v[:, 0] > 0, np.linalg.norm(puff, axis=1), 0))
    assert puff[right, 0] < -0.004 and puff[left, 0] > 0.004  # both cheeks outwards


def test_mouth_cut_parts_the_lips(setup):
    t, lm, frame, d = setup
    cut = mouth_cut(t.mesh, frame)
    f = np.asarray(t.mesh.faces)[cut.faces]
    assert 10 < len(f) < 200
    v = np.asarray(t.mesh.vertices)
    assert np.all(np.abs(v[f, 0]) < abs(lm[61, 0]) + 1e-6)  # between the mouth corners
    assert np.all(cut.upper[f].any(1) & ~cut.upper[f].all(1))  # each cut face straddles the line
    # upper-lip vertices of the cut stay, lower ones follow the jaw: the lips part by > 1 cm
    lips = np.unique(f)
    jaw = d[IDX["jawOpen"], lips]
    assert np.abs(jaw[cut.upper[lips]]).max() < 5e-4
    assert np.median(jaw[~cut.upper[lips], 1]) < -0.01


def test_eye_blendshapes_rotate_each_eye(setup):
    _, _, frame, _ = setup
    front = frame.eye_centers + [0, 0, frame.eye_radius]
    d = eye_blendshapes(front, frame)
    assert d[IDX["eyeLookUpLeft"], 1, 1] > 0.003 and np.abs(d[IDX["eyeLookUpLeft"], 0]).max() == 0
    assert d[IDX["eyeLookInLeft"], 1, 0] < -0.003  # towards the nose (−x for the left eye)
    assert d[IDX["eyeLookInRight"], 0, 0] > 0.003
    assert np.abs(np.delete(d, [i for n, i in IDX.items() if n.startswith("eyeLook")], 0)).max() == 0


def test_apply_blendshapes_jit_vmap_and_gradient():
    key = jax.random.key(0)
    with x64():
        v = jax.random.normal(key, (5, 3), jnp.float64)
        d = jax.random.normal(jax.random.key(1), (4, 5, 3), jnp.float64)
        w = jnp.array([0.2, 0.5, 0.0, 1.0])
        out = apply_blendshapes(v, d, w)
        np.testing.assert_allclose(out, v + np.einsum("b,bvc->vc", w, d), rtol=1e-12)
        batch = jax.vmap(lambda ww: apply_blendshapes(v, d, ww))(jnp.stack([w, 2 * w]))
        np.testing.assert_allclose(batch[1] - v, 2 * (batch[0] - v), rtol=1e-12)

        def loss(ww):
            return jnp.sum(apply_blendshapes(v, d, ww) ** 2)

        g = jax.grad(loss)(w)
        eps = 1e-6
        fd = np.array([(loss(w.at[i].add(eps)) - loss(w.at[i].add(-eps))) / (2 * eps) for i in range(4)])
        np.testing.assert_allclose(g, fd, rtol=1e-6)


def test_bad_input():
    with pytest.raises((ValueError, TypeError), match="478"):
        face_frame(np.zeros((10, 3)))
    t = procedural_template()
    frame = face_frame(t.landmark_positions())
    with pytest.raises((ValueError, TypeError), match="points"):
        blendshape_field(np.zeros((4, 2)), frame)
    with pytest.raises((ValueError, TypeError), match="metres"):
        face_frame(np.asarray(t.landmark_positions()) * 100)
