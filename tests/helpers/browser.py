"""A real Chromium (Debian's package) driven by Playwright, and screenshots kept with the test run."""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from pathlib import Path

from helpers.servers import unavailable

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
#: Where screenshots go: $MACHA_TEST_ARTIFACTS/screenshots, or test-artifacts/screenshots in the checkout.
ARTIFACTS = Path(os.environ.get("MACHA_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "screenshots"


def chromium_path() -> str:
    path = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not path:
        unavailable("Chromium (Debian package chromium)")
    return path


def _png_rows(data: bytes) -> tuple[int, int, int, bytes]:
    """Width, height, bytes per pixel and the raw (filtered) scanlines of a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            bpp = {2: 3, 6: 4, 0: 1, 4: 2}[colour] * depth // 8
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, bpp, zlib.decompress(idat)


def distinct_colours(data: bytes, sample: int = 4000) -> int:
    """How many different pixel values a sample of the screenshot has: a blank page has one or two."""
    width, height, bpp, raw = _png_rows(data)
    stride = width * bpp + 1
    seen: set[bytes] = set()
    prev = bytearray(stride - 1)
    step = max(1, height * width // sample)
    n = 0
    for y in range(height):
        line = bytearray(raw[y * stride + 1:(y + 1) * stride])
        f = raw[y * stride]
        for i in range(len(line)):  # undo the PNG filters, row by row
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, width):
            if n % step == 0:
                seen.add(bytes(line[x * bpp:(x + 1) * bpp]))
            n += 1
        prev = line
    return len(seen)


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot and check it shows something (not one flat colour)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    data = page.screenshot(path=str(path), full_page=True)
    assert distinct_colours(data) > 8, f"the screenshot {path} is blank"
    return path
