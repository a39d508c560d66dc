"""Predictions in child processes that can be stopped: one process per worker, each with its own copy of the models.

    worker = PredictionWorker(locate_models("model/pretrained"), time_limit=300)
    worker.start()                                   # the child loads the models; CheckpointError in one line
    result = worker.predict(clip, transcript)        # TimeLimit after time_limit seconds: the child is killed
    worker.stop()                                    # from a signal handler too: the running prediction fails with Stopped
    worker.close()                                   # reap the child, remove its temporary folder

Why a process and not a thread: a prediction is seconds to minutes of library code (ffmpeg, Whisper's CTranslate2,
openSMILE, mediapipe) that no thread can interrupt, so a thread's prediction runs to its end whatever the server
wants: a hostile transcript held the only worker for 12 minutes, and SIGTERM waited for it. A child process is
killed at once, with everything it started: it is the leader of its own process group (ffmpeg and the other
programs it runs are in that group, and the whole group gets SIGKILL), and it ends that group itself within a second
of the server's death (kill -9 included). Its temporary files go to a folder of its own, removed
when it is replaced or closed. Measured cost: the child loads the models once (as the server did before), and a
killed child is replaced in the background, so the next request waits for a fresh one only when it comes at once.

The child is `python -m pipeline.serving.worker FD`: it reads its settings from the socket FD, loads a Predictor,
answers {"ready": description} (pipeline.prediction.describe, plus what the predictor reports), then one
{"result": ...} or {"error": kind, "message": ...} per job. Messages are pickled over a socket pair that only the
server and its own child hold.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from core.errors import CheckpointError, ExtractionError, UserError
from model.checkpoint import ModelFiles, locate_models

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 600  # loading the models on a loaded 2-core machine takes 5-20 s; a child silent this long is stuck
POLL_S = 0.5  # how often a wait on the child looks at the stop flag (a kill ends the wait at once anyway)


class WorkerError(Exception):
    """The prediction did not finish: its worker was stopped, timed out or died."""


class TimeLimit(WorkerError):
    """The prediction ran past the time limit and was stopped."""


class Stopped(WorkerError):
    """The server is stopping: the worker was killed, or will not take jobs any more."""


class Died(WorkerError):
    """The worker process ended without answering (a crash, the out-of-memory killer)."""


class PredictionWorker:
    """One child process holding a Predictor; one job at a time (callers serialise through PredictionQueue)."""

    def __init__(self, checkpoint: str | Path | ModelFiles | None = None, *, asr: str | None = None,
                 runtime: dict[str, dict] | None = None, time_limit: float | None = 300, diarize: str = "auto",
                 speakers: int | None = None):
        self.located = locate_models(checkpoint)
        self.asr, self.runtime = asr, runtime
        self.diarize, self.speakers = diarize, speakers
        self.time_limit = time_limit
        self.description: dict[str, Any] | None = None
        self.restarts = 0
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._tmp: Path | None = None
        self._lock = threading.Lock()  # one start or job at a time
        self._stopping = False

    # ---------------------------------------------------------------- the child's life
    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    def start(self) -> dict[str, Any]:
        """Start the child and wait until its models are loaded; its description. CheckpointError / UserError with
        the child's own one-line message when the models cannot be loaded; Stopped when stop() came first."""
        with self._lock:
            self._ensure()
            assert self.description is not None
            return self.description

    def _ensure(self) -> None:
        """The child is running and ready (caller holds the lock)."""
        if self._stopping:
            raise Stopped("the server is stopping")
        if self._proc is not None and self._proc.poll() is None:
            return
        self._reap()
        ours, theirs = socket.socketpair()
        self._tmp = Path(tempfile.mkdtemp(prefix="multilogue-worker-"))
        env = {**os.environ, "TMPDIR": str(self._tmp), "PYTHONUNBUFFERED": "1"}
        try:
            self._proc = subprocess.Popen([sys.executable, "-m", "pipeline.serving.worker", str(theirs.fileno())], cwd=REPO, env=env,
                                          pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            theirs.close()  # the child has its own copy: when it dies, our end sees the end of the stream
        self._conn = Connection(ours.detach())
        self._conn.send({"root": str(Path(self.located.root).resolve()), "files": [str(Path(f).resolve()) for f in self.located.files],
                         "asr": self.asr, "runtime": self.runtime, "diarize": self.diarize, "speakers": self.speakers,
                         "parent": os.getpid()})
        answer = self._receive(START_TIMEOUT_S, "loading the models")
        if "failed" in answer:
            self._kill()
            self._reap()
            error = CheckpointError if answer.get("kind") == "checkpoint" else UserError
            raise error(answer["failed"])
        self.description = answer["ready"]

    def _receive(self, timeout: float | None, doing: str) -> dict:
        """The child's next message within `timeout` seconds (None: no limit); TimeLimit, Stopped or Died otherwise."""
        conn = self._conn
        assert conn is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            # in slices, so a stop() that raced with the start of a child is seen within one
            while not conn.poll(POLL_S if deadline is None else max(0.0, min(POLL_S, deadline - time.monotonic()))):
                if self._stopping:
                    self._kill()
                elif deadline is not None and time.monotonic() >= deadline:
                    self._kill()
                    self._reap()
                    raise TimeLimit(f"{doing} took longer than {timeout:g} s")
            return conn.recv()
        except (EOFError, OSError) as e:
            code = self._reap()
            if self._stopping:
                raise Stopped("the server is stopping") from e
            how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
            raise Died(f"the prediction worker ended while {doing} ({how})") from e

    def _kill(self) -> None:
        """SIGKILL the child's process group (the child and every program it started). Safe in a signal handler."""
        proc = self._proc
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _reap(self) -> int | None:
        """Collect the ended (or killed) child, close our end, remove its folder; its exit status (None: none ran)."""
        proc, conn, tmp = self._proc, self._conn, self._tmp
        self._proc, self._conn, self._tmp = None, None, None
        code = None
        if proc is not None:
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:  # not killed yet (an orderly reap): kill it now
                self._proc = proc
                self._kill()
                self._proc = None
                code = proc.wait()
        if conn is not None:
            conn.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        return code

    def _restart_later(self) -> None:
        """Replace a killed child in the background, so the next request finds the models loaded."""
        def restart() -> None:
            try:
                with self._lock:
                    self._ensure()
                    self.restarts += 1
            except WorkerError:
                pass
            except Exception:  # the next job will try again and report what fails
                log.exception("restarting the prediction worker failed")

        threading.Thread(target=restart, daemon=True, name="worker-restart").start()

    # ---------------------------------------------------------------- jobs
    def predict(self, clip: str | Path, transcript: str | Path | None = None) -> dict:
        """Predictor.predict in the child, within the time limit. Raises ExtractionError (the clip or transcript cannot
        be used; its message as the child gave it), TimeLimit (the child was killed and is being replaced), Stopped,
        Died, or RuntimeError for an unexpected failure inside the prediction."""
        with self._lock:
            self._ensure()
            assert self._conn is not None
            started = time.monotonic()
            try:
                self._conn.send({"clip": str(Path(clip).resolve()), "transcript": str(Path(transcript).resolve()) if transcript else None})
                answer = self._receive(self.time_limit, "predicting")
            except TimeLimit:
                log.warning("%s: stopped after %.1f s (the time limit is %g s); the worker is being replaced",
                            Path(clip).name, time.monotonic() - started, self.time_limit)
                self._restart_later()
                raise TimeLimit(f"the prediction took longer than the server's limit of {self.time_limit:g} s and was stopped") from None
            except Died:
                self._restart_later()
                raise
        if "result" in answer:
            return answer["result"]
        if answer.get("error") == "extraction":
            raise ExtractionError(answer["message"])
        raise RuntimeError(answer.get("message") or "the prediction failed")

    def stop(self) -> None:
        """Refuse further jobs and kill the child now (a running prediction fails with Stopped). Safe in a signal
        handler: it takes no lock."""
        self._stopping = True
        self._kill()

    def close(self) -> None:
        """stop(), then reap the child and remove its temporary folder."""
        self.stop()
        with self._lock:
            self._reap()


def start_workers(checkpoint: str | Path | ModelFiles | None, workers: int = 1, *, asr: str | None = None,
                  runtime: dict[str, dict] | None = None, time_limit: float | None = 300, diarize: str = "auto",
                  speakers: int | None = None) -> list[PredictionWorker]:
    """`workers` started workers (1 or 2) on the models located once (diarize, speakers: as predict's); their
    children load in parallel.
    CheckpointError / UserError in one line when the models cannot be loaded (every child is then closed)."""
    located = locate_models(checkpoint)
    pool = [PredictionWorker(located, asr=asr, runtime=runtime, time_limit=time_limit, diarize=diarize, speakers=speakers)
            for _ in range(workers)]
    errors: list[BaseException] = []

    def start(worker: PredictionWorker) -> None:
        try:
            worker.start()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=start, args=(w,), name="worker-start") for w in pool]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    except BaseException:  # Ctrl-C while the models load: no child stays behind
        for w in pool:
            w.close()
        raise
    if errors:
        for w in pool:
            w.close()
        raise errors[0]
    return pool


# ------------------------------------------------------------------ the child
def _watch_parent(parent: int) -> None:
    """End this process group (the worker and the programs it runs) once the server is gone, e.g. killed with -9.
    Polled rather than PR_SET_PDEATHSIG: that signal follows the thread that started the child, and the server
    starts (and restarts) workers from short-lived threads."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os.killpg(0, signal.SIGKILL)


def _child(fd: int) -> int:
    conn = Connection(fd)
    settings = conn.recv()
    threading.Thread(target=_watch_parent, args=(settings["parent"],), daemon=True, name="watch-parent").start()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s (prediction worker): %(message)s")
    try:
        from pipeline.prediction.describe import describe_models
        from pipeline.prediction.predict import Predictor

        located = ModelFiles(Path(settings["root"]), tuple(Path(f) for f in settings["files"]))
        predictor = Predictor(located, runtime=settings["runtime"], asr=settings["asr"], diarize=settings["diarize"],
                              speakers=settings["speakers"])
        description = describe_models(located)
        description.update(outputs=predictor.columns, modalities=predictor.modalities, transcriber=predictor.asr,
                           diarizer=predictor.diarize)
    except UserError as e:
        conn.send({"failed": " ".join(str(e).split()), "kind": "checkpoint" if isinstance(e, CheckpointError) else "user"})
        return 2
    conn.send({"ready": description})
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the server closed its end: done
            return 0
        try:
            conn.send({"result": predictor.predict(job["clip"], transcript=job["transcript"])})
        except ExtractionError as e:
            conn.send({"error": "extraction", "message": " ".join(str(e).split())})
        except Exception as e:  # reported to the client as a 500 with this line; the traceback goes to the log
            log.exception("prediction failed on %s", job["clip"])
            conn.send({"error": "internal", "message": f"{type(e).__name__}: {' '.join(str(e).split())}"})


__all__ = ["Died", "PredictionWorker", "Stopped", "TimeLimit", "WorkerError", "start_workers"]

if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when this process ends (it has its own session anyway)
    sys.exit(_child(int(sys.argv[1])))
