"""The ``codexapi`` command.

Each sub-command is a ``configure(parser)`` function and a ``run(args, stack) -> int``
function registered with ``@command(name, summary)(configure)``: that is all it takes to add
one (``codexapi --help`` lists it with its summary). A sub-command living in another module is
named in :data:`COMMAND_MODULES`, imported when the parser is built.

Errors are printed in one line on stderr; the exit code tells their kind (see EXIT_CODES).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any, NoReturn

from .. import __version__
from ..errors import (
    ApiError,
    AuthError,
    CodexApiError,
    ConfigError,
    ContextWindowExceeded,
    PluginError,
    StreamError,
    TransportError,
)
from ..hookspecs import hookimpl
from ..models import Provider, ResponsesRequest
from .options import add_connection_args, make_client

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

#: What each exit code means, for ``codexapi --help`` (the README has the same table).
EXIT_MEANINGS: tuple[tuple[int, str], ...] = (
    (0, "success"),
    (1, "any other codexapi error"),
    (2, "configuration or usage: ConfigError (bad base URL, TLS that cannot succeed, config "
        "file, proxy, CA bundle, busy port), PluginError, a bad option"),
    (3, "AuthError: credentials missing or unreadable"),
    (4, "ApiError: the server answered with an error status"),
    (5, "TransportError: connect, proxy or timeout failure; DeadlineExceeded (--deadline)"),
    (6, "ContextWindowExceeded"),
    (7, "StreamError: a malformed, truncated or idle stream"),
    (74, "output could not be written (disk full, I/O error)"),
    (130, "interrupted (Ctrl-C)"),
    (141, "stdout closed by its reader (| head)"),
)

DESCRIPTION = ("A client for the model APIs the Codex CLI speaks (Responses, Chat Completions, "
               "compact, models), with an embedded OpenAI-compatible server. Without a base URL "
               "or an API key, commands answer offline from the embedded scripted model.")

#: Modules that register further sub-commands with @command when imported.
COMMAND_MODULES: tuple[str, ...] = ("codexapi.cli.logs",)

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


def _chat_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("prompt", nargs="?", help="the message to send ('-' reads stdin); without "
                   "one, an interactive chat on a terminal, else stdin")
    p.add_argument("-s", "--system", "--instructions", dest="instructions", default=None,
                   help="system instructions (default: 'You are a helpful assistant.', or "
                   "the resumed conversation's)")
    p.add_argument("-c", "--continue", dest="resume", action="store_true",
                   help="continue the last conversation on its own server, wire, provider "
                   "and model unless an option names another (saved in $CODEXAPI_STATE_DIR, "
                   "else $XDG_DATA_HOME/codexapi or ~/.local/share/codexapi)")
    p.add_argument("--cid", metavar="ID", help="continue the conversation with this id "
                   "('codexapi logs' lists them), where it ran (as -c)")
    p.add_argument("--functions", metavar="FILE.py", action="append", default=[],
                   help="offer the public functions of a Python file as tools and run the "
                   "ones the model calls (repeatable)")
    p.add_argument("--store", action="store_true",
                   help="ask the server to store responses, so each later turn (-c, the "
                   "chat) sends only the new message and previous_response_id; remembered "
                   "by the conversation (the default on Azure)")
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
                   help="write every event as one JSON object per line (NDJSON) to stdout; an "
                        "error is a last {\"type\": \"error\", ...} line")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="connect/response timeout for this call (the stream idle timeout "
                   "still applies between events)")
    add_connection_args(p)
    # -c keeps the conversation's model unless -m names another, as `llm -c` does: the
    # default (None) tells the two apart.
    model = next(a for a in p._actions if a.dest == "model")
    model.help = f"{model.help} (default: {model.default}; with -c, the conversation's)"
    p.set_defaults(default_model=model.default)
    model.default = None


REASONING_EFFORTS = ("minimal", "low", "medium", "high", "xhigh")


class RetryNotice:
    """A plugin that shows each retry in the chat view's spinner (on a terminal)."""

    def __init__(self, show: Callable[[str], None]) -> None:
        self.show = show

    @hookimpl
    def codexapi_on_retry(self, provider: Provider, attempt: int, error: Exception,
                          delay: float) -> None:
        from .terminal import format_retry

        self.show(format_retry(delay, attempt + 1, provider.retry.max_attempts, error))


@command("chat", "send a message and stream the answer to stdout, or chat interactively")(
    _chat_args)
def cmd_chat(args: argparse.Namespace, stack: ExitStack) -> int:
    from .conversation import Conversation
    from .functions import load_functions
    from .options import choose_origin
    from .repl import TurnOptions, resumed_origin, start
    from .terminal import ChatView, Spinner

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
        usage=args.usage, conversation_id=args.conversation_id, timeout=args.timeout,
        deadline=args.deadline)
    if Spinner(sys.stderr).enabled:
        # The spinner shows each retry; a log line would tear the spinner's line apart.
        _STDERR.quiet_retries = True
    conversation = None
    if args.cid:
        conversation = Conversation.load(args.cid)
    elif args.resume:
        conversation = Conversation.last()
    origin = choose_origin(args, resumed=None if conversation is None
                           else resumed_origin(conversation))
    tools = [tool for path in args.functions for tool in load_functions(path)]
    client = make_client(args, stack, plugins=[RetryNotice(ChatView.show_retry)],
                         origin=origin)
    return start(client, prompt=prompt, conversation=conversation,
                 model=args.model or None, default_model=args.default_model,
                 instructions=args.instructions, options=options,
                 interactive=interactive, store=args.store, origin=origin, tools=tools)


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

    listing = make_client(args, stack).list_models(args.client_version,
                                                   deadline=args.deadline)
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
    p.add_argument("--instructions", default="You are a helpful assistant.",
                   help="system instructions sent with the items")
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
    output = client.compact(request, deadline=args.deadline)
    print(json.dumps([item.to_dict() for item in output], indent=2))
    return 0


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (an address "
                   "other than loopback makes the server reachable from other machines)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (0 picks a free "
                   "one)")
    p.add_argument("--api-key", action="append", default=[], metavar="KEY",
                   help="require this key as a bearer token or api-key header (repeatable; "
                        "default: no key required)")
    p.add_argument("--verbose", "-v", action="store_true", help="log each request")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--cassette", metavar="PATH",
                      help="answer from this recorded cassette (vcrpy, pydantic-ai or Ruby "
                           "VCR YAML) instead of the scripted model")
    mode.add_argument("--script", metavar="FILE",
                      help="answer by the rules of this YAML or JSON script (first match "
                           "wins; see docs/server.md), the scripted model for the rest")
    mode.add_argument("--record", metavar="FILE",
                      help="be a recording proxy: send every request (HTTP and WebSocket) to "
                           "--upstream, stream its answer back as it comes, and write the "
                           "exchanges, secrets scrubbed, to this cassette (--cassette "
                           "replays it)")
    p.add_argument("--upstream", metavar="URL",
                   help="with --record: the server to record, such as "
                        "https://api.openai.com/v1")
    p.add_argument("--scrub-header", action="append", default=[], metavar="NAME",
                   help="with --record: one more header to scrub from the cassette "
                        "(repeatable; credentials and account headers always are)")
    p.add_argument("--ignore-field", action="append", default=[], metavar="NAME",
                   help="with --cassette: a JSON body field left out of request matching "
                        "(repeatable)")
    from ..server.faults import describe

    p.add_argument("--fault", action="append", default=[], metavar="PLAN",
                   help="inject faults into every request (repeatable); " + describe()
                   + "; requests may also send their own plan in an x-codexapi-fault header")


def _is_loopback(host: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _bind_error(host: str, port: int, exc: OSError) -> ConfigError:
    if exc.errno == errno.EADDRINUSE:
        why = "the port is already in use (pick another --port, or 0 for a free one)"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = "that address is not one of this machine's"
    elif exc.errno == errno.EACCES:
        why = "permission denied (ports below 1024 need privileges)"
    else:
        why = exc.strerror or str(exc)
    return ConfigError(f"cannot listen on {host}:{port}: {why}")


@command("serve", "run the embedded OpenAI-compatible server")(_serve_args)
def cmd_serve(args: argparse.Namespace, stack: ExitStack) -> int:
    import socket

    from ..server import EmbeddedServer

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port} is out of range: use 0-65535 (0 picks a free "
                          "port)")
    if not args.host.strip():
        raise ConfigError("--host is empty: give an address such as 127.0.0.1")
    player: Callable[[Any], bool] | None = None
    recorder = None
    if args.cassette:
        from ..testing.player import CassettePlayer

        player = CassettePlayer.from_file(args.cassette, args.ignore_field)
    if bool(args.record) != bool(args.upstream):
        raise ConfigError("--record FILE and --upstream URL go together: the proxy records "
                          "what the upstream answers")
    script = None
    if args.script:
        from ..server.script import Script

        script = Script.load(args.script)  # checked before the port is bound
    try:
        server = EmbeddedServer(args.host, args.port, verbose=args.verbose,
                                faults=args.fault or None, api_keys=args.api_key or None,
                                script=script)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on --host {args.host!r}: {exc.strerror}") from None
    except (OverflowError, UnicodeError) as exc:
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {exc}") from None
    except OSError as exc:
        raise _bind_error(args.host, args.port, exc) from None
    if args.record:
        from ..testing.recorder import Recorder

        try:  # once the port is ours: a busy port must not have emptied the cassette
            player = recorder = Recorder(args.record, args.upstream,
                                         scrub_headers=args.scrub_header)
        except BaseException:
            server.stop()
            raise
        # Plans requests carry are the upstream's to act on (--fault still acts here).
        server.httpd.faults.request_plans = False
    server.httpd.responder = player
    if args.record:
        from ..redact import redact_url

        print(f"recording to {args.record} from {redact_url(args.upstream)}", flush=True)
    elif args.cassette:
        from ..testing.player import CassettePlayer, describe

        assert isinstance(player, CassettePlayer)
        print(f"serving {describe(player)} from {args.cassette}", flush=True)
    if script is not None:
        print(f"answering by {len(script.rules)} rules from {args.script} "
              f"(unmatched: {script.unmatched})", flush=True)
    if not _is_loopback(server.host):
        print(f"codexapi: warning: listening on {server.host}: the server is reachable from "
              "other machines" + ("" if args.api_key else ", and --api-key is not set: anyone "
                                  "who can reach it can use it"), file=sys.stderr, flush=True)
    print(f"codexapi embedded server on {server.base_url} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        if recorder is not None:
            recorder.close()
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

    from ..plugins import describe, describe_wires, make_plugin_manager

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


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's table as written and appends each option's default to its help
    (when it has one worth showing: not None, False or an empty list)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or default in (None, False, argparse.SUPPRESS)
                or default == [] or not action.option_strings):
            return text
        return text + " (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line (argparse prints the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _epilog() -> str:
    rows = "\n".join(textwrap.fill(meaning, 79, initial_indent=f"  {code:>3}  ",
                                   subsequent_indent=" " * 7)
                      for code, meaning in EXIT_MEANINGS)
    return ("Run 'codexapi COMMAND --help' for a command's options. An error is one line on\n"
            f"stderr: 'codexapi: error: KIND: message'.\n\nexit codes:\n{rows}")


def _batch_args(p: argparse.ArgumentParser) -> None:
    from .batch import configure

    configure(p)


@command("batch", "run a JSONL file of requests: resumable, rate-limit aware, on threads or "
         "a Dask cluster (docs/batch.md)")(_batch_args)
def cmd_batch(args: argparse.Namespace, stack: ExitStack) -> int:
    from .batch import main as batch_main

    return batch_main(args, stack)


def build_parser() -> argparse.ArgumentParser:
    for module in COMMAND_MODULES:
        importlib.import_module(module)
    parser = Parser(prog="codexapi", description=textwrap.fill(DESCRIPTION, 79),
                    epilog=_epilog(), formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"codexapi {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                title="commands")
    for name, (configure, run, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text[:1].upper()
                           + help_text[1:] + ".", formatter_class=HelpFormatter)
        configure(p)
        p.set_defaults(run=run)
    return parser


def exit_code(exc: BaseException) -> int:
    for kind, code in EXIT_CODES:
        if isinstance(exc, kind):
            return code
    return 1


class _StderrHandler(logging.Handler):
    """The ``codexapi`` logger's warnings as one ``codexapi: warning:`` line each on the
    stderr of the moment (tests swap it); retries can be left to the chat spinner."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.quiet_retries = False

    def emit(self, record: logging.LogRecord) -> None:
        if self.quiet_retries and getattr(record, "codexapi_retry", False):
            return
        try:
            text = " ".join(record.getMessage().split())
            sys.stderr.write(f"codexapi: warning: {text}\n")
            sys.stderr.flush()
        except Exception:  # a warning must never end the command
            pass


_STDERR = _StderrHandler()


def _report(exc: BaseException, code: int, args: Any) -> None:
    kind = type(exc).__name__
    message = " ".join(str(exc).split())
    if getattr(args, "json", False):
        from ..convert import dumps

        try:
            sys.stdout.write(dumps({"type": "error", "error": kind, "message": message,
                                    "exit_code": code}).decode() + "\n")
            sys.stdout.flush()
        except OSError:
            pass
    else:
        with suppress(OSError):
            sys.stdout.flush()
    print(f"codexapi: error: {kind}: {message}", file=sys.stderr)


def _silence_stdout() -> None:
    # Keep the interpreter from failing again when it flushes stdout at exit.
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    args: Any = build_parser().parse_args(argv)
    logger = logging.getLogger("codexapi")
    _STDERR.quiet_retries = False
    logger.addHandler(_STDERR)
    with ExitStack() as stack:
        # Last out: the handler stays for the cleanup (closing the client) and no longer.
        stack.callback(logger.removeHandler, _STDERR)
        try:
            return int(args.run(args, stack))
        except CodexApiError as exc:
            code = exit_code(exc)
            _report(exc, code, args)
            return code
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:
            # The reader went away (`codexapi models --json | head`): stop quietly, as
            # shell tools do.
            _silence_stdout()
            return 141
        except OSError as exc:
            # Writing the answer failed (`> /dev/full`, a full disk, an I/O error).
            print(f"codexapi: error: cannot write the output: {exc.strerror or exc}",
                  file=sys.stderr)
            _silence_stdout()
            return 74


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
