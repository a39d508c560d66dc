"""Uploads for the web server (pipeline.serving.app): stream a multipart request body into a per-request folder, with a
size limit enforced while streaming, then check what arrived before any model runs.

    upload = await receive_upload(request, folder, max_bytes)      # ApiError 400 / 413 / 415
    validate_upload(upload)                                         # ApiError 400 / 415 / 422 (runs ffprobe)

Every refusal is an ApiError carrying the HTTP status, a short machine-readable code and a one-line message that
names the uploaded file and the fix; pipeline.serving.app turns it into `{"error": code, "detail": message}`.

| status | code | when |
|---|---|---|
| 400 | `bad_request` | not a well-formed multipart body, or no file in the `clip` field (a file under another name is dropped) |
| 400 | `empty_file` | the clip or the transcript has 0 bytes |
| 413 | `too_large` | the clip is over the limit (Content-Length says so, or the stream passes it), or the transcript over 2 MB |
| 413 | `too_long` | the clip lasts longer than the server takes (`Limits.max_seconds`) |
| 413 | `too_many_utterances` | the transcript has more utterances than the server takes (`Limits.max_utterances`) |
| 415 | `unsupported_type` | the body is not multipart/form-data, or a file's extension is not a clip's / a transcript's |
| 422 | `unreadable_media` | ffprobe cannot read the clip, or it has neither an audio nor a video stream |
| 422 | `bad_transcript` | the transcript cannot be read (not UTF-8, no utterances, a malformed cue) |

The folder is the caller's: it is never removed here, so one `finally` in the caller cleans up every outcome.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ExtractionError
from extractors.transcripts import TRANSCRIPT_SUFFIXES
from extractors.media import CLIP_SUFFIXES

if TYPE_CHECKING:
    from starlette.requests import Request

log = logging.getLogger(__name__)

TRANSCRIPT_MAX_BYTES = 2 * 1024 * 1024
FIELD_MAX_BYTES = 64 * 1024  # all non-file fields together (none are used; a client may send some)
FILE_FIELDS = ("clip", "transcript")


@dataclass(frozen=True)
class Limits:
    """How much work one request may ask for: the clip's bytes, its duration, and the utterances of its transcript
    (a clip without one is transcribed: its utterances are bounded by its duration, and the prediction by the
    workers' time limit)."""

    max_bytes: int = 200 * 1024 * 1024
    max_seconds: float | None = 600.0
    max_utterances: int | None = 500


class ApiError(Exception):
    """A request the server refuses: HTTP `status`, a short `code` and a one-line `message` for people."""

    def __init__(self, status: int, code: str, message: str, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra or {}

    def body(self) -> dict[str, Any]:
        """The JSON error body: {"error": code, "detail": message, ...extra}."""
        return {"error": self.code, "detail": self.message, **self.extra}


@dataclass
class UploadedFile:
    """One file part as saved: `name` is the client's file name (made safe), `path` where it lies, `size` in bytes."""

    name: str
    path: Path
    size: int = 0


@dataclass
class Upload:
    """What a request carried: the clip and, optionally, its transcript."""

    files: dict[str, UploadedFile] = field(default_factory=dict)

    @property
    def clip(self) -> UploadedFile:
        return self.files["clip"]

    @property
    def transcript(self) -> UploadedFile | None:
        return self.files.get("transcript")


def safe_name(name: str, default: str) -> str:
    """The last component of a client's file name, without control or path characters (letters of any script
    stay), at most 120 characters; `default` when nothing is left."""
    name = unicodedata.normalize("NFC", name.replace("\\", "/").split("/")[-1])
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    name = re.sub(r"\s+", " ", name).strip(" .")
    if len(name) > 120:
        stem, dot, suffix = name.rpartition(".")
        name = (stem[: 119 - len(suffix)] + "." + suffix) if dot and len(suffix) < 10 else name[:120]
    return name or default


def _limits(max_bytes: int) -> dict[str, int]:
    return {"clip": max_bytes, "transcript": TRANSCRIPT_MAX_BYTES}


def _mb(n: float) -> str:
    return f"{n / 1024 / 1024:g} MB"


async def receive_upload(request: "Request", folder: Path, max_bytes: int) -> Upload:
    """Stream the request's multipart body into `folder` (folder/clip/NAME, folder/transcript/NAME).

    Only the files in the fields `clip` and `transcript` are kept; other fields and files under other names are
    read and dropped (a body that streams more than any allowed upload is refused). Raises ApiError: 415 when the
    body is not multipart/form-data, 413 as soon as the clip passes `max_bytes` (or the Content-Length announces
    more than any allowed upload), 400 for a malformed or truncated body or a missing clip.
    """
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header
    from starlette.requests import ClientDisconnect

    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise ApiError(415, "unsupported_type", "send the clip as multipart/form-data with a file field named 'clip' "
                                                "(and optionally 'transcript')")
    limits = _limits(max_bytes)
    most = sum(limits.values()) + FIELD_MAX_BYTES  # the largest body a valid upload can have
    announced = request.headers.get("content-length")
    if announced and announced.isdigit() and int(announced) > most:
        raise ApiError(413, "too_large", f"the upload is {_mb(int(announced))}, over the server's limit of {_mb(max_bytes)} "
                                         "a clip; cut or compress the clip, or start the server with a larger --max-upload-mb")
    upload = Upload()
    state: dict[str, Any] = {"headers": {}, "field": b"", "value": b"", "part": None, "handle": None, "other": 0, "ended": False,
                             "dropped": None, "stray": [], "body": 0}

    def on_part_begin() -> None:
        state["headers"] = {}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].decode("latin-1").lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        _, disp = parse_options_header(state["headers"].get("content-disposition", b""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        filename = disp.get(b"filename")
        state["part"], state["dropped"] = None, None
        if filename is not None and (name not in FILE_FIELDS or name in upload.files):
            state["dropped"] = name  # a file under another name (or a second one): read and dropped, not a form field
            state["stray"].append(name)
        elif name in FILE_FIELDS and filename is not None:
            client = safe_name(filename.decode("utf-8", "replace"), name)
            (folder / name).mkdir(parents=True, exist_ok=True)
            part = UploadedFile(client, folder / name / client)
            upload.files[name] = part
            state["part"], state["handle"] = name, open(part.path, "wb")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        name = state["part"]
        if name is None:
            if state["dropped"] is not None:
                return  # the body's own limit bounds it (below)
            state["other"] += end - start
            if state["other"] > FIELD_MAX_BYTES:
                raise ApiError(413, "too_large", f"the form fields besides the files pass {_mb(FIELD_MAX_BYTES)}; send only 'clip' and 'transcript'")
            return
        part = upload.files[name]
        part.size += end - start
        if part.size > limits[name]:
            what = "the clip" if name == "clip" else "the transcript"
            raise ApiError(413, "too_large", f"{part.name}: {what} is over the server's limit of {_mb(limits[name])}; "
                           + ("cut or compress it, or start the server with a larger --max-upload-mb" if name == "clip" else "is it really a transcript?"))
        state["handle"].write(data[start:end])

    def on_part_end() -> None:
        if state["handle"] is not None:
            state["handle"].close()
        state["part"], state["handle"] = None, None

    def on_end() -> None:
        state["ended"] = True

    parser = MultipartParser(params[b"boundary"], {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_part_end": on_part_end, "on_end": on_end})
    try:
        async for chunk in request.stream():
            if chunk:
                state["body"] += len(chunk)
                if state["body"] > most:  # only a body without Content-Length (chunked) gets here
                    raise ApiError(413, "too_large", f"the upload passes {_mb(most)}, more than any upload the server takes "
                                   f"(a clip up to {_mb(max_bytes)}); cut or compress the clip, or start the server with a larger --max-upload-mb")
                parser.write(chunk)
        parser.finalize()
    except MultipartParseError as e:
        raise ApiError(400, "bad_request", f"the multipart body is malformed ({e}); send a standard multipart/form-data upload") from e
    except ClientDisconnect as e:  # nobody will read the answer; the caller's clean-up still runs
        log.info("a client left during its upload")
        raise ApiError(400, "client_gone", "the client disconnected during the upload") from e
    finally:
        if state["handle"] is not None:
            state["handle"].close()
    if not state["ended"]:
        raise ApiError(400, "bad_request", "the upload ended before the end of its multipart body; send it again")
    if "clip" not in upload.files:
        stray = [n for n in state["stray"] if n not in FILE_FIELDS]
        seen = f" (this upload's file was in the field {stray[0]!r})" if stray else ""
        raise ApiError(400, "bad_request", f"no clip in the upload: send the video (or audio) file in the multipart field 'clip'{seen}")
    return upload


def validate_upload(upload: Upload, limits: Limits | None = None) -> dict[str, Any]:
    """Check the files before any model runs; returns the clip's probe ({"duration", "has_audio", "has_video", ...}).

    Blocking (runs ffprobe, ~0.1 s, and reads the transcript): call it from a worker thread. Raises ApiError: 400 for
    an empty file, 415 for a file that is not a clip or transcript by its extension, 422 for a clip ffprobe cannot
    read or that has no stream or a transcript that cannot be read, 413 for a clip longer or a transcript with more
    utterances than `limits` allow.
    """
    from extractors.media import probe
    from extractors.transcripts import read_transcript

    clip, transcript = upload.clip, upload.transcript
    if clip.size == 0:
        raise ApiError(400, "empty_file", f"{clip.name}: the file is empty (0 bytes); choose the clip again")
    if Path(clip.name).suffix.lower() not in CLIP_SUFFIXES:
        raise ApiError(415, "unsupported_type", f"{clip.name}: not a video or audio file by its extension; upload one of "
                                                f"{' '.join(CLIP_SUFFIXES)}")
    if transcript is not None:
        if Path(transcript.name).suffix.lower() not in TRANSCRIPT_SUFFIXES:
            raise ApiError(415, "unsupported_type", f"{transcript.name}: not a transcript by its extension; upload one of "
                                                    f"{' '.join(TRANSCRIPT_SUFFIXES)}, or none to transcribe the clip")
        if transcript.size == 0:
            raise ApiError(400, "empty_file", f"{transcript.name}: the transcript is empty (0 bytes); choose it again, or none")
    try:
        info = probe(clip.path)
    except ExtractionError as e:
        raise ApiError(422, "unreadable_media", public_message(e, upload)) from e
    if not info.get("has_audio") and not info.get("has_video"):
        raise ApiError(422, "unreadable_media", f"{clip.name}: no audio or video stream in it; upload a video or audio clip")
    limits = limits or Limits()
    if limits.max_seconds is not None and info["duration"] > limits.max_seconds:
        raise ApiError(413, "too_long", f"{clip.name}: {info['duration']:.1f} s long, over the server's limit of {limits.max_seconds:g} s "
                                        "a clip; cut it into parts, or start the server with a larger --max-clip-seconds")
    if transcript is not None and limits.max_utterances is not None:
        try:
            n = len(read_transcript(transcript.path).segments)
        except ExtractionError as e:
            raise ApiError(422, "bad_transcript", public_message(e, upload)) from e
        if n > limits.max_utterances:
            raise ApiError(413, "too_many_utterances", f"{transcript.name}: {n} utterances, over the server's limit of "
                           f"{limits.max_utterances} a clip; split the clip and its transcript, or start the server with a larger --max-utterances")
    return info


def public_message(error: BaseException, upload: Upload) -> str:
    """An error's text in one line, with the server's temporary paths replaced by the uploaded files' names."""
    text = " ".join(str(error).split()) or type(error).__name__
    for part in upload.files.values():
        for form in ("file:" + str(part.path.resolve()), str(part.path.resolve()), str(part.path)):
            text = text.replace(form, part.name)
    return text


__all__ = ["ApiError", "CLIP_SUFFIXES", "Limits", "Upload", "UploadedFile", "public_message", "receive_upload", "safe_name",
           "validate_upload"]
