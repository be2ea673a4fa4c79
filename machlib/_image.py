"""Portrait loading and PNG writing.

Images in machlib are ``(H, W, 3)`` ``uint8`` RGB numpy arrays, row 0 at the top; pixel
``(i, j)`` covers the continuous square ``[j, j + 1) × [i, i + 1)`` with its centre at
``(j + 0.5, i + 0.5)`` (see :doc:`/conventions`).

:func:`load_image` is the single entry point for user-supplied portraits: it rejects anything
machlib cannot use (grayscale, transparency, 16-bit, truncated, tiny or huge files) with an
:class:`~machlib.InputError` whose one-line message names the file and the problem, so a CLI can
print it as-is.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import secrets
import stat
import warnings
import zlib
from pathlib import Path

import numpy as np
from jaxtyping import UInt8

from ._errors import InputError

__all__ = ["DEFAULT_PORTRAIT", "load_image", "default_portrait", "save_png"]

#: Name of the bundled default portrait returned by :func:`default_portrait` (matplotlib's
#: ``grace_hopper.jpg`` sample image, 512 × 600 px, shipped inside the matplotlib wheel).
DEFAULT_PORTRAIT = "grace_hopper"

_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_GRAY_MODES = {"1", "L", "I", "F"}
_CONVERTIBLE_MODES = {"RGB", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, zlib.error)


def _check_sides(name: str, width: int, height: int, min_side: int, max_side: int) -> None:
    if max(width, height) > max_side:
        raise InputError(
            f"{name} is too large: {width}×{height}, at most {max_side} px a side is supported; "
            "downscale it"
        )
    if min(width, height) < min_side:
        raise InputError(f"{name} is too small: {width}×{height}, need at least {min_side} px a side")


def _from_array(image: np.ndarray, min_side: int, max_side: int) -> np.ndarray:
    name = "image array"
    if image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 1):
        raise InputError(
            f"{name} is grayscale (shape {image.shape}); machlib needs an RGB colour portrait of "
            "shape (H, W, 3)"
        )
    if image.ndim == 3 and image.shape[-1] in (2, 4):
        raise InputError(
            f"{name} has an alpha channel (shape {image.shape}); flatten it onto a background to "
            "shape (H, W, 3)"
        )
    if image.ndim != 3 or image.shape[-1] != 3:
        raise InputError(f"{name} must have shape (H, W, 3), got {image.shape}")
    _check_sides(name, image.shape[1], image.shape[0], min_side, max_side)
    if image.dtype == np.uint8:
        return np.array(image, dtype=np.uint8, order="C", copy=True)
    if np.issubdtype(image.dtype, np.floating):
        if not np.all(np.isfinite(image)):
            raise InputError(f"{name} contains NaN or infinite values")
        lo, hi = float(image.min()), float(image.max())
        if lo < 0.0 or hi > 1.0:
            raise InputError(
                f"{name} is float with values in [{lo:.3g}, {hi:.3g}]; float images must lie in "
                "[0, 1] (or pass uint8 in [0, 255])"
            )
        return np.ascontiguousarray(np.round(image.astype(np.float64) * 255.0).astype(np.uint8))
    raise InputError(f"{name} has dtype {image.dtype}; expected uint8 or float in [0, 1]")


def _open_checked(path: Path, min_side: int, max_side: int):
    """Open ``path`` lazily, check header facts, then force a full, strict decode."""
    from PIL import Image, ImageFile, UnidentifiedImageError

    name = str(path)
    tolerant = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file must fail, not decode grey
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                img = Image.open(path)
            except PermissionError:
                raise InputError(f"{name} cannot be read: permission denied") from None
            except UnidentifiedImageError:
                raise InputError(f"{name} is not an image (or not a format Pillow can read)") from None
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
                m = re.search(r"\((\d+) pixels\)", str(err))
                size = f"{int(m.group(1)):,} pixels" if m else "too many pixels"
                raise InputError(
                    f"{name} is too large: {size}, at most {max_side} px a side is supported; "
                    "downscale it"
                ) from None
            except _DECODE_ERRORS as err:
                raise InputError(f"{name} is corrupt or truncated: {err}") from None

            # Header facts, known before any pixel is decoded (Image.open is lazy).
            width, height = img.size
            _check_sides(name, width, height, min_side, max_side)
            mode = img.mode
            png_depth = None
            if img.format == "PNG":  # IHDR bit depth: Pillow reads 16-bit RGB(A) as 8-bit silently
                with open(path, "rb") as fh:
                    header = fh.read(25)
                png_depth = header[24] if len(header) == 25 else None
            if mode.startswith("I;16") or mode in ("I;32", "I;32B") or png_depth == 16:
                raise InputError(
                    f"{name} is a 16-bit image (mode {mode}); 16-bit per channel is not supported, "
                    "machlib needs an 8-bit RGB colour portrait: convert it to 8-bit RGB"
                )
            if mode in _ALPHA_MODES or "transparency" in img.info:
                raise InputError(
                    f"{name} has an alpha channel (transparency, mode {mode}); flatten it onto a "
                    "background and save it as RGB"
                )
            if mode in _GRAY_MODES:
                raise InputError(
                    f"{name} is grayscale (mode {mode}); machlib needs an RGB colour portrait: "
                    "convert it to RGB"
                )
            if mode != "P" and mode not in _CONVERTIBLE_MODES:
                raise InputError(f"{name} has unsupported pixel mode {mode}; save it as 8-bit RGB")
            try:
                img.load()  # full decode: truncated or corrupt data raises here
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise InputError(f"{name} is too large to decode safely") from None
            except _DECODE_ERRORS as err:
                raise InputError(f"{name} is corrupt or truncated: {err}") from None
            return img
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = tolerant


def load_image(
    source: str | os.PathLike | np.ndarray, *, max_side: int = 8192, min_side: int = 32
) -> UInt8[np.ndarray, "H W 3"]:
    """Load a colour portrait as an ``(H, W, 3)`` ``uint8`` RGB array, or say why it can't be used.

    Files are read with Pillow: the size is checked from the header *before* decoding (so a
    20000 × 20000 image is refused without allocating it), then the whole file is decoded
    strictly (a truncated JPEG/PNG is an error, never silently grey-padded). EXIF orientation is
    applied; palette, CMYK and YCbCr images are converted to RGB; multi-frame files give their
    first frame. 16-bit images (grayscale or RGB PNG) are refused rather than silently
    truncated to 8 bits.

    Args:
        source: a path (``str`` or ``os.PathLike``) to an image file, or a numpy array of shape
            ``(H, W, 3)``: ``uint8`` in ``[0, 255]``, or floating point in ``[0, 1]`` (rounded to
            ``uint8``).
        max_side: largest accepted width or height, in pixels.
        min_side: smallest accepted width or height, in pixels.

    Returns:
        ``(H, W, 3)`` ``uint8`` RGB array, C-contiguous, a new array (never a view of ``source``).

    Raises:
        InputError: the file is missing, a directory, not an image, truncated or corrupt,
            grayscale, has an alpha channel, is 16-bit per channel, is smaller than ``min_side``
            or larger than ``max_side`` on a side (or trips Pillow's decompression-bomb limit);
            or the array has the wrong shape, dtype or range. The message is one line and names
            the file.
        ValueError: ``min_side`` / ``max_side`` are not ``1 <= min_side <= max_side``.

    Example:
        >>> import numpy as np
        >>> from machlib import load_image
        >>> load_image(np.full((64, 48, 3), 0.5)).shape
        (64, 48, 3)
        >>> load_image(np.full((64, 48, 3), 0.5))[0, 0].tolist()
        [128, 128, 128]
    """
    if not (isinstance(min_side, int) and isinstance(max_side, int) and 1 <= min_side <= max_side):
        raise ValueError(
            f"load_image: need integers 1 <= min_side <= max_side, got min_side={min_side!r}, "
            f"max_side={max_side!r}"
        )
    if isinstance(source, np.ndarray):
        return _from_array(source, min_side, max_side)

    from PIL import Image, ImageOps

    path = Path(os.fspath(source))
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not an image file")
    if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the read forever
        raise InputError(f"{path} is not a regular file (a FIFO, device or socket); give an image file")
    img = _open_checked(path, min_side, max_side)
    with img:
        if img.mode == "P":
            rgb = img.convert("RGB")
            arr = np.asarray(rgb)
            if np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]):
                raise InputError(
                    f"{path} is grayscale (a palette of grays); machlib needs an RGB colour "
                    "portrait: convert it to RGB"
                )
        else:
            rgb = img.convert("RGB") if img.mode != "RGB" else img
        try:
            rgb.info.update(img.info)
            oriented = ImageOps.exif_transpose(rgb)
        except _DECODE_ERRORS + (KeyError, TypeError):
            oriented = rgb  # unreadable EXIF: keep the stored orientation
        return np.array(oriented, dtype=np.uint8, order="C", copy=True)


def open_image_limited(path: str | os.PathLike, *, what: str, max_side: int = 8192):
    """Open and decode an auxiliary image (a mask, a region map) within Pillow's bomb limits.

    The file must be a regular file; its size is read from the header and refused above
    ``max_side`` pixels a side *before* any pixel is decoded, Pillow's decompression-bomb warning
    is an error, and decoding errors are :class:`~machlib.InputError` too. Unlike
    :func:`load_image` any pixel mode is accepted (the caller converts it).

    Args:
        path: the image file.
        what: how the message names it (e.g. ``"region 'face' image"``).
        max_side: largest accepted width or height, in pixels.

    Returns:
        The decoded :class:`PIL.Image.Image`.

    Raises:
        InputError: missing, not a regular file, not an image, too large, corrupt or truncated.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(os.fspath(path))
    try:
        st = os.stat(path)
    except OSError as e:
        raise InputError(f"{what} {path} cannot be read: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{what} {path} is not a regular file")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
            width, height = img.size
            if max(width, height) > max_side:
                img.close()
                raise InputError(f"{what} {path} is too large: {width}×{height}, at most {max_side} px a side")
            img.load()
        except InputError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise InputError(f"{what} {path} is too large to decode safely (a decompression bomb?)") from None
        except UnidentifiedImageError:
            raise InputError(f"{what} {path} is not an image (or not a format Pillow can read)") from None
        except _DECODE_ERRORS as e:
            raise InputError(f"{what} {path} is corrupt, truncated or unreadable: {e}") from None
    return img


@functools.lru_cache(maxsize=1)
def _default_portrait_cached() -> np.ndarray:
    # the file matplotlib's cbook.get_sample_data names (mpl-data/sample_data beside the package),
    # found without importing matplotlib: 0.2-0.25 s of a cold `machlib fit` or `make`
    spec = importlib.util.find_spec("matplotlib")
    path = None if spec is None or spec.origin is None else (
        Path(spec.origin).parent / "mpl-data" / "sample_data" / "grace_hopper.jpg")
    if path is None or not path.is_file():  # another layout: ask matplotlib
        from matplotlib import cbook

        path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    image = load_image(path)
    image.setflags(write=False)
    return image


def default_portrait() -> UInt8[np.ndarray, "600 512 3"]:
    """The bundled default portrait: matplotlib's ``grace_hopper.jpg`` sample image.

    It ships inside the matplotlib wheel, so it is available offline; :data:`DEFAULT_PORTRAIT`
    names it.

    Returns:
        ``(600, 512, 3)`` ``uint8`` RGB array (height 600, width 512), a fresh writable copy.

    Example:
        >>> from machlib import default_portrait
        >>> default_portrait().shape
        (600, 512, 3)
    """
    return _default_portrait_cached().copy()


def save_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write a ``uint8`` RGB or RGBA image to a PNG file atomically.

    The PNG is written to a temporary file in the destination's directory and moved into place
    with :func:`os.replace`, so readers never see a half-written file. The parent directory must
    exist.

    Args:
        path: destination file (conventionally ending in ``.png``).
        image: ``(H, W, 3)`` or ``(H, W, 4)`` ``uint8`` array, row 0 at the top.

    Returns:
        The destination as a :class:`pathlib.Path`.

    Raises:
        TypeError: ``image`` is not a ``uint8`` numpy array.
        ValueError: ``image`` is not ``(H, W, 3)`` or ``(H, W, 4)`` with ``H, W >= 1``.

    Example:
        >>> import numpy as np, tempfile, os
        >>> from machlib import load_image, save_png
        >>> d = tempfile.mkdtemp()
        >>> p = save_png(os.path.join(d, "red.png"), np.full((32, 32, 3), [255, 0, 0], np.uint8))
        >>> load_image(p)[0, 0].tolist()
        [255, 0, 0]
    """
    from PIL import Image

    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        got = image.dtype if isinstance(image, np.ndarray) else type(image).__name__
        raise TypeError(f"save_png: image must be a uint8 numpy array, got {got}")
    if image.ndim != 3 or image.shape[-1] not in (3, 4) or min(image.shape[:2]) < 1:
        raise ValueError(f"save_png: image must have shape (H, W, 3) or (H, W, 4), got {image.shape}")
    dest = Path(os.fspath(path))
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.tmp")
    pil = Image.fromarray(np.ascontiguousarray(image))  # (H, W, 3) → RGB, (H, W, 4) → RGBA
    # O_EXCL + mode 0o666 so the final file gets the usual umask-derived permissions.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            # zlib level 4, not PIL's default 6: a 1024² albedo encodes in 0.12 s instead of
            # 0.33 s of CPU for a file 2 % larger (level 1: 0.08 s, 18 % larger)
            pil.save(f, format="PNG", compress_level=4)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return dest
