"""The learned delighter: init, save/load round trips (identical outputs), clear errors for bad
paths and files, inference on numpy/JAX/uint8/odd sizes, deterministic training, and the
training script end to end."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from machlib import InputError, WeightsMissingError
from machlib.interop import (
    Delighter,
    LocalEnhancer,
    Pix2PixHDConfig,
    delight_learned,
    load_delighter,
    load_metadata,
    new_delighter,
    save_delighter,
    save_state_dict,
    train_delighter,
)

ROOT = Path(__file__).resolve().parents[2]
TINY = Pix2PixHDConfig.tiny()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _texture(seed=0, shape=(24, 24, 3)):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def _same_weights(a, b):
    sa, sb = a.generator.state_dict(), b.generator.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_new_delighter_is_deterministic_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    a, b = new_delighter(config=TINY, seed=3), new_delighter(config=TINY, seed=3)
    assert torch.equal(state, torch.get_rng_state())
    assert _same_weights(a, b)
    assert not _same_weights(a, new_delighter(config=TINY, seed=4))
    assert isinstance(a, Delighter) and isinstance(a.generator, LocalEnhancer)
    assert a.config == TINY and a.device == torch.device("cpu")


def test_save_load_round_trip_gives_identical_outputs(tmp_path):
    d = new_delighter(config=TINY, seed=1)
    path = save_delighter(tmp_path / "sub" / "delighter.safetensors", d)
    assert sorted(os.listdir(path.parent)) == ["delighter.safetensors"]  # atomic: no temp file left
    meta = load_metadata(path)
    assert Pix2PixHDConfig.from_json(meta["machlib.pix2pixhd_config"]) == TINY
    loaded = load_delighter(path)
    assert loaded.config == TINY and _same_weights(d, loaded)
    tex = _texture()
    np.testing.assert_array_equal(delight_learned(tex, d), delight_learned(tex, loaded))


def test_load_with_sibling_json_or_explicit_config(tmp_path):
    d = new_delighter(config=TINY, seed=2)
    bare = save_state_dict(tmp_path / "bare.safetensors", d.generator.state_dict())
    with pytest.raises(InputError, match="config"):
        load_delighter(bare)
    assert _same_weights(load_delighter(bare, config=TINY), d)
    (tmp_path / "bare.json").write_text(TINY.to_json())
    assert _same_weights(load_delighter(bare), d)
    pt = tmp_path / "g.pt"
    torch.save(d.generator.state_dict(), pt)
    (tmp_path / "g.json").write_text(TINY.to_json())
    assert _same_weights(load_delighter(pt), d)
    (tmp_path / "g.json").write_text("{broken")
    with pytest.raises(InputError, match="g.json"):
        load_delighter(pt)


def test_bad_paths_and_files_give_clear_errors(tmp_path):
    missing = tmp_path / "none.safetensors"
    with pytest.raises(WeightsMissingError, match="train_delighter.py") as err:
        load_delighter(missing)
    assert str(missing) in str(err.value)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file at all")
    with pytest.raises(InputError, match="garbage.safetensors"):
        load_delighter(garbage)
    other = tmp_path / "weights.onnx"
    other.write_bytes(b"\x00")
    with pytest.raises(InputError, match="unsupported suffix"):
        load_delighter(other)
    d = new_delighter(config=TINY)
    path = save_delighter(tmp_path / "tiny.safetensors", d)
    wrong = Pix2PixHDConfig(ngf=8, n_downsample_global=2, n_blocks_global=1, n_blocks_local=1)
    with pytest.raises(InputError, match="do not match"):
        load_delighter(path, config=wrong)
    with pytest.raises(InputError, match=r"\.safetensors"):
        save_delighter(tmp_path / "x.pt", d)


def test_delight_learned_inputs_and_outputs():
    d = new_delighter(config=TINY, seed=0)
    tex = _texture(1, (30, 26, 3))  # not a multiple of 8: padded and cropped
    out = delight_learned(tex, d)
    assert isinstance(out, np.ndarray) and out.shape == tex.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    out_jax = delight_learned(jnp.asarray(tex), d)
    assert isinstance(out_jax, jax.Array)
    np.testing.assert_array_equal(np.asarray(out_jax), out)
    u8 = (tex * 255).round().astype(np.uint8)
    np.testing.assert_allclose(delight_learned(u8, d), delight_learned(u8.astype(np.float32) / 255, d), atol=1e-6)
    batch = np.stack([_texture(2), _texture(3)])
    both = delight_learned(batch, d)
    assert both.shape == batch.shape
    np.testing.assert_allclose(both[1], delight_learned(batch[1], d), atol=1e-6)
    resized = delight_learned(tex, d, resolution=16)
    assert resized.shape == tex.shape
    with pytest.raises(ValueError, match="resolution"):
        delight_learned(tex, d, resolution=4)
    with pytest.raises((ValueError, TypeError)):
        delight_learned(np.zeros((8, 8)), d)


def _data(n=4, r=16, seed=0):
    rng = np.random.default_rng(seed)
    albedo = (0.4 + 0.4 * rng.random((n, 1, 1, 3)) + 0.05 * rng.random((n, r, r, 3))).astype(np.float32)
    shade = np.linspace(0.4, 1.0, r, dtype=np.float32)[None, None, :, None]
    return albedo * shade, albedo


def test_train_delighter_is_deterministic_and_returns_losses():
    lit, albedo = _data()
    state = torch.get_rng_state()
    seen = []
    a = train_delighter(lit, albedo, steps=4, config=TINY, batch_size=2, seed=7, on_step=lambda i, l: seen.append(i))
    assert torch.equal(state, torch.get_rng_state())
    assert seen == [0, 1, 2, 3] and len(a.losses) == 4
    assert a.losses[0].keys() >= {"G_total", "G_L1", "G_GAN", "G_feat", "D_real", "D_fake"}
    b = train_delighter(lit, albedo, steps=4, config=TINY, batch_size=2, seed=7)
    assert a.losses == b.losses and _same_weights(a.delighter, b.delighter)
    c = train_delighter(lit, albedo, steps=4, config=TINY, batch_size=2, seed=8)
    assert c.losses != a.losses
    assert not a.delighter.generator.training  # handed back in eval mode
    # continue training from a result
    more = train_delighter(lit, albedo, steps=2, delighter=a.delighter, discriminator=a.discriminator, batch_size=4)
    assert len(more.losses) == 2 and more.delighter.config == TINY


def test_train_delighter_validates_inputs():
    lit, albedo = _data()
    with pytest.raises(ValueError, match="multiple of 8"):
        train_delighter(lit[:, :12, :12], albedo[:, :12, :12], steps=1, config=TINY)
    with pytest.raises(ValueError, match="batch_size"):
        train_delighter(lit, albedo, steps=1, config=TINY, batch_size=5)
    # shape mismatches: a ValueError from the function, or a TypeError from the jaxtyping
    # annotations that the test suite checks at run time
    with pytest.raises((ValueError, TypeError), match="albedo"):
        train_delighter(lit, albedo[:3], steps=1, config=TINY)
    with pytest.raises((ValueError, TypeError), match="lit"):
        train_delighter(lit[0], albedo[0], steps=1, config=TINY)


def _script(*args, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "train_delighter.py"), *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_training_script_end_to_end(tmp_path):
    out = tmp_path / "delighter.safetensors"
    r = _script("--config", "tiny", "--resolution", "32", "--pairs", "4", "--steps", "3", "--batch-size", "2",
                "--threads", "1", "--log-every", "1", "--output", str(out), "--losses", str(tmp_path / "l.json"),
                tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "step 3/3" in r.stdout and "wrote" in r.stdout
    d = load_delighter(out)
    assert d.config == TINY
    assert len(json.loads((tmp_path / "l.json").read_text())) == 3
    tex = _texture(4, (32, 32, 3))
    assert delight_learned(tex, d).shape == (32, 32, 3)


def _script_main():
    spec = importlib.util.spec_from_file_location("train_delighter_script", ROOT / "scripts" / "train_delighter.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_training_script_rejects_bad_flags(tmp_path, capsys):
    main = _script_main()
    out = str(tmp_path / "d.safetensors")
    assert main(["--config", "tiny", "--resolution", "30", "--output", out]) == 2
    assert "multiple of 8" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "missing.json"), "--output", out]) == 2
    assert "missing.json" in capsys.readouterr().err
    assert main(["--config", "tiny", "--resolution", "32", "--pairs", "2", "--batch-size", "3", "--output", out]) == 2
    assert "--batch-size" in capsys.readouterr().err
    assert main(["--config", "tiny", "--resolution", "32", "--output", str(tmp_path / "d.pt")]) == 2
    assert ".safetensors" in capsys.readouterr().err
    assert not os.listdir(tmp_path)
