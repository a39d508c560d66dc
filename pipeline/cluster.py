"""Ray for the commands that fan out over a cluster (`extract --ray`, `train --ray`): join a cluster or start a
private instance here, describe it, ship this project's code to its workers, and turn Ray's failures into
one-line errors.

    with ray_cluster("local", num_cpus=2) as cluster:   # or "auto", or "10.0.0.5:6379"
        cluster.cpus, cluster.gpus                        # what the cluster offers
        task = ray.remote(fn).options(num_cpus=1)          # the workers import this checkout's code

`local` starts a Ray instance on this machine for the duration of the block, bound to 127.0.0.1 only, and
stops it afterwards. `auto` joins the cluster this machine's `ray start` joined last (or RAY_ADDRESS);
HOST:PORT joins the cluster whose head listens there. Joining never stops the cluster. The job's workers
receive this checkout's packages (core, data, extractors, model, pipeline; a Ray runtime environment), so they run
the driver's code; the Python packages of requirements.txt must be installed on every node. (In a process
already connected to Ray, that connection is used as it is, and its workers must have the packages.)

Ray is a heavy import (about a second): it is imported here, inside the functions, and only with --ray.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from core.errors import UserError
from core.network import is_loopback

log = logging.getLogger(__name__)

LOCAL = "local"
PACKAGES = ("core", "data", "extractors", "model", "pipeline")
# Ray turns a loopback node address into the machine's outward one unless it believes clusters are off (its
# switch for Windows and macOS); with it off, a private instance binds and registers on 127.0.0.1 only.
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_PROBE_SECONDS = 3.0
TOKEN_HINT = ("the cluster uses token authentication; set RAY_AUTH_MODE=token and give this machine the cluster's token "
              "(RAY_AUTH_TOKEN, or the file ~/.ray/auth_token), as on its nodes")


@dataclass
class Cluster:
    """The Ray cluster a command runs on: `address` as asked ("local", "auto", HOST:PORT), `head` the head's
    HOST:PORT (None for a private instance), and the resources it offers."""

    address: str
    head: str | None
    cpus: float
    gpus: float
    nodes: int

    def describe(self) -> str:
        where = "a Ray instance on this machine" if self.head is None else f"the Ray cluster at {self.head}"
        gpus = f", {self.gpus:g} GPUs" if self.gpus else ""
        return f"{where} ({self.nodes} node(s), {self.cpus:g} CPUs{gpus})"


def parse_address(address: str) -> tuple[str, int]:
    """"HOST:PORT" -> (host, port); UserError naming the expected form otherwise."""
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--ray {address}: expected auto or HOST:PORT (e.g. 10.0.0.5:6379), or no address to start Ray on this machine")
    return host, int(port)


def _auto_address() -> str:
    """HOST:PORT of `auto`: RAY_ADDRESS, else the cluster this machine's last `ray start` created or joined."""
    env = os.environ.get("RAY_ADDRESS", "").strip()
    if env and env != "auto":
        return env
    try:
        from ray._common.utils import get_ray_address_file

        path = Path(get_ray_address_file(None))
    except Exception:  # its location moved in another Ray version: its usual place
        path = Path("/tmp/ray/ray_current_cluster")
    found = path.read_text().strip() if path.is_file() else ""
    if not found:
        raise UserError("--ray auto: no Ray cluster was started or joined on this machine; start one with `ray start --head` "
                        "(or join one with `ray start --address HOST:PORT`), give --ray HOST:PORT, or --ray alone to start Ray here")
    return found


def _probe(address: str) -> None:
    """Refuse quickly an address where nothing listens (Ray itself would retry for minutes)."""
    host, port = parse_address(address)
    try:
        with socket.create_connection((host, port), timeout=_PROBE_SECONDS):
            pass
    except OSError as e:
        why = "timed out" if isinstance(e, socket.timeout) else (e.strerror or str(e))
        raise UserError(f"--ray {address}: no Ray head answers there ({why}); start one on that machine with "
                        f"`ray start --head --port {port}`, check the address, or give --ray alone to start Ray here") from e


def _set_loopback(on: bool) -> None:
    os.environ[_LOOPBACK_ENV] = "0" if on else "1"  # read by Ray at import, and by the processes it starts
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:  # Ray imported earlier in this process: it read the switch then
        constants.ENABLE_RAY_CLUSTER = not on


def code_env() -> dict[str, Any]:
    """The job's Ray runtime environment: this checkout's packages, uploaded once per content, which the
    workers import in place of whatever copy their node has."""
    import importlib

    paths = [str(Path(importlib.import_module(p).__file__).parent) for p in PACKAGES]
    return {"py_modules": paths, "excludes": ["__pycache__", "*.pyc"]}


@contextlib.contextmanager
def ray_cluster(address: str | None = LOCAL, *, num_cpus: int | None = None, num_gpus: int | None = None) -> Iterator[Cluster]:
    """Connect to Ray for the block: a private instance here (`local`, with num_cpus/num_gpus, default all of
    this machine's), `auto`, or HOST:PORT. Ray's own log lines are kept at ERROR unless this package logs at
    DEBUG. Raises UserError (one line, naming the address and the fix) when the cluster cannot be reached."""
    address = (address or LOCAL).strip()
    head = None
    if address != LOCAL:
        head = _auto_address() if address == "auto" else address
        _probe(head)
    elif num_cpus is not None and num_cpus < 1:
        raise UserError(f"--workers {num_cpus}: must be >= 1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    _set_loopback(head is None or is_loopback(parse_address(head)[0]))
    try:
        import ray
        from ray import exceptions as rex
    except ImportError as e:
        raise UserError("--ray needs Ray: pip install ray==2.60.0 (the version in requirements.txt)") from e

    verbose = log.isEnabledFor(logging.DEBUG)
    kwargs: dict[str, Any] = {"logging_level": logging.INFO if verbose else logging.ERROR, "log_to_driver": verbose,
                              "runtime_env": code_env()}
    if head is None:
        kwargs.update(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False)
    owned = not ray.is_initialized()
    if owned:
        try:
            ray.init(address=head, **kwargs)
        except (ConnectionError, RuntimeError, rex.AuthenticationError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if _auth_failure(e):
                raise UserError(f"--ray {address}: {TOKEN_HINT}") from e
            raise UserError(f"--ray {address}: could not join Ray ({first}); check that every node runs ray=={ray.__version__} "
                            "and that this machine reaches the head") from e
    logging.getLogger("ray").setLevel(logging.INFO if verbose else logging.ERROR)
    try:
        res = ray.cluster_resources()
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        cluster = Cluster(address, head, float(res.get("CPU", 0)), float(res.get("GPU", 0)), nodes)
        log.debug("running on %s", cluster.describe())
        yield cluster
    finally:
        if owned:
            ray.shutdown()


def _auth_failure(error: BaseException | None) -> bool:
    """Whether Ray refused this driver's token (somewhere in the chain of causes)."""
    for _ in range(10):
        if error is None:
            return False
        if type(error).__name__ == "AuthenticationError" or "InvalidAuthToken" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def task_failure(error: BaseException) -> str:
    """One line for a Ray task that did not return: its exception's class and first line."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def user_error_of(error: BaseException) -> UserError | None:
    """The UserError a remote task raised (wrapped by Ray in a RayTaskError), or None."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, UserError) else None
