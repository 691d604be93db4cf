"""``folder:PATH``: an image-folder tree ``PATH/<class>/<image>``, read with Pillow.

Images larger than ``max_pixels`` (default 16 megapixels) are refused from their header, before
any pixel is decoded: a decompression bomb is an error naming the file, not a warning.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from workbench.errors import ConfigError
from workbench.tasks.registry import Task, register_task, require_dir
from workbench.tasks.splits import build_task

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
MAX_PIXELS = 4096 * 4096


def _size(size, where: str) -> tuple[int, int] | None:
    if size is None:
        return None
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if len(hw) != 2 or any(int(s) < 1 for s in hw):
        raise ConfigError(f"{where}: expected size as N or (H, W) with positive ints, found {size!r}")
    return int(hw[0]), int(hw[1])


def _read(file: Path, hw: tuple[int, int] | None, max_pixels: int):
    """``(uint8 [H, W, 3], was grayscale, (H, W))`` of one image, resized to ``hw`` if given."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as img:  # reads the header only
                if img.width * img.height > max_pixels:
                    raise ConfigError(f"expected images of at most {max_pixels:,} pixels "
                                      f"(max_pixels) at {file}, found {img.width}x{img.height}")
                gray = img.mode in ("1", "L", "LA", "I", "I;16", "F")
                rgb = img.convert("RGB")
                hw = hw or (rgb.height, rgb.width)
                if (rgb.height, rgb.width) != hw:
                    rgb = rgb.resize((hw[1], hw[0]), Image.Resampling.BILINEAR)
                return np.asarray(rgb, dtype=np.uint8), gray, hw
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ConfigError(f"expected images of at most {max_pixels:,} pixels at {file}, found "
                          f"a decompression bomb ({exc})") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise ConfigError(f"expected an image file at {file}, found unreadable data "
                          f"({type(exc).__name__})") from None


def load_folder(*, path: Path, seed: int, size=None, channels: int | None = None,
                max_pixels: int = MAX_PIXELS, **options) -> Task:
    """``folder:PATH``: images in ``PATH/<class>/``, class names sorted, loaded with Pillow.

    Every image is resized (bilinear) to ``size`` (an int or ``(H, W)``; default: the size of the
    first image). ``channels`` is 1 or 3; by default 1 when every image is grayscale, else 3 (RGB).
    """
    require_dir(path, "an image folder")
    if channels not in (None, 1, 3):
        raise ConfigError(f"{path}: expected channels 1 or 3, found {channels!r}")
    hw = _size(size, str(path))
    classes = sorted(d.name for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(classes) < 2:
        raise ConfigError(f"expected at least 2 class folders {path}/<class>/<image>, found "
                          f"{len(classes)}")
    images, labels, gray = [], [], True
    for label, cls in enumerate(classes):
        files = sorted(f for f in (path / cls).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ConfigError(f"expected images ({', '.join(IMAGE_SUFFIXES)}) in {path / cls}, "
                              f"found none")
        for f in files:
            pixels, was_gray, hw = _read(f, hw, int(max_pixels))
            images.append(pixels)
            gray &= was_gray
            labels.append(label)
    x = np.stack(images).transpose(0, 3, 1, 2)  # [N, H, W, 3] -> [N, 3, H, W]
    if (channels or (1 if gray else 3)) == 1:
        x = x[:, :1] if gray else np.round(_luma(x))[:, None].astype(np.uint8)
    return build_task(f"folder:{path}", x, np.array(labels), seed=seed,
                      class_names=tuple(classes), **options)


def _luma(x: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of ``[N, 3, H, W]`` RGB images -> ``[N, H, W]``."""
    return 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]


register_task("folder", load_folder, needs_path=True,
              description="image folder PATH/<class>/<image>.png|jpg; options size, channels")
