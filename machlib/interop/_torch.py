"""The JAX ↔ torch bridge: lazy import, zero-copy conversion, torch functions callable from JAX,
and safe weight loading.

This is the only module in machlib that imports :mod:`torch`, and it does so lazily (on the first
call that needs it), so ``import machlib.interop`` works without torch installed.

Conversion goes through DLPack, so a converted array shares memory with its source:

* ``to_torch`` of a JAX array gives a tensor on the matching device (JAX ``cpu`` → torch ``cpu``,
  JAX ``cuda:i`` → torch ``cuda:i``); writing into that tensor in place would change an array JAX
  believes immutable, so treat it as read-only (or ``.clone()`` it).
* ``to_jax`` of a tensor gives a JAX array on the matching device; tensors that autograd tracks
  are detached, lazily negated/conjugated views are resolved, and layouts DLPack cannot carry
  are made contiguous first (a copy). JAX may also copy when the buffer is not aligned as it
  requires. Without ``jax_enable_x64``, 64-bit tensors become 32-bit arrays (JAX's usual rule).
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import InputError, MachlibError, WeightsMissingError
from .._typing import AnyArray

__all__ = [
    "TorchMissingError",
    "require_torch",
    "torch_available",
    "to_torch",
    "to_jax",
    "torch_device_for",
    "jax_device_for",
    "torch_function",
    "load_state_dict",
    "load_metadata",
    "save_state_dict",
    "WEIGHT_SUFFIXES",
]

#: File suffixes :func:`load_state_dict` reads: safetensors, and torch's zip format read with
#: ``torch.load(weights_only=True)``.
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")

_INSTALL_HINT = "install it with: pip install 'machlib[torch]'"


class TorchMissingError(MachlibError, ImportError):
    """A feature needs PyTorch (and safetensors), which is not installed; the message says how."""


def require_torch(feature: str = "this feature") -> Any:
    """Import and return :mod:`torch`, or raise :class:`TorchMissingError` saying how to get it.

    Args:
        feature: what needs torch, for the message (e.g. ``"the learned delighter"``).

    Returns:
        The :mod:`torch` module.

    Raises:
        TorchMissingError: torch cannot be imported.

    Example:
        >>> from machlib.interop import require_torch
        >>> require_torch().__name__
        'torch'
    """
    try:
        import torch
    except ImportError as e:
        raise TorchMissingError(f"{feature} needs PyTorch, which is not installed; {_INSTALL_HINT}") from e
    return torch


def _require_safetensors(feature: str) -> Any:
    try:
        import safetensors.torch as st
    except ImportError as e:
        raise TorchMissingError(f"{feature} needs safetensors, which is not installed; {_INSTALL_HINT}") from e
    return st


def torch_available() -> bool:
    """Whether :mod:`torch` can be imported (imports it if so).

    Example:
        >>> from machlib.interop import torch_available
        >>> torch_available()
        True
    """
    try:
        require_torch()
    except TorchMissingError:
        return False
    return True


# ------------------------------------------------------------------------------------------------
# devices


def _hardware_index(device: Any) -> int:
    hid = getattr(device, "local_hardware_id", None)
    return int(device.id if hid is None else hid)


def torch_device_for(device: Any) -> Any:
    """The torch device that holds the same memory as a JAX device.

    Args:
        device: a ``jax.Device`` (``platform`` ``"cpu"`` or ``"gpu"``/``"cuda"``).

    Returns:
        ``torch.device("cpu")`` or ``torch.device("cuda", i)`` with ``i`` the device's local index.

    Raises:
        InputError: a platform torch cannot address (e.g. TPU).
    """
    torch = require_torch("torch_device_for")
    platform = getattr(device, "platform", None)
    if platform == "cpu":
        return torch.device("cpu")
    if platform in ("gpu", "cuda", "rocm"):
        return torch.device("cuda", _hardware_index(device))
    raise InputError(f"torch_device_for: JAX device {device!r} (platform {platform!r}) has no torch equivalent")


def jax_device_for(device: Any) -> Any:
    """The JAX device that holds the same memory as a torch device, or None if JAX has none.

    Args:
        device: a ``torch.device`` or its string (``"cpu"``, ``"cuda:1"``).

    Returns:
        The ``jax.Device`` (``cpu`` → JAX's first CPU device; ``cuda:i`` → JAX's GPU whose local
        hardware id is ``i``), or ``None`` when this JAX build has no such device.
    """
    torch = require_torch("jax_device_for")
    device = torch.device(device)
    if device.type == "cpu":
        return jax.devices("cpu")[0]
    if device.type == "cuda":
        try:
            gpus = jax.devices("gpu")
        except RuntimeError:
            return None
        index = 0 if device.index is None else device.index
        for d in gpus:
            if _hardware_index(d) == index:
                return d
        return None
    return None


# ------------------------------------------------------------------------------------------------
# conversion


def to_torch(x: Any, *, device: Any = None) -> Any:
    """A JAX or numpy array as a torch tensor, sharing memory where possible (DLPack).

    Args:
        x: a ``jax.Array`` (single-device), a ``np.ndarray``, or anything ``torch.as_tensor``
            accepts (Python scalars, lists; copied). A tensor is returned as it is.
        device: target torch device. ``None`` keeps the memory where it is (JAX ``cpu`` → torch
            ``cpu``, JAX ``cuda:i`` → torch ``cuda:i``; numpy → ``cpu``); another device copies.

    Returns:
        A ``torch.Tensor`` of the same shape and dtype. Do not modify it in place unless you
        cloned it: it aliases the JAX array's buffer.

    Raises:
        TypeError: ``x`` is a JAX tracer (inside ``jit``/``grad``); use :func:`torch_function`.
        InputError: a sharded multi-device array.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.interop import to_torch
        >>> t = to_torch(jnp.arange(3.0))
        >>> t.tolist(), str(t.device)
        ([0.0, 1.0, 2.0], 'cpu')
    """
    torch = require_torch("to_torch")
    if isinstance(x, torch.Tensor):
        t = x
    elif isinstance(x, jax.core.Tracer):
        raise TypeError(
            "to_torch: x is a traced JAX value (inside jit/grad/vmap); wrap the torch code with "
            "machlib.interop.torch_function instead"
        )
    elif isinstance(x, jax.Array):
        if len(x.devices()) != 1:
            raise InputError(f"to_torch: x is sharded over {len(x.devices())} devices; gather it first")
        t = torch.from_dlpack(x)
    elif isinstance(x, np.ndarray):
        if x.dtype.byteorder not in ("=", "|") or x.dtype.kind in "OUSV":
            raise TypeError(f"to_torch: numpy dtype {x.dtype} has no torch equivalent")
        t = torch.from_dlpack(x) if x.size else torch.from_numpy(np.ascontiguousarray(x))
    else:
        t = torch.as_tensor(x)
    if device is not None and t.device != torch.device(device):
        t = t.to(device)
    return t


def to_jax(t: Any, *, device: Any = None) -> jax.Array:
    """A torch tensor (or anything array-like) as a JAX array, sharing memory where possible.

    Args:
        t: a ``torch.Tensor`` (any device torch and JAX share: cpu, cuda), or a numpy/JAX array.
        device: target ``jax.Device``. ``None`` keeps the memory where it is (torch ``cpu`` → JAX
            cpu, torch ``cuda:i`` → JAX GPU ``i``); when JAX has no such device the data is copied
            through the host to JAX's default device.

    Returns:
        A ``jax.Array`` of the same shape; same dtype unless 64-bit types are disabled in JAX.

    Example:
        >>> import torch
        >>> from machlib.interop import to_jax
        >>> to_jax(torch.arange(4.0).reshape(2, 2).T).tolist()
        [[0.0, 2.0], [1.0, 3.0]]
    """
    torch = require_torch("to_jax")
    if not isinstance(t, torch.Tensor):
        return jnp.asarray(t) if device is None else jax.device_put(t, device)
    if t.requires_grad:
        t = t.detach()
    if t.is_conj():
        t = t.resolve_conj()
    if t.is_neg():
        t = t.resolve_neg()
    if t.layout != torch.strided:
        t = t.to_dense()
    target = device if device is not None else jax_device_for(t.device)
    if target is None:  # e.g. a CUDA tensor with a CPU-only JAX, or an MPS tensor
        return jnp.asarray(t.cpu().numpy()) if t.dtype != torch.bfloat16 else jnp.asarray(
            t.float().cpu().numpy(), dtype=jnp.bfloat16
        )
    src_device = jax_device_for(t.device)
    try:
        out = jax.dlpack.from_dlpack(t, device=src_device)
    except Exception:  # strides or offsets DLPack/XLA cannot take as they are
        out = jax.dlpack.from_dlpack(t.contiguous(), device=src_device)
    if target is not src_device:
        out = jax.device_put(out, target)
    return out


# ------------------------------------------------------------------------------------------------
# torch functions callable from JAX


def _spec(x: Any) -> jax.ShapeDtypeStruct:
    """The canonical JAX ``ShapeDtypeStruct`` of a JAX/numpy array or a torch tensor."""
    dtype = x.dtype
    if type(dtype).__module__ == "torch":
        import torch

        dtype = jnp.bfloat16 if dtype == torch.bfloat16 else torch.empty(0, dtype=dtype).numpy().dtype
    return jax.ShapeDtypeStruct(tuple(x.shape), jax.dtypes.canonicalize_dtype(dtype))


def _module_device(fn: Any, torch: Any) -> Any:
    if isinstance(fn, torch.nn.Module):
        for p in fn.parameters():
            return p.device
        for b in fn.buffers():
            return b.device
    return torch.device("cpu")


def torch_function(
    fn: Callable[..., Any],
    *,
    out_shape: Any = None,
    device: Any = None,
    vmap_method: str = "sequential",
) -> Callable[..., Any]:
    """Wrap a torch module or function so JAX can call it — eagerly, under ``jit``, ``vmap`` and
    ``grad``.

    The forward pass is a ``jax.pure_callback`` that hands the inputs to torch (zero-copy on the
    host) and returns the outputs to JAX. Reverse-mode derivatives come from a ``jax.custom_vjp``
    whose backward pass re-runs ``fn`` with torch autograd and returns ``∂⟨outputs, cotangent⟩/∂
    inputs`` (the forward is recomputed rather than kept, so the wrapper stays stateless).

    ``fn`` must be a deterministic function of its array inputs (put modules in ``eval()`` mode:
    dropout or batch statistics would make the recomputed forward differ) and must not modify
    its inputs in place. Gradients flow to the inputs only, not to torch parameters. Forward-mode
    (``jax.jvp``) is not available through a ``custom_vjp``.

    Args:
        fn: a ``torch.nn.Module`` or a callable taking tensors (the flattened leaves of the JAX
            arguments, in the same pytree structure) and returning a tensor or a pytree
            (tuple/list/dict) of tensors.
        out_shape: the outputs' ``jax.ShapeDtypeStruct`` pytree, or a callable from the inputs'
            ``ShapeDtypeStruct`` pytree(s) to it. ``None`` runs ``fn`` once on zeros of each new
            input signature to find out (cached).
        device: torch device to run on; default the module's parameter device, else ``cpu``.
        vmap_method: how ``jax.vmap`` batches the callback (``jax.pure_callback``'s argument):
            ``"sequential"`` calls ``fn`` once per batch element; ``"expand_dims"`` and
            ``"broadcast_all"`` call it once with a leading batch axis (``fn`` must accept it).

    Returns:
        A function of JAX arrays (same positional pytree arguments as ``fn``) returning JAX
        arrays. Output dtypes follow JAX's canonical types (float32 unless x64 is enabled).

    Example:
        >>> import jax, jax.numpy as jnp, torch
        >>> from machlib.interop import torch_function
        >>> f = torch_function(lambda x: torch.sin(x) * 2)
        >>> jax.jit(f)(jnp.zeros(2)).tolist()
        [0.0, 0.0]
        >>> jax.grad(lambda x: f(x).sum())(jnp.zeros(2)).tolist()
        [2.0, 2.0]
    """
    torch = require_torch("torch_function")
    if not callable(fn):
        raise TypeError(f"torch_function: fn must be a torch module or callable, got {type(fn).__name__}")
    if vmap_method not in ("sequential", "expand_dims", "broadcast_all"):
        raise ValueError(
            f"torch_function: vmap_method must be 'sequential', 'expand_dims' or 'broadcast_all', got {vmap_method!r}"
        )
    run_device = torch.device(device) if device is not None else None
    cache: dict = {}

    def get_device():
        return run_device if run_device is not None else _module_device(fn, torch)

    def call_torch(treedef, leaves):
        return fn(*jax.tree_util.tree_unflatten(treedef, leaves))

    def out_specs(treedef, in_specs):
        key = (treedef, tuple((s.shape, s.dtype) for s in in_specs))
        if key in cache:
            return cache[key]
        if out_shape is None:
            dev = get_device()
            zeros = [torch.zeros(s.shape, dtype=_torch_dtype(torch, s.dtype), device=dev) for s in in_specs]
            with torch.no_grad():
                out = call_torch(treedef, zeros)
            spec = jax.tree_util.tree_map(_spec, out)
        elif callable(out_shape):
            spec = out_shape(*jax.tree_util.tree_unflatten(treedef, list(in_specs)))
        else:
            spec = out_shape
        spec = jax.tree_util.tree_map(lambda s: jax.ShapeDtypeStruct(tuple(s.shape), jax.dtypes.canonicalize_dtype(s.dtype)), spec)
        cache[key] = spec
        return spec

    def host_forward(treedef, spec, *leaves):
        dev = get_device()
        ts = [to_torch(a, device=dev) for a in leaves]
        with torch.no_grad():
            out = call_torch(treedef, ts)
        return _outputs_to_numpy(torch, out, spec, "torch_function", strict=vmap_method == "sequential")

    def host_backward(treedef, n_in, diff_index, spec, *arrays):
        dev = get_device()
        leaves = [to_torch(a, device=dev) for a in arrays[:n_in]]
        cts = arrays[n_in:]
        leaves = [t.detach().requires_grad_(True) if i in diff_index else t for i, t in enumerate(leaves)]
        with torch.enable_grad():
            out = call_torch(treedef, leaves)
        outs = jax.tree_util.tree_leaves(out)
        if len(outs) != len(cts):
            raise ValueError(f"torch_function: fn returned {len(outs)} outputs in the backward pass, {len(cts)} expected")
        pairs = [(o, to_torch(c, device=o.device).to(o.dtype)) for o, c in zip(outs, cts) if o.requires_grad]
        inputs = [leaves[i] for i in diff_index]
        if pairs:
            grads = torch.autograd.grad(
                [o for o, _ in pairs], inputs, grad_outputs=[c for _, c in pairs], allow_unused=True
            )
        else:
            grads = [None] * len(inputs)
        result = []
        for g, x, s in zip(grads, inputs, spec):
            g = torch.zeros_like(x) if g is None else g
            result.append(np.asarray(g.detach().cpu().numpy(), dtype=s.dtype))
        return tuple(result)

    @jax.custom_vjp
    def call(*args):
        leaves, treedef = jax.tree_util.tree_flatten(args)
        leaves = [jnp.asarray(x) for x in leaves]
        spec = out_specs(treedef, [_spec(x) for x in leaves])
        return jax.pure_callback(
            lambda *a: host_forward(treedef, spec, *a), spec, *leaves, vmap_method=vmap_method
        )

    def call_fwd(*args):
        return call(*args), args

    def call_bwd(args, cotangent):
        leaves, treedef = jax.tree_util.tree_flatten(args)
        leaves = [jnp.asarray(x) for x in leaves]
        diff_index = tuple(i for i, x in enumerate(leaves) if jnp.issubdtype(x.dtype, jnp.inexact))
        grad_spec = tuple(_spec(leaves[i]) for i in diff_index)
        ct_leaves = [jnp.asarray(c) for c in jax.tree_util.tree_leaves(cotangent)]
        grads = (
            jax.pure_callback(
                lambda *a: host_backward(treedef, len(leaves), diff_index, grad_spec, *a),
                grad_spec,
                *leaves,
                *ct_leaves,
                vmap_method=vmap_method,
            )
            if diff_index
            else ()
        )
        by_index = dict(zip(diff_index, grads))
        out = [
            by_index[i] if i in by_index else np.zeros(x.shape, dtype=jax.dtypes.float0)
            for i, x in enumerate(leaves)
        ]
        return tuple(jax.tree_util.tree_unflatten(treedef, out))

    call.defvjp(call_fwd, call_bwd)

    def wrapped(*args):
        return call(*args)

    wrapped.__doc__ = f"JAX-callable wrapper of the torch callable {fn!r} (machlib.interop.torch_function)."
    wrapped.__wrapped_torch__ = fn
    return wrapped


def _torch_dtype(torch: Any, dtype: Any) -> Any:
    return torch.from_numpy(np.zeros((), dtype=np.dtype(dtype))).dtype if np.dtype(dtype) != jnp.bfloat16 else torch.bfloat16


def _outputs_to_numpy(torch: Any, out: Any, spec: Any, name: str, *, strict: bool = True) -> Any:
    out_leaves, out_tree = jax.tree_util.tree_flatten(out)
    spec_leaves, spec_tree = jax.tree_util.tree_flatten(spec)
    if out_tree != spec_tree:
        raise ValueError(f"{name}: fn returned the structure {out_tree}, expected {spec_tree}")
    arrays = []
    for o, s in zip(out_leaves, spec_leaves):
        if not isinstance(o, torch.Tensor):
            o = torch.as_tensor(o)
        shape, want = tuple(o.shape), tuple(s.shape)
        # under vmap with "expand_dims"/"broadcast_all", outputs carry extra leading batch axes
        ok = shape == want if strict else (len(shape) >= len(want) and shape[len(shape) - len(want):] == want)
        if not ok:
            raise ValueError(f"{name}: fn returned shape {shape}, expected {want}")
        o = o.detach()
        if o.dtype == torch.bfloat16:
            o = o.float()
        arrays.append(np.asarray(o.cpu().numpy(), dtype=s.dtype))
    return jax.tree_util.tree_unflatten(spec_tree, arrays)


# ------------------------------------------------------------------------------------------------
# weights


def _check_weights_path(path: Any, name: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name}: path must be a str or os.PathLike, got {type(path).__name__}")
    p = Path(path)
    if not p.exists():
        raise WeightsMissingError(
            f"{name}: no weights file at {p}; supply a local .safetensors (or .pt/.pth/.bin saved "
            "with torch.save of a state dict) file: machlib downloads no weights"
        )
    if p.is_dir():
        raise InputError(f"{name}: {p} is a directory, expected a weights file ({', '.join(WEIGHT_SUFFIXES)})")
    if not p.is_file():  # a FIFO or a device: reading it could block or never end
        raise InputError(f"{name}: {p} is not a regular file")
    if p.suffix.lower() not in WEIGHT_SUFFIXES:
        raise InputError(
            f"{name}: {p} has the unsupported suffix {p.suffix!r}; weights must be one of "
            f"{', '.join(WEIGHT_SUFFIXES)} (other formats may execute code when loaded and are refused)"
        )
    return p


def _flat_state_dict(obj: Any, torch: Any, path: Path) -> dict:
    if isinstance(obj, Mapping) and obj and all(isinstance(k, str) for k in obj):
        for key in ("state_dict", "model", "params"):
            if key in obj and isinstance(obj[key], Mapping) and not isinstance(obj[key], torch.Tensor):
                return _flat_state_dict(obj[key], torch, path)
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
    raise InputError(
        f"load_state_dict: {path} does not hold a state dict (a mapping of parameter names to tensors); "
        f"got {type(obj).__name__}"
    )


def load_state_dict(path: str | os.PathLike) -> dict:
    """Load a state dict (parameter name → tensor) from a local weights file, safely.

    ``.safetensors`` files are read with safetensors; ``.pt``/``.pth``/``.bin`` with
    ``torch.load(weights_only=True, map_location="cpu")``, which refuses pickled objects other
    than tensors and plain containers, so no code in the file runs. A checkpoint whose state dict
    sits under ``"state_dict"``, ``"model"`` or ``"params"`` is unwrapped.

    Args:
        path: a local file with one of the suffixes in :data:`WEIGHT_SUFFIXES`.

    Returns:
        ``dict[str, torch.Tensor]`` on the CPU.

    Raises:
        WeightsMissingError: no file at ``path``.
        InputError: another suffix, a corrupt or truncated file, a file holding objects other
            than tensors, or no state dict inside; the message names the path.
        TorchMissingError: torch or safetensors is not installed.
    """
    torch = require_torch("load_state_dict")
    p = _check_weights_path(path, "load_state_dict")
    if p.suffix.lower() == ".safetensors":
        st = _require_safetensors("load_state_dict")
        try:
            obj = st.load_file(str(p), device="cpu")
        except Exception as e:  # SafetensorError, header errors, truncated data
            raise InputError(f"load_state_dict: {p} is not a valid safetensors file ({e})") from None
    else:
        try:
            obj = torch.load(str(p), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            raise InputError(
                f"load_state_dict: {p} holds Python objects other than tensors, which machlib refuses to "
                f"unpickle; re-save it as a plain state dict or convert it to .safetensors ({str(e).splitlines()[0]})"
            ) from None
        except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, IndexError, KeyError,
                AttributeError, TypeError, UnicodeDecodeError) as e:
            # random bytes reach the weights-only unpickler's own failures too (IndexError, ...)
            raise InputError(f"load_state_dict: {p} is not a readable torch weights file ({type(e).__name__}: {e})") \
                from None
    return _flat_state_dict(obj, torch, p)


def load_metadata(path: str | os.PathLike) -> dict:
    """The string metadata of a ``.safetensors`` file's header (``{}`` for other formats).

    Reads only the header (no tensors, no torch needed).

    Args:
        path: a local weights file.

    Returns:
        ``dict[str, str]``.

    Raises:
        WeightsMissingError: no file at ``path``.
        InputError: an unsupported suffix or a corrupt header.
    """
    p = _check_weights_path(path, "load_metadata")
    if p.suffix.lower() != ".safetensors":
        return {}
    try:
        with open(p, "rb") as f:
            head = f.read(8)
            if len(head) != 8:
                raise ValueError("file shorter than the 8-byte header length")
            n = int.from_bytes(head, "little")
            if n <= 0 or n > min(100_000_000, p.stat().st_size - 8):
                raise ValueError(f"implausible header length {n}")
            header = json.loads(f.read(n).decode("utf-8"))
        meta = header.get("__metadata__", {}) if isinstance(header, dict) else None
        if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
            raise ValueError("metadata is not a mapping of strings")
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # RecursionError: deeply nested JSON
        raise InputError(f"load_metadata: {p} is not a valid safetensors file ({str(e)[:200]})") from None
    return dict(meta)


def save_state_dict(path: str | os.PathLike, state_dict: Mapping, *, metadata: Mapping | None = None) -> Path:
    """Write a state dict as ``.safetensors`` atomically (a temporary file, then a rename).

    Args:
        path: destination; must end in ``.safetensors``. Parent folders are created.
        state_dict: parameter name → ``torch.Tensor`` (moved to the CPU, made contiguous;
            tensors sharing memory are written as separate copies).
        metadata: optional ``str → str`` entries stored in the header.

    Returns:
        The written path.

    Raises:
        InputError: another suffix, non-tensor values, non-string metadata.
    """
    torch = require_torch("save_state_dict")
    st = _require_safetensors("save_state_dict")
    p = Path(path)
    if p.suffix.lower() != ".safetensors":
        raise InputError(f"save_state_dict: path must end in .safetensors, got {p}")
    tensors = {}
    for k, v in state_dict.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise InputError(f"save_state_dict: entries must be str → torch.Tensor, got {k!r}: {type(v).__name__}")
        tensors[k] = v.detach().to("cpu").contiguous().clone()
    meta = None
    if metadata is not None:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise InputError("save_state_dict: metadata must map str to str")
        meta = dict(metadata)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=p.name + ".", suffix=".tmp", dir=p.parent)
    os.close(fd)
    try:
        st.save_file(tensors, tmp, metadata=meta)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return p


def _as_numpy_float(x: AnyArray, name: str, arg: str) -> np.ndarray:
    """``x`` as a float32 numpy array (uint8 scaled to ``[0, 1]``); used by the network wrappers."""
    a = np.asarray(x)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"{name}: {arg} must be float in [0, 1] or uint8, got dtype {a.dtype}")
    return a.astype(np.float32)
