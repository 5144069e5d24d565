"""Files as input content parts: an image, a PDF or text, typed by what the bytes are.

An :class:`Attachment` is the Responses content part itself (a dict), so it goes wherever a
part goes: in a :class:`~codexapi.Message`'s ``content`` list, on every wire, in a saved
conversation. ``codexapi chat -f FILE`` builds its parts with it.
"""

from __future__ import annotations

import base64
import mimetypes
import os
from pathlib import Path
from typing import Any

from .errors import ConfigError

#: The largest file attached (the API's own limit for inline files is of this order).
MAX_ATTACHMENT = 20 * 2**20
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


class Attachment(dict[str, Any]):
    """An input content part made from a file: ``input_image`` (PNG, JPEG, GIF, WebP, as a
    data URL), ``input_file`` (a PDF, as a data URL) or ``input_text`` (UTF-8 text, headed by
    its file name). What the bytes are decides, not the name: a screenshot saved without an
    extension is an image, and text named ``.png`` is refused. A dict, so it is sent as is."""

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], *, detail: str = "auto") -> Attachment:
        """The part for the file at ``path`` (at most :data:`MAX_ATTACHMENT` bytes);
        ``detail`` is an image's ``detail`` (``auto``, ``low``, ``high``). A missing,
        unreadable, too large or unsupported file is a :class:`ConfigError` naming it."""
        file = Path(path)
        try:
            size = file.stat().st_size
            if size > MAX_ATTACHMENT:
                raise ConfigError(f"{file}: {size / 2**20:.1f} MiB is more than the "
                                  f"{MAX_ATTACHMENT // 2**20} MiB a file may have")
            data = file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{file}: {exc.strerror or exc}") from None
        return cls.from_bytes(data, file.name, detail=detail, where=str(file))

    @classmethod
    def from_bytes(cls, data: bytes, filename: str | None = None, *, detail: str = "auto",
                   where: str | None = None) -> Attachment:
        """The part for ``data``; ``filename`` names a PDF or heads a text (and a name that
        says image or PDF while the bytes are not is refused). ``where`` names the data in
        errors (default: the file name)."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ConfigError(f"Attachment.from_bytes takes bytes, got {type(data).__name__}")
        data = bytes(data)
        shown = where or filename or "the attachment"
        if len(data) > MAX_ATTACHMENT:
            raise ConfigError(f"{shown}: {len(data) / 2**20:.1f} MiB is more than the "
                              f"{MAX_ATTACHMENT // 2**20} MiB a file may have")
        mime = sniff(data)
        named = (mimetypes.guess_type(filename)[0] or "") if filename else ""
        if not mime and (named in IMAGE_TYPES or named == "application/pdf"):
            raise ConfigError(f"{shown}: named like {named}, but its content is not "
                              f"{'a PDF' if named == 'application/pdf' else 'an image'}")
        if mime in IMAGE_TYPES:
            return cls(type="input_image", detail=detail, image_url=_data_url(mime, data))
        if mime == "application/pdf":
            return cls(type="input_file", filename=filename or "document.pdf",
                       file_data=_data_url(mime, data))
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{shown}: not UTF-8 text, nor an image (png, jpeg, gif, webp) "
                              "or a PDF") from None
        return cls(type="input_text", text=f"{filename}:\n```\n{text}\n```" if filename
                   else text)

    @property
    def mime_type(self) -> str:
        """``image/png``..., ``application/pdf`` or ``text/plain``."""
        url = self.get("image_url") or self.get("file_data") or ""
        if url.startswith("data:"):
            return str(url[5:].split(";", 1)[0])
        return "text/plain"

    def __repr__(self) -> str:
        # Not the data URL: an image is megabytes of base64.
        size = len(self.get("image_url") or self.get("file_data") or self.get("text") or "")
        return f"Attachment({self.get('type')}, {self.mime_type}, {size} characters)"


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def sniff(data: bytes) -> str:
    """The MIME type of an image or PDF by its signature, else ""."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    if b"%PDF-" in data[:1024]:  # readers accept the header anywhere in the first KiB
        return "application/pdf"
    return ""


__all__ = ["IMAGE_TYPES", "MAX_ATTACHMENT", "Attachment", "sniff"]
