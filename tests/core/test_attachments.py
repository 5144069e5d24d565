"""``codexapi.Attachment``: files as input content parts, typed by their bytes, sent on every
wire."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from conftest import make_client

from codexapi import Attachment, ConfigError, Message, ResponsesRequest, WireApi
from codexapi.server import EmbeddedServer

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 8
PDF = b"%PDF-1.4\n%%EOF\n"


def test_parts_by_content(tmp_path: Path) -> None:
    shot = tmp_path / "screenshot"  # no extension: still an image
    shot.write_bytes(PNG)
    image = Attachment.from_path(shot)
    assert image == {"type": "input_image", "detail": "auto",
                     "image_url": "data:image/png;base64," + base64.b64encode(PNG).decode()}
    assert image.mime_type == "image/png" and isinstance(image, dict)
    assert "base64" not in repr(image) and repr(image).startswith("Attachment(input_image")
    assert Attachment.from_bytes(PDF, "report.pdf") == {
        "type": "input_file", "filename": "report.pdf",
        "file_data": "data:application/pdf;base64," + base64.b64encode(PDF).decode()}
    assert Attachment.from_bytes(b"hello", "a.txt") == {"type": "input_text",
                                                        "text": "a.txt:\n```\nhello\n```"}
    assert Attachment.from_bytes(b"hello") == {"type": "input_text", "text": "hello"}
    assert Attachment.from_bytes(b"\xff\xd8\xff\xe0", detail="low")["detail"] == "low"


@pytest.mark.parametrize(("data", "name", "message"), [
    (b"\xff\xfe\x00\x01", "blob.bin", "blob.bin: not UTF-8 text, nor an image"),
    (b"text", "fake.png", "named like image/png, but its content is not an image"),
    (b"text", "fake.pdf", "named like application/pdf, but its content is not a PDF"),
])
def test_what_cannot_be_sent_is_a_config_error(data: bytes, name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Attachment.from_bytes(data, name)


def test_missing_and_oversized_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"missing\.txt: No such file"):
        Attachment.from_path(tmp_path / "missing.txt")
    monkeypatch.setattr("codexapi.attachments.MAX_ATTACHMENT", 4)
    big = tmp_path / "big.txt"
    big.write_bytes(b"12345")
    with pytest.raises(ConfigError, match=r"big\.txt: .* MiB is more than"):
        Attachment.from_path(big)


@pytest.mark.parametrize("wire", [WireApi.RESPONSES, WireApi.CHAT])
def test_an_attachment_goes_in_a_message(server: EmbeddedServer, wire: WireApi,
                                         tmp_path: Path) -> None:
    photo = tmp_path / "photo"
    photo.write_bytes(PNG)
    message = Message(role="user", content=[{"type": "input_text", "text": "Describe it"},
                                            Attachment.from_path(photo)])
    with make_client(server, wire) as client:
        assert client.create(ResponsesRequest(model="m", input=[message])).text == \
            "You said: Describe it"
    body = server.requests[-1][3]
    if wire == WireApi.CHAT:
        parts = body["messages"][-1]["content"]
        assert parts[1] == {"type": "image_url", "image_url": {
            "url": "data:image/png;base64," + base64.b64encode(PNG).decode()}}
    else:
        assert body["input"][0]["content"][1]["image_url"].startswith("data:image/png;base64,")
