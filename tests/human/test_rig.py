"""The human's skeleton: bone frames, subsets, skin weights, forward kinematics + linear blend
skinning (rest pose, jaw and head poses, gradients, jit, vmap) and the skeleton as a glTF skin."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from helpers import x64
from machlib import InputError
from machlib.export import GltfBuilder, Triangles, read_glb, validate_gltf
from machlib.human import HumanParams, build_model, human_points, load_human_data
from machlib.human._rig import (
    BUST_JOINTS,
    Skeleton,
    _blender_bone_matrix,
    forward_kinematics,
    gltf_joints,
    linear_blend_skinning,
    skeleton,
    skin_weights,
)


@pytest.fixture(scope="module")
def human():
    """The neutral human (all 19,158 vertices, head space), its full skeleton and skin."""
    data = load_human_data()
    model = build_model("body", data=data)
    V = np.asarray(jax.jit(human_points)(model, HumanParams.neutral(model)))
    sk = skeleton(data.rig, V)
    joints, weights = skin_weights(data.rig, np.arange(len(V)), sk)
    dense = data.rig.weights.toarray()  # (163, N)
    return {"data": data, "rig": data.rig, "V": V, "sk": sk, "joints": joints, "weights": weights, "dense": dense}


def _pose(sk: Skeleton, **angles) -> jnp.ndarray:
    """``(J, 3)`` rotations: joint name → rotation vector, others zero."""
    r = np.zeros((sk.num_joints, 3))
    for name, rv in angles.items():
        r[sk.index(name.replace("_L", ".L").replace("_R", ".R"))] = rv
    return jnp.asarray(r, jnp.float32)


def _posed(h, rotations):
    sk = h["sk"]
    return np.asarray(linear_blend_skinning(h["V"], h["joints"], h["weights"], forward_kinematics(sk, rotations),
                                            sk.inverse_bind))


# ----------------------------------------------------------------------------------- frames


def test_blender_bone_matrix_conventions():
    f32 = lambda *v: jnp.asarray(v, jnp.float32)  # noqa: E731
    bone = jax.jit(_blender_bone_matrix)
    np.testing.assert_allclose(bone(f32(0, 1, 0), f32(0)), np.eye(3), atol=1e-7)
    # a bone along Blender's +X with roll 0 has its Z axis up (+Z), X toward -Y
    np.testing.assert_allclose(bone(f32(1, 0, 0), f32(0)), [[0, 1, 0], [-1, 0, 0], [0, 0, 1]], atol=1e-7)
    # roll turns X and Z about the bone, right-handed
    np.testing.assert_allclose(bone(f32(0, 1, 0), f32(np.pi / 2)), [[0, 0, 1], [0, 1, 0], [-1, 0, 0]], atol=1e-6)
    # exactly -Y: Blender's diag(-1, -1, 1); orthonormal and finite gradients there and nearby
    np.testing.assert_allclose(bone(f32(0, -1, 0), f32(0)), np.diag([-1, -1, 1]), atol=1e-7)
    jac = jax.jit(jax.jacrev(_blender_bone_matrix, argnums=(0, 1)))
    for nor in (f32(0, -1, 0), f32(1e-3, -np.sqrt(1 - 1e-6), 0), f32(0.05, -np.sqrt(1 - 0.0025), 0), f32(0, 1, 0)):
        M = bone(nor, f32(0.3))
        np.testing.assert_allclose(M @ M.T, np.eye(3), atol=1e-6)
        np.testing.assert_allclose(M[:, 1], nor, atol=1e-6)
        assert all(np.isfinite(g).all() for g in jac(nor, f32(0.3)))


def test_skeleton_rest_frames(human):
    rig, V, sk = human["rig"], human["V"], human["sk"]
    assert sk.num_joints == 163 and sk.names == rig.names and sk.parents == tuple(int(p) for p in rig.parent)
    heads = rig.head_matrix @ V.astype(np.float64)
    tails = rig.tail_matrix @ V.astype(np.float64)
    np.testing.assert_allclose(sk.heads, heads, atol=2e-6)
    np.testing.assert_allclose(sk.tails, tails, atol=2e-6)
    np.testing.assert_allclose(sk.lengths, np.linalg.norm(tails - heads, axis=1), atol=2e-6)
    R = np.asarray(sk.rest[:, :3, :3], np.float64)
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=2e-6)
    assert np.linalg.det(R).min() > 0.99999
    np.testing.assert_array_equal(np.asarray(sk.rest[:, 3]), np.broadcast_to([0, 0, 0, 1], (163, 4)))
    np.testing.assert_allclose(sk.rest @ sk.inverse_bind, np.broadcast_to(np.eye(4), (163, 4, 4)), atol=2e-6)
    # roll 0 on the midline: X is the subject's left, Z out of the face (jaw: Y down-forward)
    for name in ("neck01", "head", "jaw"):
        X, Y, Z = R[sk.index(name)].T
        assert X[0] > 0.999 and abs(X[1]) < 0.01, name
    _, Yh, Zh = R[sk.index("head")].T
    assert Yh[1] > 0.99 and Zh[2] > 0.99
    Yj = R[sk.index("jaw"), :, 1]
    assert Yj[1] < -0.7 and Yj[2] > 0.4
    # the rig's rolls are mirror-symmetric: R_R = S R_L with S = diag(-1, 1, 1) and X flipped
    S = np.diag([-1.0, 1.0, 1.0])
    worst = {}
    for i, n in enumerate(sk.names):
        if n.endswith(".L"):
            RL, RR = R[i], R[sk.index(n[:-2] + ".R")]
            expect = np.stack([-(S @ RL[:, 0]), S @ RL[:, 1], S @ RL[:, 2]], 1)
            worst[n] = np.abs(expect - RR).max()
    asym = {n for n, e in worst.items() if e > 1e-3}
    assert asym <= {"tongue07.L"}, asym  # tongue07.R's tail sits on a slightly asymmetric vertex


# ----------------------------------------------------------------------------------- subsets


def test_subset_reparents_to_nearest_kept_ancestor(human):
    rig, V, sk = human["rig"], human["V"], human["sk"]
    bust = skeleton(rig, V, joints=BUST_JOINTS)
    assert bust.names == BUST_JOINTS
    parent = {n: (bust.names[p] if p >= 0 else None) for n, p in zip(bust.names, bust.parents)}
    assert parent == {"root": None, "spine05": "root", "spine04": "spine05", "spine03": "spine04",
                      "spine02": "spine03", "spine01": "spine02", "neck01": "spine01", "neck02": "neck01",
                      "neck03": "neck02", "head": "neck03", "jaw": "head", "eye.L": "head", "eye.R": "head"}
    rows = [sk.index(n) for n in BUST_JOINTS]
    np.testing.assert_array_equal(bust.rest, sk.rest[np.array(rows)])
    np.testing.assert_array_equal(bust.lengths, sk.lengths[np.array(rows)])
    # order given does not matter (rig order kept); duplicates ignored; a missing root makes new roots
    sub = skeleton(rig, V, joints=["eye.L", "jaw", "neck01", "jaw"])
    assert sub.names == ("neck01", "jaw", "eye.L") and sub.parents == (-1, 0, 0)
    sub = skeleton(rig, V, joints=["jaw", "upperarm01.L"])
    assert sub.parents == (-1, -1)
    with pytest.raises(InputError, match="unknown bones"):
        skeleton(rig, V, joints=["head", "tail"])
    with pytest.raises(InputError, match="not the string"):
        skeleton(rig, V, joints="head")
    with pytest.raises(ValueError, match=r"vertices must have shape \(19158, 3\)"):
        skeleton(rig, V[:100])


# ----------------------------------------------------------------------------------- weights


def test_skin_weights_full_skeleton(human):
    j, w, dense = human["joints"], human["weights"], human["dense"]
    n = len(human["V"])
    assert j.shape == w.shape == (n, 4) and j.dtype == np.int32 and w.dtype == np.float32
    assert (w >= 0).all() and (j >= 0).all() and (j < 163).all()
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-6)
    assert (np.diff(w, axis=1) <= 0).all()  # sorted by decreasing weight
    # the top-4 of the rig's weights, renormalised
    top = -np.sort(-dense.T, axis=1)[:, :4]
    np.testing.assert_allclose(w, top / top.sum(1, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(np.take_along_axis(dense.T, j, 1) * (w > 0), top * (w > 0), atol=1e-7)


def test_skin_weights_move_dropped_bones_to_kept_ancestors(human):
    data, rig, V, dense = human["data"], human["rig"], human["V"], human["dense"]
    bust = skeleton(rig, V, joints=BUST_JOINTS)
    ids = np.arange(len(V))
    j, w = skin_weights(rig, ids, bust)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-6)
    assert (w >= 0).all() and j.max() < len(BUST_JOINTS)
    # tongue bones are dropped: the tongue rides the jaw (a few of its vertices carry up to 10 %
    # head weight in the rig); eyes keep their own bones
    tongue = data.group_vertices("helper-tongue")
    assert (j[tongue, 0] == bust.index("jaw")).all() and w[tongue, 0].min() > 0.85 and w[tongue, 0].mean() > 0.99
    eye = data.group_vertices("helper-l-eye")
    assert (j[eye, 0] == bust.index("eye.L")).all()
    # weight is conserved before the top-4 cut: a vertex of the hand goes fully to spine01
    hand = int(np.argmax(dense[rig.names.index("finger3-2.L")]))
    assert j[hand, 0] == bust.index("spine01") and w[hand, 0] == pytest.approx(1.0)
    # bones without a kept ancestor give their weight to joint 0 (the first root)
    head_only = skeleton(rig, V, joints=["neck01", "head", "jaw"])
    foot = int(np.argmax(dense[rig.names.index("foot.L")]))
    jf, wf = skin_weights(rig, np.array([foot]), head_only, influences=2)
    assert jf.tolist() == [[0, 0]] and wf.tolist() == [[1.0, 0.0]]
    with pytest.raises(InputError, match="influences"):
        skin_weights(rig, ids[:3], bust, influences=0)
    with pytest.raises(InputError, match="vertex_ids must lie"):
        skin_weights(rig, np.array([len(V)]), bust)


# ----------------------------------------------------------------------------------- posing


def test_rest_pose_reproduces_rest_vertices(human):
    sk = human["sk"]
    P = forward_kinematics(sk, jnp.zeros((163, 3)))
    np.testing.assert_allclose(P, sk.rest, atol=2e-6)
    np.testing.assert_allclose(_posed(human, jnp.zeros((163, 3))), human["V"], atol=2e-6)
    with x64():
        V64 = jnp.asarray(human["V"], jnp.float64)
        sk64 = skeleton(human["rig"], V64, joints=BUST_JOINTS)
        ids = np.arange(0, len(V64), 7)
        j, w = skin_weights(human["rig"], ids, sk64)
        out = linear_blend_skinning(V64[ids], j, jnp.asarray(w, jnp.float64),
                                    forward_kinematics(sk64, jnp.zeros((13, 3), jnp.float64)), sk64.inverse_bind)
        assert out.dtype == jnp.float64
        np.testing.assert_allclose(out, V64[ids], atol=1e-12)


def test_jaw_opens_down_and_back(human):
    V, sk, dense, rig = human["V"], human["sk"], human["dense"], human["rig"]
    out = _posed(human, _pose(sk, jaw=[np.deg2rad(20.0), 0.0, 0.0]))
    d = out - V
    jaw = dense[rig.names.index("jaw")]
    body = human["data"].group_vertices("body")
    chin = body[(jaw[body] > 0.75) & (np.abs(V[body, 0]) < 0.01)]  # lower lip to chin, midline
    assert len(chin) >= 10
    assert (d[chin, 1] < -2e-3).all() and (d[chin, 2] < -5e-3).all(), (d[chin].min(0), d[chin].max(0))
    assert d[chin, 1].mean() < -5e-3
    teeth = human["data"].group_vertices("helper-lower-teeth")
    assert (d[teeth, 1] < 0).all()
    top = np.flatnonzero(V[:, 1] > V[:, 1].max() - 0.01)  # skull top
    assert np.abs(d[top]).max() < 1e-6
    upper = human["data"].group_vertices("helper-upper-teeth")
    assert np.abs(d[upper]).max() < 1e-6


def test_head_nod_keeps_neck_base(human):
    V, sk = human["V"], human["sk"]
    out = _posed(human, _pose(sk, head=[np.deg2rad(30.0), 0.0, 0.0]))
    d = np.linalg.norm(out - V, axis=1)
    top = np.flatnonzero(V[:, 1] > V[:, 1].max() - 0.01)
    assert d[top].min() > 0.05
    assert (out - V)[top, 2].mean() > 0.03  # +x rotation nods the crown forward (chin toward the chest)
    # rings of the neck's surface below the neck01 joint, where the neck meets the chest
    # (MakeHuman's head weight fades down the neck: ~17 % on the throat 1 cm below the joint)
    n1 = np.asarray(sk.heads[sk.index("neck01")])
    body = human["data"].group_vertices("body")
    around = body[np.linalg.norm((V[body] - n1)[:, [0, 2]], axis=1) < 0.09]
    for below, worst, mean in ((0.02, 6e-3, 1.5e-3), (0.03, 2e-3, 3e-4)):
        ring = around[np.abs(V[around, 1] - (n1[1] - below)) < 0.005]
        assert len(ring) > 20
        assert d[ring].max() < worst and d[ring].mean() < mean, (below, d[ring].max(), d[ring].mean())
    chest = body[V[body, 1] < n1[1] - 0.06]
    assert d[chest].max() < 1e-6


def test_children_follow_their_parents(human):
    sk = human["sk"]
    P = np.asarray(forward_kinematics(sk, _pose(sk, neck01=[0.2, 0.1, -0.3], head=[0.0, 0.4, 0.0])))
    W = np.asarray(sk.rest, np.float64)
    for name in ("jaw", "eye.L", "tongue03"):
        j, p = sk.index(name), sk.parents[sk.index(name)]
        # the local transform to the parent is unchanged (the child has no rotation of its own)
        np.testing.assert_allclose(np.linalg.inv(P[p]) @ P[j], np.linalg.inv(W[p]) @ W[j], atol=2e-5)
    # bones outside the chain stay put
    for name in ("spine01", "upperarm01.L", "foot.R"):
        np.testing.assert_allclose(P[sk.index(name)], W[sk.index(name)], atol=2e-6)


def test_shape_errors(human):
    sk = human["sk"]
    with pytest.raises(ValueError, match=r"rotations must have shape \(163, 3\)"):
        forward_kinematics(sk, jnp.zeros((13, 3)))
    P = forward_kinematics(sk, jnp.zeros((163, 3)))
    # mismatched shapes: jaxtyping's check under the tests (TypeError), the function's own
    # ValueError in production
    with pytest.raises((ValueError, TypeError)):
        linear_blend_skinning(human["V"][:5], human["joints"][:4], human["weights"][:4], P, sk.inverse_bind)
    with pytest.raises((ValueError, TypeError)):
        linear_blend_skinning(human["V"][:5], human["joints"][:5], human["weights"][:5], P, sk.inverse_bind[:3])


# ----------------------------------------------------------------------------------- transforms


@pytest.fixture(scope="module")
def small64(human):
    """A float64 bust skeleton and 60 head/neck vertices with their skin weights."""
    with x64():
        V64 = jnp.asarray(human["V"], jnp.float64)
        sk = skeleton(human["rig"], V64, joints=BUST_JOINTS)
        rng = np.random.default_rng(0)
        ids = np.sort(rng.choice(np.flatnonzero(human["V"][:, 1] > -0.2), 60, replace=False))
        j, w = skin_weights(human["rig"], ids, sk)
        return {"V64": V64, "sk": sk, "v": V64[ids], "j": j, "w": jnp.asarray(w, jnp.float64),
                "rot": jnp.asarray(0.3 * rng.standard_normal((13, 3)))}


def _fk_lbs(p):
    def f(rot):
        sk = p["sk"]
        return linear_blend_skinning(p["v"], p["j"], p["w"], forward_kinematics(sk, rot), sk.inverse_bind)
    return f


def test_gradients_match_finite_differences(small64):
    with x64():
        f = _fk_lbs(small64)
        check_grads(f, (small64["rot"],), order=1, modes=("fwd", "rev"))
        check_grads(f, (jnp.zeros((13, 3), jnp.float64),), order=1, modes=("fwd", "rev"))


@pytest.mark.slow
def test_gradients_through_skeleton_placement(human, small64):
    rig, j, w = human["rig"], small64["j"], small64["w"]

    def g(V):
        sk = skeleton(rig, V, joints=BUST_JOINTS)
        return linear_blend_skinning(small64["v"], j, w, forward_kinematics(sk, small64["rot"]), sk.inverse_bind)

    with x64():
        # bone frames turn fast with the vertices of short bones: a small step keeps the finite
        # differences' curvature error below the tolerance
        check_grads(g, (small64["V64"],), order=1, modes=("fwd", "rev"), eps=1e-6)


def test_gradients_finite_at_zero_rotation(small64):
    with x64():
        jac = jax.jacrev(_fk_lbs(small64))(jnp.zeros((13, 3), jnp.float64))
        assert np.isfinite(jac).all() and np.abs(jac).max() > 0
    sk32 = skeleton(load_human_data().rig, np.asarray(small64["V64"], np.float32), joints=BUST_JOINTS)
    jac = jax.jacfwd(lambda r: forward_kinematics(sk32, r))(jnp.zeros((13, 3), jnp.float32))
    assert np.isfinite(jac).all()


def test_jit_equals_eager(small64):
    with x64():
        f = _fk_lbs(small64)
        np.testing.assert_allclose(jax.jit(f)(small64["rot"]), f(small64["rot"]), atol=1e-12)
        sk = small64["sk"]
        jitted = jax.jit(forward_kinematics)(sk, small64["rot"])
        np.testing.assert_allclose(jitted, forward_kinematics(sk, small64["rot"]), atol=1e-12)
        place = jax.jit(lambda V: skeleton(load_human_data().rig, V, joints=BUST_JOINTS))(small64["V64"])
        np.testing.assert_allclose(place.rest, sk.rest, atol=1e-12)


def test_vmap_equals_loop(small64):
    with x64():
        f = _fk_lbs(small64)
        poses = jnp.stack([small64["rot"] * s for s in (0.0, 0.5, 1.0, -2.0)])
        np.testing.assert_allclose(jax.vmap(f)(poses), jnp.stack([f(p) for p in poses]), atol=1e-12)
        sk = small64["sk"]
        batched = jax.vmap(forward_kinematics, in_axes=(None, 0))(sk, poses)
        np.testing.assert_allclose(batched, jnp.stack([forward_kinematics(sk, p) for p in poses]), atol=1e-12)


@pytest.mark.slow
def test_vmap_over_shapes_equals_loop(small64):
    with x64():
        rig = load_human_data().rig
        shapes = jnp.stack([small64["V64"], 1.1 * small64["V64"]])
        many = jax.vmap(lambda V: skeleton(rig, V, joints=BUST_JOINTS))(shapes)
        assert many.rest.shape == (2, 13, 4, 4) and many.heads.shape == (2, 13, 3)
        for b in range(2):
            one = skeleton(rig, shapes[b], joints=BUST_JOINTS)
            np.testing.assert_allclose(many.rest[b], one.rest, atol=1e-12)
            np.testing.assert_allclose(many.inverse_bind[b], one.inverse_bind, atol=1e-12)
        np.testing.assert_allclose(many.lengths[1], 1.1 * many.lengths[0], rtol=1e-12)


# ----------------------------------------------------------------------------------- glTF


def _quat_matrix(q):
    x, y, z, w = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _add_skeleton(b: GltfBuilder, sk: Skeleton) -> tuple[list[int], int]:
    """Joint nodes and a skin for ``sk`` (what the character GLB would do)."""
    g = gltf_joints(sk)
    nodes: list[int] = []
    for j, name in enumerate(g.names):
        p = g.parents[j]
        nodes.append(b.add_node(name=name, parent=nodes[p] if p >= 0 else None,
                                translation=g.translation[j].tolist(), rotation=g.rotation[j].tolist()))
    roots = [nodes[j] for j, p in enumerate(g.parents) if p < 0]
    skin = b.add_skin(nodes, name="skeleton", inverse_bind_matrices=g.inverse_bind, skeleton=roots[0])
    return nodes, skin


def test_bust_skin_as_glb(human):
    data, rig, V = human["data"], human["rig"], human["V"]
    sk = skeleton(rig, V, joints=BUST_JOINTS)
    g = gltf_joints(sk)
    assert np.allclose(np.linalg.norm(g.rotation, axis=1), 1.0) and (g.rotation[:, 3] >= 0).all()
    # head + neck + upper torso: body quads above the spine02 joint
    y0 = float(sk.heads[sk.index("spine02"), 1])
    quads = data.quads[data.groups["body"]]
    quads = quads[(V[quads, 1] > y0).all(1)]
    ids, inverse = np.unique(quads, return_inverse=True)
    q = inverse.reshape(-1, 4)
    faces = np.concatenate([q[:, [0, 1, 2]], q[:, [0, 2, 3]]])
    j, w = skin_weights(rig, ids, sk)

    b = GltfBuilder(generator="test")
    nodes, skin = _add_skeleton(b, sk)
    for k, node in enumerate(nodes):  # the node hierarchy reproduces the rest transforms
        np.testing.assert_allclose(b.world_matrix(node), sk.rest[k], atol=2e-6)
    mesh = b.add_mesh([Triangles(V[ids], faces, joints=j, weights=w, material=b.add_material(name="skin"))],
                      name="bust")
    b.add_node(name="bust", mesh=mesh, skin=skin)
    glb = b.to_glb()
    assert validate_gltf(glb) == []

    r = read_glb(glb)
    doc = r["json"]
    assert [doc["nodes"][n]["name"] for n in doc["skins"][0]["joints"]] == list(BUST_JOINTS)
    np.testing.assert_allclose(r["accessors"][doc["skins"][0]["inverseBindMatrices"]], g.inverse_bind, atol=1e-6)
    prim = doc["meshes"][0]["primitives"][0]
    np.testing.assert_array_equal(r["accessors"][prim["attributes"]["JOINTS_0"]], j)

    # a viewer's skinning of the file (node TRS, local rotation posed on top of the rest one)
    # matches forward_kinematics + linear_blend_skinning
    rot = np.zeros((len(BUST_JOINTS), 3))
    rot[sk.index("jaw")] = (0.35, 0.0, 0.0)
    rot[sk.index("head")] = (0.1, 0.3, -0.1)
    rot[sk.index("neck01")] = (-0.2, 0.0, 0.1)
    world = []
    for k, n in enumerate(doc["skins"][0]["joints"]):
        nd = doc["nodes"][n]
        local = np.eye(4)
        Rp = np.eye(3) if not rot[k].any() else _rodrigues(rot[k])
        local[:3, :3] = _quat_matrix(nd["rotation"]) @ Rp
        local[:3, 3] = nd["translation"]
        p = g.parents[k]
        world.append(local if p < 0 else world[p] @ local)
    world = np.stack(world)
    ibm = r["accessors"][doc["skins"][0]["inverseBindMatrices"]].astype(np.float64)
    pos = r["accessors"][prim["attributes"]["POSITION"]].astype(np.float64)
    M = world @ ibm
    viewer = np.einsum("nk,nkab,nb->na", w, M[j][:, :, :3, :], np.c_[pos, np.ones(len(pos))])
    ours = linear_blend_skinning(V[ids], j, w, forward_kinematics(sk, jnp.asarray(rot, jnp.float32)), sk.inverse_bind)
    np.testing.assert_allclose(viewer, ours, atol=2e-5)


def _rodrigues(rv):
    theta = np.linalg.norm(rv)
    k = rv / theta
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(theta) * K + (1 - np.cos(theta)) * K @ K
