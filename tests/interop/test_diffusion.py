"""Portrait generation: weight-folder resolution (flags > config file > environment), the loader,
and the whole Stable Diffusion + multi-ControlNet pipeline run end to end with tiny random models
saved in the real diffusers folder layout."""

import json
from pathlib import Path

import numpy as np
import pytest

from machlib import InputError, WeightsMissingError
from machlib.interop._diffusion_config import (
    DIFFUSION_SLOTS,
    DiffusionWeights,
    describe_diffusion_weights,
    diffusion_weights_status,
    resolve_diffusion_weights,
)
from machlib.text import FaceAttributes, visual_clues
from tiny_models import TINY_HIDDEN as HIDDEN, save_tiny_portrait_weights

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield save_tiny_portrait_weights(tmp_path_factory.mktemp("diffusion_weights"))
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def pipe(tiny):
    from machlib.interop._diffusion import load_portrait_pipeline

    return load_portrait_pipeline(resolve_diffusion_weights(**tiny, environ={}))


# ------------------------------------------------------------------------------------------------
# resolution: flags > config file > environment


def _env(paths, prefix=""):
    names = {"base": "MACHLIB_SD_MODEL", "controlnet_openpose": "MACHLIB_CONTROLNET_OPENPOSE",
             "controlnet_canny": "MACHLIB_CONTROLNET_CANNY"}
    return {names[k]: str(v) for k, v in paths.items()}


def test_resolve_from_each_source_and_precedence(tiny, tmp_path):
    # environment only
    w = resolve_diffusion_weights(environ=_env(tiny))
    assert w == DiffusionWeights(**tiny)
    # a config file (relative paths from its folder) beats the environment
    cfg = tiny["base"].parent / "weights.toml"
    cfg.write_text('base = "sd15"\ncontrolnet_openpose = "openpose"\ncontrolnet_canny = "canny"\n')
    bogus = {k: tmp_path / "nowhere" for k in tiny}
    assert resolve_diffusion_weights(config=cfg, environ=_env(bogus)) == DiffusionWeights(**tiny)
    # ... also when named by $MACHLIB_DIFFUSION_CONFIG
    env = {**_env(bogus), "MACHLIB_DIFFUSION_CONFIG": str(cfg)}
    assert resolve_diffusion_weights(environ=env).base == tiny["base"]
    # a flag beats the config file: a wrong flag is reported as coming from the flag
    with pytest.raises(WeightsMissingError, match=r"(?s)base .*nowhere does not exist \(from --sd-model\)"):
        resolve_diffusion_weights(base=tmp_path / "nowhere", config=cfg, environ={})
    # slots mix sources: base from a flag, openpose from the file, canny from the environment
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"controlnet_openpose": str(tiny["controlnet_openpose"])}))
    status = diffusion_weights_status(base=tiny["base"], config=partial,
                                      environ={"MACHLIB_CONTROLNET_CANNY": str(tiny["controlnet_canny"])})
    assert status["base"]["source"] == "--sd-model"
    assert status["controlnet_openpose"]["source"].startswith(str(partial))
    assert status["controlnet_canny"]["source"] == "$MACHLIB_CONTROLNET_CANNY"
    assert all(s["problem"] is None for s in status.values())
    report = describe_diffusion_weights(base=tiny["base"], config=partial, environ={})
    assert "base (Stable Diffusion base model): found" in report
    assert "controlnet_canny (Canny ControlNet): MISSING (not given)" in report and "--controlnet-canny" in report


def test_missing_weights_message_names_each_slot_and_how_to_provide_it(tiny, tmp_path):
    with pytest.raises(WeightsMissingError) as e:
        resolve_diffusion_weights(controlnet_openpose=tiny["controlnet_openpose"], environ={})
    msg = str(e.value)
    assert "2 are missing" in msg
    assert "- base (Stable Diffusion base model): not given" in msg
    assert "- controlnet_canny (Canny ControlNet): not given" in msg
    assert "controlnet_openpose (" not in msg.split("Provide")[0]  # the found slot is not listed as missing
    for hint in ("--sd-model", "--controlnet-openpose", "--controlnet-canny", "--weights-config", "MACHLIB_SD_MODEL",
                 "MACHLIB_CONTROLNET_OPENPOSE", "MACHLIB_CONTROLNET_CANNY", "MACHLIB_DIFFUSION_CONFIG",
                 "SD 1.5", "control_v11p_sd15_openpose", "control_v11p_sd15_canny", "diffusers format"):
        assert hint in msg, hint
    # folders that exist but are not what they should be
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeightsMissingError, match=r"base .*empty has no readable model_index.json"):
        resolve_diffusion_weights(**{**tiny, "base": empty}, environ={})
    with pytest.raises(WeightsMissingError, match=r"controlnet_canny .*empty has no readable config.json"):
        resolve_diffusion_weights(**{**tiny, "controlnet_canny": empty}, environ={})
    with pytest.raises(WeightsMissingError, match=r"controlnet_openpose .*is not a folder"):
        resolve_diffusion_weights(**{**tiny, "controlnet_openpose": tiny["base"] / "model_index.json"}, environ={})
    # the base given as a ControlNet: a ControlNet folder has no model_index.json
    with pytest.raises(WeightsMissingError, match="openpose has no readable model_index.json"):
        resolve_diffusion_weights(**{**tiny, "base": tiny["controlnet_openpose"]}, environ={})
    # a ControlNet for another SD version (cross-attention width) is refused before loading
    other = tmp_path / "sd21_controlnet"
    other.mkdir()
    config = json.loads((tiny["controlnet_canny"] / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "cross_attention_dim": 1024}))
    (other / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    with pytest.raises(WeightsMissingError, match=f"cross_attention_dim 1024 but the base UNet has {HIDDEN}"):
        resolve_diffusion_weights(**{**tiny, "controlnet_canny": other}, environ={})
    # a ControlNet folder without weights
    (other / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(WeightsMissingError, match=r"sd21_controlnet has no weights"):
        resolve_diffusion_weights(**{**tiny, "controlnet_canny": other}, environ={})


def test_config_file_errors(tiny, tmp_path):
    with pytest.raises(WeightsMissingError, match="config file .*nope.toml does not exist"):
        resolve_diffusion_weights(config=tmp_path / "nope.toml", environ={})
    with pytest.raises(WeightsMissingError, match=r"does not exist \(given by --weights-config or \$MACHLIB_DIFFUSION"):
        resolve_diffusion_weights(environ={"MACHLIB_DIFFUSION_CONFIG": str(tmp_path / "nope.json")})
    bad = tmp_path / "bad.toml"
    bad.write_text('base = "sd15"\nunet = "x"\n')
    with pytest.raises(InputError, match=r"unknown key\(s\) \['unet'\]"):
        resolve_diffusion_weights(config=bad, environ={})
    bad.write_text("base = [1, 2]\n")
    with pytest.raises(InputError, match="base in the weights config .* must be a non-empty path string"):
        resolve_diffusion_weights(config=bad, environ={})
    bad.write_text("base = \n")
    with pytest.raises(InputError, match="cannot read the weights config"):
        resolve_diffusion_weights(config=bad, environ={})
    yaml = tmp_path / "w.yaml"
    yaml.write_text("base: x\n")
    with pytest.raises(InputError, match="must end in .toml or .json"):
        resolve_diffusion_weights(config=yaml, environ={})
    with pytest.raises((ValueError, TypeError), match="non-empty path"):
        resolve_diffusion_weights(base="  ", environ={})


def test_default_environment_is_os_environ(tiny, monkeypatch):
    for k, v in _env(tiny).items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("MACHLIB_DIFFUSION_CONFIG", raising=False)
    assert resolve_diffusion_weights() == DiffusionWeights(**tiny)
    assert DIFFUSION_SLOTS == ("base", "controlnet_openpose", "controlnet_canny")


# ------------------------------------------------------------------------------------------------
# loading and generation


def test_loader_builds_multi_controlnet_pipeline(pipe, tiny):
    from diffusers import ControlNetModel, MultiControlNetModel, StableDiffusionControlNetPipeline, UniPCMultistepScheduler

    from machlib.interop._diffusion import load_portrait_pipeline

    assert isinstance(pipe, StableDiffusionControlNetPipeline)
    assert isinstance(pipe.controlnet, MultiControlNetModel) and len(pipe.controlnet.nets) == 2
    assert isinstance(pipe.scheduler, UniPCMultistepScheduler)
    assert pipe.safety_checker is None
    assert pipe.scheduler.config.beta_schedule == "scaled_linear"  # the base folder's noise schedule
    # the ControlNets are loaded in (openpose, canny) order, from their own folders
    ref = ControlNetModel.from_pretrained(tiny["controlnet_canny"], local_files_only=True)
    a, b = next(pipe.controlnet.nets[1].parameters()), next(ref.parameters())
    assert torch.equal(a, b)
    ddim = load_portrait_pipeline(DiffusionWeights(**tiny), scheduler="ddim")
    assert type(ddim.scheduler).__name__ == "DDIMScheduler"


def test_generate_end_to_end_is_seeded(pipe):
    from machlib.interop._diffusion import PortraitResult, generate_portrait

    attrs = FaceAttributes(gender="female", face_shape="round", hair_color="red", glasses="none")
    r = generate_portrait(pipe, attrs, size=64, steps=2, seed=3)
    assert isinstance(r, PortraitResult)
    assert r.image.shape == (64, 64, 3) and r.image.dtype == np.uint8
    assert r.image.std() > 0  # not a blank frame
    assert r.seed == 3 and "red hair" in r.prompt and r.negative_prompt.startswith("glasses")
    expected = visual_clues(attrs.to_dict(), size=64)
    assert set(r.clues) == {"openpose", "canny"}
    for k in r.clues:
        np.testing.assert_array_equal(r.clues[k], expected[k])
    assert r.settings == {"size": 64, "steps": 2, "guidance_scale": 7.5, "controlnet_scale": (1.0, 0.5),
                          "scheduler": "UniPCMultistepScheduler"}
    again = generate_portrait(pipe, attrs, size=64, steps=2, seed=3)
    np.testing.assert_array_equal(again.image, r.image)
    other = generate_portrait(pipe, attrs, size=64, steps=2, seed=4)
    assert not np.array_equal(other.image, r.image)


def test_generate_from_text_and_custom_clues(pipe):
    from machlib.interop._diffusion import generate_portrait
    from machlib.text._prompting import PortraitPrompt

    r = generate_portrait(pipe, "An old man with wrinkles on his face, he has gray hair.", size=64, steps=1, seed=0)
    assert r.attributes.age_group == "elderly" and "gray hair" in r.prompt
    blank = {"openpose": np.zeros((64, 64, 3), np.uint8), "canny": np.zeros((64, 64, 3), np.uint8)}
    own = PortraitPrompt("a portrait", "blur")
    c = generate_portrait(pipe, r.attributes, size=64, steps=1, seed=0, clues=blank, prompt=own,
                          controlnet_scale=[0.0, 0.0])
    assert (c.prompt, c.negative_prompt) == ("a portrait", "blur") and c.clues["canny"].max() == 0
    # the control images reach the ControlNets: with full weights, other clues give another image
    d = generate_portrait(pipe, r.attributes, size=64, steps=1, seed=0, clues=blank, prompt=own,
                          controlnet_scale=[2.0, 2.0])
    assert not np.array_equal(c.image, d.image)


def test_generate_rejects_bad_input(pipe):
    from machlib.interop._diffusion import generate_portrait

    a = FaceAttributes(gender="male")
    with pytest.raises((ValueError, TypeError), match="size must be a multiple of 8"):
        generate_portrait(pipe, a, size=100, steps=1)
    with pytest.raises((ValueError, TypeError), match="size must be in"):
        generate_portrait(pipe, a, size=56, steps=1)
    with pytest.raises((ValueError, TypeError), match="steps must be in"):
        generate_portrait(pipe, a, size=64, steps=0)
    with pytest.raises((ValueError, TypeError), match="guidance_scale"):
        generate_portrait(pipe, a, size=64, steps=1, guidance_scale=float("nan"))
    with pytest.raises((ValueError, TypeError), match="controlnet_scale"):
        generate_portrait(pipe, a, size=64, steps=1, controlnet_scale=(1.0,))
    with pytest.raises((ValueError, TypeError), match="controlnet_scale"):
        generate_portrait(pipe, a, size=64, steps=1, controlnet_scale=(1.0, 3.0))
    with pytest.raises((ValueError, TypeError), match="seed"):
        generate_portrait(pipe, a, size=64, steps=1, seed=-1)
    with pytest.raises((ValueError, TypeError), match=r"clues\['canny'\] must be a \(64, 64, 3\) uint8"):
        generate_portrait(pipe, a, size=64, steps=1,
                          clues={"openpose": np.zeros((64, 64, 3), np.uint8), "canny": np.zeros((32, 32, 3), np.uint8)})
    with pytest.raises((ValueError, TypeError), match="keys 'openpose' and 'canny'"):
        generate_portrait(pipe, a, size=64, steps=1, clues={"pose": np.zeros((64, 64, 3), np.uint8)})
    with pytest.raises((ValueError, TypeError), match="attributes"):
        generate_portrait(pipe, {"gender": "male"}, size=64, steps=1)
    with pytest.raises((ValueError, TypeError), match="pipeline must be"):
        generate_portrait(object(), a)


def test_loader_rejects_bad_options_and_missing_weights(tmp_path):
    from machlib.interop._diffusion import load_portrait_pipeline

    w = DiffusionWeights(tmp_path / "sd", tmp_path / "pose", tmp_path / "canny")
    with pytest.raises(WeightsMissingError, match=r"(?s)3 are missing.*sd does not exist.*--sd-model"):
        load_portrait_pipeline(w)
    with pytest.raises((ValueError, TypeError), match="unknown scheduler 'karras'"):
        load_portrait_pipeline(w, scheduler="karras")
    with pytest.raises((ValueError, TypeError), match="dtype must be one of"):
        load_portrait_pipeline(w, dtype="float64")
    with pytest.raises((ValueError, TypeError), match="weights"):
        load_portrait_pipeline(str(tmp_path))


def test_loader_refuses_float16_on_cpu_and_wraps_corrupt_weights(tiny, tmp_path):
    import shutil

    from machlib.interop._diffusion import load_portrait_pipeline

    with pytest.raises((ValueError, TypeError), match="float16 needs a GPU"):
        load_portrait_pipeline(DiffusionWeights(**tiny), dtype="float16")
    broken = tmp_path / "broken"
    shutil.copytree(tiny["controlnet_canny"], broken)
    (broken / "diffusion_pytorch_model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match=r"cannot load the controlnet_canny from .*broken"):
        load_portrait_pipeline(DiffusionWeights(**{**tiny, "controlnet_canny": broken}))
