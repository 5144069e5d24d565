"""The ``codexapi`` command: ``chat`` (offline against the embedded server unless a base URL
is configured) and ``serve``.

Errors are printed in one line on stderr; the exit code tells their kind (see EXIT_CODES).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from . import __version__
from .client import Client
from .errors import (
    ApiError,
    AuthError,
    CodexApiError,
    ConfigError,
    ContextWindowExceeded,
    PluginError,
    StreamError,
    TransportError,
)
from .models import Provider, ResponsesRequest, WireApi

DEFAULT_MODEL = "gpt-5"

#: Exit code per error kind (first match wins); documented in the README.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (ConfigError, 2),
    (PluginError, 2),
    (AuthError, 3),
    (ApiError, 4),
    (TransportError, 5),
    (ContextWindowExceeded, 6),
    (StreamError, 7),
    (CodexApiError, 1),
)

Command = Callable[[argparse.Namespace, ExitStack], int]
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Command, str]] = {}


def command(name: str, help: str) -> Callable[[Callable[[argparse.ArgumentParser], None]],
                                               Callable[[Command], Command]]:
    """Register a sub-command: ``@command(name, help)(configure)(run)``."""

    def with_parser(configure: Callable[[argparse.ArgumentParser], None]
                    ) -> Callable[[Command], Command]:
        def with_run(run: Command) -> Command:
            COMMANDS[name] = (configure, run, help)
            return run

        return with_run

    return with_parser


def add_connection_args(p: argparse.ArgumentParser) -> None:
    """Options shared by every command that talks to a server."""
    p.add_argument("--base-url", help="server base URL (default: $OPENAI_BASE_URL, else an "
                   "embedded offline server)")
    p.add_argument("--wire", choices=[w.value for w in WireApi], default=None,
                   help="wire API (default: responses)")
    p.add_argument("--model", "-m", default=os.environ.get("CODEXAPI_MODEL", DEFAULT_MODEL))
    p.add_argument("--no-plugins", action="store_true",
                   help="do not load third-party plugins (entry points)")
    p.add_argument("--provider", metavar="ID", help="a provider of Codex's config.toml "
                   "([model_providers.ID], or a built-in such as openai)")
    p.add_argument("--config", metavar="FILE", help="the Codex config file (default: "
                   "$CODEX_HOME/config.toml, i.e. ~/.codex/config.toml)")


def make_client(args: argparse.Namespace, stack: ExitStack) -> Client:
    """A Client for the command line: a Codex config provider (``--provider``), an explicit
    base URL, env, or an embedded server."""
    wire = WireApi(args.wire) if args.wire else None
    provider_id = args.provider
    if provider_id:
        import attrs

        provider = Provider.from_codex_config(provider_id, args.config)
        overrides: dict[str, Any] = {}
        if args.base_url:
            overrides["base_url"] = args.base_url
        if wire is not None:
            overrides["wire"] = wire
        provider = attrs.evolve(provider, **overrides)
    else:
        base_url = args.base_url or os.environ.get("OPENAI_BASE_URL")
        if base_url:
            provider = Provider(name="openai", base_url=base_url,
                                wire=wire or WireApi.RESPONSES)
        else:
            from .server import EmbeddedServer

            server = stack.enter_context(EmbeddedServer())
            provider = Provider(name="embedded", base_url=server.base_url,
                                wire=wire or WireApi.RESPONSES)
    client = Client(provider, load_entrypoints=not args.no_plugins)
    stack.callback(client.close)
    return client


def _chat_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("prompt", nargs="?", help="the message to send ('-' reads stdin); without "
                   "one, an interactive chat on a terminal, else stdin")
    p.add_argument("-s", "--system", "--instructions", dest="instructions", default=None,
                   help="system instructions (default: 'You are a helpful assistant.', or "
                   "the resumed conversation's)")
    p.add_argument("-c", "--continue", dest="resume", action="store_true",
                   help="continue the last conversation (saved in $CODEXAPI_STATE_DIR, else "
                   "$XDG_DATA_HOME/codexapi or ~/.local/share/codexapi)")
    p.add_argument("-f", "--file", dest="files", action="append", default=[], metavar="FILE",
                   help="attach a file to the message: an image, a PDF, or text "
                   "(repeatable)")
    p.add_argument("--schema", metavar="FILE",
                   help="ask for JSON output following the JSON schema in FILE")
    p.add_argument("--usage", action="store_true", help="show token counts on stderr")
    p.add_argument("--conversation-id", help="sent as conversation_id/session_id headers")
    p.add_argument("--reasoning-effort", choices=REASONING_EFFORTS,
                   help="ask for reasoning at this effort (summaries shown on stderr)")
    p.add_argument("--verbosity", choices=("low", "medium", "high"), help="text verbosity")
    p.add_argument("--no-reasoning", action="store_true",
                   help="do not show reasoning summaries")
    p.add_argument("--json", action="store_true",
                   help="write every event as one JSON object per line (NDJSON) to stdout")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="connect/response timeout for this call (the stream idle timeout "
                   "still applies between events)")
    add_connection_args(p)


REASONING_EFFORTS = ("minimal", "low", "medium", "high", "xhigh")


@command("chat", "send a message and stream the answer to stdout, or chat interactively")(
    _chat_args)
def cmd_chat(args: argparse.Namespace, stack: ExitStack) -> int:
    from .repl import TurnOptions, start

    interactive = args.prompt is None and sys.stdin.isatty()
    prompt = None
    if not interactive:
        piped = args.prompt is None or args.prompt == "-"
        prompt = sys.stdin.read() if piped else args.prompt
        if not prompt.strip() and not args.files:
            raise ConfigError("nothing to send: the prompt is empty" + (
                " (stdin was empty)" if piped else ""))
    options = TurnOptions(
        reasoning_effort=args.reasoning_effort, verbosity=args.verbosity, schema=args.schema,
        files=tuple(args.files), json_lines=args.json, show_reasoning=not args.no_reasoning,
        usage=args.usage, conversation_id=args.conversation_id, timeout=args.timeout)
    return start(make_client(args, stack), prompt=prompt, resume=args.resume,
                 model=args.model, instructions=args.instructions, options=options,
                 interactive=interactive)


def _models_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--client-version", default=__version__,
                   help="sent as ?client_version= (Codex sends its own version; default: "
                        "this codexapi's)")
    p.add_argument("--json", action="store_true",
                   help="print the ETag and each model's full JSON")
    add_connection_args(p)


@command("models", "list the models the server offers")(_models_args)
def cmd_models(args: argparse.Namespace, stack: ExitStack) -> int:
    import json

    listing = make_client(args, stack).list_models(args.client_version)
    if args.json:
        print(json.dumps({"etag": listing.etag, "models": [dict(m.raw) for m in listing.models]},
                         indent=2))
        return 0
    for model in listing.models:
        name = model.display_name
        print(f"{model.slug}\t{name}" if isinstance(name, str) and name else model.slug)
    return 0


def _compact_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("prompt", nargs="?", help="a user message to compact (with --input: "
                   "appended after the items)")
    p.add_argument("--input", metavar="FILE", help="a JSON file of input items (an array, or "
                   "an object with an \"input\" array), '-' for stdin")
    p.add_argument("--instructions", default="You are a helpful assistant.")
    add_connection_args(p)


def _read_items(source: str) -> list[Any]:
    import json

    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        data = json.loads(text)
    except OSError as exc:
        raise ConfigError(f"cannot read --input {source}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"--input {source} is not JSON: {exc}") from None
    if isinstance(data, dict) and "input" in data:
        data = data["input"]
    if not isinstance(data, list) or not all(isinstance(i, dict) for i in data):
        raise ConfigError(f"--input {source} must hold a JSON array of item objects")
    return data


@command("compact", "compact a conversation history (POST responses/compact) and print the "
         "output items as JSON")(_compact_args)
def cmd_compact(args: argparse.Namespace, stack: ExitStack) -> int:
    import json

    items: list[Any] = _read_items(args.input) if args.input else []
    if args.prompt:
        items.append({"type": "message", "role": "user",
                      "content": [{"type": "input_text", "text": args.prompt}]})
    if not items:
        raise ConfigError("nothing to compact: give a PROMPT or --input FILE")
    client = make_client(args, stack)
    request = ResponsesRequest(model=args.model, instructions=args.instructions, input=items)
    output = client.compact(request)
    print(json.dumps([item.to_dict() for item in output], indent=2))
    return 0


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--verbose", "-v", action="store_true", help="log each request")
    p.add_argument("--cassette", metavar="PATH",
                   help="answer from this recorded cassette (vcrpy, pydantic-ai or Ruby VCR "
                        "YAML) instead of the scripted model")
    p.add_argument("--ignore-field", action="append", default=[], metavar="NAME",
                   help="with --cassette: a JSON body field left out of request matching "
                        "(repeatable)")
    from .server.faults import describe

    p.add_argument("--fault", action="append", default=[], metavar="PLAN",
                   help="inject faults into every request (repeatable); " + describe()
                   + "; requests may also send their own plan in an x-codexapi-fault header")


@command("serve", "run the embedded OpenAI-compatible server")(_serve_args)
def cmd_serve(args: argparse.Namespace, stack: ExitStack) -> int:
    from .server import EmbeddedServer

    player = None
    if args.cassette:
        from .testing.player import CassettePlayer

        player = CassettePlayer.from_file(args.cassette, args.ignore_field)
    server = EmbeddedServer(args.host, args.port, verbose=args.verbose,
                            faults=args.fault or None)
    server.httpd.responder = player
    if player is not None:
        from .testing.player import describe

        print(f"serving {describe(player)} from {args.cassette}", flush=True)
    print(f"codexapi embedded server on {server.base_url} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _plugins_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--no-plugins", action="store_true",
                   help="do not load third-party plugins (entry points)")


@command("plugins", "list loaded plugins, the hooks each implements, the wires they register "
         "and load failures")(
    _plugins_args)
def cmd_plugins(args: argparse.Namespace, stack: ExitStack) -> int:
    import json

    from .plugins import describe, describe_wires, make_plugin_manager

    pm = make_plugin_manager(load_entrypoints=not args.no_plugins)
    plugins = describe(pm)
    wires = describe_wires(pm)
    failures = [{"name": f.name, "distribution": f.dist, "error": f.error}
                for f in pm.load_failures]
    if args.json:
        print(json.dumps({"plugins": plugins, "wires": wires, "failures": failures}, indent=2))
        return 0
    for info in plugins:
        origin = {"builtin": "built-in", "entrypoint": "entry point"}.get(info["origin"],
                                                                         info["origin"])
        if info["distribution"]:
            origin += f" from {info['distribution']}"
        print(f"{info['name']} ({origin}): {', '.join(info['hooks']) or '(no hooks)'}")
    for wire in wires:
        print(f"wire {wire['name']!r} from {wire['plugin']} ({wire['class']})")
    for failure in failures:
        print(f"FAILED {failure['name']} (from {failure['distribution'] or 'unknown'}): "
              f"{failure['error']}")
    return 0


def _batch_args(p: argparse.ArgumentParser) -> None:
    from .batch.cli import configure

    configure(p)


@command("batch", "run a JSONL file of requests: resumable, rate-limit aware, on threads or "
         "a Dask cluster (docs/batch.md)")(_batch_args)
def cmd_batch(args: argparse.Namespace, stack: ExitStack) -> int:
    from .batch.cli import main as batch_main

    return batch_main(args, stack)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codexapi", description=__doc__)
    parser.add_argument("--version", action="version", version=f"codexapi {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (configure, run, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        configure(p)
        p.set_defaults(run=run)
    return parser


def exit_code(exc: BaseException) -> int:
    for kind, code in EXIT_CODES:
        if isinstance(exc, kind):
            return code
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    args: Any = build_parser().parse_args(argv)
    with ExitStack() as stack:
        try:
            return int(args.run(args, stack))
        except CodexApiError as exc:
            sys.stdout.flush()
            print(f"codexapi: error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return exit_code(exc)
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:
            # The reader went away (`codexapi models --json | head`): stop quietly, as
            # shell tools do, and keep the interpreter from complaining at exit.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 141


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
