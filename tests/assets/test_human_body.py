"""The character's body from the MakeHuman human, its skinning and garments (machlib.assets._human_body)."""

from __future__ import annotations

import numpy as np
import pytest

from machlib import InputError
from machlib.assets._human_body import (
    BUST_BODY_JOINTS,
    Body,
    accessory_skin,
    dress,
    human_body,
)
from machlib.assets._procedural import _GARMENT_DEFAULTS, GARMENT_COLORS, GARMENT_TYPES, make_bust

SKIN = (0.7, 0.5, 0.4)


# ------------------------------------------------------------------------------------ helpers


def _params(**values):
    from machlib.human import HumanParams, load_human_data, phenotype

    data = load_human_data()
    return HumanParams(phenotype(**values), np.zeros(len(data.modifiers), np.float32),
                       np.zeros(len(data.face_units.names), np.float32))


def _head():
    from machlib.geometry import default_template
    from machlib.human import head_topology
    from machlib.human._layout import boundary_loop

    top = head_topology()
    points = np.asarray(default_template().human.points, np.float64)
    (loop,) = boundary_loop(np.asarray(top.faces))
    return top, points, np.asarray(loop)


def _winding(points: np.ndarray, v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Generalized winding numbers of points w.r.t. a closed triangle soup (Van Oosterom)."""
    out = np.zeros(len(points))
    for s in range(0, len(points), 64):
        p = points[s:s + 64, None, None] - v[f][None]  # (m, F, 3, 3)
        a, b, c = p[..., 0, :], p[..., 1, :], p[..., 2, :]
        la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (a, b, c))
        det = np.einsum("mfi,mfi->mf", a, np.cross(b, c))
        den = la * lb * lc + np.einsum("mfi,mfi->mf", a, b) * lc + np.einsum("mfi,mfi->mf", b, c) * la \
            + np.einsum("mfi,mfi->mf", c, a) * lb
        out[s:s + 64] = np.arctan2(det, den).sum(1) / (2 * np.pi)
    return out


def _closed_character(body: Body, head_points: np.ndarray, top) -> tuple[np.ndarray, np.ndarray]:
    """Head skin + body as one triangle soup (closed: the body's neck is the head's)."""
    hv = head_points[: top.num_skin]
    v = np.concatenate([hv, body.vertices.astype(np.float64)])
    f = np.concatenate([np.asarray(top.faces), body.faces + len(hv)])
    return v, f


def _closed_body(body: Body) -> tuple[np.ndarray, np.ndarray]:
    """The body closed at the neck by a fan (a cheaper solid for points below the neck)."""
    v = body.vertices.astype(np.float64)
    loop = body.neck_loop
    fan = np.stack([loop, np.roll(loop, -1), np.full(len(loop), len(v))], 1)
    return np.concatenate([v, v[loop].mean(0, keepdims=True)]), np.concatenate([body.faces, fan])


def _normals(v, f):
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, f[:, k], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def head():
    return _head()


@pytest.fixture(scope="module")
def female(head):
    return human_body(_params(gender=0.0), head[1], skin_color=SKIN)


@pytest.fixture(scope="module")
def male(head):
    return human_body(_params(gender=1.0), head[1])


@pytest.fixture(scope="module")
def full():
    return human_body(_params(), extent="full")


@pytest.fixture(scope="module")
def tshirt(female):
    return dress(female, "t-shirt")


# ------------------------------------------------------------------------------------ inputs


def test_bad_inputs_raise():
    with pytest.raises(InputError, match="extent"):
        human_body(None, extent="legs")
    with pytest.raises(InputError, match="Body"):
        dress(None, "t-shirt")
    with pytest.raises(InputError, match="Body"):
        accessory_skin(object(), None)


@pytest.mark.slow
def test_bad_garment_colour_and_head_points(female):
    with pytest.raises(InputError, match="garment"):
        dress(female, "kimono")
    with pytest.raises(InputError, match="color"):
        dress(female, "t-shirt", color="plaid")
    with pytest.raises(InputError, match="colour"):
        dress(female, "t-shirt", skin_color=(2.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="head_points"):
        human_body(None, np.zeros((10, 3)))
    with pytest.raises(InputError, match="params"):
        human_body("female")


# ------------------------------------------------------------------------------------ the body


@pytest.mark.slow
def test_mesh_is_valid(female, full):
    for body in (female, full):
        v, f = body.vertices, body.faces
        assert v.dtype == np.float32 and f.dtype == np.int32 and np.isfinite(v).all()
        assert f.min() >= 0 and f.max() < len(v) and body.faces_uv.max() < len(body.uv)
        assert body.uv.min() >= 0 and body.uv.max() <= 1
        assert body.ids.shape == (len(v),) and body.ids.min() >= 0 and body.ids.max() < 19158
        assert body.operator.shape == (len(v), 19158)
        a, b, c = (v[f[:, k]].astype(np.float64) for k in range(3))
        assert (np.linalg.norm(np.cross(b - a, c - a), axis=1) > 1e-12).mean() > 0.99
    # a full figure has no cap and no helper geometry (19,158 hm08 vertices, about 12 k of them body)
    assert not full.cap.any() and len(full.vertices) < 14000
    # the bust: head and neck, shoulders, upper torso only
    assert female.cap.any() and len(female.vertices) < 2500


@pytest.mark.slow
def test_the_bust_top_is_the_heads_neck_loop(female, head):
    from machlib.human._layout import boundary_loop

    top, points, loop = head
    # same hm08 vertices, same positions (the fitted head's), same order
    np.testing.assert_array_equal(female.ids[female.neck_loop], top.vertices[loop])
    np.testing.assert_allclose(female.vertices[female.neck_loop], points[loop], atol=1e-6)
    # welded, the bust is closed but for that loop: the cut is capped
    welded = female.weld[female.faces]
    loops = boundary_loop(welded)
    assert len(loops) == 1 and set(loops[0].tolist()) == set(female.neck_loop.tolist())
    # and head + bust is closed: every edge of the union has two faces, oppositely oriented
    v, f = _closed_character(female, points, top)
    key = np.round(v, 7)
    _, canon = np.unique(key, axis=0, return_inverse=True)
    g = canon.ravel()[f]
    e = np.concatenate([g[:, [0, 1]], g[:, [1, 2]], g[:, [2, 0]]])
    fwd = {tuple(x) for x in e.tolist()}
    assert all((b, a) in fwd for a, b in e.tolist())


@pytest.mark.slow
def test_head_points_blend_into_the_body(head, female):
    top, points, loop = head
    plain = female  # the template's head on a female body
    shifted = points + np.array([0.004, -0.003, 0.002])
    moved = human_body(_params(gender=0.0), shifted)
    d = moved.vertices.astype(np.float64) - plain.vertices
    np.testing.assert_allclose(d[moved.neck_loop], np.tile([0.004, -0.003, 0.002], (len(loop), 1)), atol=1e-5)
    ring = plain.vertices[plain.neck_loop]
    far = np.linalg.norm(plain.vertices[:, None] - ring[None], axis=-1).min(1)
    assert np.abs(d[far > 0.065]).max() < 1e-6  # unchanged beyond 6 cm
    mid = (far > 0.005) & (far < 0.04)
    step = np.linalg.norm(d[mid], axis=1)
    assert step.max() <= 0.0054 + 1e-6 and step.min() > 0  # a smooth fade, no step


@pytest.mark.slow
def test_no_body_triangles_inside_the_head(female, male, head):
    top, points, loop = head
    hv = points[: top.num_skin]
    centre = hv[loop].mean(0)
    fan = np.stack([np.roll(loop, -1), loop, np.full(len(loop), len(hv))], 1)  # closes the neck
    v = np.concatenate([hv, centre[None]])
    f = np.concatenate([np.asarray(top.faces), fan])
    for body in (female, male):
        c = body.vertices[body.faces].mean(1).astype(np.float64)
        near = c[c[:, 1] > hv[loop, 1].min() - 0.06]
        assert len(near) > 50
        w = _winding(near, v, f)
        assert np.abs(w).max() < 0.5, "a body triangle lies inside the head"


@pytest.mark.slow
def test_female_and_male_builds_differ(female, male):
    def shoulders(b):
        P = b.human_vertices.astype(np.float64)
        from machlib.assets._human_body import _bone_head

        return _bone_head(P, "upperarm01.L")[0] - _bone_head(P, "upperarm01.R")[0]

    def chest(b):  # how far the chest stands out in front of the spine at the nipples' height
        from machlib.assets._human_body import _bone_tail

        P = b.human_vertices.astype(np.float64)
        y = _bone_tail(P, "breast.L")[1]
        band = b.vertices[(np.abs(b.vertices[:, 1] - y) < 0.02) & (np.abs(b.vertices[:, 0]) < 0.15)]
        return band[:, 2].max() - band[:, 2].min()

    assert shoulders(male) - shoulders(female) > 0.03
    width = lambda b: np.ptp(b.vertices[:, 0])  # noqa: E731
    assert width(male) - width(female) > 0.03
    assert abs(chest(female) - chest(male)) > 0.005
    assert female.skin_color == SKIN


@pytest.mark.slow
def test_full_body_height(full):
    assert 1.5 < full.height < 1.9
    assert 1.5 < np.ptp(full.vertices[:, 1]) + 0.25 < 1.95  # the body alone: no head
    assert np.asarray(full.params.expression).max() == 0


@pytest.mark.slow
def test_skin_weights(female, full):
    from machlib.human import load_human_data

    rig = load_human_data().rig
    s = female.skin()
    assert set(s.skeleton.names) == set(BUST_BODY_JOINTS) and set(s.skeleton.names) <= set(rig.names)
    for sk in (s, full.skin()):
        assert sk.joints.shape == sk.weights.shape == (len(sk.joints), 4)
        assert sk.joints.min() >= 0 and sk.joints.max() < sk.skeleton.num_joints
        assert (sk.weights >= 0).all()
        np.testing.assert_allclose(sk.weights.sum(1), 1.0, atol=1e-5)
    assert full.skin().skeleton.num_joints == 163
    # the arms' stubs follow the upper arms, the chest the spine
    names = s.skeleton.names
    left = female.vertices[:, 0] > 0.17
    assert names[int(np.bincount(s.joints[left, 0]).argmax())] in ("upperarm01.L", "shoulder01.L")
    chest = (np.abs(female.vertices[:, 0]) < 0.03) & (female.vertices[:, 1] < female.cut[0] + 0.05)
    assert {names[j] for j in s.joints[chest, 0]} <= {"spine01", "spine02", "spine03", "breast.L", "breast.R"}


# ------------------------------------------------------------------------------------ garments


@pytest.mark.slow
def test_every_garment_type(female):
    for garment in GARMENT_TYPES:
        acc = dress(female, garment)
        ref = make_bust(garment, cols=16, rows=8)
        assert acc.id == ref.id and acc.kind == "garment"
        assert [p.name for p in acc.parts][:2] == ["skin", "garment"]
        assert {p.name for p in acc.parts} == {p.name for p in ref.parts}, garment
        assert acc.part("garment").base_color == GARMENT_COLORS[_GARMENT_DEFAULTS[garment]]
        assert acc.part("skin").base_color == SKIN
        for p in acc.parts:
            v = np.asarray(p.mesh.vertices)
            assert np.isfinite(v).all() and len(np.asarray(p.mesh.faces))
            uv = np.asarray(p.mesh.uv)
            assert uv.min() >= 0 and uv.max() <= 1
    assert dress(female, "t-shirt", color="navy").part("garment").base_color == GARMENT_COLORS["navy"]


@pytest.mark.slow
@pytest.mark.parametrize("garment", ["t-shirt", "hoodie", "suit", "tank top"])
def test_garments_lie_outside_the_skin(female, male, head, garment):
    top, points, _ = head
    for body in (female, male):
        acc = dress(body, garment)
        v, f = _closed_body(body)
        assert abs(_winding(body.vertices[body.neck_loop].mean(0, keepdims=True) + [0, 0.05, 0], v, f)[0]) < 0.5
        assert abs(abs(_winding(np.array([[0.0, body.cut[0] + 0.1, 0.0]]), v, f)[0]) - 1) < 1e-6  # inside
        for part in acc.parts[1:]:
            g = np.asarray(part.mesh.vertices, np.float64)
            torso = g[(g[:, 1] < body.vertices[body.neck_loop, 1].min())][::2]  # over the torso
            w = _winding(torso, v, f)
            assert np.abs(w).max() < 0.5, f"{garment}: {part.name} has points inside the skin"


@pytest.mark.slow
def test_garment_moves_with_the_body(female, tshirt):
    import jax.numpy as jnp

    from machlib.human import forward_kinematics, linear_blend_skinning

    skins = accessory_skin(female, tshirt)
    body_skin = female.skin()
    sk = body_skin.skeleton
    assert len(skins) == len(tshirt.parts)
    for s, p in zip(skins, tshirt.parts):
        assert s.skeleton.names == sk.names and s.joints.shape == (p.mesh.num_vertices, 4)
        np.testing.assert_allclose(s.weights.sum(1), 1.0, atol=1e-5)
    pose = np.zeros((sk.num_joints, 3), np.float32)
    pose[sk.index("spine03")] = (0.25, 0.15, 0.0)
    pose[sk.index("clavicle.L")] = (0.0, 0.0, 0.25)
    pose[sk.index("clavicle.R")] = (0.0, 0.0, -0.2)
    P = forward_kinematics(sk, jnp.asarray(pose))

    def posed(v, s):
        return np.asarray(linear_blend_skinning(jnp.asarray(v, jnp.float32), s.joints, s.weights, P, sk.inverse_bind))

    body_v = female.vertices.astype(np.float64)
    gar = tshirt.part("garment")
    gi = [p.name for p in tshirt.parts].index("garment")
    g_v = np.asarray(gar.mesh.vertices, np.float64)
    # rest: each covered body vertex and the garment point just off it
    n = _normals(body_v, female.faces)
    from scipy.spatial import cKDTree

    d, k = cKDTree(g_v).query(body_v + 0.004 * n)
    on_cap = np.zeros(len(body_v), bool)
    on_cap[female.faces[female.cap].ravel()] = True
    covered = (d < 0.003) & ~on_cap
    assert covered.sum() > 300
    pb = posed(body_v, body_skin)
    pg = posed(g_v, skins[gi])
    moved = np.linalg.norm(pb - body_v, axis=1)
    assert moved.max() > 0.03  # the pose does move the bust
    pn = _normals(pb, female.faces)
    gap = np.sum((pg[k[covered]] - pb[covered]) * pn[covered], 1)
    assert gap.min() > -0.002, f"the skin comes {-gap.min() * 1000:.1f} mm through the garment"
