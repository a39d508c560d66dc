"""Running the app (pipeline.serving.app) with uvicorn: on a bound socket until a signal (`cli.py serve`), or from a
thread (tests and benchmarks).

    sock = bind("127.0.0.1", 8000)      # UserError in one line when the port is taken
    run_server(app, sock)                # returns after SIGINT / SIGTERM, the captured signal re-raised (cli: exit 130)
    with BackgroundServer(app) as server: ...server.url...

Stopping: uvicorn's own handling waits for open connections to finish (graceful shutdown), and a prediction holds
its connection for as long as it runs, so a signal used to wait for the running prediction, minutes, and a second
one did not help. Here the first SIGINT or SIGTERM first kills the running predictions and previews (their worker
processes and everything those started) and refuses the waiting ones, whose clients get 503 `stopping`; the
connections then close at once, and an upload still streaming in gets GRACE_S seconds. Then the workers are reaped
and the temporary folder removed, also when uvicorn skips its shutdown (a second Ctrl-C).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from core.errors import UserError

if TYPE_CHECKING:
    from fastapi import FastAPI

GRACE_S = 3  # what an open connection gets to finish after a signal, once the predictions are killed


def bind(host: str = "127.0.0.1", port: int = 8000) -> socket.socket:
    """A listening socket on host:port (port 0: any free port); UserError in one line when that fails."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise UserError(f"--host {host}: not an address of this machine ({e.strerror}); use 127.0.0.1 or 0.0.0.0") from e
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise UserError(f"--host {host} --port {port}: cannot listen there ({e.strerror}); pick another --port") from e
    sock.set_inheritable(True)
    return sock


def address(sock: socket.socket) -> str:
    """The socket's URL, e.g. http://127.0.0.1:8000."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _server(app: "FastAPI", log_level: str):
    import uvicorn

    class Server(uvicorn.Server):
        signalled = 0

        def handle_exit(self, sig: int, frame: Any) -> None:
            self.signalled = sig
            stop = getattr(app.state, "stop", None)
            if stop is not None:
                stop()  # kill the running work first, so the connections waiting on it close at once
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, log_level=log_level, log_config=None, timeout_graceful_shutdown=GRACE_S, lifespan="on")
    return Server(config)


def run_server(app: "FastAPI", sock: socket.socket, log_level: str = "info") -> None:
    """Serve on the bound socket until SIGINT or SIGTERM (uvicorn), then stop the work and clean up (see above)."""
    server = _server(app, log_level)
    try:
        server.run(sockets=[sock])
        if server.signalled:
            # uvicorn re-raises the signal through asyncio's own SIGINT handler, which cancels a task that may already
            # have finished: under load that lost the Ctrl-C and the command exited 0. Say it here instead.
            raise KeyboardInterrupt
    finally:
        close = getattr(app.state, "close", None)
        if close is not None:
            close()  # done already unless uvicorn skipped its shutdown; idempotent
        sock.close()


class BackgroundServer:
    """The app served from a thread on host:port (default: a free port on 127.0.0.1), for tests and benchmarks.

        with BackgroundServer(app) as server:
            urllib.request.urlopen(server.url + "/api/health")
    """

    def __init__(self, app: "FastAPI", host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
        self.app, self.host, self.port, self.log_level = app, host, port, log_level
        self.url = ""

    def __enter__(self) -> "BackgroundServer":
        sock = bind(self.host, self.port)
        self.url = address(sock)
        self._uvicorn = _server(self.app, self.log_level)
        self._thread = threading.Thread(target=self._uvicorn.run, kwargs={"sockets": [sock]}, daemon=True, name="serve")
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._uvicorn.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {self.url} did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._uvicorn.should_exit = True
        self._thread.join(timeout=60)


__all__ = ["BackgroundServer", "GRACE_S", "address", "bind", "run_server"]
