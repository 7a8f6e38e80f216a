"""An issue's picture files: what kind of picture each is, how big, how wide; read from the file itself.

Mail clients show PNG, JPEG, GIF and WebP; a file named `.png` that holds something else (an HEIC
from a phone, an SVG) shows as a broken picture. So the kind is read from the file's first bytes,
never from its name, and the width from the header of that kind (a few bytes into the file, no
image library needed). The loader refuses a file of another kind; `newsletter check` warns about
a file that is heavy or the wrong width for where it is shown; `render` and the archive copy the
file under the address the email links to.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urlsplit

if TYPE_CHECKING:  # the field rules import this module, and the model imports the rules
    from newsletter.content.model import Image, Issue

KINDS = "PNG, JPEG, GIF or WebP"
CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WebP": "image/webp"}
# A web server (the archive's static files on any host) sends a file's type by its name's ending.
EXTENSIONS = {"PNG": (".png",), "JPEG": (".jpg", ".jpeg"), "GIF": (".gif",), "WebP": (".webp",)}
# Extensions of pictures that many mail clients do not show, for a remote address we cannot open.
UNSHOWN_EXTENSIONS = {
    ".svg": "SVG",
    ".heic": "HEIC",
    ".heif": "HEIF",
    ".avif": "AVIF",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}
# Signatures of kinds people try that mail clients do not show, to name them in the message.
_OTHER_KINDS = (
    (b"<svg", "an SVG drawing"),
    (b"<?xml", "an SVG drawing"),
    (b"%PDF", "a PDF"),
    (b"BM", "a BMP"),
    (b"II*\x00", "a TIFF"),
    (b"MM\x00*", "a TIFF"),
)


@dataclass(frozen=True)
class PictureFile:
    """One picture file as read from disk: its kind (None when not one mail clients show), bytes,
    and pixel size when its header gives them."""

    path: Path
    kind: str | None
    size: int
    width: int | None = None
    height: int | None = None
    other: str | None = None  # what the file is instead, when that can be told ("an SVG drawing")

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES.get(self.kind or "", "application/octet-stream")

    @property
    def misnamed(self) -> bool:
        """True when the name's ending says another kind than the file holds (a JPEG named `.png`)."""
        return self.kind is not None and not self.path.name.lower().endswith(EXTENSIONS[self.kind])


def inspect(path: Path) -> PictureFile:
    """Read a picture's kind and pixel size from its first bytes; raises OSError if it cannot be read."""
    with path.open("rb") as file:
        head = file.read(32)
        size = path.stat().st_size
        kind, dimensions = _kind_and_size(head, file)
    if kind is None:
        other = next((name for signature, name in _OTHER_KINDS if head.lstrip().startswith(signature)), None)
        if other is None and head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
            other = "an HEIC or AVIF photo"
        return PictureFile(path, None, size, other=other)
    width, height = dimensions or (None, None)
    return PictureFile(path, kind, size, width, height)


def pictures(issue: Issue) -> list[tuple[int, Image]]:
    """Every picture of `issue` (a section's `image:`), with the index of its section."""
    return [
        (index, image)
        for index, section in enumerate(issue.sections)
        if (image := getattr(section, "image", None)) is not None
    ]


def local_pictures(issue: Issue) -> list[Image]:
    """The pictures of `issue` that are files in its folder, each once: what is published with it."""
    found = {image.src: image for _index, image in pictures(issue) if is_local(image.src)}
    return list(found.values())


def is_local(source: str) -> bool:
    """True for a file name (`photo.png`, `images/map.jpg`), False for an address."""
    return "://" not in source and not source.startswith("//")


def unshown_kind(address: str) -> str | None:
    """The kind a remote picture's name says it is, when mail clients commonly do not show that kind."""
    try:
        path = urlsplit(address).path.lower()
    except ValueError:
        return None
    return next((kind for extension, kind in UNSHOWN_EXTENSIONS.items() if path.endswith(extension)), None)


def _kind_and_size(head: bytes, file: BinaryIO) -> tuple[str | None, tuple[int, int] | None]:
    """The kind named by the signature, and (width, height) from that kind's header when present."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        # The first chunk is IHDR: width and height, big-endian, right after its name.
        return "PNG", struct.unpack(">II", head[16:24]) if head[12:16] == b"IHDR" else None
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF", struct.unpack("<HH", head[6:10]) if len(head) >= 10 else None
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WebP", _webp_size(head)
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG", _jpeg_size(file)
    return None, None


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30:  # lossy: 14-bit sizes after the frame's start code
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25:  # lossless: two 14-bit sizes, minus one, packed
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) >= 30:  # extended: two 24-bit sizes, minus one
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    return None


# JPEG markers that start a frame and carry its size (SOF0-15, except DHT, JPG and DAC).
_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(file: BinaryIO) -> tuple[int, int] | None:
    """Walk the JPEG's segments (EXIF and colour profiles come first) to the frame header."""
    file.seek(2)
    while True:
        marker = file.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        while marker[1] == 0xFF:  # fill bytes before a marker
            next_byte = file.read(1)
            if not next_byte:
                return None
            marker = b"\xff" + next_byte
        code = marker[1]
        if code in (0xD8, 0x01) or 0xD0 <= code <= 0xD7:  # markers without a length
            continue
        length_bytes = file.read(2)
        if len(length_bytes) < 2 or code == 0xD9:
            return None
        length = struct.unpack(">H", length_bytes)[0]
        if code in _FRAME_MARKERS:
            frame = file.read(5)
            if len(frame) < 5:
                return None
            height, width = struct.unpack(">HH", frame[1:5])
            return width, height
        file.seek(length - 2, 1)
