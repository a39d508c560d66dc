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

from core.environment import install_hint, missing_packages
from core.errors import UserError

PACKAGES = ("core", "data", "model", "pipeline", "extractors", "commands")  # ours: they log at INFO
EXIT_USER_ERROR = 2  # as commands.common, which cannot be imported before the environment is checked


def build_parser():
    from commands import SUBCOMMANDS
    from commands.common import Parser

    parser = Parser(prog="cli.py", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a command as Ctrl-C does: workers ended, partial output never written


def main(argv: list[str] | None = None) -> int:
    problem = missing_packages(argv)  # outside the virtualenv: one line saying which python to use, not a traceback
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USER_ERROR
    from commands.common import EXIT_INTERRUPTED, close_bars

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
    except ModuleNotFoundError as e:  # a package of requirements.txt missing from this environment
        if (e.name or "").split(".")[0] in (*PACKAGES, "cli"):
            raise  # one of ours: a bug, not the environment
        close_bars()
        print(f"error: {install_hint(e.name or str(e), argv)}", file=sys.stderr)
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
