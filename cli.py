#!/usr/bin/env python3
"""Multilogue command line: extract | import | train | evaluate | predict | serve | info.

Thin by design: parse (each subcommand in commands/), connect progress and logging, call one library function,
and turn known user errors into one line on stderr with exit code 2.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

from commands import SUBCOMMANDS
from commands.common import EXIT_INTERRUPTED, EXIT_USER_ERROR, Parser, close_bars
from core.errors import UserError

PACKAGES = ("core", "data", "model", "pipeline", "extractors", "commands")  # ours: they log at INFO


def build_parser() -> Parser:
    parser = Parser(prog="cli.py", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a command as Ctrl-C does: workers ended, partial output never written


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # our packages log at INFO; third-party libraries only from WARNING unless --verbose
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for package in PACKAGES:
        logging.getLogger(package).setLevel(logging.DEBUG if args.verbose else logging.INFO)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        close_bars()
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        close_bars()
        hint = "; add --resume to the same command to continue from the last finished epoch" if args.command == "train" else ""
        print(f"interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
