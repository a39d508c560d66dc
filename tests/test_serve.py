"""The HTTP API of `cli.py serve` on a real uvicorn server (tiny models trained in conftest's `served_models`):
every endpoint, every refusal (non-media, empty, over the limit, corrupt, no speech, bad transcript), the bounded
queue (503, jobs of clients that left), uploads cut off midway, the temp folder left empty, and the CLI itself."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.webclient import multipart, request, upload

ROOT = Path(__file__).resolve().parents[1]


def cli_json(capsys, *argv) -> dict:
    import cli

    assert cli.main([str(a) for a in argv]) == 0
    return json.loads(capsys.readouterr().out)


def wait_until(check, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting for the server"
        time.sleep(0.05)


def leftovers(tmp_root: Path) -> list[Path]:
    """What requests left in the server's temporary folder (each request's folder lies directly in it)."""
    return sorted(tmp_root.iterdir())


@pytest.fixture(scope="module")
def server(served_models, tmp_path_factory):
    """The app on the session's predictor, served on a free port of 127.0.0.1; its temp folder is inspectable."""
    from pipeline.serving.app import BackgroundServer, create_app

    tmp_root = tmp_path_factory.mktemp("serve-tmp")
    app = create_app([served_models["predictor"]], max_upload_mb=5, tmp_root=tmp_root)
    with BackgroundServer(app) as running:
        running.tmp_root = tmp_root
        yield running
    assert leftovers(tmp_root) == []


def test_predict_returns_what_cli_predict_prints(server, served_models, capsys, tmp_path):
    """Same JSON as `predict --format json` (the clip named by its uploaded file name), same CSV; a non-ASCII name survives."""
    clip = tmp_path / "café über.mp4"
    clip.write_bytes(served_models["clip"].read_bytes())
    srt = tmp_path / "naïve.srt"
    srt.write_bytes(served_models["srt"].read_bytes())
    expected = cli_json(capsys, "predict", clip, "--transcript", srt, "--checkpoint", served_models["runs"], "--format", "json")

    reply = upload(server.url, clip, srt)
    assert reply.status == 200, reply.body
    got = reply.json()
    assert got["clip"] == "café über.mp4" and got["transcript"] == "naïve.srt"
    assert {k: v for k, v in got.items() if k != "clip"} == {k: v for k, v in expected.items() if k != "clip"}
    assert [(u["speaker"], u["text"]) for u in got["utterances"]] == served_models["target"]
    assert leftovers(server.tmp_root) == []

    import cli

    assert cli.main(["predict", str(clip), "--transcript", str(srt), "--checkpoint", str(served_models["runs"]), "--format", "csv"]) == 0
    expected_csv = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    as_csv = upload(server.url, clip, srt, query="?format=csv")
    assert as_csv.status == 200 and as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [{**r, "clip": ""} for r in rows] == [{**r, "clip": ""} for r in expected_csv] and rows[0]["clip"] == "café über.mp4"
    converted = request(server.url + "/api/csv", "POST", json.dumps(got).encode(), {"Content-Type": "application/json"})
    assert converted.status == 200 and converted.text == as_csv.text
    bad = request(server.url + "/api/csv", "POST", b'{"not": "a result"}', {"Content-Type": "application/json"})
    assert bad.status == 400 and bad.json()["error"] == "bad_request"


def test_without_transcript_the_clip_is_transcribed(server, served_models):
    reply = upload(server.url, served_models["clip"])
    assert reply.status == 200
    out = reply.json()
    assert out["transcript"] == "whisper tiny.en (automatic)" and out["utterances"]
    assert all(-3 <= u["sentiment"] <= 3 and 0 <= u["emotions"]["happiness"] <= 1 for u in out["utterances"])


def test_models_health_schema_and_page(server, served_models):
    models = request(server.url + "/api/models").json()
    assert {m["name"] for m in models["models"]} == {"regression", "happiness"}
    reg = next(m for m in models["models"] if m["name"] == "regression")
    assert reg["task"] == "regression" and reg["path"] == "regression/checkpoint.pt"
    assert reg["features"]["text"]["name"] == "glove" and reg["features"]["audio"]["dim"] == 384 and "test_metrics" in reg
    assert models["outputs"] == ["sentiment", "label", "happiness"] and models["transcriber"]["name"] == "whisper"
    assert models["limits"]["max_upload_mb"] == 5 and ".mp4" in models["limits"]["clip_types"]
    assert "model_card" in models

    health = request(server.url + "/api/health").json()
    assert health["status"] == "ok" and health["queue"]["workers"] == 1 and health["queue"]["running"] == 0

    schema = request(server.url + "/api/openapi.json").json()
    assert {"/api/predict", "/api/models", "/api/health", "/api/csv"} <= set(schema["paths"])
    body = schema["paths"]["/api/predict"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["required"] == ["clip"] and set(body["properties"]) == {"clip", "transcript"}

    page = request(server.url + "/")
    assert page.status == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/static/app.js"' in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        reply = request(server.url + asset)
        assert reply.status == 200 and reply.body
        # nothing from another origin: no CDN at run time
        assert not re.search(r"(src|href)=[\"']?(https?:)?//", reply.text) and "https://" not in reply.text.replace("http://www.w3.org", "")
    assert request(server.url + "/nope").json()["error"] == "not_found"
    # a page of another origin may not post clips (a same-origin page, and clients without Origin, may)
    body, ctype = multipart({"clip": ("x.mp4", b"")})
    foreign = request(server.url + "/api/predict", "POST", body, {"Content-Type": ctype, "Origin": "http://evil.example"})
    assert foreign.status == 403 and foreign.json()["error"] == "forbidden"
    host = server.url.removeprefix("http://")
    same = request(server.url + "/api/predict", "POST", body, {"Content-Type": ctype, "Origin": server.url, "Host": host})
    assert same.status == 400 and same.json()["error"] == "empty_file"


def _quiet_clip(path: Path) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=gray:s=64x64:d=2:r=10", "-f", "lavfi",
                    "-i", "anoisesrc=color=white:amplitude=0.0003:d=2", "-shortest", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", str(path)], check=True)
    return path


def test_bad_uploads_are_clear_4xx_and_leave_nothing(server, served_models, tmp_path):
    from demo.clipgen import astronaut, make_silent_video

    clip = served_models["clip"]
    good = clip.read_bytes()
    mute = tmp_path / "mute.mp4"
    make_silent_video(mute, 1.0, astronaut())
    cases = [  # (clip, transcript, status, code, words in the message)
        (("notes.txt", b"hello"), None, 415, "unsupported_type", ["notes.txt", "not a video or audio file", ".mp4"]),
        (("empty.mp4", b""), None, 400, "empty_file", ["empty.mp4", "empty"]),
        (("garbage.mp4", b"this is not a video at all" * 40), None, 422, "unreadable_media", ["garbage.mp4", "cannot read it", "re-export"]),
        (("cut.mp4", good[: len(good) // 3]), None, 422, "unreadable_media", ["cut.mp4", "cannot read it"]),
        (_quiet_clip(tmp_path / "quiet.mp4"), None, 422, "no_speech", ["quiet.mp4", "no speech detected", "give a transcript"]),
        (mute, None, 422, "no_speech", ["mute.mp4", "no audio stream"]),
        (clip, ("words.pdf", b"%PDF"), 415, "unsupported_type", ["words.pdf", "not a transcript", ".srt"]),
        (clip, ("words.srt", b""), 400, "empty_file", ["words.srt", "empty"]),
        (clip, ("late.srt", b"1\n00:01:00,000 --> 00:01:02,000\nhello\n"), 422, "bad_transcript", ["late.srt"]),
    ]
    for clip_part, transcript, status, code, words in cases:
        reply = upload(server.url, clip_part, transcript)
        body = reply.json()
        assert (reply.status, body["error"]) == (status, code), body
        assert all(w in body["detail"] for w in words), body["detail"]
        assert "\n" not in body["detail"] and str(server.tmp_root) not in body["detail"]
        assert leftovers(server.tmp_root) == []
    assert body["detail"]  # the last message reads as one line naming the file
    no_speech = upload(server.url, tmp_path / "quiet.mp4").json()
    assert no_speech["result"]["utterances"] == [] and no_speech["result"]["clip"] == "quiet.mp4"

    no_clip_body, ctype = multipart({"transcript": ("a.srt", b"x")})
    reply = request(server.url + "/api/predict", "POST", no_clip_body, {"Content-Type": ctype})
    assert reply.status == 400 and "field 'clip'" in reply.json()["detail"]
    reply = request(server.url + "/api/predict", "POST", b"clip=1", {"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status == 415 and "multipart/form-data" in reply.json()["detail"]
    reply = request(server.url + "/api/predict", "POST", b"--x\r\nnonsense", {"Content-Type": "multipart/form-data; boundary=x"})
    assert reply.status == 400 and reply.json()["error"] == "bad_request"
    assert upload(server.url, clip, query="?format=xml").status == 400
    assert leftovers(server.tmp_root) == []


def test_uploads_over_the_limit_are_413_while_streaming(server, tmp_path):
    big = ("big.mp4", os.urandom(6 * 1024 * 1024))  # the server takes 5 MB
    announced = upload(server.url, big)  # Content-Length says so: refused before reading
    assert announced.status == 413 and announced.json()["error"] == "too_large" and "--max-upload-mb" in announced.json()["detail"]
    streamed = upload(server.url, big, chunked=True)  # no Content-Length: refused when the stream passes 5 MB
    assert streamed.status == 413 and "big.mp4" in streamed.json()["detail"]
    wait_until(lambda: leftovers(server.tmp_root) == [])


def test_a_client_that_leaves_mid_upload_leaves_nothing(server, served_models):
    body, ctype = multipart({"clip": ("half.mp4", served_models["clip"].read_bytes())})
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(f"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        sock.sendall(body[: len(body) // 2])
        time.sleep(0.3)
    wait_until(lambda: leftovers(server.tmp_root) == [] and request(server.url + "/api/health").json()["queue"]["waiting"] == 0)
    assert request(server.url + "/api/health").status == 200


def _send(url: str, name: str, content: bytes) -> socket.socket:
    """Send a whole upload on a raw socket and return it unread (the test decides when the client leaves)."""
    body, ctype = multipart({"clip": (name, content)})
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(f"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    return sock


def test_bounded_queue_503_and_clients_that_leave(served_models, tmp_path):
    """1 worker + 1 waiting: a third request gets 503 at once; a waiting job whose client left never runs; a running
    job whose client left finishes, then its files go; the server then takes work again."""
    from pipeline.serving.app import BackgroundServer, create_app

    gate = threading.Event()

    class Gated:
        models, columns, modalities, asr = [], [], ["text", "audio", "visual"], None

        def __init__(self):
            self.calls: list[str] = []

        def predict(self, clip, transcript=None):
            self.calls.append(Path(clip).name)
            assert gate.wait(60)
            return {"clip": str(clip), "duration": 1.0, "transcript": None, "models": {}, "modalities": self.modalities,
                    "utterances": [{"start": 0.0, "end": 1.0, "speaker": "A", "text": "hi", "modalities": self.modalities,
                                    "sentiment": 1.0, "label": "positive", "emotions": {}}]}

    stub = Gated()
    tmp_root = tmp_path / "tmp"
    app = create_app([stub], max_queue=1, tmp_root=tmp_root)
    content = served_models["clip"].read_bytes()
    with BackgroundServer(app) as server:
        def queue() -> dict:
            return request(server.url + "/api/health").json()["queue"]

        a = _send(server.url, "a.mp4", content)
        wait_until(lambda: queue()["running"] == 1)
        b = _send(server.url, "b.mp4", content)
        wait_until(lambda: queue()["waiting"] == 1)
        busy = upload(server.url, ("c.mp4", content))
        assert busy.status == 503 and busy.json()["error"] == "busy" and int(busy.headers["retry-after"]) > 0
        assert queue()["refused"] == 1
        b.close()  # leaves while waiting
        wait_until(lambda: queue()["waiting"] == 0)
        a.close()  # leaves while its prediction runs
        time.sleep(0.6)
        assert queue()["running"] == 1 and len(leftovers(tmp_root)) > 0  # a's files stay while its job reads them
        gate.set()
        wait_until(lambda: queue()["done"] == 1 and queue()["running"] == 0 and leftovers(tmp_root) == [])
        assert stub.calls == ["a.mp4"]
        again = upload(server.url, ("d.mp4", content))
        assert again.status == 200 and again.json()["clip"] == "d.mp4" and stub.calls == ["a.mp4", "d.mp4"]
    assert leftovers(tmp_root) == []


def test_cli_serve_binds_localhost_and_stops_cleanly(served_models, tmp_path):
    """`cli.py serve --port 0` says where it listens (127.0.0.1 by default), answers, and on Ctrl-C removes its temp
    folder; a taken port is a one-line error before any model loads; --workers is 1 or 2."""
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "cli.py", "serve", "--checkpoint", str(served_models["runs"]), "--port", "0"],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        deadline = time.monotonic() + 120
        while "serving on" not in line:
            assert time.monotonic() < deadline and proc.poll() is None, "serve did not start"
            line = proc.stderr.readline()
        assert "this machine only" in line
        url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
        wait_until(lambda: _answers(url))
        assert request(url + "/api/health").json()["status"] == "ok"
        assert len(list(tmp_path.glob("multilogue-serve-*"))) == 1
        port = int(url.rsplit(":", 1)[1])
        taken = subprocess.run([sys.executable, "cli.py", "serve", "--port", str(port)], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert taken.returncode == 2 and taken.stderr.strip().splitlines() == [
            f"error: --host 127.0.0.1 --port {port}: cannot listen there (Address already in use); pick another --port"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert list(tmp_path.glob("multilogue-serve-*")) == []
    bad = subprocess.run([sys.executable, "cli.py", "serve", "--workers", "3"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--workers: invalid choice" in bad.stderr


def _answers(url: str) -> bool:
    try:
        return request(url + "/api/health", timeout=2).status == 200
    except OSError:
        return False


def test_serving_beyond_localhost_warns(served_models, monkeypatch, capsys):
    import cli
    import pipeline.serving.app

    from core.network import is_loopback
    from pipeline.serving.app import bind

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and not is_loopback("0.0.0.0")
    monkeypatch.setattr(pipeline.serving.app, "bind", lambda host, port: bind("127.0.0.1", 0))  # nothing leaves this machine in a test
    monkeypatch.setattr(pipeline.serving.app, "run_server", lambda app, sock: sock.close())
    monkeypatch.setattr(pipeline.serving.app, "load_predictors", lambda *a, **k: [served_models["predictor"]])
    assert cli.main(["serve", "--host", "0.0.0.0", "--checkpoint", str(served_models["runs"])]) == 0
    err = capsys.readouterr().err
    assert "warning: --host 0.0.0.0 is reachable from other machines" in err
