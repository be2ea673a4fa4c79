"""The torch bridge: lazy import, zero-copy DLPack conversion, torch functions under JAX
transformations (gradients against torch autograd and finite differences), safe weight I/O."""

import inspect
import os
import pickle
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from jax.test_util import check_grads

import machlib.interop as mi
from helpers import x64
from machlib import InputError, MachlibError, WeightsMissingError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _run(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


# ------------------------------------------------------------------------------------------------
# lazy import


def test_importing_machlib_interop_does_not_import_torch():
    r = _run(
        "import sys, machlib, machlib.interop, machlib.texture, machlib.geometry\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert 'safetensors' not in sys.modules, 'safetensors imported'\n"
        "print('ok')"
    )
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout


def test_missing_torch_raises_install_hint():
    r = _run(
        "import sys\n"
        "sys.modules['torch'] = None  # makes `import torch` fail\n"
        "import jax.numpy as jnp, machlib.interop as mi\n"
        "assert not mi.torch_available()\n"
        "for thunk in (lambda: mi.to_torch(jnp.zeros(2)), lambda: mi.LocalEnhancer, lambda: mi.load_state_dict('x.pt')):\n"
        "    try:\n"
        "        thunk()\n"
        "    except mi.TorchMissingError as e:\n"
        "        assert isinstance(e, ImportError)\n"
        "        assert \"pip install 'machlib[torch]'\" in str(e), str(e)\n"
        "    except Exception as e:\n"
        "        raise SystemExit(f'wrong error {type(e).__name__}: {e}')\n"
        "    else:\n"
        "        raise SystemExit('no error')\n"
        "print('ok')"
    )
    assert r.returncode == 0, r.stderr + r.stdout
    assert "ok" in r.stdout


def test_torch_missing_error_is_machlib_and_import_error():
    assert issubclass(mi.TorchMissingError, MachlibError)
    assert issubclass(mi.TorchMissingError, ImportError)
    assert mi.require_torch() is torch


# ------------------------------------------------------------------------------------------------
# conversion


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.int32, jnp.bool_, jnp.float16, jnp.uint8])
def test_to_torch_is_zero_copy_and_exact(dtype):
    x = (jnp.arange(24).reshape(2, 3, 4) % 5).astype(dtype)
    t = mi.to_torch(x)
    assert isinstance(t, torch.Tensor) and t.device.type == "cpu"
    assert tuple(t.shape) == x.shape
    assert t.data_ptr() == x.unsafe_buffer_pointer()
    np.testing.assert_array_equal(t.numpy(), np.asarray(x))


def test_to_torch_numpy_and_device_argument():
    a = np.arange(6.0).reshape(2, 3)
    t = mi.to_torch(a)
    assert t.data_ptr() == a.ctypes.data  # shares memory
    t64 = mi.to_torch(a, device="cpu")
    assert t64.dtype == torch.float64
    assert mi.to_torch(3.5).item() == 3.5
    assert mi.to_torch([1, 2]).tolist() == [1, 2]


def test_to_torch_rejects_tracers():
    with pytest.raises(TypeError, match="torch_function"):
        jax.jit(lambda x: mi.to_torch(x))(jnp.zeros(2))


def test_to_jax_is_zero_copy_for_contiguous_tensors():
    t = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    x = mi.to_jax(t)
    assert x.unsafe_buffer_pointer() == t.data_ptr()
    np.testing.assert_array_equal(np.asarray(x), t.numpy())


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.arange(12.0).reshape(3, 4).T,  # transposed
        lambda: torch.arange(24.0).reshape(4, 6)[:, ::2],  # strided
        lambda: torch.arange(10.0)[3:8],  # offset view
        lambda: torch.arange(6.0).reshape(2, 3).expand(4, 2, 3),  # zero stride
        lambda: torch.arange(4.0)._neg_view(),  # lazily negated view
        lambda: torch.tensor([1 + 2j, 3 - 1j], dtype=torch.complex64).conj(),  # lazily conjugated
        lambda: torch.ones(3, requires_grad=True) * 2,  # tracked by autograd
        lambda: torch.zeros(0, 3),
        lambda: torch.tensor(2.5),
    ],
)
def test_to_jax_handles_any_layout(make):
    t = make()
    expected = t.detach().resolve_conj().resolve_neg().numpy().copy()
    x = mi.to_jax(t)
    assert x.shape == tuple(t.shape)
    np.testing.assert_array_equal(np.asarray(x), expected)


def test_round_trip_preserves_values_and_dtype():
    for x in (jnp.linspace(-1, 1, 7), jnp.arange(5, dtype=jnp.int32), jnp.array([True, False])):
        y = mi.to_jax(mi.to_torch(x))
        assert y.dtype == x.dtype
        np.testing.assert_array_equal(np.asarray(y), np.asarray(x))


def test_device_mapping_on_cpu():
    cpu = jax.devices("cpu")[0]
    assert mi.torch_device_for(cpu) == torch.device("cpu")
    assert mi.jax_device_for("cpu") == cpu
    assert mi.jax_device_for(torch.device("cpu")) == cpu
    if not any(d.platform == "gpu" for d in jax.devices()):
        assert mi.jax_device_for("cuda:0") is None
    assert list(mi.to_jax(torch.ones(2)).devices()) == [cpu]


def _shared_gpu():
    if not torch.cuda.is_available():
        return None
    try:
        return jax.devices("gpu")[0]
    except RuntimeError:
        return None


@pytest.mark.skipif(_shared_gpu() is None, reason="needs a CUDA GPU visible to both JAX and torch")
def test_zero_copy_and_device_mapping_on_gpu():
    gpu = _shared_gpu()
    index = mi.torch_device_for(gpu).index
    assert mi.torch_device_for(gpu) == torch.device("cuda", index)
    assert mi.jax_device_for(f"cuda:{index}") == gpu
    x = jax.device_put(jnp.arange(4096.0, dtype=jnp.float32), gpu)
    t = mi.to_torch(x)
    assert t.device == torch.device("cuda", index)
    assert t.data_ptr() == x.unsafe_buffer_pointer()  # zero-copy: the same device memory
    y = mi.to_jax(t * 2)
    assert list(y.devices()) == [gpu]
    np.testing.assert_array_equal(np.asarray(y), 2 * np.arange(4096.0, dtype=np.float32))
    z = mi.to_jax(t)
    assert z.unsafe_buffer_pointer() == t.data_ptr()
    # a module on the GPU, called and differentiated from JAX
    net = _mlp().to(f"cuda:{index}")
    f = mi.torch_function(net)
    xs = jax.device_put(jax.random.normal(jax.random.key(1), (4, 3)), gpu)
    expected = net(mi.to_torch(xs)).detach().cpu().numpy()
    np.testing.assert_allclose(np.asarray(jax.jit(f)(xs)), expected, rtol=1e-5, atol=1e-5)
    g = jax.grad(lambda a: f(a).sum())(xs)
    xt = mi.to_torch(xs).clone().requires_grad_(True)
    net(xt).sum().backward()
    np.testing.assert_allclose(np.asarray(g), xt.grad.cpu().numpy(), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# torch_function


def _mlp(dtype=torch.float32):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)).to(dtype).eval()


def test_torch_function_matches_torch_eager_and_jit():
    net = _mlp()
    f = mi.torch_function(net)
    x = jax.random.normal(jax.random.key(0), (4, 3))
    expected = net(torch.from_numpy(np.array(x))).detach().numpy()
    np.testing.assert_allclose(np.asarray(f(x)), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(jax.jit(f)(x)), expected, rtol=1e-6, atol=1e-6)
    assert f(x).dtype == jnp.float32


def test_torch_function_gradient_matches_torch_autograd():
    with x64():
        net = _mlp(torch.float64)
        f = mi.torch_function(net)
        x = jax.random.normal(jax.random.key(1), (4, 3), jnp.float64)
        w = jax.random.normal(jax.random.key(2), (4, 2), jnp.float64)
        g_jax = jax.jit(jax.grad(lambda x: jnp.sum(f(x) * w)))(x)
        xt = torch.from_numpy(np.array(x)).requires_grad_(True)
        (net(xt) * torch.from_numpy(np.array(w))).sum().backward()
        np.testing.assert_allclose(np.asarray(g_jax), xt.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_torch_function_gradient_against_finite_differences():
    with x64():
        net = _mlp(torch.float64)
        f = mi.torch_function(net)
        x = jax.random.normal(jax.random.key(3), (2, 3), jnp.float64)
        check_grads(f, (x,), order=1, modes=("rev",), eps=1e-6, atol=1e-6, rtol=1e-6)

        def two(a, b):
            return torch.sin(a) * b, (a * b).sum()

        g = mi.torch_function(two)
        a = jax.random.normal(jax.random.key(4), (3,), jnp.float64)
        b = jax.random.normal(jax.random.key(5), (3,), jnp.float64)
        check_grads(lambda a, b: g(a, b)[0] + g(a, b)[1], (a, b), order=1, modes=("rev",), eps=1e-6)


def test_torch_function_pytrees_integer_inputs_and_unused_outputs():
    def fn(inputs, scale):
        x, idx = inputs["x"], inputs["idx"]
        return {"picked": x[idx] * scale, "count": idx.sum()}

    f = mi.torch_function(fn)
    x = jnp.arange(5.0)
    idx = jnp.array([4, 0], dtype=jnp.int32)
    out = f({"x": x, "idx": idx}, jnp.float32(2.0))
    np.testing.assert_allclose(np.asarray(out["picked"]), [8.0, 0.0])
    assert int(out["count"]) == 4
    grads = jax.grad(lambda x, s: jnp.sum(f({"x": x, "idx": idx}, s)["picked"]), argnums=(0, 1))(x, jnp.float32(2.0))
    np.testing.assert_allclose(np.asarray(grads[0]), [2.0, 0.0, 0.0, 0.0, 2.0])
    assert float(grads[1]) == pytest.approx(4.0)
    # the integer input gets a float0 cotangent, not an error
    g_all = jax.grad(lambda t: jnp.sum(f(t, jnp.float32(1.0))["picked"]), allow_int=True)({"x": x, "idx": idx})
    assert g_all["idx"].dtype == jax.dtypes.float0


def test_torch_function_vmap_equals_loop_and_grad_under_vmap():
    net = _mlp()
    f = mi.torch_function(net)
    xs = jax.random.normal(jax.random.key(6), (3, 4, 3))
    batched = jax.vmap(f)(xs)
    looped = jnp.stack([f(x) for x in xs])
    np.testing.assert_allclose(np.asarray(batched), np.asarray(looped), rtol=1e-6)
    gb = jax.vmap(jax.grad(lambda x: f(x).sum()))(xs)
    gl = jnp.stack([jax.grad(lambda x: f(x).sum())(x) for x in xs])
    np.testing.assert_allclose(np.asarray(gb), np.asarray(gl), rtol=1e-6)
    # one call with a leading batch axis when the function accepts it
    fe = mi.torch_function(net, vmap_method="expand_dims")
    np.testing.assert_allclose(np.asarray(jax.vmap(fe)(xs)), np.asarray(looped), rtol=1e-6)


def test_torch_function_out_shape_argument_and_mismatch():
    f = mi.torch_function(lambda x: x * 2, out_shape=lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype))
    assert f(jnp.ones(3)).tolist() == [2.0, 2.0, 2.0]
    bad = mi.torch_function(lambda x: x[:2], out_shape=jax.ShapeDtypeStruct((3,), jnp.float32))
    with pytest.raises(Exception, match="shape"):
        jax.block_until_ready(bad(jnp.ones(3)))
    with pytest.raises(ValueError, match="vmap_method"):
        mi.torch_function(lambda x: x, vmap_method="bogus")
    with pytest.raises(TypeError, match="fn"):
        mi.torch_function(3)


def test_torch_function_does_not_track_parameters_or_change_them():
    net = _mlp()
    before = [p.detach().clone() for p in net.parameters()]
    f = mi.torch_function(net)
    jax.grad(lambda x: f(x).sum())(jnp.ones((2, 3)))
    for a, b in zip(before, net.parameters()):
        assert torch.equal(a, b)
        assert b.grad is None


# ------------------------------------------------------------------------------------------------
# weights


def _state():
    torch.manual_seed(0)
    return {"a.weight": torch.randn(3, 2), "a.bias": torch.zeros(3), "steps": torch.tensor(7)}


def test_safetensors_round_trip_with_metadata(tmp_path):
    path = mi.save_state_dict(tmp_path / "w.safetensors", _state(), metadata={"note": "hi"})
    loaded = mi.load_state_dict(path)
    assert set(loaded) == set(_state())
    for k, v in _state().items():
        assert torch.equal(loaded[k], v)
    assert mi.load_metadata(path) == {"note": "hi"}
    assert sorted(os.listdir(tmp_path)) == ["w.safetensors"]  # no temporary file left
    assert (path.stat().st_mode & 0o777) != 0o600


def test_save_state_dict_overwrites_atomically_and_validates(tmp_path):
    p = tmp_path / "w.safetensors"
    mi.save_state_dict(p, {"x": torch.ones(2)})
    mi.save_state_dict(p, {"x": torch.zeros(2)})
    assert torch.equal(mi.load_state_dict(p)["x"], torch.zeros(2))
    with pytest.raises(InputError, match=r"\.safetensors"):
        mi.save_state_dict(tmp_path / "w.pt", {"x": torch.ones(2)})
    with pytest.raises(InputError, match="str"):
        mi.save_state_dict(p, {"x": [1, 2]})


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin"])
def test_torch_save_state_dicts_load_with_weights_only(tmp_path, suffix):
    p = tmp_path / f"w{suffix}"
    torch.save(_state(), p)
    loaded = mi.load_state_dict(p)
    assert torch.equal(loaded["a.weight"], _state()["a.weight"])
    nested = tmp_path / f"nested{suffix}"
    torch.save({"state_dict": _state(), "epoch": 3}, nested)
    assert set(mi.load_state_dict(nested)) == set(_state())
    assert mi.load_metadata(p) == {}


class _Payload:
    """Unpickling this would create a marker file (a stand-in for arbitrary code)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickled_objects_are_refused_without_running_them(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.pt"
    torch.save({"w": torch.ones(1), "x": _Payload(str(marker))}, p)
    assert not marker.exists()
    with pytest.raises(InputError, match="evil.pt") as err:
        mi.load_state_dict(p)
    assert "unpickle" in str(err.value)
    assert not marker.exists()
    # a plain pickle under a torch suffix is refused too
    raw = tmp_path / "raw.bin"
    raw.write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(InputError, match="raw.bin"):
        mi.load_state_dict(raw)
    assert not marker.exists()


def test_bad_weight_files_give_clear_errors(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(WeightsMissingError, match="nope.safetensors") as err:
        mi.load_state_dict(missing)
    assert isinstance(err.value, FileNotFoundError)
    for name in ("w.pkl", "w.npz", "w.ckpt", "w"):
        (tmp_path / name).write_bytes(b"\x00" * 16)
        with pytest.raises(InputError, match="unsupported suffix"):
            mi.load_state_dict(tmp_path / name)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(os.urandom(256))
    with pytest.raises(InputError, match="garbage.safetensors"):
        mi.load_state_dict(garbage)
    with pytest.raises(InputError, match="garbage.safetensors"):
        mi.load_metadata(garbage)
    good = mi.save_state_dict(tmp_path / "good.safetensors", _state())
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-10])
    with pytest.raises(InputError, match="cut.safetensors"):
        mi.load_state_dict(cut)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(300))
    with pytest.raises(InputError, match="junk.pt"):
        mi.load_state_dict(junk)
    notdict = tmp_path / "list.pt"
    torch.save([torch.ones(1)], notdict)
    with pytest.raises(InputError, match="state dict"):
        mi.load_state_dict(notdict)
    folder = tmp_path / "dir.safetensors"
    folder.mkdir()
    with pytest.raises(InputError, match="directory"):
        mi.load_state_dict(folder)
    with pytest.raises(TypeError, match="path"):
        mi.load_state_dict(3)


# ------------------------------------------------------------------------------------------------
# public surface


def test_interop_api_documented_and_keyword_only():
    bad = []
    for name in mi.__all__:
        obj = getattr(mi, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert inspect.getdoc(obj), f"machlib.interop.{name} has no docstring"
        if inspect.isfunction(obj):
            for p in inspect.signature(obj).parameters.values():
                positional = p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                if positional and p.default is not p.empty and (name, p.name) != ("require_torch", "feature"):
                    bad.append(f"{name}({p.name}=...)")
    assert not bad, "options should be keyword-only: " + ", ".join(bad)
    assert set(dir(mi)) >= set(mi.__all__)
    with pytest.raises(AttributeError):
        mi.does_not_exist  # noqa: B018
