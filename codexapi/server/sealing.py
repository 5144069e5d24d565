"""``encrypted_content`` for reasoning items: opaque to clients, verifiable by the server.

The real API returns reasoning as ciphertext when a request with ``store: false`` asks for
``include: ["reasoning.encrypted_content"]``; the client sends the item back in a later input
and the API decrypts it there, answering a 400 ``invalid_encrypted_content`` when it cannot.
Here a token is ``base64url(version | nonce | text XOR keystream | tag)``: a BLAKE2b keystream
and an HMAC-SHA256 tag, both keyed by a secret the server keeps (random per model), so a
client can neither read nor forge one, and any change to it fails verification. Standard
library only; this is a test double's integrity check, not a cipher to protect data with.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

_VERSION = b"\x01"
_NONCE = 12
_TAG = 16


class ReasoningSeal:
    """Seals reasoning text into an opaque token and opens the tokens it sealed."""

    def __init__(self, secret: bytes | None = None) -> None:
        key = secret if secret is not None else os.urandom(32)
        self._stream_key = hashlib.blake2b(key, person=b"codexapi-stream").digest()
        self._tag_key = hashlib.blake2b(key, person=b"codexapi-tag").digest()

    def __repr__(self) -> str:
        return "ReasoningSeal(<secret>)"

    def _keystream(self, nonce: bytes, size: int) -> bytes:
        blocks = []
        for counter in range((size + 63) // 64):
            blocks.append(hashlib.blake2b(nonce + counter.to_bytes(8, "big"),
                                          key=self._stream_key).digest())
        return b"".join(blocks)[:size]

    def _tag(self, data: bytes) -> bytes:
        return hmac.new(self._tag_key, data, hashlib.sha256).digest()[:_TAG]

    def seal(self, text: str) -> str:
        nonce = os.urandom(_NONCE)
        plain = text.encode("utf-8")
        cipher = bytes(a ^ b for a, b in zip(plain, self._keystream(nonce, len(plain)),
                                             strict=True))
        body = _VERSION + nonce + cipher
        return base64.urlsafe_b64encode(body + self._tag(body)).decode("ascii")

    def open(self, token: str) -> str | None:
        """The text sealed in ``token``, or None when this seal did not issue it (altered,
        truncated, or from another server)."""
        try:
            raw = base64.urlsafe_b64decode(token.encode("ascii"))
        except (binascii.Error, UnicodeError, ValueError):
            return None
        if len(raw) < 1 + _NONCE + _TAG or raw[:1] != _VERSION:
            return None
        body, tag = raw[:-_TAG], raw[-_TAG:]
        if not hmac.compare_digest(tag, self._tag(body)):
            return None
        nonce, cipher = body[1:1 + _NONCE], body[1 + _NONCE:]
        plain = bytes(a ^ b for a, b in zip(cipher, self._keystream(nonce, len(cipher)),
                                            strict=True))
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError:  # pragma: no cover - the tag already vouched for it
            return None
