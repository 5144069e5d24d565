"""What every ``codexapi`` command that talks to a server shares: its connection options,
the provider they choose, and the Client built from it.

A module of its own so that commands living elsewhere (``codexapi batch``) use it without
importing the command line that imports them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from typing import Any

import attrs

from ..client import Client
from ..deadline import Deadline
from ..errors import ConfigError
from ..models import Provider, WireApi

DEFAULT_MODEL = "gpt-5"


def seconds(text: str) -> float:
    """An argparse type: what ``deadline=`` accepts (a positive, finite number of seconds)."""
    try:
        value = float(text)
        Deadline.of(value)
    except (ValueError, ConfigError):
        raise argparse.ArgumentTypeError(
            f"must be a positive number of seconds, got {text!r}") from None
    return value


def add_connection_args(p: argparse.ArgumentParser) -> None:
    """Options shared by every command that talks to a server."""
    p.add_argument("--base-url", help="server base URL (default: $OPENAI_BASE_URL; else the "
                   "OpenAI API when $OPENAI_API_KEY is set; else an embedded offline server)")
    p.add_argument("--wire", metavar="NAME", default=None,
                   help="wire API: " + ", ".join(w.value for w in WireApi) + " or one a "
                   "plugin registers ('codexapi plugins' lists them; default: responses, or "
                   "the provider's)")
    p.add_argument("--model", "-m", default=os.environ.get("CODEXAPI_MODEL", DEFAULT_MODEL),
                   help="model name sent in the request; $CODEXAPI_MODEL sets the default")
    p.add_argument("--retries", type=int, metavar="N", help="retry a failed request up to N "
                   "times, 0 for none (default: the provider's policy, 4 unless configured)")
    p.add_argument("--deadline", type=seconds, metavar="SECONDS", help="bound each call "
                   "(in an interactive chat: each turn; in a batch: each request) to this many "
                   "seconds, retries, their waits and every read included (exit code 5)")
    p.add_argument("--no-plugins", action="store_true",
                   help="do not load third-party plugins (entry points)")
    p.add_argument("--provider", metavar="ID", help="a provider of Codex's config.toml "
                   "([model_providers.ID], or a built-in such as openai)")
    p.add_argument("--config", metavar="FILE", help="the Codex config file (default: "
                   "$CODEX_HOME/config.toml, i.e. ~/.codex/config.toml)")


EMBEDDED_NOTICE = ("codexapi: no base URL or API key configured: answering from the embedded "
                   "scripted model (offline); set OPENAI_API_KEY or --base-url for a real server")


@attrs.frozen
class Origin:
    """Where a command's provider comes from, so a conversation can go back there: a Codex
    config provider (``provider_id``, optionally with another ``base_url``), a bare base URL,
    or the embedded server; ``wire`` a wire to use instead of the provider's (None: its own).
    ``what`` names where the base URL was given, for errors."""

    provider_id: str | None = None
    base_url: str | None = None
    embedded: bool = False
    wire: str | None = None
    what: str = "--base-url"


def choose_origin(args: argparse.Namespace, environ: Mapping[str, str] | None = None,
                  resumed: Origin | None = None) -> Origin:
    """Where the command line points. In order: ``--provider`` (Codex's config, with
    ``--base-url`` on top), ``--base-url``, the resumed conversation's own (``resumed``),
    ``$OPENAI_BASE_URL``, the OpenAI API when ``$OPENAI_API_KEY`` is set (as every OpenAI tool
    does), else the embedded server. ``--wire`` overrides the resumed conversation's wire."""
    env = os.environ if environ is None else environ
    if args.provider:
        return Origin(args.provider, args.base_url)
    if args.base_url:
        return Origin(None, args.base_url)
    if resumed is not None:
        return resumed if not args.wire else attrs.evolve(resumed, wire=None)
    if env.get("OPENAI_BASE_URL"):
        return Origin(None, env["OPENAI_BASE_URL"], what="OPENAI_BASE_URL")
    if env.get("OPENAI_API_KEY", "").strip():
        # Codex's built-in OpenAI provider (or config.toml's [model_providers.openai]).
        return Origin("openai")
    return Origin(embedded=True)


def provider_for(origin: Origin, args: argparse.Namespace) -> Provider | None:
    """The provider ``origin`` names (None: the embedded server), before ``--wire`` and
    ``--retries``."""
    from ..http.urls import check_base_url
    from ..redact import REDACTED

    if origin.embedded:
        return None
    if origin.base_url and REDACTED in origin.base_url:
        # A conversation's URL whose secret was kept out of the database.
        raise ConfigError(f"{origin.what} held a secret, which was not saved: give it again "
                          "with --base-url")
    if origin.provider_id:
        provider = Provider.from_codex_config(origin.provider_id, args.config)
        if origin.base_url:
            provider = attrs.evolve(provider, base_url=check_base_url(origin.base_url,
                                                                      origin.what))
    else:
        provider = Provider(name="openai", base_url=check_base_url(origin.base_url or "",
                                                                   origin.what))
    if origin.wire:
        provider = attrs.evolve(provider, wire=origin.wire)
    return provider


def choose_provider(args: argparse.Namespace, environ: Mapping[str, str] | None = None
                    ) -> Provider | None:
    """The provider the command line asks for; None means the embedded offline server
    (see :func:`choose_origin`)."""
    provider = provider_for(choose_origin(args, environ), args)
    return None if provider is None else _overrides(provider, args)


def _overrides(provider: Provider, args: argparse.Namespace) -> Provider:
    """``--wire`` and ``--retries`` applied to ``provider``."""
    if args.wire:
        provider = attrs.evolve(provider, wire=args.wire)  # checked by the Client
    if args.retries is not None:
        if args.retries < 0:
            raise ConfigError(f"--retries must be 0 or more, got {args.retries}")
        provider = attrs.evolve(provider, retry=attrs.evolve(provider.retry,
                                                             max_attempts=args.retries + 1))
    return provider


def make_client(args: argparse.Namespace, stack: ExitStack, plugins: Iterable[Any] = (),
                origin: Origin | None = None) -> Client:
    """A Client for the command line: the provider ``origin`` (default
    :func:`choose_origin`'s) names, or an embedded server (said on stderr)."""
    if origin is None:
        origin = choose_origin(args)
    provider = provider_for(origin, args)
    if provider is None:
        from ..server import EmbeddedServer

        print(EMBEDDED_NOTICE, file=sys.stderr, flush=True)
        server = stack.enter_context(EmbeddedServer())
        provider = Provider(name="embedded", base_url=server.base_url)
        if origin.wire:
            provider = attrs.evolve(provider, wire=origin.wire)
    client = Client(_overrides(provider, args), plugins=plugins,
                    load_entrypoints=not args.no_plugins)
    stack.callback(client.close)
    return client
