"""The learned flax delighter (issue 15 item 3): network apply under jit and vmap, float64
finite-difference gradients w.r.t. the input, save/load round trip and corrupt-file errors, the
full-resolution delight, the bundled weights, and the geometry-aware ITA-balanced data."""

import base64
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import uv_sphere, x64
from jax.test_util import check_grads
from jaxtyping import TypeCheckError

from machlib._errors import InputError
from machlib.texture import (
    BUNDLED_FLAX_DELIGHTER,
    ITA_BINS,
    DelightScene,
    FlaxDelighterConfig,
    ambient_occlusion,
    bake_visibility,
    delight_flax,
    delighting_batch,
    flax_delighter_apply,
    init_flax_delighter,
    ita_of,
    light_directions,
    load_flax_delighter,
    save_flax_delighter,
)

TINY = FlaxDelighterConfig(features=(2, 3), resolution=8)


@pytest.fixture(scope="module")
def tiny():
    return init_flax_delighter(jax.random.key(1), config=TINY)


def _inputs(key, r=8, batch=()):
    k1, k2, k3 = jax.random.split(key, 3)
    lit = jax.random.uniform(k1, batch + (r, r, 3))
    n = jax.random.normal(k2, batch + (r, r, 3))
    n = n / jnp.linalg.norm(n, axis=-1, keepdims=True)
    seen = jax.random.uniform(k3, batch + (r, r))
    return lit, n, seen, jnp.ones((r, r))


def _perturb(params, key):
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    return jax.tree_util.tree_unflatten(tree, [l + 0.3 * jax.random.normal(k, l.shape, l.dtype) for l, k in zip(leaves, keys)])


def test_apply_jit_vmap(tiny):
    params = _perturb(tiny.params, jax.random.key(2))  # the zero-initialised output layer would hide bugs
    lit, n, seen, ao = _inputs(jax.random.key(3), batch=(3,))
    f = lambda l, nn, s: flax_delighter_apply(params, l, nn, s, ao, config=TINY)
    eager = np.stack([np.asarray(f(lit[i], n[i], seen[i])) for i in range(3)])
    np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(f))(lit, n, seen)), eager, atol=1e-5)
    np.testing.assert_allclose(np.asarray(jax.jit(f)(lit[0], n[0], seen[0])), eager[0], atol=1e-5)
    assert eager.shape == (3, 8, 8, 3) and np.isfinite(eager).all() and np.ptp(eager) > 1e-3
    assert np.allclose(np.asarray(flax_delighter_apply(tiny.params, lit[0], n[0], seen[0], ao, config=TINY)), 0.0, atol=1e-6)


@pytest.mark.slow
def test_apply_grad_input_float64(tiny):
    with x64():
        params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), _perturb(tiny.params, jax.random.key(4)))
        lit, n, seen, ao = (jnp.asarray(a, jnp.float64) for a in _inputs(jax.random.key(5)))
        f = lambda l, s: flax_delighter_apply(params, l, n, s, ao, config=TINY)
        assert f(lit, seen).dtype == jnp.float64
        check_grads(f, (lit, seen), order=1, modes=["rev"], eps=1e-6)


def test_bad_inputs(tiny):
    lit, n, seen, ao = _inputs(jax.random.key(0))
    with pytest.raises((InputError, TypeCheckError), match="flax_delighter_apply"):  # jaxtyping in tests
        flax_delighter_apply(tiny.params, lit[:4], n, seen, ao, config=TINY)
    with pytest.raises(InputError, match="resolution"):
        FlaxDelighterConfig(features=(4, 8, 16), resolution=30)
    with pytest.raises((InputError, TypeCheckError), match="delight_flax"):
        delight_flax(np.zeros((16, 16, 3)), np.zeros((16, 8, 3)), np.ones((16, 16)), model=tiny)


def test_save_load_and_corrupt_files(tiny, tmp_path):
    model = tiny._replace(params=_perturb(tiny.params, jax.random.key(6)), meta={"seed": 6})
    p = save_flax_delighter(tmp_path / "d.json", model)
    back = load_flax_delighter(path=p)
    assert back.config == TINY and back.meta == {"seed": 6}
    for a, b in zip(jax.tree_util.tree_leaves(model.params), jax.tree_util.tree_leaves(back.params)):
        np.testing.assert_array_equal(np.asarray(a, np.float16).astype(np.float32), b)  # stored as float16
    with pytest.raises(InputError, match="no such file"):
        load_flax_delighter(path=tmp_path / "missing.json")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(InputError, match="readable"):
        load_flax_delighter(path=tmp_path / "junk.json")
    doc = json.loads(p.read_text())
    doc["params_msgpack"] = base64.b64encode(b"\x81\xa3abc\x01").decode()
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="do not match|corrupt"):
        load_flax_delighter(path=tmp_path / "bad.json")
    doc["format"] = "other"
    (tmp_path / "fmt.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="not a flax delighter"):
        load_flax_delighter(path=tmp_path / "fmt.json")


def test_delight_flax_full_resolution(tiny):
    # a zero-initialised network predicts shading 1: the albedo is the texture itself, at 32²
    tex = np.asarray(jax.random.uniform(jax.random.key(7), (32, 32, 3)), np.float32)
    n = np.zeros((32, 32, 3), np.float32)
    n[..., 2] = 1
    out = delight_flax(tex, n, np.ones((32, 32), np.float32), model=tiny)
    assert out.albedo.shape == (32, 32, 3) and out.shading.shape == (32, 32, 3)
    np.testing.assert_allclose(out.shading, 1.0, atol=1e-6)
    np.testing.assert_allclose(out.albedo, tex, atol=2e-3)


@pytest.mark.skipif(not BUNDLED_FLAX_DELIGHTER.is_file(), reason="bundled weights not built")
def test_bundled_weights_load():
    m = load_flax_delighter()
    assert m.ao.shape == (m.config.resolution,) * 2 and m.meta["seed"] == 0 and "command" in m.meta
    # the cache shares one model between callers: its arrays cannot be changed through one of them
    again = load_flax_delighter()
    leaf = jax.tree_util.tree_leaves(again.params)[0]
    with pytest.raises(ValueError):
        leaf[...] = 0
    again.meta["changed"] = True
    assert "changed" not in load_flax_delighter().meta



def test_visibility_and_ao_on_a_sphere():
    mesh = uv_sphere()
    dirs = light_directions(16)
    vis = bake_visibility(mesh, 16, dirs, map_size=64)
    assert vis.shape == (16, 16, 16) and vis.min() >= 0 and vis.max() <= 1
    from machlib.texture import normal_map

    n = normal_map(mesh, 16)
    facing = np.einsum("ijc,kc->kij", n, dirs)
    # a convex sphere shadows nothing that faces the light, and what faces away (n·d < −0.5) lies behind it
    assert vis[facing > 0.3].mean() > 0.97 and vis[facing < -0.5].mean() < 0.03
    ao = np.asarray(ambient_occlusion(vis, n, dirs))
    assert ao.shape == (16, 16) and ao.mean() > 0.9


@pytest.mark.slow
def test_batch_balanced_deterministic_and_split():
    r = 16
    mesh = uv_sphere()
    from machlib.texture import normal_map

    n = normal_map(mesh, r)
    dirs = light_directions(8)
    vis = bake_visibility(mesh, r, dirs, map_size=32)
    luv = np.full((478, 2), 0.5, np.float32)
    ones = np.ones((r, r), np.float32)
    scene = DelightScene(np.full((r, r, 3), 0.7, np.float32), n, dirs, vis, np.asarray(ambient_occlusion(vis, n, dirs)),
                         ones, 0 * ones, ones, luv)
    a = delighting_batch(jax.random.key(0), scene, count=12)
    b = delighting_batch(jax.random.key(0), scene, count=12)
    h = delighting_batch(jax.random.key(0), scene, count=12, split="heldout")
    np.testing.assert_array_equal(np.asarray(a.lit), np.asarray(b.lit))
    assert not np.allclose(np.asarray(a.lit), np.asarray(h.lit))
    assert np.bincount(np.asarray(a.bin)).tolist() == [2] * 6
    bins = list(ITA_BINS.values())
    for t, k in zip(np.asarray(a.ita), np.asarray(a.bin)):
        assert bins[k][0] <= t <= bins[k][1]
    # the albedo's skin ITA is the drawn one (up to the variations), lit is in range
    assert np.isfinite(np.asarray(a.albedo)).all() and np.isfinite(np.asarray(a.lit)).all()
    itas = np.array([float(ita_of(x.reshape(-1, 3).mean(0))) for x in np.asarray(a.albedo)])
    assert np.abs(itas - np.asarray(a.ita)).max() < 8.0
    assert a.lit.shape == (12, r, r, 3) and 0 <= float(a.lit.min()) and float(a.lit.max()) <= 1
    assert a.seen.shape == (12, r, r) and float(a.seen.max()) > 0.5
    with pytest.raises(InputError, match="split"):
        delighting_batch(jax.random.key(0), scene, count=2, split="test")


def test_flax_is_imported_lazily():
    import subprocess
    import sys

    code = "import sys, machlib, machlib.texture, machlib.pipeline; print('flax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
