"""Benchmark: the cost of crossing between JAX and PyTorch (:mod:`machlib.interop`) on the CPU.

Run from the repository root (PyTorch installed: ``pip install -e .[bench]``)::

    PYTHONPATH=. python benchmarks/interop.py            # full run, writes docs/benchmarks/interop.{md,rst.inc}
    PYTHONPATH=. python benchmarks/interop.py --quick    # smoke run, still checks answers, writes nothing
    PYTHONPATH=. python benchmarks/interop.py --skip-image --sds-repeats 3   # no 512² VAE section

Three measurements, each side by side with a baseline in the same process:

* **Array round trip**: ``to_torch`` then ``to_jax`` (DLPack, zero-copy on the host) of float32
  arrays from 1 K to 16 M elements, against the copying route
  (``torch.from_numpy(np.array(x))`` then ``jnp.asarray(t.numpy())``).
* **A network in the loop**: the value and gradient, with respect to its input, of a small
  UNet-like convolutional network (two down and two up blocks, 32–64 channels, on a
  ``1 × 4 × 64 × 64`` latent: the shape of a Stable Diffusion latent of a 512² image), called
  from JAX through :func:`~machlib.interop.torch_function` (``jax.pure_callback`` forward, a
  ``custom_vjp`` whose backward re-runs the network under torch autograd) inside ``jax.jit``,
  against the same forward and backward in plain PyTorch.
* **Score distillation (SDS) per step**: the value and gradient of
  :func:`~machlib.interop.sds_loss` with respect to ``64 × 64 × 4`` latents (batch 1,
  classifier-free guidance: one UNet call on a batch of two), ``jax.jit``-compiled, through
  :func:`~machlib.interop.unet_denoiser` (``torch_function``), with a randomly initialised
  Stable-Diffusion-shaped diffusers UNet scaled down (``block_out_channels`` 32/64/64, two
  layers per block, cross-attention width 64, prompt length 77), against the same step written
  directly in PyTorch (the ``½‖z − sg(z − g)‖²`` surrogate and ``autograd``); and image-space SDS,
  a ``512 × 512`` image through a small ``AutoencoderKL`` encoder (``vae_encoder``, gradient
  through its ``custom_vjp``) into the same SDS step, against plain PyTorch. (The SDS gradient
  needs no UNet backward; ``--quick`` uses 32 × 32 latents and a 256² image.)

Answers are checked first: the round trip returns the same bits, and the JAX-side values and
gradients equal PyTorch's.
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
from machlib.interop._sds import alphas_cumprod, sds_loss, unet_denoiser, vae_encoder  # noqa: E402


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


def sd_shaped_unet(torch):
    """Stable Diffusion's UNet layout (cross-attention down/up blocks, two layers per block,
    ε-prediction on 4 latent channels) with widths 32/64/64 and cross-attention width 64."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(32, 64, 64),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=64, attention_head_dim=8, norm_num_groups=32,
    ).eval()


def small_vae(torch):
    """An AutoencoderKL with SD's factor-8 downsampling (four blocks) and widths 16/32/64/64."""
    from diffusers import AutoencoderKL

    torch.manual_seed(1)
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32, 64, 64), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=16,
    ).eval()


def n_params(module) -> str:
    n = sum(p.numel() for p in module.parameters())
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.0f} K"


def sds_tables(torch, *, quick: bool, repeats: int, image: bool):
    """Per-step SDS: jit(value_and_grad(sds_loss)) through torch_function vs the same step in PyTorch."""
    scale, t = 7.5, 600
    unet = sd_shaped_unet(torch)
    a = alphas_cumprod()
    ab = float(a[t])
    w = 1.0 - ab
    k1, k2 = jax.random.split(jax.random.key(1))
    cond, uncond = jax.random.normal(k1, (77, 64)), jax.random.normal(k2, (77, 64))
    eps_fn = unet_denoiser(unet, cond, uncond_embeddings=uncond, guidance_scale=scale)
    cond_t, uncond_t = torch.from_numpy(np.array(cond))[None], torch.from_numpy(np.array(uncond))[None]
    emb2 = torch.cat([uncond_t, cond_t])
    tt2 = torch.tensor([t, t])
    key = jax.random.key(2)

    def torch_sds_loss(z):  # z: (1, 4, h, w) in an autograd graph; the surrogate ½‖z − sg(z − g)‖²
        eps = eps_nchw(tuple(z.shape))
        with torch.no_grad():
            zt = ab**0.5 * z + (1 - ab) ** 0.5 * eps
            e_u, e_c = unet(torch.cat([zt, zt]), tt2, encoder_hidden_states=emb2, return_dict=False)[0].chunk(2)
            g = w * (e_u + scale * (e_c - e_u) - eps)
        return 0.5 * ((z - (z - g).detach()) ** 2).sum()

    eps_cache = {}

    def eps_nchw(shape):  # the same ε as sds_loss draws from `key`, in NCHW
        if shape not in eps_cache:
            hwc = jax.random.normal(key, (shape[2], shape[3], shape[1]), jnp.float32)
            eps_cache[shape] = torch.from_numpy(np.array(hwc)).permute(2, 0, 1)[None].contiguous()
        return eps_cache[shape]

    # --- latent-space SDS
    side = 32 if quick else 64
    z = jax.random.normal(jax.random.key(3), (side, side, 4), jnp.float32)
    step = jax.jit(jax.value_and_grad(sds_loss), static_argnums=3)

    def jax_side():
        return jax.block_until_ready(step(z, key, jnp.int32(t), eps_fn, a))

    z_t = torch.from_numpy(np.array(z)).permute(2, 0, 1)[None].contiguous()

    def torch_side():
        v = z_t.clone().requires_grad_(True)
        loss = torch_sds_loss(v)
        (g,) = torch.autograd.grad(loss, v)
        return loss.detach(), g

    t_compile, (val_j, grad_j) = C.timed(jax_side)
    val_t, grad_t = torch_side()
    grad_t_hwc = grad_t[0].permute(1, 2, 0).numpy()
    C.check(C.relerr(grad_j, grad_t_hwc) < 1e-4, "SDS gradient from JAX equals PyTorch's (rel. err < 1e-4)")
    C.check(abs(float(val_j) - float(val_t)) <= 1e-4 * abs(float(val_t)), "SDS value from JAX equals PyTorch's")
    tj, _ = C.repeat(jax_side, repeats)
    tt, _ = C.repeat(torch_side, repeats)
    mj, mt = C.median(tj) * 1e3, C.median(tt) * 1e3
    head = [f"SDS step, latents {side}×{side}×4, SD-shaped UNet ({n_params(unet)} parameters), guidance {scale}",
            "value + gradient (ms)"]
    table = [("PyTorch alone (UNet on a batch of 2, surrogate backward)", f"{mt:.1f}"),
             ("from JAX: jit(value_and_grad(sds_loss)) via unet_denoiser", f"{mj:.1f}"),
             ("overhead of the crossing", f"{mj - mt:+.1f} ({mj / mt:.2f}×)"),
             ("first JAX call (tracing, compiling)", f"{t_compile * 1e3:.0f}")]
    out = [(head, table)]
    if not image:
        return out

    # --- image-space SDS through the VAE encoder
    vae = small_vae(torch)
    size = 256 if quick else 512
    enc = vae_encoder(vae)
    img = jax.random.uniform(jax.random.key(4), (size, size, 3), jnp.float32)
    img_step = jax.jit(jax.value_and_grad(lambda i, k, tt_: sds_loss(enc(i), k, tt_, eps_fn, a)))

    def jax_img():
        return jax.block_until_ready(img_step(img, key, jnp.int32(t)))

    img_t = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].contiguous()
    sf = vae.config.scaling_factor

    def torch_img():
        x = img_t.clone().requires_grad_(True)
        zz = vae.encode(2 * x - 1).latent_dist.mean * sf
        loss = torch_sds_loss(zz)
        (g,) = torch.autograd.grad(loss, x)
        return loss.detach(), g

    ti_compile, (ival_j, igrad_j) = C.timed(jax_img)
    ival_t, igrad_t = torch_img()
    C.check(C.relerr(igrad_j, igrad_t[0].permute(1, 2, 0).numpy()) < 1e-3,
            "image-space SDS gradient from JAX equals PyTorch's (rel. err < 1e-3)")
    C.check(abs(float(ival_j) - float(ival_t)) <= 1e-3 * abs(float(ival_t)), "image-space SDS value from JAX equals PyTorch's")
    tij, _ = C.repeat(jax_img, repeats)
    tit, _ = C.repeat(torch_img, repeats)
    mij, mit = C.median(tij) * 1e3, C.median(tit) * 1e3
    head_i = [f"image-space SDS, image {size}×{size}×3 → VAE encoder ({n_params(vae.encoder)} parameters) → same UNet",
              "value + gradient w.r.t. the image (ms)"]
    table_i = [("PyTorch alone (encoder forward + backward, UNet forward)", f"{mit:.1f}"),
               ("from JAX: jit(value_and_grad(sds_loss(vae_encoder(vae)(image))))", f"{mij:.1f}"),
               ("overhead of the crossing (encoder forward recomputed in the backward)", f"{mij - mit:+.1f} ({mij / mit:.2f}×)"),
               ("first JAX call (tracing, compiling)", f"{ti_compile * 1e3:.0f}")]
    out.append((head_i, table_i))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--out", help="Markdown table path (default docs/benchmarks/interop.md; --quick writes nothing "
                   "unless given)")
    p.add_argument("--rst", help="reStructuredText table path (default docs/benchmarks/interop.rst.inc, next to "
                   "--out; --quick writes nothing unless given)")
    p.add_argument("--sds-repeats", type=int, default=5,
                   help="timed repeats of the SDS sections (default 5; a step takes seconds on a CPU)")
    p.add_argument("--skip-sds", action="store_true", help="leave out the score-distillation (SDS) sections")
    p.add_argument("--skip-image", action="store_true", help="leave out image-space SDS (the 512² VAE encoder)")
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

    tables = [(head1, table1), (head2, table2)]
    if not args.skip_sds:
        sds_repeats = 2 if args.quick else args.sds_repeats
        tables += sds_tables(torch, quick=args.quick, repeats=sds_repeats, image=not args.skip_image)

    title = (f"Interop on {info['cpu']}, JAX {jax.__version__} ({jax.default_backend()}), torch {torch.__version__}, "
             f"{info['date']}; medians of {repeats}" + ("" if args.skip_sds else f" ({sds_repeats} for SDS)"))
    md, rst = [f"### {title}"], [C.rst_inline(title)]
    for head, table in tables:
        md += ["", C.markdown_table(head, table)]
        rst += ["", C.rst_table(head, [[C.rst_inline(c) for c in r] for r in table])]
    out_md = args.out or (None if args.quick else str(_HERE.parent / "docs" / "benchmarks" / "interop.md"))
    out_rst = args.rst or (str(Path(out_md).with_suffix(".rst.inc")) if out_md else None)
    C.emit_tables(md, rst, out_md, out_rst)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
