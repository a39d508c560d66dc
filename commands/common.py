"""What every subcommand shares: the parser class, exit codes, the progress bars drawn for the library's progress
hook and the up-front check of an output path (the options several subcommands take are in commands.options)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # Ctrl-C, and SIGTERM, which is handled the same way


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other user error
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message}\n")


_BARS: set = set()  # progress bars open on stderr: closed before any message, so it gets a line of its own


def progress_bar(desc: str, unit: str, leave: bool = True):
    """The library's progress hook (core.progress.Progress) drawn as tqdm bars on stderr: a new bar for each new
    `stage` (titled by it, else `desc`), the figures beside it."""
    from tqdm import tqdm

    state: dict = {"bar": None, "stage": None}

    def callback(done: int, total: int, *, stage: str | None = None, **figures) -> None:
        bar = state["bar"]
        if bar is None or (stage is not None and stage != state["stage"]):
            if bar is not None:
                _close(bar)
            bar = state["bar"] = tqdm(total=total, desc=stage or desc, unit=unit, leave=leave, dynamic_ncols=True)
            _BARS.add(bar)
            state["stage"] = stage
        bar.n = done
        if figures:
            bar.set_postfix({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in figures.items()}, refresh=False)
        bar.refresh()
        if done >= total:
            _close(bar)
            state["bar"] = None

    return callback


def _close(bar) -> None:
    bar.close()
    _BARS.discard(bar)


def close_bars() -> None:
    """End every open progress bar's line, so that what is printed next stands on a line of its own."""
    for bar in list(_BARS):
        _close(bar)


def terminal_bar(desc: str, unit: str):
    """progress_bar on a terminal, None when stderr is redirected."""
    return progress_bar(desc, unit) if sys.stderr.isatty() else None


def check_output(out: Path, inputs: list[Path], what: str = "-o") -> None:
    """Before any work: the output file can be written and is none of the command's inputs."""
    from core.fileio import check_writable, refuse_overwrite

    check_writable(out, what)
    refuse_overwrite(out, inputs, what)
