"""pix2pixHD: config, generator/discriminator shapes and structure, losses, VGG loading, and a
tiny random network that learns on generated delighting data (its L1 falls), deterministically."""

import json

import jax
import numpy as np
import pytest
import torch

from machlib import InputError, WeightsMissingError
from machlib.interop import (
    GlobalGenerator,
    LocalEnhancer,
    MultiscaleDiscriminator,
    NLayerDiscriminator,
    Pix2PixHDConfig,
    VGG19Features,
    build_discriminator,
    build_generator,
    feature_matching_loss,
    load_vgg19,
    lsgan_loss,
    pix2pixhd_step,
    save_state_dict,
    vgg_loss,
)
from machlib.texture import delighting_pairs


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def sphere_normals(r: int) -> np.ndarray:
    """A bulging ``(R, R, 3)`` head-like normal map (+z toward the viewer at the centre)."""
    v, u = np.meshgrid(np.linspace(-1, 1, r), np.linspace(-1, 1, r), indexing="ij")
    n = np.stack([0.8 * u, -0.8 * v, np.ones_like(u)], -1)
    return (n / np.linalg.norm(n, axis=-1, keepdims=True)).astype(np.float32)


def toy_albedo(r: int) -> np.ndarray:
    a = np.empty((r, r, 3), np.float32)
    a[:] = (0.78, 0.6, 0.5)
    a[r // 3 : r // 3 + 3, r // 4 : 3 * r // 4] = (0.25, 0.2, 0.18)  # a brow-like band
    a[2 * r // 3 : 2 * r // 3 + 3, r // 3 : 2 * r // 3] = (0.7, 0.35, 0.35)  # lips
    return a


@pytest.fixture(scope="module")
def pairs():
    lit, albedo = delighting_pairs(jax.random.key(0), toy_albedo(32), sphere_normals(32), count=8, variation=1.0)
    to_t = lambda x: torch.from_numpy(np.array(x)).permute(0, 3, 1, 2).contiguous() * 2 - 1  # noqa: E731
    return to_t(lit), to_t(albedo)


# ------------------------------------------------------------------------------------------------
# config


def test_config_json_round_trip_and_validation():
    c = Pix2PixHDConfig.tiny()
    assert Pix2PixHDConfig.from_json(c.to_json()) == c
    assert json.loads(c.to_json())["ngf"] == 4
    assert Pix2PixHDConfig().size_multiple == 32 and c.size_multiple == 8
    with pytest.raises(ValueError, match="ngf"):
        Pix2PixHDConfig(ngf=0)
    with pytest.raises(TypeError, match="num_D"):
        Pix2PixHDConfig(num_D=1.5)
    with pytest.raises(InputError, match="unknown fields"):
        Pix2PixHDConfig.from_dict({"ngf": 4, "bogus": 1})
    with pytest.raises(InputError, match="JSON"):
        Pix2PixHDConfig.from_json("{not json")


# ------------------------------------------------------------------------------------------------
# networks


def test_global_generator_shapes_and_range():
    g = GlobalGenerator(3, 2, ngf=4, n_downsample=2, n_blocks=2)
    y = g(torch.randn(2, 3, 16, 24))
    assert y.shape == (2, 2, 16, 24)
    assert float(y.detach().abs().max()) <= 1.0
    convs = [m for m in g.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].kernel_size == (7, 7) and convs[-1].kernel_size == (7, 7)
    assert any(isinstance(m, torch.nn.ReflectionPad2d) for m in g.modules())
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in g.modules())
    feats = GlobalGenerator(3, 3, ngf=4, n_downsample=2, n_blocks=1, final=False)(torch.zeros(1, 3, 8, 8))
    assert feats.shape == (1, 4, 8, 8)


@pytest.mark.parametrize("n_local", [1, 2])
def test_local_enhancer_is_coarse_to_fine(n_local):
    g = LocalEnhancer(3, 3, ngf=2, n_downsample_global=1, n_blocks_global=1, n_local_enhancers=n_local, n_blocks_local=1)
    seen = []
    g.global_generator.register_forward_hook(lambda m, inp, out: seen.append((tuple(inp[0].shape), tuple(out.shape))))
    y = g(torch.randn(1, 3, 32, 32))
    assert y.shape == (1, 3, 32, 32)
    side = 32 // 2**n_local
    assert seen == [((1, 3, side, side), (1, 2 * 2**n_local, side, side))]  # global G runs at 1/2^N
    # the local branch matters: changing its first conv changes the output
    with torch.no_grad():
        g.down[-1][1].weight.add_(0.5)
    assert not torch.allclose(g(torch.randn(1, 3, 32, 32)), y)


def test_build_generator_from_config():
    assert isinstance(build_generator(Pix2PixHDConfig.tiny()), LocalEnhancer)
    assert isinstance(build_generator(Pix2PixHDConfig(ngf=4, n_local_enhancers=0, n_downsample_global=1, n_blocks_global=1)),
                      GlobalGenerator)


def test_discriminators_return_intermediate_features():
    d = NLayerDiscriminator(6, ndf=4, n_layers=3)
    feats = d(torch.randn(2, 6, 64, 64))
    assert len(feats) == 5 and feats[-1].shape[:2] == (2, 1)
    assert [f.shape[1] for f in feats] == [4, 8, 16, 32, 1]
    ms = build_discriminator(Pix2PixHDConfig.tiny())
    assert isinstance(ms, MultiscaleDiscriminator)
    out = ms(torch.randn(1, 6, 32, 32))
    assert len(out) == 2 and all(len(scale) == 4 for scale in out)
    assert out[1][-1].shape[-1] < out[0][-1].shape[-1]  # the second D sees a downsampled image


# ------------------------------------------------------------------------------------------------
# losses


def test_lsgan_loss_values():
    preds = [[torch.zeros(1, 2, 3, 3), torch.ones(1, 1, 4, 4)], [torch.ones(1, 1, 2, 2) * 0.5]]
    assert float(lsgan_loss(preds, real=True)) == pytest.approx(0.0 + 0.25)
    assert float(lsgan_loss(preds, real=False)) == pytest.approx(1.0 + 0.25)


def test_feature_matching_loss_weights():
    real = [[torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 2, 2), torch.zeros(1, 1, 2, 2)] for _ in range(2)]
    fake = [[f + 1.0 for f in scale] for scale in real]
    # Σ_scales Σ_layers (1/num_D)(4/L)·1 with L = 2 intermediate layers, num_D = 2 → 4
    assert float(feature_matching_loss(fake, real)) == pytest.approx(4.0)
    assert float(feature_matching_loss(real, real)) == 0.0
    r = torch.zeros(1, 2, 2, 2, requires_grad=True)
    f = torch.ones(1, 2, 2, 2, requires_grad=True)
    feature_matching_loss([[f, torch.zeros(1)]], [[r, torch.zeros(1)]]).backward()
    assert r.grad is None and f.grad is not None  # real features are detached
    with pytest.raises(ValueError, match="scales"):
        feature_matching_loss(fake, real[:1])


def _vgg_file(tmp_path, prefix="features."):
    torch.manual_seed(0)
    vgg = VGG19Features()
    state = {prefix + k: v for k, v in vgg.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # ignored
    return save_state_dict(tmp_path / "vgg19.safetensors", state), vgg


def test_vgg19_loads_user_weights_and_gives_a_perceptual_loss(tmp_path):
    path, ref = _vgg_file(tmp_path)
    vgg = load_vgg19(path)
    convs = [i for i, m in enumerate(vgg.features) if isinstance(m, torch.nn.Conv2d)]
    assert convs[:4] == [0, 2, 5, 7] and convs[-1] == 28 and len(convs) == 13
    for a, b in zip(vgg.parameters(), ref.parameters()):
        assert torch.equal(a, b)
    assert not any(p.requires_grad for p in vgg.parameters())
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    taps = vgg(x)
    assert [t.shape[1] for t in taps] == [64, 128, 256, 512, 512]
    assert float(vgg_loss(vgg, x, x)) == 0.0
    assert float(vgg_loss(vgg, x, -x)) > 0.0


def test_vgg19_bad_files(tmp_path):
    with pytest.raises(WeightsMissingError):
        load_vgg19(tmp_path / "none.safetensors")
    p = save_state_dict(tmp_path / "partial.safetensors", {"features.0.weight": torch.zeros(64, 3, 3, 3)})
    with pytest.raises(InputError, match="features.0.bias"):
        load_vgg19(p)
    p = save_state_dict(tmp_path / "shape.safetensors", {"features.0.weight": torch.zeros(8, 3, 3, 3)})
    with pytest.raises(InputError, match="shape"):
        load_vgg19(p)


# ------------------------------------------------------------------------------------------------
# training


def _train(pairs, steps, *, seed=0):
    lit, albedo = pairs
    torch.manual_seed(seed)
    cfg = Pix2PixHDConfig.tiny()
    g, d = build_generator(cfg), build_discriminator(cfg)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-3, betas=(0.5, 0.999))

    def eval_l1():
        g.eval()
        with torch.no_grad():
            return float((g(lit) - albedo).abs().mean())

    before = eval_l1()
    history = []
    for step in range(steps):
        idx = torch.arange(4) + 4 * (step % 2)
        history.append(pix2pixhd_step(g, d, opt_g, opt_d, lit[idx], albedo[idx], lambda_l1=10.0))
    return before, eval_l1(), history


def test_tiny_pix2pixhd_learns_to_delight_generated_data(pairs):
    before, after, history = _train(pairs, 40)
    assert set(history[0]) == {"G_GAN", "G_feat", "G_VGG", "G_L1", "G_total", "D_real", "D_fake"}
    assert all(np.isfinite(v) for h in history for v in h.values())
    l1 = [h["G_L1"] for h in history]
    assert np.mean(l1[-5:]) < 0.8 * np.mean(l1[:5]), l1
    assert after < 0.8 * before, (before, after)
    g_total = [h["G_total"] for h in history]
    assert np.mean(g_total[-5:]) < np.mean(g_total[:5]), g_total


def test_training_is_deterministic(pairs):
    _, a_after, a = _train(pairs, 3)
    _, b_after, b = _train(pairs, 3)
    assert a == b and a_after == b_after
    _, _, c = _train(pairs, 3, seed=1)
    assert c != a


def test_step_checks_shapes(pairs):
    lit, albedo = pairs
    cfg = Pix2PixHDConfig.tiny()
    g, d = build_generator(cfg), build_discriminator(cfg)
    opt = torch.optim.Adam(g.parameters())
    with pytest.raises(ValueError, match="batch and spatial"):
        pix2pixhd_step(g, d, opt, opt, lit[:2], albedo[:3])
