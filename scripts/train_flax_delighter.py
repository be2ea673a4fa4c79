"""Train machlib's learned delighter in flax (issue 15 item 3) and write its weights.

Data (machlib.texture.delighting_batch, generated on the fly, nothing downloaded): the default
template (the human base's UV layout) with procedural albedos in six ITA bins (exactly balanced
per batch), mottling, freckles, blemishes and make-up; lights = an SH environment times the
template's ambient occlusion + a directional light with cast shadows baked from the template mesh
(machlib.texture.bake_visibility) + a white specular highlight; the seen region of a random
near-frontal camera. The network (machlib.texture.flax_delighter_apply, a U-Net at 128²) predicts
log-shading, normalised to mean 1 over the seen texels; the loss is the L1 error of the sRGB
albedo over the seen texels against the true albedo times the light's mean over them (the part
of the light that cannot be told from the skin's tone). Adam with a cosine
schedule (optax).

    python scripts/train_flax_delighter.py --output machlib/data/flax_delighter.json \
        [--steps 400] [--batch-size 8] [--seed 0] [--resolution 128] [--features 16,32,64,64]

The shipped file was written by exactly that command (the defaults). A smoke run:

    python scripts/train_flax_delighter.py --steps 3 --resolution 32 --features 4,8 --output /tmp/d.json
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--output", required=True)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--features", default="16,32,64,64")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--directions", type=int, default=96, help="baked light directions")
    args = ap.parse_args(argv)

    import optax
    from tqdm import tqdm

    from machlib.render import linear_to_srgb, srgb_to_linear
    from machlib.texture import (
        FlaxDelighter,
        FlaxDelighterConfig,
        delight_scene,
        delighting_batch,
        flax_delighter_apply,
        init_flax_delighter,
        save_flax_delighter,
    )

    t0 = time.process_time()
    config = FlaxDelighterConfig(features=tuple(int(f) for f in args.features.split(",")), resolution=args.resolution)
    scene = delight_scene(resolution=args.resolution, directions=args.directions)
    print(f"scene baked ({len(scene.directions)} directions) in {time.process_time() - t0:.1f} s CPU", flush=True)
    key = jax.random.key(args.seed)
    k_init, k_data = jax.random.split(key)
    model = init_flax_delighter(k_init, config=config, ao=scene.ao)
    schedule = optax.warmup_cosine_decay_schedule(0.0, args.lr, min(100, args.steps // 10 + 1), args.steps, args.lr * 0.02)
    opt = optax.adamw(schedule, weight_decay=1e-5)
    params = jax.tree_util.tree_map(jnp.asarray, model.params)
    state = opt.init(params)
    normals, ao = jnp.asarray(scene.normals), jnp.asarray(scene.ao)

    def loss_fn(p, batch):
        log_s = jax.vmap(lambda lit, seen: flax_delighter_apply(p, lit, normals, seen, ao, config=config))(
            batch.lit, batch.seen)
        lit_lin = srgb_to_linear(batch.lit)
        pred = linear_to_srgb(lit_lin / jnp.exp(log_s))
        # the target keeps the light's mean colour and exposure over the seen texels, as the
        # network's normalised shading does (they cannot be told from the skin's tone)
        w = batch.seen[..., None]
        rho = jnp.maximum(srgb_to_linear(batch.albedo), 1e-3)
        gain = jnp.sum(lit_lin / rho * w, axis=(1, 2), keepdims=True) / jnp.maximum(jnp.sum(w, axis=(1, 2), keepdims=True), 1.0)
        target = linear_to_srgb(rho * gain)
        return jnp.sum(jnp.abs(pred - target) * w) / jnp.maximum(3.0 * jnp.sum(w), 1.0)

    @jax.jit
    def step(p, s, i):
        batch = delighting_batch(jax.random.fold_in(k_data, i), scene, count=args.batch_size, split="train")
        loss, g = jax.value_and_grad(loss_fn)(p, batch)
        upd, s = opt.update(g, s, p)
        return optax.apply_updates(p, upd), s, loss

    losses = []
    bar = tqdm(range(args.steps), desc="train flax delighter", file=sys.stdout, mininterval=5.0)
    for i in bar:
        params, state, loss = step(params, state, i)
        losses.append(float(loss))
        if i % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
    cpu = time.process_time() - t0
    command = "python scripts/train_flax_delighter.py " + " ".join(sys.argv[1:] if argv is None else argv)
    meta = {"command": command, "seed": args.seed, "steps": args.steps, "batch_size": args.batch_size,
            "lr": args.lr, "directions": args.directions, "final_loss_l1_srgb": round(float(np.mean(losses[-50:])), 5),
            "cpu_seconds": round(cpu, 1), "jax": jax.__version__}
    out = save_flax_delighter(args.output, FlaxDelighter(config, jax.device_get(params), scene.ao, meta))
    n = sum(np.size(a) for a in jax.tree_util.tree_leaves(params))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {n} parameters); loss {meta['final_loss_l1_srgb']}; "
          f"{cpu:.0f} s CPU", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
