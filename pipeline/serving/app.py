"""A local web viewer and HTTP API on the prediction models (`python cli.py serve`).

    workers = start_workers("model/pretrained", 1, time_limit=300)   # pipeline.serving.worker: child processes
    app = create_app(workers, max_clip_seconds=600)                  # FastAPI app
    sock = bind("127.0.0.1", 8000); run_server(app, sock)            # pipeline.serving.server: what cli.py serve does
    with BackgroundServer(app) as server: ...server.url...           # tests and benchmarks

Endpoints (the schema is served at /api/openapi.json):
- `GET /`: the page (pipeline/serving/web: one HTML, one JS, one CSS; no build step, nothing from a CDN);
- `POST /api/predict[?format=json|csv]`: multipart `clip` + optional `transcript` -> what `cli.py predict
  --format json` prints for the clip (`clip` is the uploaded file's name, `models` the checkpoints' paths relative to
  the served folder), or its CSV;
- `POST /api/preview`: multipart `clip` -> a WebM the browser can play (pipeline.serving.preview), for clips it cannot;
- `POST /api/csv`: a result (or a list of results) as the API returned it -> the CSV `predict --format csv` writes;
- `GET /api/models`: the loaded models (task, feature spec, test metrics), what they output, the model card, limits;
- `GET /api/health`: {"status": "ok"} with the queue's state.

Errors are JSON `{"error": code, "detail": one line naming the file and the fix}` with a 4xx status, 503 when the
queue is full, the prediction passed the time limit or the server is stopping (see pipeline.serving.upload for the
upload checks); a clip in which no speech is found is a 422 `no_speech` whose body also carries the empty result.
No answer names an absolute path of the server. Requests whose Host is not one of the server's names are refused
(a DNS-rebinding page cannot reach it), and so are POSTs from pages of another origin.

Each request gets its own folder under the server's temporary folder, removed when the request is over whatever
happened (error, client gone, prediction finished after the client left); the server's folder is removed at shutdown.
Predictions run in 1-2 worker processes behind a bounded queue (pipeline.serving.queue): a request beyond it gets 503
at once; a prediction past the time limit is killed (503); at shutdown (SIGTERM or SIGINT) the running ones are
killed at once (pipeline.serving.server), so the server stops within seconds and leaves no process behind.
"""

# No `from __future__ import annotations`: FastAPI reads the route functions' annotations (Request) at run time.
import asyncio
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from core.errors import ExtractionError, UserError
from core.network import is_loopback
from pipeline.serving.queue import Cancelled, PredictionQueue
from pipeline.serving.upload import (CLIP_SUFFIXES, TRANSCRIPT_MAX_BYTES, ApiError, Limits, Upload, public_message, receive_upload,
                                     validate_upload)
from pipeline.serving.worker import Died, Stopped, TimeLimit

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

WEB = Path(__file__).with_name("web")
REPO = Path(__file__).resolve().parents[2]
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
CSV_MAX_BYTES = 16 * 1024 * 1024  # POST /api/csv: results of a long session fit many times over
CLIP_PART = {"clip": {"type": "string", "format": "binary", "description": f"the video or audio clip ({' '.join(CLIP_SUFFIXES)})"}}
MULTIPART_SCHEMA = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["clip"], "properties": {**CLIP_PART,
        "transcript": {"type": "string", "format": "binary",
                       "description": "optional transcript (.csv .srt .vtt .txt); without one the clip is transcribed"}}}}}}}
CLIP_SCHEMA = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["clip"], "properties": CLIP_PART}}}}}
REFUSED = {400: {"description": "malformed upload, no file in the field 'clip', an empty file, or a Host that is not this server's (bad_host)"},
           403: {"description": "a page of another origin may not post here (forbidden): use this server's page, or a client outside the browser"},
           413: {"description": "over --max-upload-mb (too_large), longer than --max-clip-seconds (too_long), or a transcript of more than "
                                "--max-utterances utterances (too_many_utterances)"},
           415: {"description": "not a clip or transcript by its extension, or not multipart"},
           422: {"description": "unreadable or corrupt media, a bad transcript, or no speech found"},
           503: {"description": "the queue is full (busy, with Retry-After), the work passed --time-limit and was stopped (time_limit), "
                                "or the server is stopping (stopping)"}}


def describe_workers(worker: Any) -> dict[str, Any]:
    """What /api/models reports of the models: a PredictionWorker's description (made by its child), or for an
    in-process Predictor (tests) the same from pipeline.prediction.describe; a bare stand-in gets an empty one."""
    if getattr(worker, "description", None) is not None:
        return dict(worker.description)
    if getattr(worker, "located", None) is not None:
        from pipeline.prediction.describe import describe_models

        return {**describe_models(worker.located), "outputs": worker.columns, "modalities": worker.modalities, "transcriber": worker.asr,
                "diarizer": getattr(worker, "diarize", None)}
    return {"checkpoint": None, "models": [], "report": None, "model_card": None, "model_card_file": None, "licence": None,
            "outputs": list(getattr(worker, "columns", [])), "modalities": list(getattr(worker, "modalities", [])),
            "transcriber": getattr(worker, "asr", None)}


def host_names(host: str, extra: Iterable[str] = ()) -> frozenset[str] | None:
    """The Host names a server listening on `host` answers to (None: any, when `extra` holds "*"): the loopback names,
    `host` itself, and for a server beyond this machine the machine's own names and addresses; plus `extra`."""
    import socket

    names = {*LOOPBACK_NAMES, host.strip("[]").lower()}
    if not is_loopback(host):
        for name in (socket.gethostname(), socket.getfqdn()):
            names.add(name.lower())
            try:
                names.update(info[4][0] for info in socket.getaddrinfo(name, None))
            except OSError:
                pass
    names.update(e.strip("[]").lower() for e in extra)
    return None if "*" in names else frozenset(names - {"", "0.0.0.0", "::"})


def create_app(workers: list[Any], *, max_upload_mb: float = 200, max_queue: int = 4, tmp_root: str | Path | None = None,
               max_clip_seconds: float | None = 600, max_utterances: int | None = 500,
               allowed_hosts: Iterable[str] | None = LOOPBACK_NAMES) -> "FastAPI":
    """The FastAPI app over started workers (pipeline.serving.worker.start_workers; tests may pass in-process
    predictors, which cannot be stopped midway).

    max_clip_seconds, max_utterances: the most work one request may ask for (None: no limit); the time limit of a
    prediction is the workers' own. allowed_hosts: the Host names served (see host_names; None: any).
    tmp_root: where per-request folders go (default: a new folder in the system's temporary folder, made at start-up
    and removed at shutdown; a given folder is kept, emptied of what the server put there).
    """
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.background import BackgroundTask
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException

    from pipeline.prediction.output import FORMATTERS
    from pipeline.serving.preview import kill_group, preview_command, run_preview

    if max_upload_mb <= 0:
        raise UserError(f"--max-upload-mb {max_upload_mb:g}: must be positive")
    work = PredictionQueue(workers, max_queue=max_queue)
    limits = Limits(int(max_upload_mb * 1024 * 1024), max_clip_seconds, max_utterances)
    time_limit = getattr(workers[0], "time_limit", None)
    models = describe_workers(workers[0])
    models["limits"] = {"max_upload_mb": max_upload_mb, "transcript_max_mb": TRANSCRIPT_MAX_BYTES / 1024 / 1024,
                        "max_clip_seconds": max_clip_seconds, "max_utterances": max_utterances, "time_limit_s": time_limit,
                        "workers": work.workers, "max_queue": max_queue, "clip_types": list(CLIP_SUFFIXES),
                        "transcript_types": [".csv", ".srt", ".vtt", ".txt"]}
    model_paths = {m["name"]: m["path"] for m in models["models"]}
    previews: set = set()  # ffmpeg processes making previews, for stop()
    preview_gate = asyncio.Semaphore(work.workers)

    def stop() -> None:
        """Kill what runs (predictions, previews) and refuse what waits; signal-safe (pipeline.serving.server)."""
        work.stop()
        for proc in list(previews):
            kill_group(proc)

    def close() -> None:
        """stop(), reap the workers and remove the server's own temporary folder; idempotent."""
        work.shutdown()
        if app.state.own_tmp and app.state.tmp_root is not None:
            shutil.rmtree(app.state.tmp_root, ignore_errors=True)

    @asynccontextmanager
    async def lifespan(app):
        # the temporary folder exists while the server runs: made at start-up, removed at shutdown
        app.state.own_tmp = tmp_root is None
        app.state.tmp_root = Path(tempfile.mkdtemp(prefix="multilogue-serve-")) if tmp_root is None else Path(tmp_root)
        app.state.tmp_root.mkdir(parents=True, exist_ok=True)
        try:
            yield
        finally:
            await run_in_threadpool(close)

    app = FastAPI(title="Multilogue", version="1", lifespan=lifespan, openapi_url="/api/openapi.json", docs_url=None,
                  redoc_url=None,  # their pages load scripts from a CDN; the schema itself is served
                  description="Per-utterance sentiment and emotions of a clip with Multilogue-Net. Errors are "
                              '`{"error": code, "detail": message}` with a 4xx status (503 when the queue is full, the work '
                              "passed the time limit, or the server is stopping). Every endpoint answers 400 `bad_host` to a "
                              "Host that is not this server's name; a POST from a page of another origin gets 403 `forbidden`.")
    app.state.queue, app.state.models, app.state.stop, app.state.close = work, models, stop, close
    app.state.own_tmp, app.state.tmp_root = False, None

    app.add_middleware(_Guard, hosts=None if allowed_hosts is None else frozenset(h.strip("[]").lower() for h in allowed_hosts))

    def public(error: BaseException, upload: Upload) -> str:
        """An error's line with no path of the server: the uploaded files by their names, the rest relative."""
        text = public_message(error, upload)
        for root, shown in ((app.state.tmp_root, "(temporary folder)"), (REPO, ".")):
            if root is not None:
                text = text.replace(str(Path(root).resolve()), shown).replace(str(root), shown)
        return text

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

    def refused(e: Exception, upload: Upload, doing: str) -> ApiError:
        """The answer to a job that did not finish."""
        name = upload.clip.name
        if isinstance(e, TimeLimit):
            return ApiError(503, "time_limit", f"{name}: {doing} took longer than the server's limit of {time_limit:g} s and was "
                                               "stopped; send a shorter clip, or start the server with a larger --time-limit")
        if isinstance(e, Stopped):
            return ApiError(503, "stopping", f"{name}: the server is stopping; send it again when the server is back", {"retry_after": 30})
        if isinstance(e, Died):
            return ApiError(500, "internal", f"{name}: {e}; see the server's log (the worker has been restarted)")
        log.error("%s failed on %s: %s", doing, name, e)
        return ApiError(500, "internal", f"{name}: {doing} failed ({public(e, upload)}); see the server's log")

    @app.post("/api/predict", summary="Per-utterance sentiment and emotions of an uploaded clip", openapi_extra=MULTIPART_SCHEMA,
              responses=REFUSED)
    async def predict(request: Request, format: str = Query("json", pattern="^(json|csv)$",
                                                            description="json: what `predict --format json` prints; csv: its CSV")):
        with work.admit() as slot:
            folder = Path(tempfile.mkdtemp(prefix="req-", dir=request.app.state.tmp_root))
            slot.after(lambda: shutil.rmtree(folder, ignore_errors=True))
            upload = await receive_upload(request, folder, limits.max_bytes)
            await run_in_threadpool(validate_upload, upload, limits)
            clip, transcript = upload.clip.path, upload.transcript.path if upload.transcript else None
            started = time.perf_counter()
            try:
                result = await slot.run(lambda worker: worker.predict(clip, transcript=transcript), request.is_disconnected)
            except Cancelled:
                log.info("%s: the client left before its prediction started; dropped", upload.clip.name)
                return Response(status_code=499)
            except ExtractionError as e:
                message = public(e, upload)
                bad_transcript = upload.transcript is not None and upload.transcript.name in message
                raise ApiError(422, "bad_transcript" if bad_transcript else "unreadable_media", message) from e
            except Exception as e:
                raise refused(e, upload, "the prediction") from e
            result["clip"] = upload.clip.name
            result["models"] = {name: model_paths.get(name, Path(str(path)).name) for name, path in (result.get("models") or {}).items()}
            log.info("%s: %d utterances in %.1f s", upload.clip.name, len(result["utterances"]), time.perf_counter() - started)
            if result.get("note"):
                raise ApiError(422, "no_speech", f"{upload.clip.name}: {result['note']}", {"result": result})
            if format == "csv":
                return Response(FORMATTERS["csv"]([result]) + "\n", media_type="text/csv; charset=utf-8")
            return JSONResponse(result)

    @app.post("/api/preview", summary="A WebM of an uploaded clip that the browser can play (for clips it cannot play)",
              openapi_extra=CLIP_SCHEMA, responses={200: {"description": "video/webm (VP8 + Opus), or audio/webm when the clip has no "
                                                          "video stream", "content": {"video/webm": {}, "audio/webm": {}}}, **REFUSED})
    async def preview(request: Request):
        with work.admit() as slot:
            folder = Path(tempfile.mkdtemp(prefix="req-", dir=request.app.state.tmp_root))
            slot.after(lambda: shutil.rmtree(folder, ignore_errors=True))
            upload = await receive_upload(request, folder, limits.max_bytes)
            upload.files.pop("transcript", None)  # not needed for a preview
            info = await run_in_threadpool(validate_upload, upload, limits)
            out = folder / "preview.webm"
            try:
                async with preview_gate:  # at most one ffmpeg per worker: previews share the cores with predictions
                    made = await run_preview(preview_command(upload.clip.path, out, info["has_video"]), time_limit=time_limit,
                                             cancelled=request.is_disconnected, running=previews, stopping=lambda: work.stopping)
            except Exception as e:
                raise refused(e, upload, "making the preview") from e
            if not made:
                return Response(status_code=499)
            handle = open(out, "rb")  # read after the folder is removed with the request: the open file stays readable
            size = out.stat().st_size
        kind = "video/webm" if info["has_video"] else "audio/webm"
        return StreamingResponse(iter(lambda: handle.read(1 << 16), b""), media_type=kind, background=BackgroundTask(handle.close),
                                 headers={"Content-Length": str(size), "Cache-Control": "no-store"})

    @app.post("/api/csv", summary="A result (or a list of results) from /api/predict as CSV", responses={
        400: REFUSED[400], 403: REFUSED[403], 413: {"description": f"a body over {CSV_MAX_BYTES // 1024 // 1024} MB (too_large)"}})
    async def to_csv(request: Request):
        body = await _read_capped(request, CSV_MAX_BYTES)
        try:
            results = json.loads(body)
            results = results if isinstance(results, list) else [results]
            text = FORMATTERS["csv"](results)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ApiError(400, "bad_request", f"the body is not a result of /api/predict ({type(e).__name__}: {e}); "
                                               "post the JSON it returned") from e
        return Response(text + "\n", media_type="text/csv; charset=utf-8")

    return app


async def _read_capped(request: Any, most: int) -> bytes:
    """The request's body, refused with 413 as soon as it passes `most` bytes (or announces more)."""
    announced = request.headers.get("content-length")
    refuse = ApiError(413, "too_large", f"the body is over the server's limit of {most // 1024 // 1024} MB for a CSV; "
                                        "post one result (or a few) at a time")
    if announced and announced.isdigit() and int(announced) > most:
        raise refuse
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > most:
            raise refuse
        chunks.append(chunk)
    return b"".join(chunks)


class _Guard:
    """Refuses a request whose Host is not one of the server's names (400 `bad_host`: a web page whose domain an
    attacker points at 127.0.0.1, DNS rebinding, cannot read or post anything), and a POST that a page of another
    origin sends (403 `forbidden`: a website cannot make its visitors' browsers feed clips to their local server;
    clients that send no Origin, such as curl, are not browsers and pass). Adds the content security policy (nothing
    but this server: no CDN, no inline script) to every response.
    Plain ASGI rather than @app.middleware("http"), which would hide a client's disconnect from the endpoint."""

    def __init__(self, app: Any, hosts: frozenset[str] | None):
        self.app, self.hosts = app, hosts

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from urllib.parse import urlsplit

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        refusal = None
        if self.hosts is not None:
            try:
                name = (urlsplit("//" + host).hostname or "").rstrip(".")
            except ValueError:
                name = ""
            if name not in self.hosts:
                refusal = (400, "bad_host", f"this server does not answer to the host name {host!r} (it serves "
                                            f"{', '.join(sorted(self.hosts))}); open it by one of those, or start it with --allowed-host {name or 'NAME'}")
        origin = headers.get("origin")
        if refusal is None and scope["method"] == "POST" and origin is not None and urlsplit(origin).netloc != host:
            refusal = (403, "forbidden", f"a page from {origin} may not post here; use this server's own page or a client outside the browser")
        if refusal is not None:
            from starlette.responses import JSONResponse

            status, code, detail = refusal
            return await JSONResponse({"error": code, "detail": detail}, status_code=status, headers={"Content-Security-Policy": CSP})(
                scope, receive, send)

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                from starlette.datastructures import MutableHeaders

                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", CSP)
                headers.setdefault("X-Content-Type-Options", "nosniff")
            await send(message)

        await self.app(scope, receive, send_with_headers)


__all__ = ["CSV_MAX_BYTES", "LOOPBACK_NAMES", "create_app", "describe_workers", "host_names"]
