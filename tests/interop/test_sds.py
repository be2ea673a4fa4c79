"""Score distillation from JAX: timestep and noise schedules against diffusers, the SDS gradient of a
tiny random diffusers UNet against the formula evaluated in plain torch, jit/vmap/determinism,
float64 finite differences through the torch-backed VAE and UNet, and an end-to-end check of the
SDS maths with the closed-form optimal denoiser of Gaussian data."""

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from jax.test_util import check_grads

from helpers import x64
from machlib import InputError
from machlib.interop._sds import (
    alphas_cumprod,
    gaussian_denoiser,
    scheduler_alphas_cumprod,
    sds_loss,
    sds_weight,
    timestep_schedule,
    unet_denoiser,
    vae_decoder,
    vae_encoder,
)

ROOT = Path(__file__).resolve().parents[2]
L, D = 5, 16  # prompt length, cross-attention width of the tiny UNet


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_unet(dtype=torch.float32):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
        norm_num_groups=8, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=D, attention_head_dim=4,
    )
    return unet.to(dtype).eval()


def tiny_vae(dtype=torch.float32):
    from diffusers import AutoencoderKL

    torch.manual_seed(1)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16), norm_num_groups=8,
        layers_per_block=1, down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
    )
    return vae.to(dtype).eval()


@pytest.fixture(scope="module")
def unet():
    return tiny_unet()


@pytest.fixture(scope="module")
def embeddings():
    k1, k2 = jax.random.split(jax.random.key(7))
    return jax.random.normal(k1, (L, D)), 0.1 * jax.random.normal(k2, (L, D))


class CallCounter:
    """Counts a module's forward calls and records their batch sizes."""

    def __init__(self, module):
        self.batches = []
        self.handle = module.register_forward_hook(lambda m, args, out: self.batches.append(args[0].shape[0]))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


# ------------------------------------------------------------------------------------------------
# timestep schedules


def test_uniform_schedule_range_and_determinism():
    sched = timestep_schedule("uniform")
    keys = jax.random.split(jax.random.key(0), 4000)
    ts = np.asarray(jax.vmap(lambda k: sched(0, k))(keys))
    assert ts.dtype == np.int32
    assert ts.min() >= 20 and ts.max() <= 980
    assert ts.min() < 30 and ts.max() > 970  # reaches both ends
    assert abs(ts.mean() - 500) < 15 and len(np.unique(ts)) > 800
    assert int(sched(3, keys[5])) == int(sched(99, keys[5])) == ts[5]  # same key, same t; step ignored
    assert int(jax.jit(sched)(jnp.int32(7), keys[5])) == ts[5]
    narrow = timestep_schedule("uniform", t_min=0.5, t_max=0.5)
    assert int(narrow(0, keys[0])) == 500


def test_decreasing_schedule_monotone_with_exact_ends():
    n = 37
    sched = timestep_schedule("decreasing", n_steps=n)
    ts = np.asarray(jax.vmap(sched)(jnp.arange(n)))
    assert ts[0] == 980 and ts[-1] == 20
    assert np.all(np.diff(ts) <= 0) and np.all(np.diff(ts) < 0)  # strictly decreasing here
    steps = np.diff(ts)
    assert steps.max() - steps.min() <= 1  # equal intervals up to rounding
    assert [int(jax.jit(sched)(s)) for s in (0, 5, n - 1)] == [ts[0], ts[5], ts[-1]]
    assert int(sched(n + 10)) == 20 and int(sched(-3)) == 980  # clamped
    assert int(sched(4, jax.random.key(1))) == int(sched(4, jax.random.key(2)))  # key ignored
    to_zero = timestep_schedule("decreasing", n_steps=11, t_min=0.0, t_max=1.0, num_train_timesteps=100)
    assert [int(to_zero(s)) for s in range(11)] == [99, 89, 79, 69, 59, 50, 40, 30, 20, 10, 0]
    assert int(timestep_schedule("decreasing", n_steps=1)(0)) == 980


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kind="cosine"), "kind"),
        (dict(kind="decreasing"), "n_steps"),
        (dict(kind="decreasing", n_steps=0), "n_steps"),
        (dict(kind="uniform", t_min=0.9, t_max=0.1), "t_min"),
        (dict(kind="uniform", t_max=1.5), "t_min"),
        (dict(kind="uniform", num_train_timesteps=0), "num_train_timesteps"),
    ],
)
def test_timestep_schedule_rejects_bad_arguments(kwargs, match):
    kind = kwargs.pop("kind")
    with pytest.raises((ValueError, TypeError), match=match):
        timestep_schedule(kind, **kwargs)


def test_uniform_schedule_needs_a_key():
    with pytest.raises(InputError, match="key"):
        timestep_schedule("uniform")(0)


# ------------------------------------------------------------------------------------------------
# noise schedules and weights


@pytest.mark.parametrize("schedule", ["scaled_linear", "linear", "squaredcos_cap_v2"])
def test_alphas_cumprod_match_diffusers(schedule):
    from diffusers import DDPMScheduler

    kw = dict(beta_start=0.00085, beta_end=0.012, num_train_timesteps=1000, beta_schedule=schedule)
    ref = DDPMScheduler(**kw).alphas_cumprod.numpy()
    np.testing.assert_allclose(np.asarray(alphas_cumprod(**kw)), ref, rtol=2e-5, atol=1e-7)
    np.testing.assert_allclose(np.asarray(scheduler_alphas_cumprod(DDPMScheduler(**kw))), ref, rtol=2e-5, atol=1e-7)
    np.testing.assert_allclose(np.asarray(scheduler_alphas_cumprod(dict(kw))), ref, rtol=2e-5, atol=1e-7)


def test_alphas_cumprod_defaults_are_stable_diffusions():
    a = np.asarray(alphas_cumprod(), np.float64)
    betas = np.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2
    np.testing.assert_allclose(a, np.cumprod(1 - betas), rtol=1e-6)
    trained = scheduler_alphas_cumprod({"num_train_timesteps": 3, "trained_betas": [0.1, 0.2, 0.5]})
    np.testing.assert_allclose(np.asarray(trained), [0.9, 0.72, 0.36], rtol=1e-6)
    with pytest.raises(InputError, match="beta_schedule"):
        alphas_cumprod(beta_schedule="sigmoid")
    with pytest.raises(InputError, match="scheduler"):
        scheduler_alphas_cumprod(3)


def test_sds_weight_kinds():
    a = alphas_cumprod()
    t = jnp.array([0, 250, 999])
    ab = np.asarray(a)[[0, 250, 999]]
    np.testing.assert_allclose(np.asarray(sds_weight(t, a)), 1 - ab, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(sds_weight(t, a, kind="uniform")), 1.0)
    np.testing.assert_allclose(np.asarray(sds_weight(t, a, kind="snr")), ab / (1 - ab), rtol=1e-5)
    assert float(jax.jit(sds_weight)(jnp.int32(250), a)) == pytest.approx(1 - ab[1], rel=1e-6)
    with pytest.raises((ValueError, TypeError), match="kind"):
        sds_weight(3, a, kind="sigma")
    with pytest.raises((ValueError, TypeError), match="outside"):
        sds_weight(1000, a)
    with pytest.raises(Exception, match="outside"):  # inside jit: a run-time error
        jax.block_until_ready(jax.jit(sds_weight)(jnp.int32(-1), a))
    with pytest.raises((ValueError, TypeError), match="alphas_cumprod"):
        sds_weight(3, jnp.ones((2, 3)))


# ------------------------------------------------------------------------------------------------
# SDS with a tiny diffusers UNet


def torch_sds_gradient(unet, z, key, t, cond, uncond, scale):
    """w(t)(ε̂ − ε) in plain torch: diffusers' own ᾱ, two separate UNet calls for the guidance."""
    from diffusers import DDPMScheduler

    ab = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear").alphas_cumprod[t]
    eps = torch.from_numpy(np.array(jax.random.normal(key, z.shape, z.dtype))).permute(2, 0, 1)[None]
    zt = ab.sqrt() * torch.from_numpy(np.array(z)).permute(2, 0, 1)[None] + (1 - ab).sqrt() * eps
    tt = torch.tensor([t])
    with torch.no_grad():
        e_c = unet(zt, tt, encoder_hidden_states=torch.from_numpy(np.array(cond))[None]).sample
        e_u = unet(zt, tt, encoder_hidden_states=torch.from_numpy(np.array(uncond))[None]).sample
    eps_hat = e_u + scale * (e_c - e_u)
    return ((1 - ab) * (eps_hat - eps))[0].permute(1, 2, 0).numpy()


def test_sds_gradient_equals_formula_in_torch_and_skips_the_unet_backward(unet, embeddings):
    cond, uncond = embeddings
    eps_fn = unet_denoiser(unet, cond, uncond_embeddings=uncond, guidance_scale=7.5)
    a = alphas_cumprod()
    z = jax.random.normal(jax.random.key(3), (8, 8, 4))
    key, t = jax.random.key(4), 600
    with CallCounter(unet) as calls:
        value, grad = jax.value_and_grad(sds_loss)(z, key, t, eps_fn, a)
    assert calls.batches == [2]  # one UNet call (cond + uncond batched), forward only
    expected = torch_sds_gradient(unet, z, key, t, cond, uncond, 7.5)
    np.testing.assert_allclose(np.asarray(grad), expected, rtol=1e-4, atol=1e-5)
    assert float(value) == pytest.approx(0.5 * float(np.sum(expected.astype(np.float64) ** 2)), rel=1e-4)
    # same key → same noise → same gradient; another key → another
    np.testing.assert_array_equal(np.asarray(jax.grad(sds_loss)(z, key, t, eps_fn, a)), np.asarray(grad))
    assert not np.allclose(np.asarray(jax.grad(sds_loss)(z, jax.random.key(5), t, eps_fn, a)), np.asarray(grad))
    # jit (t traced) == eager, still one forward call
    step = jax.jit(jax.value_and_grad(sds_loss), static_argnums=3)
    with CallCounter(unet) as calls:
        v_j, g_j = step(z, key, jnp.int32(t), eps_fn, a)
    assert calls.batches == [2]
    np.testing.assert_allclose(np.asarray(g_j), np.asarray(grad), rtol=1e-4, atol=2e-5)
    assert float(v_j) == pytest.approx(float(value), rel=1e-5)


def test_sds_without_guidance_and_weights(unet, embeddings):
    cond, _ = embeddings
    a = alphas_cumprod()
    eps_fn = unet_denoiser(unet, torch.from_numpy(np.array(cond))[None])  # a (1, L, D) tensor; no guidance
    z = jax.random.normal(jax.random.key(8), (8, 8, 4))
    key, t = jax.random.key(9), 300
    with CallCounter(unet) as calls:
        g = jax.grad(sds_loss)(z, key, t, eps_fn, a, weight="uniform")
    assert calls.batches == [1]
    expected = torch_sds_gradient(unet, z, key, t, cond, cond, 1.0) / (1 - float(a[t]))
    np.testing.assert_allclose(np.asarray(g), expected, rtol=1e-4, atol=1e-5)


def test_sds_vmap_is_one_batched_unet_call_and_equals_loop(unet, embeddings):
    cond, uncond = embeddings
    eps_fn = unet_denoiser(unet, cond, uncond_embeddings=uncond)
    a = alphas_cumprod()
    zs = jax.random.normal(jax.random.key(10), (3, 8, 8, 4))
    keys = jax.random.split(jax.random.key(11), 3)
    ts = jnp.array([900, 500, 100])
    grad = jax.grad(sds_loss)
    with CallCounter(unet) as calls:
        batched = jax.jit(jax.vmap(lambda z, k, t: grad(z, k, t, eps_fn, a)))(zs, keys, ts)
    assert calls.batches == [6]  # 3 latents × (cond, uncond) in one UNet call
    loop = np.stack([np.asarray(grad(zs[i], keys[i], ts[i], eps_fn, a)) for i in range(3)])
    np.testing.assert_allclose(np.asarray(batched), loop, rtol=1e-4, atol=2e-5)
    # batched over t only (z broadcast), and over z only (t broadcast)
    by_t = jax.vmap(lambda t: eps_fn(zs[0], t))(ts)
    by_z = jax.vmap(lambda z: eps_fn(z, 500))(zs)
    for i in range(3):
        np.testing.assert_allclose(np.asarray(by_t[i]), np.asarray(eps_fn(zs[0], ts[i])), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(np.asarray(by_z[i]), np.asarray(eps_fn(zs[i], 500)), rtol=1e-4, atol=1e-5)


def test_unet_denoiser_is_differentiable_float64(embeddings):
    """ε̂ itself (not used by SDS, but a differentiable primitive): reverse mode vs finite differences."""
    unet = tiny_unet(torch.float64)
    cond, uncond = embeddings
    with x64():
        eps_fn = unet_denoiser(unet, np.asarray(cond, np.float64), uncond_embeddings=np.asarray(uncond, np.float64),
                               guidance_scale=3.0)
        z = jax.random.normal(jax.random.key(12), (8, 8, 4), jnp.float64)
        out = eps_fn(z, 400)
        assert out.dtype == jnp.float64 and out.shape == (8, 8, 4) and bool(jnp.all(jnp.isfinite(out)))
        check_grads(lambda v: eps_fn(v, 400), (z,), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)


def test_unet_denoiser_rejects_bad_inputs(unet, embeddings):
    cond, uncond = embeddings
    with pytest.raises((ValueError, TypeError), match="cond_embeddings"):
        unet_denoiser(unet, jnp.ones((L, D + 1)))
    with pytest.raises((ValueError, TypeError), match="cond_embeddings"):
        unet_denoiser(unet, jnp.ones((2, L, D)))
    with pytest.raises((ValueError, TypeError), match="same shape"):
        unet_denoiser(unet, cond, uncond_embeddings=jnp.ones((L + 1, D)))
    eps_fn = unet_denoiser(unet, cond, uncond_embeddings=uncond)
    with pytest.raises((ValueError, TypeError), match="channels"):
        eps_fn(jnp.zeros((8, 8, 3)), 10)
    with pytest.raises((ValueError, TypeError), match="H, W, C"):
        eps_fn(jnp.zeros((1, 8, 8, 4)), 10)
    with pytest.raises((ValueError, TypeError), match="integer"):
        eps_fn(jnp.zeros((8, 8, 4)), 10.0)
    a = alphas_cumprod()
    with pytest.raises((ValueError, TypeError), match="shape"):
        sds_loss(jnp.zeros((8, 8, 4)), jax.random.key(0), 10, lambda z, t: z[..., :2], a)
    with pytest.raises((ValueError, TypeError), match="weight"):
        sds_loss(jnp.zeros((8, 8, 4)), jax.random.key(0), 10, eps_fn, a, weight="sigma")
    with pytest.raises((ValueError, TypeError), match="outside"):
        sds_loss(jnp.zeros((8, 8, 4)), jax.random.key(0), 1000, eps_fn, a)


# ------------------------------------------------------------------------------------------------
# image-space SDS through the VAE encoder


def test_vae_encoder_matches_diffusers_and_value_ranges():
    vae = tiny_vae()
    img = jax.random.uniform(jax.random.key(13), (16, 16, 3))
    z = vae_encoder(vae)(img)
    assert z.shape == (8, 8, 4) and z.dtype == jnp.float32
    with torch.no_grad():
        x = 2 * torch.from_numpy(np.array(img)).permute(2, 0, 1)[None] - 1
        ref = (vae.encode(x).latent_dist.mean * vae.config.scaling_factor)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(np.asarray(z), ref, rtol=1e-5, atol=1e-6)
    signed = vae_encoder(vae, value_range=(-1.0, 1.0))(2 * img - 1)
    np.testing.assert_allclose(np.asarray(signed), ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(vae_encoder(vae, scaling_factor=1.0)(img)), ref / vae.config.scaling_factor,
                               rtol=1e-4, atol=1e-5)
    dec = vae_decoder(vae)(z)
    assert dec.shape == (16, 16, 3) and bool(jnp.all(jnp.isfinite(dec)))
    with torch.no_grad():
        ref_dec = (vae.decode(torch.from_numpy(ref).permute(2, 0, 1)[None] / vae.config.scaling_factor).sample + 1) / 2
    np.testing.assert_allclose(np.asarray(dec), ref_dec[0].permute(1, 2, 0).numpy(), rtol=1e-4, atol=1e-5)


def test_vae_rejects_bad_inputs():
    vae = tiny_vae()
    with pytest.raises((ValueError, TypeError), match="value_range"):
        vae_encoder(vae, value_range=(1.0, 0.0))
    with pytest.raises((ValueError, TypeError), match="AutoencoderKL"):
        vae_encoder(torch.nn.Identity())
    enc = vae_encoder(vae)
    with pytest.raises((ValueError, TypeError), match="multiple"):
        enc(jnp.zeros((15, 16, 3)))
    with pytest.raises((ValueError, TypeError), match="H, W, 3"):
        enc(jnp.zeros((16, 16, 4)))
    with pytest.raises((ValueError, TypeError), match="h, w, 4"):
        vae_decoder(vae)(jnp.zeros((8, 8, 3)))


def test_vae_encoder_and_decoder_gradients_float64():
    """∂z/∂I (DreamFace eq. 6) and ∂D(z)/∂z through torch autograd vs finite differences."""
    vae = tiny_vae(torch.float64)
    with x64():
        enc, dec = vae_encoder(vae), vae_decoder(vae)
        img = jax.random.uniform(jax.random.key(14), (16, 16, 3), jnp.float64)
        g = jax.random.normal(jax.random.key(15), (8, 8, 4), jnp.float64)
        check_grads(enc, (img,), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)
        check_grads(lambda i: jnp.vdot(enc(i), g), (img,), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)
        check_grads(dec, (g,), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)
        # explicit central difference along one direction for ⟨enc(I), g⟩
        v = jax.random.normal(jax.random.key(16), img.shape, jnp.float64)
        h = 1e-5
        fd = (jnp.vdot(enc(img + h * v), g) - jnp.vdot(enc(img - h * v), g)) / (2 * h)
        ad = jnp.vdot(jax.grad(lambda i: jnp.vdot(enc(i), g))(img), v)
        assert float(ad) == pytest.approx(float(fd), rel=1e-6, abs=1e-9)


def test_image_space_sds_chain_rule(unet, embeddings):
    """grad_I sds_loss(enc(I)) == J_enc(I)ᵀ w(t)(ε̂ − ε), the right side from torch autograd."""
    vae = tiny_vae()
    cond, uncond = embeddings
    eps_fn = unet_denoiser(unet, cond, uncond_embeddings=uncond)
    enc = vae_encoder(vae)
    a = alphas_cumprod()
    imgs = jax.random.uniform(jax.random.key(17), (2, 16, 16, 3))
    keys = jax.random.split(jax.random.key(18), 2)
    t = 700
    image_sds = jax.jit(jax.vmap(jax.grad(lambda i, k: sds_loss(enc(i), k, t, eps_fn, a))))
    with CallCounter(unet) as ucalls, CallCounter(vae.encoder) as vcalls:
        grads = image_sds(imgs, keys)
    assert ucalls.batches == [4]  # one batched UNet call, forward only
    assert vcalls.batches == [2, 2]  # encoder forward, then its forward+backward in the custom_vjp
    for i in range(2):
        g = torch_sds_gradient(unet, enc(imgs[i]), keys[i], t, cond, uncond, 7.5)
        x = torch.from_numpy(np.array(imgs[i])).permute(2, 0, 1)[None].requires_grad_(True)
        z = vae.encode(2 * x - 1).latent_dist.mean * vae.config.scaling_factor
        (ref,) = torch.autograd.grad(z, x, grad_outputs=torch.from_numpy(g).permute(2, 0, 1)[None])
        np.testing.assert_allclose(np.asarray(grads[i]), ref[0].permute(1, 2, 0).numpy(), rtol=1e-3, atol=2e-5)


# ------------------------------------------------------------------------------------------------
# the SDS maths end to end, with the optimal denoiser of Gaussian data


def test_gaussian_denoiser_is_the_posterior_mean_of_the_noise():
    """Regressing ε on z_t over samples recovers the closed form (slope and intercept)."""
    a = alphas_cumprod()
    mu, s, t = 0.7, 0.3, 400
    eps_fn = gaussian_denoiser(jnp.float32(mu), a, std=s)
    k1, k2 = jax.random.split(jax.random.key(19))
    n = 400_000
    x = mu + s * np.asarray(jax.random.normal(k1, (n,)), np.float64)
    eps = np.asarray(jax.random.normal(k2, (n,)), np.float64)
    ab = float(a[t])
    zt = np.sqrt(ab) * x + np.sqrt(1 - ab) * eps
    slope, intercept = np.polyfit(zt, eps, 1)
    probe = np.array([-1.0, 0.0, 1.0, 2.0])
    np.testing.assert_allclose(np.asarray(eps_fn(jnp.asarray(probe, jnp.float32), t)), slope * probe + intercept, atol=5e-3)


def test_gaussian_denoiser_float64_gradients_jit_vmap():
    with x64():
        a = alphas_cumprod()
        assert a.dtype == jnp.float64
        mu = jax.random.normal(jax.random.key(20), (4, 4, 2), jnp.float64)
        eps_fn = gaussian_denoiser(mu, a, std=0.5)
        z = jax.random.normal(jax.random.key(21), (4, 4, 2), jnp.float64)
        check_grads(lambda v: eps_fn(v, 321), (z,), order=1, atol=1e-7, rtol=1e-7)
        np.testing.assert_allclose(np.asarray(jax.jit(eps_fn)(z, 321)), np.asarray(eps_fn(z, 321)), rtol=1e-12)
        zs = jnp.stack([z, 2 * z])
        ts = jnp.array([10, 900])
        loop = np.stack([np.asarray(eps_fn(zs[i], ts[i])) for i in range(2)])
        np.testing.assert_allclose(np.asarray(jax.vmap(eps_fn)(zs, ts)), loop, rtol=1e-12)
        # sds_loss in float64: the gradient is the formula, the value ½‖g‖²
        key = jax.random.key(22)
        val, g = jax.value_and_grad(sds_loss)(z, key, 321, eps_fn, a, weight="snr")
        eps = jax.random.normal(key, z.shape, jnp.float64)
        ab = a[321]
        expected = ab / (1 - ab) * (eps_fn(jnp.sqrt(ab) * z + jnp.sqrt(1 - ab) * eps, 321) - eps)
        np.testing.assert_allclose(np.asarray(g), np.asarray(expected), rtol=1e-12, atol=1e-14)
        assert float(val) == pytest.approx(0.5 * float(jnp.sum(expected**2)), rel=1e-12)
    with pytest.raises((ValueError, TypeError), match="std"):
        gaussian_denoiser(jnp.zeros(3), alphas_cumprod(), std=0.0)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["uniform", "decreasing"])
def test_sds_steps_move_latents_to_the_data_mode(kind):
    """300 Adam steps of SDS from a random start reach the mode μ of N(μ, s² I) (RMSE 2.3 → < 0.02)."""
    a = alphas_cumprod()
    shape, n = (8, 8, 4), 300
    mu = jax.random.normal(jax.random.key(1), shape)
    eps_fn = gaussian_denoiser(mu, a, std=0.05)
    sched = timestep_schedule(kind, n_steps=n)
    opt = optax.adam(optax.cosine_decay_schedule(0.1, n))
    z0 = 2.0 * jax.random.normal(jax.random.key(2), shape)

    def body(carry, i):
        z, state, key = carry
        key, k_t, k_eps = jax.random.split(key, 3)
        g = jax.grad(sds_loss)(z, k_eps, sched(i, k_t), eps_fn, a)
        updates, state = opt.update(g, state, z)
        return (optax.apply_updates(z, updates), state, key), None

    run = jax.jit(lambda z: jax.lax.scan(body, (z, opt.init(z), jax.random.key(3)), jnp.arange(n))[0][0])
    z = run(z0)
    rmse0 = float(jnp.sqrt(jnp.mean((z0 - mu) ** 2)))
    rmse = float(jnp.sqrt(jnp.mean((z - mu) ** 2)))
    assert rmse0 > 2.0
    assert rmse < 0.02 and float(jnp.max(jnp.abs(z - mu))) < 0.1, (rmse, float(jnp.max(jnp.abs(z - mu))))
    np.testing.assert_array_equal(np.asarray(run(z0)), np.asarray(z))  # deterministic


@pytest.mark.slow
def test_sds_module_does_not_import_torch():
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = (
        "import sys, jax, jax.numpy as jnp\n"
        "from machlib.interop import _sds as S\n"
        "a = S.alphas_cumprod()\n"
        "g = jax.grad(S.sds_loss)(jnp.zeros((2, 2, 4)), jax.random.key(0), 5, S.gaussian_denoiser(jnp.ones(4), a), a)\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "print('ok', g.shape)"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout
