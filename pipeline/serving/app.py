"""A local web viewer and HTTP API on the prediction models (`python cli.py serve`).

    predictors = load_predictors("model/pretrained", workers=1)     # the models, located and loaded once
    app = create_app(predictors)                                     # FastAPI app
    sock = bind("127.0.0.1", 8000); run_server(app, sock)            # what cli.py serve does
    with BackgroundServer(app) as server: ...server.url...           # tests and benchmarks

Endpoints (the schema is served at /api/openapi.json):
- `GET /`: the page (pipeline/serving/web: one HTML, one JS, one CSS; no build step, nothing from a CDN);
- `POST /api/predict[?format=json|csv]`: multipart `clip` + optional `transcript` -> what `cli.py predict
  --format json` prints for the clip (`clip` is the uploaded file's name), or its CSV;
- `POST /api/csv`: a result (or a list of results) as the API returned it -> the CSV `predict --format csv` writes;
- `GET /api/models`: the loaded models (task, feature spec, test metrics), what they output, the model card, limits;
- `GET /api/health`: {"status": "ok"} with the queue's state.

Errors are JSON `{"error": code, "detail": one line naming the file and the fix}` with a 4xx status (see
pipeline.serving.upload for the upload checks); a clip in which no speech is found is a 422 `no_speech` whose body
also carries the empty result. Each request gets its own folder under the server's temporary folder, removed when
the request is over whatever happened (error, client gone, prediction finished after the client left); the
server's folder is removed at shutdown. Predictions run on 1-2 worker threads behind a bounded queue
(pipeline.serving.queue): a request beyond it gets 503 at once.
"""

# No `from __future__ import annotations`: FastAPI reads the route functions' annotations (Request) at run time.
import json
import logging
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ExtractionError, UserError
from pipeline.serving.upload import CLIP_SUFFIXES, TRANSCRIPT_MAX_BYTES, ApiError, public_message, receive_upload, validate_upload
from pipeline.serving.queue import Cancelled, PredictionQueue

if TYPE_CHECKING:
    from fastapi import FastAPI

    from pipeline.prediction.predict import Predictor

log = logging.getLogger(__name__)

WEB = Path(__file__).with_name("web")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
MULTIPART_SCHEMA = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["clip"], "properties": {
        "clip": {"type": "string", "format": "binary", "description": f"the video or audio clip ({' '.join(CLIP_SUFFIXES)})"},
        "transcript": {"type": "string", "format": "binary",
                       "description": "optional transcript (.csv .srt .vtt .txt); without one the clip is transcribed"}}}}}}}


def load_predictors(checkpoint: str | Path | None = None, workers: int = 1, *, asr: str | None = None,
                    runtime: dict[str, dict] | None = None, diarize: str = "auto", speakers: int | None = None) -> list["Predictor"]:
    """One Predictor per worker thread (each loads the checkpoints and extractors once; the checkpoint is located
    once for all); diarize, speakers as predict's. CheckpointError as predict."""
    from model.checkpoint import locate_models
    from pipeline.prediction.predict import Predictor

    if workers not in (1, 2):
        raise UserError(f"--workers {workers}: use 1 or 2 (a prediction keeps a core busy; this is a CPU server)")
    located = locate_models(checkpoint)
    return [Predictor(located, runtime=runtime, asr=asr, diarize=diarize, speakers=speakers) for _ in range(workers)]


def describe_models(predictor: "Predictor") -> dict[str, Any]:
    """What /api/models reports: the checkpoint folder, each model's task, feature spec and test metrics, the
    per-utterance outputs, the transcriber for clips without a transcript, the diarizer for clips whose transcript names
    no speaker, and the model card's text (or None)."""
    located = getattr(predictor, "located", None)  # None for a stand-in predictor (tests)
    folder = located.root if located is not None else None
    models = []
    for m in predictor.models:
        metrics_file = m.path.parent / "metrics.json"
        try:
            metrics = json.loads(metrics_file.read_text(encoding="utf-8")).get("test") if metrics_file.is_file() else None
        except (OSError, ValueError):
            metrics = None
        models.append({"name": m.name, "task": m.task, "emotion": m.emotion, "path": str(m.path.relative_to(folder)) if
                       folder is not None and m.path.is_relative_to(folder) else str(m.path), "features": m.spec, "transcriber": m.asr,
                       "diarizer": getattr(m, "diarize", None), "test_metrics": metrics})
    card = next((p for p in (folder / "MODEL_CARD.md", folder / "README.md") if p.is_file()), None) if folder is not None else None
    return {"checkpoint": str(folder) if folder is not None else None, "models": models, "outputs": predictor.columns, "modalities": predictor.modalities,
            "transcriber": predictor.asr, "diarizer": getattr(predictor, "diarize", None), "model_card": card.read_text(encoding="utf-8") if card else None}


def create_app(predictors: list[Any], *, max_upload_mb: float = 200,
               max_queue: int = 4, tmp_root: str | Path | None = None) -> "FastAPI":
    """The FastAPI app over loaded predictors (one per worker; see load_predictors).

    tmp_root: where per-request folders go (default: a new folder in the system's temporary folder, made at start-up
    and removed at shutdown; a given folder is kept, emptied of what the server put there).
    """
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException

    from pipeline.prediction.output import FORMATTERS

    if max_upload_mb <= 0:
        raise UserError(f"--max-upload-mb {max_upload_mb:g}: must be positive")
    work = PredictionQueue(predictors, max_queue=max_queue)
    max_bytes = int(max_upload_mb * 1024 * 1024)
    models = describe_models(predictors[0])
    models["limits"] = {"max_upload_mb": max_upload_mb, "transcript_max_mb": TRANSCRIPT_MAX_BYTES / 1024 / 1024,
                        "workers": work.workers, "max_queue": max_queue, "clip_types": list(CLIP_SUFFIXES),
                        "transcript_types": [".csv", ".srt", ".vtt", ".txt"]}

    @asynccontextmanager
    async def lifespan(app):
        # the temporary folder exists while the server runs: made at start-up, removed at shutdown
        own = tmp_root is None
        app.state.tmp_root = Path(tempfile.mkdtemp(prefix="multilogue-serve-")) if own else Path(tmp_root)
        app.state.tmp_root.mkdir(parents=True, exist_ok=True)
        try:
            yield
        finally:
            await run_in_threadpool(work.shutdown)
            if own:
                shutil.rmtree(app.state.tmp_root, ignore_errors=True)

    app = FastAPI(title="Multilogue", version="1", lifespan=lifespan, openapi_url="/api/openapi.json", docs_url=None,
                  redoc_url=None,  # their pages load scripts from a CDN; the schema itself is served
                  description="Per-utterance sentiment and emotions of a clip with Multilogue-Net. Errors are "
                              '`{"error": code, "detail": message}` with a 4xx status (503 when the queue is full).')
    app.state.queue, app.state.models = work, models

    app.add_middleware(_SecurityHeaders)

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, e: ApiError):
        extra = {"Retry-After": str(e.extra["retry_after"])} if "retry_after" in e.extra else None
        return JSONResponse(e.body(), status_code=e.status, headers=extra)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, e: HTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        return JSONResponse({"error": code, "detail": str(e.detail)}, status_code=e.status_code, headers=getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()))
        return JSONResponse({"error": "bad_request", "detail": f"{where}: {first.get('msg', 'invalid')}"}, status_code=400)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(WEB / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=WEB), name="static")

    @app.get("/api/health", summary="Liveness and the queue's state")
    async def health() -> dict:
        return {"status": "ok", "uptime_s": round(time.time() - work.started, 1), "queue": work.state()}

    @app.get("/api/models", summary="The loaded models: tasks, feature spec, outputs, model card, limits")
    async def loaded_models() -> dict:
        return models

    @app.post("/api/predict", summary="Per-utterance sentiment and emotions of an uploaded clip", openapi_extra=MULTIPART_SCHEMA,
              responses={400: {"description": "malformed upload, no clip, or an empty file"}, 413: {"description": "over --max-upload-mb"},
                         415: {"description": "not a clip or transcript by its extension, or not multipart"},
                         422: {"description": "unreadable or corrupt media, a bad transcript, or no speech found"},
                         503: {"description": "the queue is full; retry later"}})
    async def predict(request: Request, format: str = Query("json", pattern="^(json|csv)$",
                                                            description="json: what `predict --format json` prints; csv: its CSV")):
        with work.admit() as slot:
            folder = Path(tempfile.mkdtemp(prefix="req-", dir=request.app.state.tmp_root))
            slot.after(lambda: shutil.rmtree(folder, ignore_errors=True))
            upload = await receive_upload(request, folder, max_bytes)
            await run_in_threadpool(validate_upload, upload)
            clip, transcript = upload.clip.path, upload.transcript.path if upload.transcript else None
            started = time.perf_counter()
            try:
                result = await slot.run(lambda predictor: predictor.predict(clip, transcript=transcript), request.is_disconnected)
            except Cancelled:
                log.info("%s: the client left before its prediction started; dropped", upload.clip.name)
                return Response(status_code=499)
            except ExtractionError as e:
                message = public_message(e, upload)
                bad_transcript = upload.transcript is not None and upload.transcript.name in message
                raise ApiError(422, "bad_transcript" if bad_transcript else "unreadable_media", message) from e
            except Exception as e:
                log.exception("prediction failed on %s", upload.clip.name)
                raise ApiError(500, "internal", f"{upload.clip.name}: prediction failed ({type(e).__name__}: "
                                                f"{public_message(e, upload)}); see the server's log") from e
            result["clip"] = upload.clip.name
            log.info("%s: %d utterances in %.1f s", upload.clip.name, len(result["utterances"]), time.perf_counter() - started)
            if result.get("note"):
                raise ApiError(422, "no_speech", f"{upload.clip.name}: {result['note']}", {"result": result})
            if format == "csv":
                return Response(FORMATTERS["csv"]([result]) + "\n", media_type="text/csv; charset=utf-8")
            return JSONResponse(result)

    @app.post("/api/csv", summary="A result (or a list of results) from /api/predict as CSV")
    async def to_csv(request: Request):
        try:
            body = json.loads(await request.body())
            results = body if isinstance(body, list) else [body]
            text = FORMATTERS["csv"](results)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ApiError(400, "bad_request", f"the body is not a result of /api/predict ({type(e).__name__}: {e}); "
                                               "post the JSON it returned") from e
        return Response(text + "\n", media_type="text/csv; charset=utf-8")

    return app


class _SecurityHeaders:
    """Adds the content security policy (nothing but this server: no CDN, no inline script) to every response, and
    refuses a POST that a page of another origin sends (a website cannot make its visitors' browsers feed clips to
    their local server; clients that send no Origin, such as curl, are not browsers and pass).
    Plain ASGI rather than @app.middleware("http"), which would hide a client's disconnect from the endpoint."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["method"] == "POST":
            from urllib.parse import urlsplit

            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            origin = headers.get("origin")
            if origin is not None and urlsplit(origin).netloc != headers.get("host"):
                from starlette.responses import JSONResponse

                refuse = JSONResponse({"error": "forbidden", "detail": f"a page from {origin} may not post here; "
                                       "use this server's own page or a client outside the browser"}, status_code=403)
                return await refuse(scope, receive, send)

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                from starlette.datastructures import MutableHeaders

                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", CSP)
                headers.setdefault("X-Content-Type-Options", "nosniff")
            await send(message)

        await self.app(scope, receive, send_with_headers)


# ------------------------------------------------------------------ running it
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

    config = uvicorn.Config(app, log_level=log_level, log_config=None, timeout_graceful_shutdown=30, lifespan="on")
    return uvicorn.Server(config)


def run_server(app: "FastAPI", sock: socket.socket, log_level: str = "info") -> None:
    """Serve on the bound socket until Ctrl-C (uvicorn), then finish the running predictions and clean up."""
    _server(app, log_level).run(sockets=[sock])


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


__all__ = ["BackgroundServer", "address", "bind", "create_app", "describe_models", "load_predictors", "run_server"]
