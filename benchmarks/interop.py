"""Benchmark: the cost of crossing between JAX and PyTorch (:mod:`machlib.interop`) on the CPU.

Run from the repository root (PyTorch installed: ``pip install -e .[bench]``)::

    PYTHONPATH=. python benchmarks/interop.py            # full run, writes the docs tables
    PYTHONPATH=. python benchmarks/interop.py --quick    # smoke run, still checks answers

Two measurements, each side by side with a baseline in the same process:

* **Array round trip**: ``to_torch`` then ``to_jax`` (DLPack, zero-copy on the host) of float32
  arrays from 1 K to 16 M elements, against the copying route
  (``torch.from_numpy(np.array(x))`` then ``jnp.asarray(t.numpy())``).
* **A network in the loop**: the value and gradient, with respect to its input, of a small
  UNet-like convolutional network (two down and two up blocks, 32–64 channels, on a
  ``1 × 4 × 64 × 64`` latent: the shape of a Stable Diffusion latent of a 512² image), called
  from JAX through :func:`~machlib.interop.torch_function` (``jax.pure_callback`` forward, a
  ``custom_vjp`` whose backward re-runs the network under torch autograd) inside ``jax.jit``,
  against the same forward and backward in plain PyTorch. This is the per-step pattern of a
  score-distillation (SDS) loss driven from JAX; the real SDS loss needs a diffusers UNet, which
  this benchmark does not load.

Answers are checked first: the round trip returns the same bits, and the JAX-side value and
gradient equal PyTorch's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
sys.path.insert(0, str(_HERE.parent))

import _common as C  # noqa: E402

DEVICE = C.select_device()  # before JAX is imported
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from machlib.interop import require_torch, to_jax, to_torch, torch_function  # noqa: E402


def small_unet(torch):
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.a = nn.Conv2d(cin, cout, 3, padding=1)
            self.b = nn.Conv2d(cout, cout, 3, padding=1)

        def forward(self, x):
            return torch.nn.functional.silu(self.b(torch.nn.functional.silu(self.a(x))))

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.d1, self.d2 = Block(4, 32), Block(32, 64)
            self.mid = Block(64, 64)
            self.u2, self.u1 = Block(128, 32), Block(64, 32)
            self.out = nn.Conv2d(32, 4, 1)

        def forward(self, x):
            h1 = self.d1(x)
            h2 = self.d2(torch.nn.functional.avg_pool2d(h1, 2))
            m = self.mid(torch.nn.functional.avg_pool2d(h2, 2))
            u2 = self.u2(torch.cat([torch.nn.functional.interpolate(m, scale_factor=2.0), h2], 1))
            u1 = self.u1(torch.cat([torch.nn.functional.interpolate(u2, scale_factor=2.0), h1], 1))
            return self.out(u1)

    torch.manual_seed(0)
    return UNet().eval()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--out", help="write the Markdown table here")
    p.add_argument("--rst", help="write the reStructuredText table here")
    args = p.parse_args(argv)
    torch = require_torch("benchmarks/interop.py")
    torch.set_num_threads(C.core_count())
    repeats = 3 if args.quick else args.repeats
    info = C.machine_info()
    print(f"{info['cpu']} · JAX {jax.__version__} on {jax.default_backend()} · torch {torch.__version__} · {info['date']}")

    # --- array round trips
    sizes = [1 << 10, 1 << 16] if args.quick else [1 << 10, 1 << 16, 1 << 20, 1 << 24]
    rows = []
    for n in sizes:
        x = jax.block_until_ready(jnp.arange(n, dtype=jnp.float32) * 0.5)

        def dlpack():
            return jax.block_until_ready(to_jax(to_torch(x)))

        def copying():
            t = torch.from_numpy(np.array(x))
            return jax.block_until_ready(jnp.asarray(t.numpy().copy()))

        C.check(bool(jnp.array_equal(dlpack(), x)) and bool(jnp.array_equal(copying(), x)),
                f"{n:,} floats: both round trips return the same values")
        td, _ = C.repeat(dlpack, repeats)
        tc, _ = C.repeat(copying, repeats)
        rows.append((f"{n:,} floats ({4 * n / 2**20:.3g} MiB)", C.median(td) * 1e6, C.median(tc) * 1e6))
    table1 = [(name, f"{a:.0f}", f"{b:.0f}", f"{b / a:.1f}×") for name, a, b in rows]
    head1 = ["array", "to_torch + to_jax, DLPack (µs)", "copying route (µs)", "speed-up"]

    # --- a torch network inside a JAX gradient
    net = small_unet(torch)
    shape = (1, 4, 32, 32) if args.quick else (1, 4, 64, 64)
    z = jax.random.normal(jax.random.key(0), shape, jnp.float32)
    f = torch_function(net)
    value_grad = jax.jit(jax.value_and_grad(lambda v: jnp.sum(f(v) ** 2)))

    def jax_side():
        return jax.block_until_ready(value_grad(z))

    zt = torch.from_numpy(np.asarray(z).copy())

    def torch_side():
        v = zt.clone().requires_grad_(True)
        loss = (net(v) ** 2).sum()
        (g,) = torch.autograd.grad(loss, v)
        return loss.detach(), g

    t_compile, (val_j, grad_j) = C.timed(jax_side)
    val_t, grad_t = torch_side()
    C.check(abs(float(val_j) - float(val_t)) <= 1e-4 * abs(float(val_t)), "value from JAX equals PyTorch's")
    C.check(C.relerr(grad_j, grad_t.numpy()) < 1e-4, "gradient from JAX equals PyTorch's (rel. err < 1e-4)")
    tj, _ = C.repeat(jax_side, repeats)
    tt, _ = C.repeat(torch_side, repeats)
    mj, mt = C.median(tj) * 1e3, C.median(tt) * 1e3
    head2 = ["small UNet on a latent " + "×".join(map(str, shape)), "value + gradient (ms)"]
    table2 = [("PyTorch alone (forward + backward)", f"{mt:.1f}"),
              ("from JAX: jit(value_and_grad(torch_function(net)))", f"{mj:.1f}"),
              ("overhead of the crossing (forward recomputed in the backward)", f"{mj - mt:+.1f} ({mj / mt:.2f}×)"),
              ("first JAX call (tracing, compiling, shape probe)", f"{t_compile * 1e3:.0f}")]

    title = (f"Interop on {info['cpu']}, JAX {jax.__version__} ({jax.default_backend()}), torch {torch.__version__}, "
             f"{info['date']}; medians of {repeats}")
    md = [f"### {title}", "", C.markdown_table(head1, table1), "", C.markdown_table(head2, table2)]
    rst = [C.rst_inline(title), "", C.rst_table(head1, [[C.rst_inline(c) for c in r] for r in table1]), "",
           C.rst_table(head2, [[C.rst_inline(c) for c in r] for r in table2])]
    C.emit_tables(md, rst, args.out, args.rst)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
