"""Whether this Python is the project's environment: `python cli.py ...` run outside the virtualenv (a system Python
without torch) says so in one line, with the command to use instead, rather than a traceback from deep inside.

    problem = missing_packages(["predict", "clip.mp4"])   # None, or the line to print

Only the standard library here: it runs before anything imports numpy or torch. importlib's find_spec locates a
package without importing it, so the check costs milliseconds and `cli.py --help` still imports no torch.
"""

from __future__ import annotations

import importlib.util
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# what every command beyond parsing needs (the rest of requirements.txt comes with them from `make install`)
REQUIRED = ("numpy", "torch")


def _venv_python() -> Path | None:
    """The project's virtualenv's python (`make install` makes .venv), when there is one and it is not this one."""
    candidate = REPO / ".venv" / "bin" / "python"
    if not candidate.exists():
        return None
    try:
        if candidate.resolve() == Path(sys.executable).resolve() and sys.prefix != sys.base_prefix:
            return None
    except OSError:
        return None
    return candidate


def install_hint(module: str, argv: list[str] | None = None) -> str:
    """One line: this Python lacks `module`, and which python to use (or how to install) instead."""
    here = sys.executable or "this python"
    script = sys.argv[0] if sys.argv and Path(sys.argv[0]).name == "cli.py" else "cli.py"
    command = " ".join(shlex.quote(a) for a in [script, *(sys.argv[1:] if argv is None else argv)])
    venv = _venv_python()
    if venv is not None:
        shown = venv.relative_to(REPO) if Path.cwd().resolve() == REPO else venv
        fix = f"run `{shown} {command}` (or `source {venv.parent / 'activate'}` first)"
    else:
        fix = f"run `make install` in {REPO} (or `pip install -r requirements.txt`), then `.venv/bin/python {command}`"
    return f"this Python ({here}) has no module {module!r}, so it is not the project's environment; {fix}"


def missing_packages(argv: list[str] | None = None) -> str | None:
    """None when the packages every command needs are importable here, else the one line saying what to do."""
    for module in REQUIRED:
        if importlib.util.find_spec(module) is None:
            return install_hint(module, argv)
    return None
