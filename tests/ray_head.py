"""A real Ray cluster for the tests: a head on 127.0.0.1 with its own worker processes, started with `ray start`
and stopped (its whole process group) however the tests end.

    with ray_head(num_cpus=2) as address:    # "127.0.0.1:PORT"
        extract_folder(..., ray=address)

Loopback only (no other address is bound), token authentication with a fresh token, no usage statistics, a
temporary folder of its own, and bounded start and stop times. The environment this process needs to join it
(the token, loopback) is set for the block and restored afterwards.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_cli() -> list[str]:
    script = Path(sys.executable).with_name("ray")
    return [str(script)] if script.exists() else [sys.executable, "-c", "import sys; from ray.scripts.scripts import main; sys.exit(main())"]


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@contextlib.contextmanager
def ray_head(num_cpus: int = 2, start_timeout: float = 120.0) -> Iterator[str]:
    """Start a Ray head on 127.0.0.1 with `num_cpus` worker slots; yield its HOST:PORT; stop it at the end."""
    env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_DEDUP_LOGS": "0"}
    saved = {k: os.environ.get(k) for k in env}
    temp = tempfile.mkdtemp(prefix="mlray", dir="/tmp")  # short: Ray's socket paths must stay under 108 bytes
    port = free_port()
    cmd = [*_ray_cli(), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
           "--ray-client-server-port", str(free_port()), "--num-cpus", str(num_cpus), "--num-gpus", "0",
           "--include-dashboard=false", "--disable-usage-stats", "--temp-dir", temp, "--object-store-memory", str(200 << 20)]
    os.environ.update(env)
    # its own session: the head's processes share one process group, which the end of the block stops
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        try:
            out, _ = proc.communicate(timeout=start_timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"ray start did not finish within {start_timeout:.0f} s") from None
        if proc.returncode != 0:
            raise RuntimeError(f"ray start failed ({proc.returncode}):\n{out[-3000:]}")
        yield f"127.0.0.1:{port}"
    finally:
        if _alive(proc.pid):
            os.killpg(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + 2  # its GCS server can take long on SIGTERM: a test cluster need not
            while _alive(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _alive(proc.pid):
                os.killpg(proc.pid, signal.SIGKILL)
        # worker processes the raylet started have groups of their own and exit with it; any left is stopped
        _kill_leftovers(f"RAY_AUTH_TOKEN={env['RAY_AUTH_TOKEN']}")
        shutil.rmtree(temp, ignore_errors=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _kill_leftovers(marker: str) -> None:
    """Processes started with `marker` (this head's token) in their environment: only this head's own."""
    me, needle = os.getpid(), marker.encode() + b"\0"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if b"\0" + needle in b"\0" + environ:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)
