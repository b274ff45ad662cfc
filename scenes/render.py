"""Draw a scene with PIL and encode it as a JPEG with fixed settings (same scene → same bytes)."""
from __future__ import annotations

import io
import math

from PIL import Image, ImageDraw

from scenes.world import CANVAS, SIZE_PX, Obj, Scene

SUPERSAMPLE = 4
"""Draw at this many times the final size, then box-downsample: smooth edges, still fast."""

JPEG_QUALITY = 92
"""Fixed JPEG quality; chroma is not subsampled so small colour shapes keep crisp edges."""


def _polygon_star(cx: float, cy: float, outer: float, points: int = 5) -> list[tuple[float, float]]:
    inner = outer * 0.45
    out = []
    for i in range(points * 2):
        radius = outer if i % 2 == 0 else inner
        angle = -math.pi / 2 + i * math.pi / points
        out.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return out


def _draw(draw: ImageDraw.ImageDraw, obj: Obj, scale: int) -> None:
    cx, cy = obj.x * scale, obj.y * scale
    half = SIZE_PX[obj.size] * scale / 2
    if obj.shape == "circle":
        draw.ellipse((cx - half, cy - half, cx + half, cy + half), fill=obj.rgb)
    elif obj.shape == "square":
        side = half * 0.88
        draw.rectangle((cx - side, cy - side, cx + side, cy + side), fill=obj.rgb)
    elif obj.shape == "triangle":
        draw.polygon([(cx, cy - half), (cx + half, cy + half * 0.8), (cx - half, cy + half * 0.8)], fill=obj.rgb)
    elif obj.shape == "star":
        draw.polygon(_polygon_star(cx, cy + half * 0.08, half * 1.08), fill=obj.rgb)
    else:
        raise ValueError(f"unknown shape {obj.shape!r}")


def render(scene: Scene) -> Image.Image:
    """The scene as an RGB image of `CANVAS`×`CANVAS` pixels."""
    big = CANVAS * SUPERSAMPLE
    image = Image.new("RGB", (big, big), (scene.background,) * 3)
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        _draw(draw, obj, SUPERSAMPLE)
    return image.reduce(SUPERSAMPLE)


def render_jpeg(scene: Scene) -> bytes:
    """JPEG bytes of the rendered scene (fixed quality, no subsampling, no metadata)."""
    buffer = io.BytesIO()
    render(scene).save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0, optimize=False)
    return buffer.getvalue()
