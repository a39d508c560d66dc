"""Child processes that die with their parent.

Extraction's worker processes fork from a server process (multiprocessing's forkserver, see
pipeline.extraction.pool), which the command's process starts. When that process is killed (kill -9, the
out-of-memory killer), the server sees the command's end of its pipe close and exits, but nothing tells the
workers: each holds both ends of its task queue, so they would wait forever, holding a gigabyte or more. On
Linux the kernel can send a signal to a process when its parent dies (prctl PR_SET_PDEATHSIG): each worker asks
for it against the server, so a dead command takes the server and then the workers with it, and
multiprocessing's resource tracker, whose pipe they all held, then sees it close and exits too. Elsewhere this
does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None = None, sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send `sig` to this process when its parent dies; True when that is in place.

    parent: the pid the parent had (known before the fork). If this process was already orphaned before the
    request took effect (its parent died in between: getppid() no longer returns it), it exits at once.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    except (OSError, AttributeError) as e:  # no prctl: only the automatic clean-up is lost
        log.debug("PR_SET_PDEATHSIG unavailable: %s", e)
        return False
    if parent is not None and os.getppid() != parent:
        os._exit(1)  # the parent is gone already: the signal will never come
    return True


def parent_of(pid: int) -> int | None:
    """The parent pid of process `pid` (Linux: /proc), None when it is gone or unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # after "pid (comm)": state, ppid, ...
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None
