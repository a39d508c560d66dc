"""A small HTTP client for the server's tests (stdlib only): multipart uploads, streamed or not, and raw sockets."""

from __future__ import annotations

import http.client
import json
import uuid
from pathlib import Path
from urllib.parse import urlsplit


def multipart(files: dict[str, tuple[str, bytes]], fields: dict[str, str] | None = None) -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data upload; files: field -> (file name, content)."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in (fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, content) in files.items():
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n")
        parts.append(head.encode("utf-8") + content + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def request(url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None,
            chunked: bool = False, timeout: float = 120) -> Reply:
    """One request on a fresh connection; chunked: send the body in 64 KiB chunks without a Content-Length."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if chunked and body is not None:
            conn.request(method, path, body=(body[i:i + 65536] for i in range(0, len(body), 65536)), headers=headers or {},
                         encode_chunked=True)
        else:
            conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        return Reply(res.status, {k.lower(): v for k, v in res.getheaders()}, res.read())
    finally:
        conn.close()


def upload(url: str, clip: Path | tuple[str, bytes], transcript: Path | tuple[str, bytes] | None = None, *,
           query: str = "", chunked: bool = False) -> Reply:
    """POST url/api/predict with the clip (a path or (name, bytes)) and optionally a transcript."""
    def as_part(x):
        return (x.name, x.read_bytes()) if isinstance(x, Path) else x

    files = {"clip": as_part(clip)}
    if transcript is not None:
        files["transcript"] = as_part(transcript)
    body, ctype = multipart(files)
    return request(f"{url}/api/predict{query}", "POST", body, {"Content-Type": ctype}, chunked=chunked)
