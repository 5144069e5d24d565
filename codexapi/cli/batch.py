"""``codexapi batch IN.jsonl -o OUT.jsonl``: the command line on :func:`codexapi.batch.run`.

Exit codes: 0 every request ok; 1 some requests failed (their lines say why); 2 bad input or
settings, nothing sent; 75 (EX_TEMPFAIL) the usage limit stopped the run, run it again later
to carry on; 130 interrupted (finished results are kept).
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..models import Provider

#: Exit status when the usage limit stopped the run (sysexits.h EX_TEMPFAIL: try again later).
EXIT_STOPPED = 75


def configure(p: argparse.ArgumentParser) -> None:
    from .options import add_connection_args

    p.add_argument("input", metavar="IN.jsonl", help="one request per line: {\"id\": ..., "
                   "\"request\": {ResponsesRequest fields}, \"provider\": ID (optional)}")
    p.add_argument("-o", "--output", metavar="OUT.jsonl", required=True,
                   help="results file (a regular file, held by one run at a time; - for "
                   "standard output, not resumable); a rerun with the same file skips ids "
                   "already ok from the same server")
    p.add_argument("--offline", action="store_true",
                   help="answer from the embedded scripted model (nothing is sent anywhere; "
                   "result lines say \"base_url\": \"offline\")")
    p.add_argument("--concurrency", "-c", type=int, default=8, metavar="N",
                   help="calls in flight at most (adapts below it on rate limits; default 8)")
    p.add_argument("--retry-failed", action="store_true",
                   help="run again the ids whose last result in OUT is an error")
    p.add_argument("--engine", choices=("threads", "dask"), default="threads",
                   help="where calls run: local threads (default) or a Dask cluster")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="with --engine dask: the scheduler, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--max-attempts", type=int, default=8, metavar="N",
                   help="tries per request when rate limited (default 8)")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="per call: connect and response head (the stream idle timeout "
                   "applies between events)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--progress", choices=("auto", "bar", "lines", "none"), default="auto",
                   help="progress on stderr: a bar on a terminal, else a line every "
                   "--progress-interval seconds (auto)")
    p.add_argument("--progress-interval", type=float, default=10.0, metavar="SECONDS",
                   help="seconds between progress lines when stderr is not a terminal")
    add_connection_args(p)


#: What to do when no server is configured.
NO_SERVER = ("no server to send the batch to: give --base-url or --provider, set "
             "OPENAI_BASE_URL or OPENAI_API_KEY, or pass --offline to answer from the "
             "embedded scripted model")


def _provider(args: argparse.Namespace) -> Provider | None:
    """The provider the batch goes to; None with ``--offline``. Never the offline model
    unless asked: its answers would be written as done, and a later run against a real
    server would skip them."""
    from ..errors import ConfigError
    from .options import choose_provider

    if not args.offline:
        provider = choose_provider(args)
        if provider is None:
            raise ConfigError(NO_SERVER)
        return provider
    given = [flag for flag, value in (("--base-url", args.base_url),
                                      ("--provider", args.provider), ("--wire", args.wire),
                                      ("--retries", args.retries)) if value is not None]
    if given:
        raise ConfigError(f"--offline answers from the embedded scripted model: it does not "
                          f"go with {', '.join(given)}")
    return None


def main(args: argparse.Namespace, stack: ExitStack) -> int:
    from ..batch import BatchStopped, run
    from ..batch.output import STDOUT
    from ..batch.progress import Progress, summary_text
    from ..errors import ConfigError

    if args.concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, got {args.concurrency}")
    if args.scheduler and args.engine != "dask":
        raise ConfigError("--scheduler is for --engine dask")
    provider = _provider(args)
    options = dict(defaults={"model": args.model},
                   concurrency=args.concurrency, engine=args.engine, output=args.output,
                   retry_failed=args.retry_failed, max_attempts=args.max_attempts,
                   timeout=args.timeout, deadline=args.deadline,
                   load_entrypoints=not args.no_plugins,
                   config=args.config, offline=args.offline)
    if args.engine == "dask" and not args.scheduler:
        raise ConfigError("--engine dask needs --scheduler ADDRESS")
    # The provider only: the batch builds its own Clients, which leave 429s to it.
    batch = run(args.input, provider, scheduler=args.scheduler, **options)
    # With results on stdout, the summary goes with the progress, to stderr.
    report = sys.stderr if args.output == STDOUT else sys.stdout
    if batch.summary.other_server:
        print(f"codexapi: {batch.summary.other_server} result(s) in {args.output} came from "
              "another server: running them again", file=sys.stderr)
    mode = args.progress
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "lines"
    progress = Progress(batch.summary, sys.stderr, mode, args.progress_interval)
    code = 0
    stopped: BatchStopped | None = None
    try:
        with batch:
            for result in batch:
                progress.update(result)
    except BatchStopped as exc:
        stopped = exc
        code = EXIT_STOPPED
    except KeyboardInterrupt:
        progress.close()
        print("codexapi: interrupted; " + (
            "finished results were written" if args.output == STDOUT else
            f"finished results are in {args.output}, run the same command again to carry "
            "on"), file=sys.stderr)
        return 130
    progress.close()
    summary = batch.summary
    if args.json:
        print(json.dumps(summary.to_json()), file=report)
    else:
        print(summary_text(summary), file=report)
    if stopped is not None:
        print(f"codexapi: {stopped}", file=sys.stderr)
    elif summary.failed:
        code = 1
    return code
