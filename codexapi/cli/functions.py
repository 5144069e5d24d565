"""``codexapi chat --functions FILE.py``: the public functions of a Python file, as tools."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from pathlib import Path

from ..errors import ConfigError
from ..tools import Tool


def load_functions(path: str) -> list[Tool]:
    """Each function ``FILE.py`` defines whose name does not start with ``_``, as a
    :class:`~codexapi.Tool` (in the file's order). A file that cannot be read or run, or
    that defines no such function, is a :class:`ConfigError` naming it."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--functions {path}: no such file")
    # A module of its own in sys.modules, so annotations naming its classes resolve.
    name = "codexapi_functions_" + hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ConfigError(f"--functions {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        where = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) else ""
        raise ConfigError(f"--functions {path}: {type(exc).__name__}{where}: {exc}") from None
    functions = [obj for key, obj in vars(module).items()
                 if inspect.isfunction(obj) and obj.__module__ == name
                 and not key.startswith("_")]
    if not functions:
        raise ConfigError(f"--functions {path} defines no public function (one whose name "
                          "does not start with _)")
    tools = []
    for function in functions:
        try:
            tools.append(Tool.from_function(function))
        except ConfigError as exc:
            raise ConfigError(f"--functions {path}: {exc}") from None
    return tools


__all__ = ["load_functions"]
