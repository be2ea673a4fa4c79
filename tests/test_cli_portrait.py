"""`machlib portrait`, `machlib shape` and `machlib attributes --parser`: outputs, missing weights,
bad input (clear error, non-zero exit, nothing written)."""

import json

import numpy as np
import pytest
from PIL import Image

from machlib.cli import main

pytest.importorskip("diffusers")
from tiny_models import save_tiny_portrait_weights  # noqa: E402

_ENV = ("MACHLIB_SD_MODEL", "MACHLIB_CONTROLNET_OPENPOSE", "MACHLIB_CONTROLNET_CANNY", "MACHLIB_DIFFUSION_CONFIG",
        "MACHLIB_LLM")


@pytest.fixture(autouse=True)
def _no_weight_env(monkeypatch):
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    return save_tiny_portrait_weights(tmp_path_factory.mktemp("portrait_weights"))


def test_portrait_without_weights_says_what_is_missing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["portrait", "a girl with red hair", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    for needle in ("--sd-model", "--controlnet-openpose", "--controlnet-canny", "--weights-config",
                   "MACHLIB_SD_MODEL", "not given"):
        assert needle in err
    assert not out.exists()


def test_portrait_check_weights(tiny_weights, capsys):
    assert main(["portrait", "x", "--check-weights", "--sd-model", str(tiny_weights["base"])]) == 0
    report = capsys.readouterr().out
    assert f"found {tiny_weights['base']}" in report and "MISSING" in report


def test_portrait_end_to_end_with_tiny_weights(tiny_weights, tmp_path):
    out = tmp_path / "out"
    argv = ["portrait", "a young woman with short red hair and green eyes", "-o", str(out), "--steps", "2",
            "--size", "64", "--seed", "3", "-q", "--sd-model", str(tiny_weights["base"]),
            "--controlnet-openpose", str(tiny_weights["controlnet_openpose"])]
    config = tmp_path / "weights.json"
    config.write_text(json.dumps({"controlnet_canny": str(tiny_weights["controlnet_canny"])}))
    assert main(argv + ["--weights-config", str(config)]) == 0
    image = np.asarray(Image.open(out / "portrait.png"))
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    for name in ("openpose", "canny"):
        assert np.asarray(Image.open(out / f"{name}.png")).shape[:2] == (64, 64)
    report = json.loads((out / "portrait.json").read_text())
    assert report["attributes"]["hair_color"] == "red" and report["seed"] == 3
    assert "red hair" in report["sd_prompt"] and report["negative_prompt"]
    assert report["weights"]["controlnet_canny"] == str(tiny_weights["controlnet_canny"])
    # the same seed gives the same image
    again = tmp_path / "again"
    assert main(argv[:3] + [str(again)] + argv[4:] + ["--weights-config", str(config)]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(again / "portrait.png")), image)


@pytest.mark.parametrize("extra, expected", [(["--steps", "0"], "steps"), (["--size", "60"], "size"),
                                             (["--seed", "-1"], "--seed"), (["--scheduler", "magic"], "scheduler")])
def test_portrait_bad_input(tiny_weights, tmp_path, capsys, extra, expected):
    out = tmp_path / "out"
    argv = ["portrait", "a man", "-o", str(out), "-q", "--sd-model", str(tiny_weights["base"]),
            "--controlnet-openpose", str(tiny_weights["controlnet_openpose"]),
            "--controlnet-canny", str(tiny_weights["controlnet_canny"]), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]
    assert not out.exists()


def test_portrait_empty_prompt(tmp_path, capsys):
    assert main(["portrait", "  ", "-o", str(tmp_path / "o")]) == 2
    assert "empty" in capsys.readouterr().err


def test_shape_ranks_presets_offline(capsys, monkeypatch):
    monkeypatch.setenv("MACHLIB_TEXT_EMBEDDER", "lexical")
    assert main(["shape", "a woman with a round face", "-k", "3", "--random", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # candidates of the parametric human around the described person (its symmetric sliders)
    assert len(out) == 3 and out[0]["name"] in ("described", "face-round")
    assert "woman" in out[0]["description"] and "round face" in out[0]["description"]
    assert out[0]["score"] >= out[1]["score"] >= out[2]["score"] and len(out[0]["params"]) == 113


@pytest.mark.parametrize("argv, expected", [(["shape", " "], "empty"), (["shape", "a face", "-k", "0"], "-k"),
                                            (["shape", "a face", "--random", "-1"], "--random")])
def test_shape_bad_input(capsys, argv, expected):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]


def test_shape_missing_clip_weights(tmp_path, capsys):
    # a given path that is not there is bad input: one line, exit 2, before any work (issue 18)
    assert main(["shape", "a round face", "--clip", str(tmp_path / "no_clip")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no_clip does not exist" in err[0]


def test_attributes_parser_choice(capsys, monkeypatch):
    monkeypatch.setenv("MACHLIB_TEXT_EMBEDDER", "lexical")
    assert main(["attributes", "A woman with ponytailed hair", "--parser", "embedding"]) == 0
    assert json.loads(capsys.readouterr().out)["attributes"]["hairstyle"] == "ponytail"
    assert main(["attributes", "A woman with ponytailed hair"]) == 0
    assert "hairstyle" not in json.loads(capsys.readouterr().out)["attributes"]


def test_attributes_llm_needs_a_model(tmp_path, capsys):
    assert main(["attributes", "a man", "--parser", "llm"]) == 2
    assert "--llm DIR" in capsys.readouterr().err
    assert main(["attributes", "a man", "--llm", str(tmp_path)]) == 2
    assert "--parser llm" in capsys.readouterr().err
    assert main(["attributes", "a man", "--parser", "llm", "--llm", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--llm" in err[0] and "none does not exist" in err[0]


def test_portrait_without_diffusers_says_how_to_install(tiny_weights, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "diffusers", None)  # `import diffusers` now raises ImportError
    out = tmp_path / "out"
    argv = ["portrait", "a man", "-o", str(out), "-q", "--sd-model", str(tiny_weights["base"]),
            "--controlnet-openpose", str(tiny_weights["controlnet_openpose"]),
            "--controlnet-canny", str(tiny_weights["controlnet_canny"])]
    assert main(argv) == 1
    assert "pip install 'machlib[diffusion]'" in capsys.readouterr().err
    assert not out.exists()


def test_make_from_prompt_generates_the_portrait_with_weights(tiny_weights, tmp_path, capsys):
    """With weights configured, ``machlib make --prompt`` takes the full Mach path: the portrait is
    generated and handed to the fit (a tiny random model draws no face: exit 2, OUT untouched)."""
    config = tmp_path / "weights.json"
    config.write_text(json.dumps({k: str(v) for k, v in tiny_weights.items()}))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    status = main(["make", "--prompt", "a young woman with short red hair", "-o", str(out), "--weights-config",
                   str(config), "--steps", "2", "--size", "64"])
    err = capsys.readouterr().err
    assert status == 2 and "portrait …" in err and "landmarks" in err.split("portrait …")[1]
    assert "machlib: error" in err and "notice" not in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
