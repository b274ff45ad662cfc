"""Image checking and re-encoding: decodable, bounded in size, upright, RGB when re-encoded, never upscaled."""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from pipeline import items as R

PASS_THROUGH_FORMATS: dict[str, str] = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
DEFAULT_MAX_PIXELS = 50_000_000  # decompression-bomb guard, checked before decoding
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
JPEG_QUALITY = 90
EXIF_ORIENTATION = 0x0112
TURNS: frozenset[int] = frozenset(range(2, 9))  # EXIF orientations that need a flip or rotation
SWAPS_SIDES: frozenset[int] = frozenset(range(5, 9))  # those among them that exchange width and height


class ImageRejected(R.Rejected):
    """An image that cannot be used; `reason` is one of the reject reasons in `pipeline.items`."""


@dataclass(frozen=True)
class ImagePolicy:
    """How images are checked and re-encoded (part of the output's config)."""

    image_size: int = 256  # shorter side after downscaling; 0 = pass the bytes through untouched
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES
    quality: int = JPEG_QUALITY


def _to_rgb(image):  # PIL.Image -> PIL.Image
    """RGB copy; transparency is composited onto white, CMYK / grayscale / palette converted."""
    from PIL import Image

    if image.mode == "RGB":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def prepare_image(data: bytes, policy: ImagePolicy) -> tuple[bytes, str]:
    """(bytes, extension) to store for one image, or raise ImageRejected with a reason.

    The image is always fully decoded once (this catches truncated files). With image_size 0 the
    original bytes are kept when the format is JPEG/PNG/WebP (other formats are re-encoded as JPEG).
    Otherwise a JPEG already in RGB with a shorter side <= image_size is kept as is; anything else is
    converted to RGB, downscaled (never upscaled) to that shorter side and re-encoded as JPEG.
    One rule for EXIF orientation in both modes: an image whose orientation tag asks for a flip or
    rotation is never kept as is; it is turned upright and re-encoded (without the tag), so every
    stored image shows the same way to every reader.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise ImageRejected(R.EMPTY_IMAGE)
    if len(data) > policy.max_bytes:
        raise ImageRejected(R.IMAGE_FILE_TOO_LARGE, f"{len(data)} bytes > {policy.max_bytes}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > policy.max_pixels:
                raise ImageRejected(R.IMAGE_TOO_LARGE, f"{width}x{height} > {policy.max_pixels} pixels")
            if width == 0 or height == 0:
                raise ImageRejected(R.CORRUPT_IMAGE, f"{width}x{height}")
            fmt = image.format or "?"
            orientation = _orientation(image)
            turned = orientation in SWAPS_SIDES
            target = _target_size(*((height, width) if turned else (width, height)), policy.image_size)
            if fmt == "JPEG" and target is not None and image.mode in ("RGB", "L", "CMYK", "YCbCr"):
                # decode at reduced scale (still reads the whole stream); draft sizes are as stored
                image.draft(image.mode, target[::-1] if turned else target)
            image.load()
            if orientation in TURNS:
                image = ImageOps.exif_transpose(image)
    except ImageRejected:
        raise
    except (UnidentifiedImageError, SyntaxError) as err:
        raise ImageRejected(R.NOT_AN_IMAGE, _short(err)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageRejected(R.IMAGE_TOO_LARGE, _short(err)) from None
    except (OSError, ValueError, EOFError, MemoryError) as err:
        raise ImageRejected(R.CORRUPT_IMAGE, _short(err)) from None

    if orientation not in TURNS:
        if policy.image_size == 0 and fmt in PASS_THROUGH_FORMATS:
            return data, PASS_THROUGH_FORMATS[fmt]
        if policy.image_size > 0 and target is None and fmt == "JPEG" and image.mode == "RGB":
            return data, "jpg"
    try:
        rgb = _to_rgb(image)
        if target is not None and rgb.size != target:
            rgb = rgb.resize(target, Image.Resampling.BICUBIC, reducing_gap=None)
        out = io.BytesIO()
        rgb.save(out, format="JPEG", quality=policy.quality)
    except (OSError, ValueError) as err:
        raise ImageRejected(R.CORRUPT_IMAGE, _short(err)) from None
    return out.getvalue(), "jpg"


def _orientation(image) -> int:  # PIL.Image -> EXIF orientation 1..8
    """The image's EXIF orientation; 1 (as stored) when absent, invalid or unreadable (readers ignore it too)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pillow warns "Corrupt EXIF data" and reads none
        value = image.getexif().get(EXIF_ORIENTATION, 1)
    return value if value in TURNS else 1


def _target_size(width: int, height: int, image_size: int) -> tuple[int, int] | None:
    """(w, h) with the shorter side == image_size, or None when no downscaling is needed."""
    short = min(width, height)
    if image_size <= 0 or short <= image_size:
        return None
    scale = image_size / short
    return (max(1, round(width * scale)), max(1, round(height * scale)))


def _short(err: BaseException) -> str:
    """A one-line, bounded description of an exception."""
    return f"{type(err).__name__}: {err}".splitlines()[0][:200]
