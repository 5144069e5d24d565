"""The embedded server answers a model call without a model as OpenAI does: 400 + JSON error."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from codexapi.server import EmbeddedServer


@pytest.mark.parametrize("path", ["responses", "chat/completions", "responses/compact"])
@pytest.mark.parametrize("body", [b'{"input": "hi"}', b'["not", "an", "object"]'])
def test_model_calls_without_a_model_are_400(server: EmbeddedServer, path: str, body: bytes
                                             ) -> None:
    req = urllib.request.Request(f"{server.base_url}/{path}", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert info.value.code == 400
    error = json.loads(info.value.read())["error"]
    assert error["code"] == "invalid_body" and "string `model`" in error["message"]
