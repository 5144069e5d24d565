"""``import codexapi`` is cheap (issue 28): every public name loads from its module when first
used, urllib3 when a Client builds its default transport; and the names stay the same ones, for
the runtime, type checkers and ``dir()`` alike."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import codexapi

ROOT = Path(__file__).resolve().parents[2]

#: What must not be loaded by ``import codexapi`` alone.
HEAVY = ("urllib3", "http.client", "ssl", "attrs", "cattrs", "pluggy", "orjson",
         "codexapi.events", "codexapi.items", "codexapi.client", "codexapi.http.transport")


def _loaded(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(*sys.modules)"],
                         capture_output=True, text=True, timeout=60, check=True)
    return set(out.stdout.split())


def test_import_codexapi_loads_none_of_the_heavy_modules() -> None:
    loaded = _loaded("import codexapi")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert sorted(m for m in loaded if m.startswith("codexapi")) == ["codexapi",
                                                                     "codexapi._version"]


def test_urllib3_loads_when_a_client_builds_its_transport() -> None:
    names = _loaded("from codexapi import Client, Provider, ResponsesRequest, Message")
    assert "codexapi.client" in names and "urllib3" not in names
    built = _loaded("from codexapi import Client, Provider\n"
                    "Client(Provider(base_url='http://127.0.0.1:9/v1'), load_entrypoints=False)")
    assert {"urllib3", "codexapi.http.urllib3_transport"} <= built


def test_a_client_given_its_own_transport_does_not_load_urllib3() -> None:
    names = _loaded("from codexapi import Client, Provider\n"
                    "class Transport:\n"
                    "    def send(self, request, stream): raise NotImplementedError\n"
                    "    def close(self): pass\n"
                    "Client(Provider(base_url='http://x/v1'), transport=Transport(), "
                    "load_entrypoints=False)")
    assert "codexapi.client" in names and "urllib3" not in names


def _type_checking_imports() -> dict[str, str]:
    """Name -> module of the imports under ``if TYPE_CHECKING:`` in codexapi/__init__.py."""
    tree = ast.parse((ROOT / "codexapi" / "__init__.py").read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If)
                 and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
    found: dict[str, str] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.level == 1
        for alias in node.names:
            found[alias.name] = node.module or alias.name
    return found


def test_runtime_exports_type_checking_imports_and_all_agree() -> None:
    exports = codexapi._EXPORTS
    assert set(codexapi.__all__) == {"__version__", *exports}
    assert _type_checking_imports() == exports
    assert set(codexapi.__all__) <= set(dir(codexapi))


@pytest.mark.parametrize("name", sorted(codexapi._EXPORTS))
def test_every_public_name_is_the_object_its_module_defines(name: str) -> None:
    import importlib

    where = codexapi._EXPORTS[name]
    module = importlib.import_module(f"codexapi.{where}")
    expected = module if where == name else getattr(module, name)
    assert getattr(codexapi, name) is expected


def test_extender_names_are_exported() -> None:
    from codexapi.auth import Auth, FlowAuth
    from codexapi.decoding import StreamDecoder
    from codexapi.http.transport import HttpRequest, HttpResponse, Transport
    from codexapi.wires import Wire

    assert (codexapi.Auth, codexapi.FlowAuth, codexapi.Wire, codexapi.StreamDecoder,
            codexapi.HttpRequest, codexapi.HttpResponse, codexapi.Transport) == (
        Auth, FlowAuth, Wire, StreamDecoder, HttpRequest, HttpResponse, Transport)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Clinet'"):
        codexapi.Clinet  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(ImportError):
        from codexapi import Clinet  # type: ignore[attr-defined]  # noqa: F401
