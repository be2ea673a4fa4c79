"""Train the learned texture delighter (Make-A-Character §2.4.2) on procedural data.

Ground-truth albedos are the template head's procedural albedo with random variations
(mottling, redness, freckles) and skin tones drawn by ITA; lit inputs bake random indoor/outdoor,
day/night SH environments into them over the template's normals
(machlib.texture.delighting_pairs). A pix2pixHD generator is trained on the pairs
(machlib.interop.train_delighter) and written as a .safetensors file with its config, ready for
machlib.interop.load_delighter.

    python scripts/train_delighter.py --output delighter.safetensors \
        [--resolution 256] [--pairs 64] [--steps 2000] [--batch-size 4] [--config default|small|tiny|FILE.json]

A smoke run on a CPU in well under a minute:

    python scripts/train_delighter.py --config tiny --resolution 32 --pairs 8 --steps 5 --output /tmp/d.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

CONFIGS = ("default", "small", "tiny")


def build_config(name: str):
    """The named pix2pixHD config, or one read from a JSON file."""
    from machlib.interop import Pix2PixHDConfig

    if name == "default":
        return Pix2PixHDConfig()
    if name == "tiny":
        return Pix2PixHDConfig.tiny()
    if name == "small":
        return Pix2PixHDConfig(ngf=16, n_downsample_global=3, n_blocks_global=4, n_local_enhancers=1,
                               n_blocks_local=2, ndf=32, n_layers_D=3, num_D=2)
    return Pix2PixHDConfig.from_json(Path(name).read_text())


def template_inputs(resolution: int):
    """Albedo ``(R, R, 3)`` in [0, 1], normals ``(R, R, 3)``, skin weights and eye mask ``(R, R)``."""
    from machlib.geometry import default_template, template_albedo
    from machlib.texture import normal_map

    template = default_template()
    albedo = template_albedo(resolution, template=template).astype(np.float32) / 255.0
    normals = np.asarray(normal_map(template.mesh, resolution))

    def region(name):
        m = jnp.asarray(template.regions[name], jnp.float32)
        return np.clip(np.asarray(jax.image.resize(m, (resolution, resolution), "linear")), 0.0, 1.0)

    features = region("eyes") + region("brows") + region("lips") + region("nostrils")
    skin = np.clip(region("face") * (1.0 - features), 0.0, 1.0)
    return albedo, normals, skin, region("eyes")


def generate_pairs(key, resolution: int, count: int, *, variation: float, chunk: int = 16):
    """``count`` (lit, albedo) pairs as float32 numpy ``(N, R, R, 3)``."""
    from machlib.texture import delighting_pairs

    albedo, normals, skin, eyes = template_inputs(resolution)
    lits, targets = [], []
    done = 0
    while done < count:
        key, sub = jax.random.split(key)
        n = min(chunk, count - done)
        lit, target = delighting_pairs(sub, albedo, normals, count=n, mask=skin, keep=eyes, variation=variation,
                                       specular=(0.0, 0.2))
        lits.append(np.asarray(lit, np.float32))
        targets.append(np.asarray(target, np.float32))
        done += n
    return np.concatenate(lits), np.concatenate(targets)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", default="delighter.safetensors", help="weights file to write (.safetensors)")
    ap.add_argument("--resolution", type=int, default=256, help="texture size in texels (a multiple of the config's size multiple)")
    ap.add_argument("--pairs", type=int, default=64, help="number of generated (lit, albedo) pairs")
    ap.add_argument("--steps", type=int, default=2000, help="training steps")
    ap.add_argument("--batch-size", type=int, default=4, help="pairs per step")
    ap.add_argument("--config", default="default", help=f"network: one of {', '.join(CONFIGS)} or a JSON file")
    ap.add_argument("--seed", type=int, default=0, help="seed of the data and of the training")
    ap.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate")
    ap.add_argument("--lambda-feat", type=float, default=10.0, help="feature-matching weight")
    ap.add_argument("--lambda-l1", type=float, default=10.0, help="L1 weight")
    ap.add_argument("--lambda-vgg", type=float, default=10.0, help="VGG weight (with --vgg-weights)")
    ap.add_argument("--vgg-weights", default=None, help="VGG19 weights file for the perceptual loss (optional)")
    ap.add_argument("--variation", type=float, default=1.0, help="strength of the procedural albedo variations")
    ap.add_argument("--device", default="cpu", help="torch device")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--log-every", type=int, default=50, help="print the losses every N steps")
    ap.add_argument("--losses", default=None, help="also write the per-step losses to this JSON file")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from machlib import InputError, WeightsMissingError
    from machlib.interop import load_vgg19, require_torch, save_delighter, train_delighter

    torch = require_torch("scripts/train_delighter.py")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        config = build_config(args.config)
    except (OSError, InputError) as e:
        print(f"error: --config {args.config}: {e}", file=sys.stderr)
        return 2
    for flag, value, low in (("--resolution", args.resolution, config.size_multiple), ("--pairs", args.pairs, 1),
                             ("--steps", args.steps, 0), ("--batch-size", args.batch_size, 1)):
        if value < low:
            print(f"error: {flag} must be >= {low}, got {value}", file=sys.stderr)
            return 2
    if args.resolution % config.size_multiple:
        print(f"error: --resolution must be a multiple of {config.size_multiple} for this config", file=sys.stderr)
        return 2
    if args.batch_size > args.pairs:
        print(f"error: --batch-size ({args.batch_size}) exceeds --pairs ({args.pairs})", file=sys.stderr)
        return 2
    if not args.output.endswith(".safetensors"):
        print("error: --output must end in .safetensors", file=sys.stderr)
        return 2
    vgg = None
    if args.vgg_weights:
        try:
            vgg = load_vgg19(args.vgg_weights, device=args.device)
        except (WeightsMissingError, InputError) as e:
            print(f"error: --vgg-weights: {e}", file=sys.stderr)
            return 2

    t0 = time.perf_counter()
    lit, albedo = generate_pairs(jax.random.key(args.seed), args.resolution, args.pairs, variation=args.variation)
    print(f"generated {len(lit)} pairs at {args.resolution}² in {time.perf_counter() - t0:.1f} s", flush=True)

    def log(step, losses):
        if step % max(args.log_every, 1) == 0 or step == args.steps - 1:
            shown = " ".join(f"{k}={v:.4f}" for k, v in losses.items() if k in ("G_total", "G_L1", "G_GAN", "D_real", "D_fake"))
            print(f"step {step + 1}/{args.steps} {shown}", flush=True)

    t1 = time.perf_counter()
    result = train_delighter(
        lit, albedo, steps=args.steps, config=config, batch_size=args.batch_size, lr=args.lr,
        lambda_feat=args.lambda_feat, lambda_l1=args.lambda_l1, lambda_vgg=args.lambda_vgg, vgg=vgg,
        seed=args.seed, device=args.device, on_step=log,
    )
    print(f"trained {args.steps} steps in {time.perf_counter() - t1:.1f} s", flush=True)
    path = save_delighter(args.output, result.delighter)
    if args.losses:
        Path(args.losses).write_text(json.dumps(result.losses))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
