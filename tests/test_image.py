"""Tests of machlib._image: loading portraits, rejecting unusable files, writing PNGs."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from machlib._errors import InputError
from machlib._image import DEFAULT_PORTRAIT, default_portrait, load_image, save_png


def _rgb(h: int = 64, w: int = 48, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _png_with_size(path, width: int, height: int) -> None:
    """A PNG whose IHDR claims width × height but holds one pixel (nothing big is allocated)."""
    Image.new("RGB", (1, 1), (200, 100, 50)).save(path)
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------------------------- bad files


def test_missing_file(tmp_path):
    path = tmp_path / "nope.jpg"
    with pytest.raises(InputError, match="does not exist") as err:
        load_image(path)
    assert "nope.jpg" in str(err.value)


def test_directory(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        load_image(tmp_path)


def test_text_file(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    with pytest.raises(InputError, match="is not an image") as err:
        load_image(str(path))
    assert "notes.jpg" in str(err.value)


def test_truncated_jpeg(tmp_path):
    path = tmp_path / "cut.jpg"
    Image.fromarray(_rgb(256, 256)).save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated") as err:
        load_image(path)
    assert "cut.jpg" in str(err.value) and "\n" not in str(err.value)


def test_truncated_png(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(_rgb(256, 256)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated"):
        load_image(path)


def test_truncation_not_tolerated_even_if_pil_globally_tolerant(tmp_path, monkeypatch):
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    path = tmp_path / "cut.jpg"
    Image.fromarray(_rgb(256, 256)).save(path)
    path.write_bytes(path.read_bytes()[:-2000])
    with pytest.raises(InputError, match="truncated"):
        load_image(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the caller's setting is restored


def test_grayscale_png(tmp_path):
    path = tmp_path / "gray.png"
    Image.new("L", (64, 64), 128).save(path)
    with pytest.raises(InputError, match="grayscale") as err:
        load_image(path)
    assert "RGB" in str(err.value)


def test_bilevel_png(tmp_path):
    path = tmp_path / "bw.png"
    Image.new("1", (64, 64), 1).save(path)
    with pytest.raises(InputError, match="grayscale"):
        load_image(path)


def test_gray_palette_png(tmp_path):
    path = tmp_path / "graypal.png"
    Image.new("L", (64, 64), 90).convert("P").save(path)
    assert Image.open(path).mode == "P"
    with pytest.raises(InputError, match="grayscale"):
        load_image(path)


def test_rgba_png(tmp_path):
    path = tmp_path / "alpha.png"
    Image.new("RGBA", (64, 64), (10, 20, 30, 128)).save(path)
    with pytest.raises(InputError, match="alpha channel") as err:
        load_image(path)
    assert "background" in str(err.value)


def test_la_png(tmp_path):
    path = tmp_path / "la.png"
    Image.new("LA", (64, 64), (10, 128)).save(path)
    with pytest.raises(InputError, match="alpha channel"):
        load_image(path)


def test_rgb_png_with_transparent_colour(tmp_path):
    path = tmp_path / "trns.png"
    Image.fromarray(_rgb()).save(path, transparency=(0, 0, 0))
    with pytest.raises(InputError, match="alpha channel"):
        load_image(path)


def test_16bit_png(tmp_path):
    path = tmp_path / "deep.png"
    Image.new("I;16", (64, 64), 30000).save(path)
    with pytest.raises(InputError, match="16-bit") as err:
        load_image(path)
    assert "8-bit" in str(err.value)


def test_too_small(tmp_path):
    path = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (1, 2, 3)).save(path)
    with pytest.raises(InputError, match="too small: 1×1, need at least 32 px"):
        load_image(path)


def test_huge_header_rejected_without_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    _png_with_size(path, 20000, 20000)  # 400 Mpx claimed: Pillow's decompression-bomb limit
    with pytest.raises(InputError, match="too large") as err:
        load_image(path)
    assert "bomb.png" in str(err.value)


def test_max_side_checked_from_header(tmp_path):
    # 9000 × 100 is under Pillow's bomb limit, so Image.open succeeds lazily; the file holds one
    # pixel, so any decode would fail as "truncated": "too large" proves the header check ran.
    path = tmp_path / "wide.png"
    _png_with_size(path, 9000, 100)
    with pytest.raises(InputError, match="too large: 9000×100"):
        load_image(path)
    with pytest.raises(InputError, match="truncated"):
        load_image(path, max_side=10000)


def test_bad_side_limits():
    with pytest.raises(ValueError, match="load_image"):
        load_image(_rgb(), min_side=100, max_side=50)


# ---------------------------------------------------------------------------------- good files


def test_rgb_jpeg_loads(tmp_path):
    path = tmp_path / "ok.jpg"
    Image.new("RGB", (48, 64), (200, 40, 10)).save(path, quality=95)
    img = load_image(path)
    assert img.shape == (64, 48, 3) and img.dtype == np.uint8 and img.flags.c_contiguous
    assert np.abs(img.astype(int) - [200, 40, 10]).max() <= 3


def test_colour_palette_png_converted(tmp_path):
    path = tmp_path / "pal.png"
    src = _rgb()
    Image.fromarray(src).convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(path)
    assert Image.open(path).mode == "P"
    img = load_image(path)
    assert img.shape == (64, 48, 3) and img.dtype == np.uint8
    assert np.abs(img.astype(int) - src.astype(int)).mean() < 40


def test_cmyk_jpeg_converted(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("RGB", (40, 40), (0, 0, 255)).convert("CMYK").save(path)
    assert Image.open(path).mode == "CMYK"
    img = load_image(path)
    assert img.shape == (40, 40, 3)
    assert img[..., 2].mean() > 200 and img[..., 0].mean() < 60


def test_exif_orientation_applied(tmp_path):
    path = tmp_path / "rotated.jpg"
    src = np.zeros((40, 60, 3), np.uint8)
    src[:, :30] = (255, 0, 0)  # left half red, right half blue
    src[:, 30:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.fromarray(src).save(path, exif=exif, quality=95)
    img = load_image(path)
    assert img.shape == (60, 40, 3)
    assert img[5, 20, 0] > 200 and img[-5, 20, 2] > 200  # red on top, blue at the bottom


def test_arrays():
    src = _rgb()
    out = load_image(src)
    assert np.array_equal(out, src) and out is not src
    f = load_image(np.full((40, 40, 3), 0.5, np.float32))
    assert f.dtype == np.uint8 and int(f[0, 0, 0]) == 128
    assert int(load_image(np.ones((40, 40, 3)))[0, 0, 0]) == 255


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((40, 40), np.uint8), "grayscale"),
        (np.zeros((40, 40, 4), np.uint8), "alpha channel"),
        (np.zeros((40, 40, 3, 1), np.uint8), "shape"),
        (np.zeros((40, 40, 3), np.uint16), "dtype uint16"),
        (np.full((40, 40, 3), 2.0), "must lie in"),
        (np.full((40, 40, 3), np.nan), "NaN"),
        (np.zeros((8, 40, 3), np.uint8), "too small"),
    ],
)
def test_bad_arrays(array, message):
    with pytest.raises(InputError, match=message):
        load_image(array)


def test_default_portrait():
    img = default_portrait()
    assert DEFAULT_PORTRAIT == "grace_hopper"
    assert img.shape == (600, 512, 3) and img.dtype == np.uint8
    assert img.std() > 20  # a real photo, not a blank
    img[:] = 0  # a fresh copy each call
    assert default_portrait().std() > 20


def test_default_portrait_is_matplotlibs_sample_found_without_importing_it():
    import subprocess
    import sys

    from matplotlib import cbook

    assert np.array_equal(default_portrait(), load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    code = ("import sys; from machlib._image import default_portrait; default_portrait(); "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------------------ save_png


def test_save_png_round_trip(tmp_path):
    rgb, rgba = _rgb(), np.dstack([_rgb(seed=1), np.full((64, 48), 7, np.uint8)])
    out = save_png(tmp_path / "a.png", rgb)
    assert out == tmp_path / "a.png"
    assert np.array_equal(load_image(out), rgb)
    save_png(str(tmp_path / "b.png"), rgba)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b.png")), rgba)
    save_png(tmp_path / "a.png", rgb[::-1])  # overwrite in place
    assert np.array_equal(load_image(tmp_path / "a.png"), rgb[::-1])
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.png"]  # no temporary files left


def test_save_png_errors(tmp_path):
    with pytest.raises(TypeError, match="save_png"):
        save_png(tmp_path / "x.png", np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="save_png"):
        save_png(tmp_path / "x.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(FileNotFoundError):
        save_png(tmp_path / "missing" / "x.png", np.zeros((4, 4, 3), np.uint8))
    assert os.listdir(tmp_path) == []


def _png16_rgb(path, width=40, height=40):
    """A valid 16-bit-per-channel RGB PNG, written by hand (Pillow cannot write one)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + b"\x80\x00\x40\x00\x20\x00" * width
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))
    path.write_bytes(png)


def test_16bit_rgb_png_is_refused(tmp_path):
    path = tmp_path / "rgb16.png"
    _png16_rgb(path)
    with pytest.raises(InputError, match="16-bit"):
        load_image(path)
