"""Benchmark: the geometry fit (Make-A-Character §2.3) in JAX against the same fit in eager PyTorch.

Run from the repository root::

    PYTHONPATH=. python benchmarks/fit_geometry.py            # full run, writes the docs tables
    PYTHONPATH=. python benchmarks/fit_geometry.py --quick    # smoke run (< 60 s), still checks answers

Problem: the default template, the 478 MediaPipe landmarks of the bundled portrait, a 256² triplane
and the default :class:`machlib.geometry.GeometryFitConfig` (6 offset pyramid levels, 300 Adam
steps with cosine-decayed learning rates per parameter group, λ values of the config).

* JAX: ``machlib.geometry.geometry_fit``'s ``run`` (``lax.scan`` under ``jit``) for one face; for
  a batch of faces ``jax.vmap(fit.run, in_axes=(0, 0, None))`` and, for comparison,
  ``jax.lax.map`` of ``fit.run`` (faces one after another in one compiled program). Compile time
  (lower + compile) is reported apart from run time.
* PyTorch: the same loss (triplane = base + bilinearly upsampled offset pyramid, bilinear decode
  at the landmark UVs with texel centres at ``(j + 0.5) / R``, Rodrigues rotation, pinhole
  projection, pseudo-Huber landmark loss, TV of the displacement, symmetry, relative depth) and
  the same optimiser (``torch.optim.Adam`` per parameter group, eps 1e-8, betas (0.9, 0.999), a
  ``LambdaLR`` evaluating :func:`machlib.geometry.learning_rate_schedule`), float32 on
  the CPU, ``torch.set_num_threads(cores)``, run eagerly; a batch is a Python loop over faces.

Answers are checked before anything is timed: the upsampling, decode, loss and gradients of the
two implementations agree at the initial parameters; after the fit, the mean reprojection error
is < 1 px, equals :func:`machlib.geometry.fit_landmarks`'s, and PyTorch's final error and loss are
close to JAX's. The results table is printed and written as Markdown (``--out``) and as a
reStructuredText fragment (``--rst``) that ``docs/benchmarks.rst`` includes.
"""

from __future__ import annotations

import argparse
import math
import time
import os
import sys
from importlib import metadata
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # a CPU benchmark, whatever else is installed

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
sys.path.insert(0, str(_HERE.parent))

import _common as C  # noqa: E402
import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import machlib  # noqa: E402
from machlib import geometry as G  # noqa: E402
from machlib._camera import intrinsics_from_fov  # noqa: E402

#: Targets stated in the issue.
TARGET_FIT_SECONDS = 1.0  # one fit after compilation, 2 CPU cores, 478 landmarks, 256² triplane
TARGET_SPEEDUP = 5.0  # per step, against the eager PyTorch version

#: Two float32 runs of the same fit that differ only in rounding (another compilation, vmap vs
#: one face) end this close in mean error: the fit passes through an unstable phase (steps
#: ~80-200) that amplifies rounding differences, so bit-equality is not expected.
SAME_PX = 0.01


# ----------------------------------------------------------------------------------------------
# The problem


class Problem:
    """The benchmark's data: template, landmarks, the fit and its inputs for a batch of faces."""

    def __init__(self, config: G.GeometryFitConfig, batch: int, seed: int = 0):
        image = machlib.default_portrait()
        self.image_size = (int(image.shape[1]), int(image.shape[0]))
        self.template = G.procedural_template()  # the single-stage fit (the human's two stages: human_fit_times)
        self.landmarks = G.detect_landmarks(image)
        self.config = config
        focal, principal = intrinsics_from_fov(self.image_size, fov_degrees=25.0)
        self.base = self.template.position_map(config.resolution)
        self.weights = G.landmark_weights(self.template, confidence=self.landmarks.confidence)
        self.problem = G.GeometryProblem(
            base=self.base,
            landmark_uv=jnp.asarray(self.template.landmark_uv, jnp.float32),
            focal=focal.astype(jnp.float32),
            principal=principal.astype(jnp.float32),
            symmetric=bool(self.template.symmetric),
            image_size=self.image_size,
        )
        self.fit = G.geometry_fit(self.problem, config)
        # the batch: face 0 is the portrait's landmarks; faces 1.. are the same landmarks moved by
        # a small similarity (shift up to ±4 px, scale ±3 %, rotation ±2°) plus 0.2 px noise.
        rng = np.random.default_rng(seed)
        pts = np.asarray(self.landmarks.points, np.float64)
        centre = pts.mean(0)
        faces = [pts]
        for _ in range(batch - 1):
            s = 1.0 + rng.uniform(-0.03, 0.03)
            a = math.radians(rng.uniform(-2.0, 2.0))
            rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
            shift = rng.uniform(-4.0, 4.0, 2)
            faces.append((pts - centre) @ rot.T * s + centre + shift + rng.normal(0.0, 0.2, pts.shape))
        self.points = np.stack(faces).astype(np.float32)  # (B, K, 2)
        self.depth = np.asarray(self.landmarks.depth, np.float32)
        self.X = G.decode(self.problem.base, self.problem.landmark_uv)
        init = jax.vmap(lambda p: G.init_camera(self.X, p, focal, principal, weights=self.weights))
        rot, trans = init(jnp.asarray(self.points))
        self.rotation = np.asarray(rot, np.float32)  # (B, 3)
        self.translation = np.asarray(trans, np.float32)

    def targets(self, i: int | None = None) -> G.LandmarkTargets:
        """Targets of face ``i``, or of the whole batch (stacked) for ``i=None``."""
        if i is None:
            B = self.points.shape[0]
            return G.LandmarkTargets(
                jnp.asarray(self.points),
                jnp.broadcast_to(jnp.asarray(self.weights), (B, len(self.weights))),
                jnp.broadcast_to(jnp.asarray(self.depth), (B, len(self.depth))),
            )
        return G.LandmarkTargets(jnp.asarray(self.points[i]), jnp.asarray(self.weights), jnp.asarray(self.depth))

    def params(self, i: int | None = None) -> G.GeometryParams:
        """Initial parameters of face ``i`` (zero offsets, closed-form camera), or stacked."""
        if i is None:
            return jax.vmap(lambda r, t: G.zero_params(self.config, r, t))(
                jnp.asarray(self.rotation), jnp.asarray(self.translation)
            )
        return G.zero_params(self.config, self.rotation[i], self.translation[i])


def human_fit_times(landmarks, image_size, repeats: int) -> dict:
    """The default (human) template's two-stage fit through ``fit_landmarks``: the first call
    (tracing + compiling both stages), then ``repeats`` warm calls; wall time of the whole call
    and the compiled optimisations' own times, per stage."""
    template = G.default_template()
    t0 = time.perf_counter()
    first = G.fit_landmarks(landmarks, template, image_size)
    first_wall = time.perf_counter() - t0
    walls, fits, s1, s2 = [], [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = G.fit_landmarks(landmarks, template, image_size)
        walls.append(time.perf_counter() - t0)
        fits.append(r.fit_seconds)
        s1.append(r.human.fit_seconds)
        s2.append(r.fit_seconds - r.human.fit_seconds)
    valid = np.asarray(template.landmark_valid)
    px1 = float(np.mean(np.linalg.norm(r.human.residuals[valid], axis=1)))
    px2 = float(np.mean(np.linalg.norm(r.residuals[valid], axis=1)))
    check(px2 < px1 < 3.0, f"human fit: stage 2 refines stage 1 ({px1:.3f} -> {px2:.3f} px)")
    check(G.self_intersections(r.human.neutral_points[: template.human.topology.num_skin],
                               template.human.topology.faces) == 0, "human fit: no self-intersection")
    return {"first_wall": first_wall, "first_compile": first.compile_seconds, "walls": walls, "fits": fits,
            "stage1": s1, "stage2": s2, "px1": px1, "px2": px2,
            "steps1": int(len(r.human.history["loss"])), "steps2": int(len(r.history["loss"]))}


def jax_final_metrics(fit: G.GeometryFit, params, targets) -> dict[str, float]:
    """Loss and mean reprojection error (px) at the given (final) parameters."""
    total, m = jax.jit(fit.loss)(params, targets)
    return {"loss": float(total), "px": float(m["landmark_px"])}


# ----------------------------------------------------------------------------------------------
# The PyTorch version


def torch_fit_factory(torch, problem: G.GeometryProblem, config: G.GeometryFitConfig):
    """The same fit as :func:`machlib.geometry.geometry_fit`, eagerly in PyTorch (float32, CPU).

    Layout: maps are ``(1, 3, R, R)`` (NCHW, PyTorch's native layout for ``interpolate``).
    """
    F = torch.nn.functional
    R = config.resolution
    base = torch.tensor(np.asarray(problem.base), dtype=torch.float32).permute(2, 0, 1)[None].contiguous()
    uv = torch.tensor(np.asarray(problem.landmark_uv), dtype=torch.float32)
    focal = torch.tensor(np.asarray(problem.focal), dtype=torch.float32)
    principal = torch.tensor(np.asarray(problem.principal), dtype=torch.float32)
    # decode's gather indices and weights depend on the landmark UVs only: computed once
    x = torch.clamp(uv[:, 0] * R - 0.5, 0.0, R - 1.0)
    y = torch.clamp(uv[:, 1] * R - 0.5, 0.0, R - 1.0)
    x0 = torch.clamp(torch.floor(x), 0, R - 2).long()
    y0 = torch.clamp(torch.floor(y), 0, R - 2).long()
    fx = (x - x0)[None, :]
    fy = (y - y0)[None, :]
    i00, i01, i10, i11 = y0 * R + x0, y0 * R + x0 + 1, (y0 + 1) * R + x0, (y0 + 1) * R + x0 + 1
    sign = torch.tensor([-1.0, 1.0, 1.0]).view(1, 3, 1, 1)
    eye = torch.eye(3)
    eps_rot = float(np.finfo(np.float32).eps) ** 0.5
    tiny = float(np.finfo(np.float32).tiny)
    delta = float(config.delta)

    def triplane(offsets):
        tp = base
        for off in offsets:
            if off.shape[-1] == R:
                tp = tp + off
            else:
                tp = tp + F.interpolate(off, size=(R, R), mode="bilinear", align_corners=False)
        return tp

    def decode(tp):  # (1, 3, R, R) -> (K, 3)
        flat = tp.reshape(3, R * R)
        t00, t01, t10, t11 = flat[:, i00], flat[:, i01], flat[:, i10], flat[:, i11]
        top = t00 + (t01 - t00) * fx
        bottom = t10 + (t11 - t10) * fx
        return (top + (bottom - top) * fy).T

    def rotation_matrix(r):
        theta2 = torch.sum(r * r)
        small = theta2 < eps_rot
        safe = torch.where(small, torch.ones_like(theta2), theta2)
        theta = torch.sqrt(safe)
        a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
        b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / safe)
        z0 = torch.zeros_like(r[0])
        K = torch.stack([
            torch.stack([z0, -r[2], r[1]]), torch.stack([r[2], z0, -r[0]]), torch.stack([-r[1], r[0], z0]),
        ])
        return eye + a * K + b * (K @ K)

    def loss(offsets, rotation, translation, points, weights, depth):
        tp = triplane(offsets)
        V = decode(tp)
        pc = V @ rotation_matrix(rotation).T + translation  # world -> camera
        z = pc[:, 2:3]
        z = torch.where(z.abs() < 1e-6, torch.where(z < 0, -1e-6, 1e-6), z)
        r = pc[:, :2] / z * focal + principal - points
        rr = torch.sum(r * r, -1)
        per = torch.sqrt(rr + delta * delta) - delta
        l_lmk = torch.sum(weights * per) / torch.clamp(torch.sum(weights), min=tiny)
        d = tp - base
        du = (d[..., :, 1:] - d[..., :, :-1]) * R
        dv = (d[..., 1:, :] - d[..., :-1, :]) * R
        l_tv = 0.5 * (torch.mean(torch.sum(du * du, 1)) + torch.mean(torch.sum(dv * dv, 1)))
        total = l_lmk + config.lambda_tv * l_tv
        if problem.symmetric:
            s = tp - sign * torch.flip(tp, (-1,))
            total = total + config.lambda_sym * torch.mean(torch.sum(s * s, 1))
        if config.lambda_depth:
            zc = pc[:, 2]
            w = weights / torch.clamp(torch.sum(weights), min=1e-12)
            zm = torch.sum(w * zc)
            pred = (zc - zm) * focal[0] / zm
            tgt = depth - torch.sum(w * depth)
            total = total + config.lambda_depth * torch.sum(w * (pred - tgt) ** 2)
        valid = weights > 0
        px = torch.sum(torch.where(valid, torch.sqrt(rr + 1e-12), 0.0)) / torch.clamp(valid.sum(), min=1)
        return total, px

    unit_schedule = G.learning_rate_schedule(1.0, config.steps)  # the JAX fit's schedule, lr = 1

    def cosine(step: int) -> float:  # warm-up, then cosine decay to 5 %: identical to the JAX fit
        return float(unit_schedule(step))

    def to_torch(params: G.GeometryParams):
        offsets = [
            torch.tensor(np.asarray(o), dtype=torch.float32).permute(2, 0, 1)[None].contiguous().requires_grad_()
            for o in params.offsets
        ]
        rot = torch.tensor(np.asarray(params.rotation), dtype=torch.float32).requires_grad_()
        trans = torch.tensor(np.asarray(params.translation), dtype=torch.float32).requires_grad_()
        return offsets, rot, trans

    def to_targets(targets: G.LandmarkTargets):
        return tuple(torch.tensor(np.asarray(a), dtype=torch.float32) for a in targets)

    def run(params: G.GeometryParams, targets: G.LandmarkTargets, num_steps: int, *, foreach=None):
        """``num_steps`` Adam steps from ``params``; returns (offsets, rot, trans) and per-step losses."""
        offsets, rot, trans = to_torch(params)
        tgt = to_targets(targets)
        opt = torch.optim.Adam(
            [
                {"params": offsets, "lr": config.lr_shape},
                {"params": [rot], "lr": config.lr_rotation},
                {"params": [trans], "lr": config.lr_translation},
            ],
            betas=(0.9, 0.999), eps=1e-8, foreach=foreach,
        )
        sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine)
        history = []
        for _ in range(num_steps):
            opt.zero_grad(set_to_none=True)
            total, _ = loss(offsets, rot, trans, *tgt)
            total.backward()
            opt.step()
            sched.step()
            history.append(total.detach())
        return (offsets, rot, trans), history

    def final(state, targets: G.LandmarkTargets) -> dict[str, float]:
        with torch.no_grad():
            total, px = loss(*state, *to_targets(targets))
        return {"loss": float(total), "px": float(px)}

    def value_and_grad(params: G.GeometryParams, targets: G.LandmarkTargets):
        offsets, rot, trans = to_torch(params)
        total, _ = loss(offsets, rot, trans, *to_targets(targets))
        total.backward()
        grads = [o.grad[0].permute(1, 2, 0).numpy() for o in offsets] + [rot.grad.numpy(), trans.grad.numpy()]
        return float(total.detach()), grads

    return {"run": run, "final": final, "value_and_grad": value_and_grad, "triplane": triplane,
            "decode": decode}


# ----------------------------------------------------------------------------------------------
# Answer checks


check = C.check


relerr = C.relerr


def check_building_blocks(torch, prob: Problem, tf) -> dict[str, float]:
    """Upsampling, decode, loss and gradient of the two implementations agree at the init."""
    rng = np.random.default_rng(1)
    R = prob.config.resolution
    out = {}
    worst = 0.0
    for l in range(prob.config.levels - 1):
        r = R // 2 ** (prob.config.levels - 1 - l)
        a = rng.normal(size=(r, r, 3)).astype(np.float32)
        j = np.asarray(jax.image.resize(jnp.asarray(a), (R, R, 3), method="linear"))
        t = torch.nn.functional.interpolate(
            torch.tensor(a).permute(2, 0, 1)[None], size=(R, R), mode="bilinear", align_corners=False
        )[0].permute(1, 2, 0).numpy()
        worst = max(worst, float(np.max(np.abs(j - t))))
    out["resize_max_abs"] = worst
    check(worst < 1e-5, f"torch interpolate(bilinear, align_corners=False) == jax.image.resize('linear') "
          f"for ×2…×{2 ** (prob.config.levels - 1)} upsampling (max |Δ| = {worst:.1e} on N(0,1) data)")
    tp = prob.problem.base
    dj = np.asarray(G.decode(tp, prob.problem.landmark_uv))
    dt = tf["decode"](torch.tensor(np.asarray(tp)).permute(2, 0, 1)[None]).numpy()
    out["decode_max_abs"] = float(np.max(np.abs(dj - dt)))
    check(out["decode_max_abs"] < 1e-6, f"torch gather decode == machlib decode (max |Δ| = {out['decode_max_abs']:.1e} m)")
    # loss and gradient at a non-trivial point (init camera, small random offsets)
    p0 = prob.params(0)
    p0 = eqx.tree_at(lambda p: p.offsets, p0, tuple(
        jnp.asarray(rng.normal(scale=1e-3, size=o.shape), jnp.float32) for o in p0.offsets))
    tg = prob.targets(0)
    (lj, _), gj = jax.jit(jax.value_and_grad(prob.fit.loss, has_aux=True))(p0, tg)
    lt, gt = tf["value_and_grad"](p0, tg)
    out["loss_rel"] = abs(lt - float(lj)) / abs(float(lj))
    gj_list = [np.asarray(o) for o in gj.offsets] + [np.asarray(gj.rotation), np.asarray(gj.translation)]
    out["grad_rel"] = max(relerr(t, j) for t, j in zip(gt, gj_list))
    check(out["loss_rel"] < 1e-5, f"loss at a perturbed init: jax {float(lj):.6f}, torch {lt:.6f} "
          f"(rel. Δ {out['loss_rel']:.1e})")
    check(out["grad_rel"] < 1e-3, f"gradients agree for every parameter group (max rel. Δ {out['grad_rel']:.1e})")
    return out


# ----------------------------------------------------------------------------------------------
# Benchmarks


def compile_jax_single(prob: Problem, steps: int):
    """``(compile seconds, run)`` where ``run()`` fits face 0 and blocks until done."""
    fit, state, tg = prob.fit, prob.fit.init(prob.params(0)), prob.targets(0)
    t_compile, compiled = C.timed(
        lambda: eqx.filter_jit(lambda s, t: fit.run(s, t, steps)).lower(state, tg).compile()
    )
    return t_compile, lambda: jax.block_until_ready(compiled(state, tg))


def compile_jax_batch(prob: Problem, steps: int):
    """``(compile seconds, run)`` for ``jax.vmap(fit.run, in_axes=(0, 0, None))`` over the batch."""
    fit, tg = prob.fit, prob.targets(None)
    state = jax.vmap(fit.init)(prob.params(None))
    batched = jax.vmap(fit.run, in_axes=(0, 0, None))
    t_compile, compiled = C.timed(lambda: jax.jit(batched, static_argnums=2).lower(state, tg, steps).compile())
    return t_compile, lambda: jax.block_until_ready(compiled(state, tg))


def compile_jax_map(prob: Problem, steps: int):
    """``(compile seconds, run)`` for ``jax.lax.map`` of ``fit.run`` over the batch: the faces one
    after another inside one compiled program (the CPU-friendly alternative to ``vmap``)."""
    fit, tg = prob.fit, prob.targets(None)
    state = jax.vmap(fit.init)(prob.params(None))
    mapped = lambda s, t: jax.lax.map(lambda a: fit.run(a[0], a[1], steps), (s, t))  # noqa: E731
    t_compile, compiled = C.timed(lambda: jax.jit(mapped).lower(state, tg).compile())
    return t_compile, lambda: jax.block_until_ready(compiled(state, tg))


def torch_loop(prob: Problem, tf, steps: int, foreach):
    """``run()`` fitting every face of the batch in a Python loop; returns the final states."""
    def run():
        return [tf["run"](prob.params(i), prob.targets(i), steps, foreach=foreach)[0]
                for i in range(prob.points.shape[0])]
    return run


def interleaved(fns: dict, repeats: int) -> dict[str, list[float]]:
    """Time each function ``repeats`` times, alternating between them (so a slow phase of the
    machine hits both sides of the comparison alike)."""
    times = {k: [] for k in fns}
    for _ in range(max(1, repeats)):
        for k, fn in fns.items():
            times[k].append(C.timed(fn)[0])
    return times


def pick_foreach(torch, prob: Problem, tf) -> tuple[bool | None, dict]:
    """Time 20 eager steps with the per-tensor and the ``foreach`` Adam; keep the faster."""
    p, tg = prob.params(0), prob.targets(0)
    res = {}
    for fe in (False, True):
        tf["run"](p, tg, 2, foreach=fe)
        res[fe] = C.median(C.repeat(lambda: tf["run"](p, tg, 20, foreach=fe), 3)[0]) / 20
    return min(res, key=res.get), res


# ----------------------------------------------------------------------------------------------
# Report


def fmt(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:.0f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 100 steps, 1 repeat, batch 4")
    ap.add_argument("--out", default=None, help="Markdown table path (default docs/benchmarks/fit_geometry.md; "
                    "--quick writes nothing unless given)")
    ap.add_argument("--rst", default=None, help="reStructuredText table path (default "
                    "docs/benchmarks/fit_geometry.rst.inc, next to --out; --quick writes nothing unless given)")
    ap.add_argument("--steps", type=int, default=None, help="optimisation steps (default: the config's 300; 100 with --quick)")
    ap.add_argument("--batch", type=int, default=None, help="faces in the batch (default 16; 4 with --quick)")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats (default 5; 1 with --quick)")
    args = ap.parse_args(argv)

    try:
        import torch
    except ImportError:
        raise SystemExit("fit_geometry.py: PyTorch is needed for the comparison (pip install -e .[bench])") from None

    cores = C.core_count()
    torch.set_num_threads(cores)
    steps = args.steps or (100 if args.quick else G.GeometryFitConfig().steps)
    batch = args.batch or (4 if args.quick else 16)
    repeats = args.repeats or (1 if args.quick else 5)
    out_md = args.out or (None if args.quick else "docs/benchmarks/fit_geometry.md")
    out_rst = args.rst or (str(Path(out_md).with_suffix(".rst.inc")) if out_md else None)
    config = G.GeometryFitConfig(steps=steps)
    info = C.machine_info()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    versions = (f"jax {jax.__version__}, jaxlib {metadata.version('jaxlib')}, optax {metadata.version('optax')}, "
                f"torch {torch.__version__}")
    print(f"# geometry fit benchmark ({'quick' if args.quick else 'full'})")
    print(f"{info['machine']} | {info['cpu']} | {info['date']} | {versions} | jax backend {jax.default_backend()}")
    print(f"problem: {G.NUM_LANDMARKS} landmarks, {config.resolution}² triplane, {config.levels} levels, "
          f"{steps} steps, batch {batch}, {repeats} timed repeats\n", flush=True)

    prob = Problem(config, batch)
    tf = torch_fit_factory(torch, prob.problem, config)

    print("checking answers (building blocks) ...")
    blocks = check_building_blocks(torch, prob, tf)

    print("\nJAX, one face: compile, run, check ...", flush=True)
    t_compile1, jax_single = compile_jax_single(prob, steps)
    final_state, history = jax_single()
    js = {"compile": t_compile1, **jax_final_metrics(prob.fit, final_state.params, prob.targets(0))}
    ref = G.fit_landmarks(prob.landmarks, prob.template, prob.image_size, config=config)
    valid = np.asarray(prob.template.landmark_valid)
    ref_px = float(np.mean(np.linalg.norm(ref.residuals[valid], axis=-1)))
    check(js["px"] < 1.0, f"JAX final mean reprojection error {js['px']:.4f} px < 1 px")
    check(abs(js["px"] - ref_px) < SAME_PX, f"equals fit_landmarks' {ref_px:.4f} px (to {SAME_PX} px)")

    print("\nPyTorch eager, one face: run, check ...", flush=True)
    foreach, fe_times = pick_foreach(torch, prob, tf)
    print(f"  Adam per-tensor {fe_times[False] * 1e3:.2f} ms/step, foreach {fe_times[True] * 1e3:.2f} ms/step "
          f"-> using foreach={foreach}")
    torch_single = lambda: tf["run"](prob.params(0), prob.targets(0), steps, foreach=foreach)  # noqa: E731
    state_t, history_t = torch_single()
    ts = tf["final"](state_t, prob.targets(0))
    print(f"  torch final: {ts['px']:.4f} px, loss {ts['loss']:.5f}; jax final: {js['px']:.4f} px, loss {js['loss']:.5f}")
    px_tol = 0.02 + 0.1 * js["px"]
    check(abs(ts["px"] - js["px"]) < px_tol, f"torch final error within {px_tol:.3f} px of JAX's")
    check(abs(ts["loss"] - js["loss"]) < 0.02 * abs(js["loss"]) + 1e-3, "torch final loss within 2 % of JAX's")
    jh = np.asarray(history["loss"])
    th = np.asarray([float(h) for h in history_t])
    rel = np.abs(jh - th) / np.abs(jh)
    # float32 rounding differences are amplified by Adam's normalisation of near-zero gradient
    # entries, so the trajectories separate after a few dozen steps and meet again at the end
    # (checked above); step-by-step agreement is checked where it is meaningful
    early = min(10, steps)
    hist_early, hist_max, hist_at = float(np.max(rel[:early])), float(np.max(rel)), int(np.argmax(rel))
    print(f"  per-step loss curves: max rel. difference {hist_early:.1e} over the first {early} steps, "
          f"{hist_max:.1e} overall (step {hist_at}), {rel[-1]:.1e} at the last step")
    check(hist_early < 1e-3, f"the two loss curves agree step by step over the first {early} steps")

    print(f"\ntiming one face: {repeats} x (JAX run, PyTorch run), interleaved ...", flush=True)
    jax_single()  # second warm-up
    t_single = interleaved({"jax": jax_single, "torch": torch_single}, repeats)
    js["times"], ts["times"] = t_single["jax"], t_single["torch"]
    print(f"  JAX {[round(t, 3) for t in js['times']]} s; PyTorch {[round(t, 3) for t in ts['times']]} s")

    print(f"\nJAX, vmap over {batch} faces: compile, run, check, time ...", flush=True)
    t_compileB, jax_batch = compile_jax_batch(prob, steps)
    final_b, _ = jax_batch()
    loss_b, metrics_b = jax.vmap(prob.fit.loss)(final_b.params, prob.targets(None))
    jb = {"compile": t_compileB, "px": np.asarray(metrics_b["landmark_px"]), "loss": np.asarray(loss_b)}
    check(bool(np.all(jb["px"] < 1.0)), f"every face < 1 px (max {jb['px'].max():.4f} px)")
    check(abs(float(jb["px"][0]) - js["px"]) < SAME_PX, f"vmapped face 0 == single fit ({jb['px'][0]:.4f} px)")
    print(f"\nJAX, lax.map over {batch} faces: compile, run, check ...", flush=True)
    t_compileM, jax_map = compile_jax_map(prob, steps)
    final_m, _ = jax_map()
    loss_m, metrics_m = jax.vmap(prob.fit.loss)(final_m.params, prob.targets(None))
    jm = {"compile": t_compileM, "px": np.asarray(metrics_m["landmark_px"]), "loss": np.asarray(loss_m)}
    dm = float(np.max(np.abs(jm["px"] - jb["px"])))
    check(dm < SAME_PX, f"lax.map gives vmap's per-face errors (max |Δ| {dm:.1e} px)")
    print(f"timing {batch} faces: {repeats} x (vmap run, lax.map run), interleaved ...", flush=True)
    t_batch = interleaved({"vmap": jax_batch, "map": jax_map}, repeats)
    jb["times"], jm["times"] = t_batch["vmap"], t_batch["map"]
    print(f"  vmap {[round(t, 3) for t in jb['times']]} s; lax.map {[round(t, 3) for t in jm['times']]} s")

    print(f"\nPyTorch eager, loop over {batch} faces (timed once, then checked) ...", flush=True)
    t_loop, states = C.timed(torch_loop(prob, tf, steps, foreach))
    m = [tf["final"](st, prob.targets(i)) for i, st in enumerate(states)]
    tb = {"times": [t_loop], "px": np.array([x["px"] for x in m]), "loss": np.array([x["loss"] for x in m])}
    dpx = np.abs(tb["px"] - jb["px"])
    check(bool(np.all(dpx < 0.02 + 0.1 * jb["px"])), f"every face's torch error close to JAX's (max |Δ| {dpx.max():.4f} px)")

    print(f"\nthe default (human) template, two stages: first call, then {repeats} warm calls ...", flush=True)
    hu = human_fit_times(prob.landmarks, prob.image_size, repeats)
    print(f"  first call {hu['first_wall']:.2f} s (compile {hu['first_compile']:.2f} s); warm wall "
          f"{[round(t, 3) for t in hu['walls']]} s; compiled fits {[round(t, 3) for t in hu['fits']]} s")

    # ------------------------------------------------------------------------------------------
    j1 = C.median(js["times"])
    t1 = C.median(ts["times"])
    jB = C.median(jb["times"])
    tB = C.median(tb["times"])
    jM = C.median(jm["times"])
    sp1 = t1 / j1
    spB = tB / jB
    spM = tB / jM
    ms = lambda s: fmt(s * 1e3)  # noqa: E731
    headers = ["Case", "Implementation", "Compile (s)", "ms / step", "ms / step / face",
               f"Fit, {steps} steps (s)", "Mean error (px)", "Final loss"]
    rows = [
        ["1 face", "JAX `jit(lax.scan)`", fmt(js["compile"]), ms(j1 / steps), ms(j1 / steps), fmt(j1),
         f"{js['px']:.4f}", f"{js['loss']:.5f}"],
        ["1 face", "PyTorch eager", "–", ms(t1 / steps), ms(t1 / steps), fmt(t1), f"{ts['px']:.4f}",
         f"{ts['loss']:.5f}"],
        ["1 face", "**speed-up (PyTorch / JAX)**", "", f"**{sp1:.1f}×**", f"**{sp1:.1f}×**", f"**{sp1:.1f}×**", "", ""],
        [f"{batch} faces", "JAX `jit(vmap(run))`", fmt(jb["compile"]), ms(jB / steps), ms(jB / steps / batch),
         fmt(jB), f"{jb['px'].mean():.4f} (max {jb['px'].max():.4f})", f"{jb['loss'].mean():.5f}"],
        [f"{batch} faces", "JAX `jit(lax.map(run))`", fmt(jm["compile"]), ms(jM / steps), ms(jM / steps / batch),
         fmt(jM), f"{jm['px'].mean():.4f} (max {jm['px'].max():.4f})", f"{jm['loss'].mean():.5f}"],
        [f"{batch} faces", "PyTorch eager, Python loop", "–", ms(tB / steps), ms(tB / steps / batch), fmt(tB),
         f"{tb['px'].mean():.4f} (max {tb['px'].max():.4f})", f"{tb['loss'].mean():.5f}"],
        [f"{batch} faces", "**speed-up (PyTorch loop / JAX vmap)**", "", f"**{spB:.1f}×**", f"**{spB:.1f}×**",
         f"**{spB:.1f}×**", "", ""],
        [f"{batch} faces", "**speed-up (PyTorch loop / JAX lax.map)**", "", f"**{spM:.1f}×**", f"**{spM:.1f}×**",
         f"**{spM:.1f}×**", "", ""],
    ]
    hw, hf = C.median(hu["walls"]), C.median(hu["fits"])
    rows += [
        ["1 face, human template", f"two stages: human ({hu['steps1']} steps) + residual ({hu['steps2']} steps, 64²)",
         fmt(hu["first_compile"]), ms((hf) / (hu["steps1"] + hu["steps2"])), "", fmt(hf),
         f"{hu['px1']:.4f} → {hu['px2']:.4f}", ""],
        ["1 face, human template", "`fit_landmarks` wall time (set-up, both stages, meshes)", "", "", "", fmt(hw), "", ""],
    ]
    met1 = j1 <= TARGET_FIT_SECONDS
    met_h = hw <= TARGET_FIT_SECONDS
    met2 = sp1 >= TARGET_SPEEDUP
    scale_note = "" if steps == 300 else f" (measured with {steps} steps, not the default 300)"
    targets = [
        f"The default (human) template's warm two-stage fit ≤ {TARGET_FIT_SECONDS:g} s on 2 CPU cores: "
        f"**{hw:.2f} s wall time for the whole `fit_landmarks` call on {cores} cores — {'met' if met_h else 'NOT met'}** "
        f"(compiled optimisations {hf:.2f} s: stage 1 {C.median(hu['stage1']):.2f} s, stage 2 "
        f"{C.median(hu['stage2']):.2f} s; the first call in a process takes {hu['first_wall']:.1f} s, "
        f"{hu['first_compile']:.1f} s of it compiling).",
        f"One triplane fit ≤ {TARGET_FIT_SECONDS:g} s after compilation on 2 CPU cores (procedural template, 478 landmarks, 256² triplane): "
        f"**{j1:.2f} s on {cores} cores — {'met' if met1 else 'NOT met'}**{scale_note}.",
        f"≥ {TARGET_SPEEDUP:g}× the eager PyTorch version per step: **{sp1:.1f}× — {'met' if met2 else 'NOT met'}** "
        f"(batch of {batch}: {spB:.1f}× with `vmap`, {spM:.1f}× with `lax.map`).",
    ]
    notes = [
        f"Machine: {info['machine']}; CPU: {info['cpu']}; date: {info['date']}; {versions}; "
        f"Python {info['python']}; JAX backend {jax.default_backend()}, float32; torch.set_num_threads({cores}).",
        f"Problem: the procedural template (single-stage triplane fit, the JAX/PyTorch comparison), the {G.NUM_LANDMARKS} MediaPipe landmarks of the bundled portrait, "
        f"{config.resolution}² triplane, {config.levels} offset levels, {steps} Adam steps (warm-up + cosine decay), "
        f"λ_tv={config.lambda_tv:g}, λ_sym={config.lambda_sym:g}, λ_depth={config.lambda_depth:g}, δ={config.delta:g} px. "
        f"Batch: face 0 is the portrait, faces 1… are its landmarks moved by a small random similarity "
        f"(±4 px, ±3 %, ±2°) plus 0.2 px noise; each face gets its own closed-form camera initialisation.",
        f"Times are medians of {repeats} runs after compilation and at least one warm-up run; one-face JAX "
        f"and PyTorch runs alternate, as do the vmap and lax.map runs (the {batch}-face PyTorch loop: 1 run); "
        f"JAX is timed with `jax.block_until_ready`. ms / step = fit time / {steps}; compile = "
        f"`lower(...).compile()` of the whole {steps}-step run. Mean error = mean over the template's "
        f"landmarks of ‖proj − detected‖ after the last step. Spread of the one-face runs: JAX "
        f"{min(js['times']):.3f}–{max(js['times']):.3f} s, PyTorch {min(ts['times']):.3f}–{max(ts['times']):.3f} s; "
        f"1-min load average {load_before:.2f} before and {os.getloadavg()[0]:.2f} after the run (this is a "
        f"shared VM: expect run-to-run swings).",
        f"Answer checks (all passed): `interpolate(bilinear, align_corners=False)` equals `jax.image.resize('linear')` "
        f"for every ×2^k upsampling (max |Δ| {blocks['resize_max_abs']:.0e}); decode, loss and gradients at a "
        f"perturbed init agree (relative differences {blocks['loss_rel']:.1e} / {blocks['grad_rel']:.1e}); JAX's error "
        f"equals `fit_landmarks` ({ref_px:.4f} px); PyTorch's per-step loss curve follows JAX's to "
        f"{hist_early:.0e} (relative) over the first {early} steps, drifts apart in the middle of the fit "
        f"(max {hist_max:.0e} at step {hist_at}: the fit passes through an unstable phase that amplifies "
        f"float32 rounding) and ends within {rel[-1]:.0e}; vmapped face 0 equals the single fit; lax.map "
        f"equals vmap.",
        "`lax.map` runs the per-face program face after face inside one compiled program. On a CPU it is "
        "faster than `vmap`, most likely because one face's maps and Adam state (a few MB) stay in cache "
        "while `vmap` streams the whole batch's through memory at every step.",
        f"PyTorch: same loss and optimiser (`torch.optim.Adam`, eps 1e-8, one param group per "
        f"optax group, `LambdaLR` = machlib's warm-up + cosine schedule), NCHW maps, decode indices precomputed once, "
        f"Adam `foreach={foreach}` (the faster of the two: {fe_times[False] * 1e3:.2f} vs "
        f"{fe_times[True] * 1e3:.2f} ms/step for per-tensor vs foreach).",
    ]

    md = ["# Geometry fit: JAX vs eager PyTorch", "", C.markdown_table(headers, rows), "", "**Targets**", ""]
    md += [f"- {t}" for t in targets] + ["", "**Notes**", ""] + [f"- {n}" for n in notes]
    rst_rows = [[C.rst_inline(c) for c in r] for r in rows]
    rst = ["..", "   Generated by benchmarks/fit_geometry.py; do not edit by hand.", "",
           C.rst_table(headers, rst_rows), "", "**Targets**", ""]
    rst += [f"* {C.rst_inline(t)}" for t in targets] + ["", "**Notes**", ""]
    rst += [f"* {C.rst_inline(n)}" for n in notes]
    C.emit_tables(md, rst, out_md, out_rst)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
