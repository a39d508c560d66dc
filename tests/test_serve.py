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
    """The app on a worker process with the session's models, served on a free port of 127.0.0.1; its temp folder
    is inspectable, and so is its worker."""
    from pipeline.serving.app import create_app
    from pipeline.serving.server import BackgroundServer
    from pipeline.serving.worker import start_workers

    tmp_root = tmp_path_factory.mktemp("serve-tmp")
    workers = start_workers(served_models["runs"], 1, time_limit=120)
    app = create_app(workers, max_upload_mb=5, tmp_root=tmp_root, max_clip_seconds=30, max_utterances=50)
    with BackgroundServer(app) as running:
        running.tmp_root, running.worker = tmp_root, workers[0]
        yield running
    assert leftovers(tmp_root) == []
    assert workers[0].pid is None


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
    assert {k: v for k, v in got.items() if k not in ("clip", "models")} == {k: v for k, v in expected.items() if k not in ("clip", "models")}
    # no path of the server: the models by their paths in the served folder (the CLI prints them as located)
    assert got["models"] == {"regression": "regression/checkpoint.pt", "happiness": "emotion/happiness/checkpoint.pt"}
    assert set(expected["models"]) == set(got["models"])
    assert not re.search(r'"/[^"]', reply.text) and str(served_models["root"]) not in reply.text
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
    reply = request(server.url + "/api/models")
    models = reply.json()
    assert not re.search(r'"/[^"]', reply.text) and str(served_models["root"]) not in reply.text  # no path of the server
    assert models["checkpoint"] == "runs"
    assert {m["name"] for m in models["models"]} == {"regression", "happiness"}
    reg = next(m for m in models["models"] if m["name"] == "regression")
    assert reg["task"] == "regression" and reg["path"] == "regression/checkpoint.pt"
    assert reg["features"]["text"]["name"] == "glove" and reg["features"]["audio"]["dim"] == 384 and "test_metrics" in reg
    assert models["outputs"] == ["sentiment", "label", "happiness"] and models["transcriber"]["name"] == "whisper"
    assert models["limits"]["max_upload_mb"] == 5 and ".mp4" in models["limits"]["clip_types"]
    assert models["limits"]["max_clip_seconds"] == 30 and models["limits"]["max_utterances"] == 50 and models["limits"]["time_limit_s"] == 120
    assert "model_card" in models

    health = request(server.url + "/api/health").json()
    assert health["status"] == "ok" and health["queue"]["workers"] == 1 and health["queue"]["running"] == 0

    schema = request(server.url + "/api/openapi.json").json()
    assert {"/api/predict", "/api/models", "/api/health", "/api/csv"} <= set(schema["paths"])
    body = schema["paths"]["/api/predict"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["required"] == ["clip"] and set(body["properties"]) == {"clip", "transcript"}
    # every refusal a POST can get is documented, the 403 of a foreign page included
    for path in ("/api/predict", "/api/preview", "/api/csv"):
        answers = schema["paths"][path]["post"]["responses"]
        assert {"400", "403", "413"} <= set(answers), (path, answers)
        assert "another origin" in answers["403"]["description"]
    assert {"415", "422", "503"} <= set(schema["paths"]["/api/predict"]["post"]["responses"])
    assert "time_limit" in schema["paths"]["/api/predict"]["post"]["responses"]["503"]["description"]

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
        sock.sendall(f"POST /api/predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        sock.sendall(body[: len(body) // 2])
        time.sleep(0.3)
    wait_until(lambda: leftovers(server.tmp_root) == [] and request(server.url + "/api/health").json()["queue"]["waiting"] == 0)
    assert request(server.url + "/api/health").status == 200


def _send(url: str, name: str, content: bytes) -> socket.socket:
    """Send a whole upload on a raw socket and return it unread (the test decides when the client leaves)."""
    body, ctype = multipart({"clip": (name, content)})
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(f"POST /api/predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    return sock


def test_bounded_queue_503_and_clients_that_leave(served_models, tmp_path):
    """1 worker + 1 waiting: a third request gets 503 at once; a waiting job whose client left never runs; a running
    job whose client left finishes, then its files go; the server then takes work again."""
    from pipeline.serving.app import create_app
    from pipeline.serving.server import BackgroundServer

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
    import pipeline.serving.server
    import pipeline.serving.worker

    from core.network import is_loopback
    from pipeline.serving.server import bind

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and not is_loopback("0.0.0.0")
    monkeypatch.setattr(pipeline.serving.server, "bind", lambda host, port: bind("127.0.0.1", 0))  # nothing leaves this machine in a test
    monkeypatch.setattr(pipeline.serving.server, "run_server", lambda app, sock: sock.close())
    monkeypatch.setattr(pipeline.serving.worker, "start_workers", lambda *a, **k: [served_models["predictor"]])
    assert cli.main(["serve", "--host", "0.0.0.0", "--checkpoint", str(served_models["runs"])]) == 0
    err = capsys.readouterr().err
    assert "warning: --host 0.0.0.0 is reachable from other machines" in err


# ------------------------------------------------------------------ limits, hosts, previews, stopping (issue 18)
def _cues(n: int, seconds: float) -> bytes:
    """An .srt of n overlapping one-second cues within the first `seconds` of a clip: cheap to send, dear to analyse."""
    def clock(x: float) -> str:
        return f"00:00:{x:06.3f}".replace(".", ",")

    starts = [(i * 0.37) % max(0.1, seconds - 1.0) for i in range(n)]
    return "".join(f"{i}\n{clock(a)} --> {clock(a + 1.0)}\nword number {i}\n\n" for i, a in enumerate(starts, 1)).encode()


def _convert(src: Path, dst: Path, *args: str) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), *args, str(dst)], check=True)
    return dst


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, process group, state) of every process (Linux /proc)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            out[int(entry.name)] = (int(fields[1]), int(fields[2]), fields[0])
    return out


def _family(pid: int) -> set[int]:
    """`pid`'s descendants, and every process in the process group of any of them (what a worker may have started)."""
    procs = _processes()
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for child, (parent, _, _) in procs.items():
            if parent == p and child not in found:
                found.add(child)
                todo.append(child)
    groups = {procs[p][1] for p in found if p in procs}
    return found | {p for p, (_, group, _) in procs.items() if group in groups and p != pid}


def _alive(pids: set[int]) -> set[int]:
    procs = _processes()
    return {p for p in pids if p in procs and procs[p][2] != "Z"}


def test_work_per_request_is_capped_at_once(server, served_models, tmp_path):
    """A transcript of more utterances than --max-utterances (here 50; the 1.7 MB, 20,000-cue one held a worker for 12
    minutes) and a clip longer than --max-clip-seconds (here 30 s) get 413 before any prediction starts."""
    clip = served_models["clip"]
    done = request(server.url + "/api/health").json()["queue"]["done"]
    many = upload(server.url, clip, ("many.srt", _cues(2000, 6.0)))
    assert many.status == 413 and many.json()["error"] == "too_many_utterances", many.body
    assert "many.srt: 2000 utterances" in many.json()["detail"] and "--max-utterances" in many.json()["detail"]
    long_clip = tmp_path / "long.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=gray:s=32x32:d=40:r=2", "-f", "lavfi", "-i",
                    "sine=d=40", "-shortest", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(long_clip)], check=True)
    too_long = upload(server.url, long_clip)
    assert too_long.status == 413 and too_long.json()["error"] == "too_long"
    assert "long.mp4: 40.0 s long" in too_long.json()["detail"] and "--max-clip-seconds" in too_long.json()["detail"]
    assert request(server.url + "/api/health").json()["queue"]["done"] == done  # no prediction ran
    assert leftovers(server.tmp_root) == []


def test_a_file_under_another_field_name_is_no_clip(server, served_models):
    """A clip sent as 'video' (over the 64 KB that form fields get) is "400 no clip" naming the field, not 413."""
    content = served_models["clip"].read_bytes()
    assert len(content) > 64 * 1024
    body, ctype = multipart({"video": ("talk.mp4", content)})
    reply = request(server.url + "/api/predict", "POST", body, {"Content-Type": ctype})
    assert reply.status == 400 and reply.json()["error"] == "bad_request", reply.body
    assert "field 'clip'" in reply.json()["detail"] and "'video'" in reply.json()["detail"]
    reply = request(server.url + "/api/predict", "POST", body, {"Content-Type": ctype}, chunked=True)
    assert reply.status == 400 and "'video'" in reply.json()["detail"]
    assert leftovers(server.tmp_root) == []


def test_only_the_servers_host_names_are_served(server):
    """DNS rebinding: a page of evil.example whose name resolves to 127.0.0.1 sends Host: evil.example; it is refused
    on every endpoint, GET included; the loopback names are served."""
    port = server.url.rsplit(":", 1)[1]
    for path, method in (("/", "GET"), ("/api/models", "GET"), ("/api/predict", "POST")):
        reply = request(server.url + path, method, b"" if method == "POST" else None, {"Host": f"evil.example:{port}"})
        assert reply.status == 400 and reply.json()["error"] == "bad_host", (path, reply.body)
        assert "evil.example" in reply.json()["detail"] and "--allowed-host" in reply.json()["detail"]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}"):
        assert request(server.url + "/api/health", headers={"Host": host}).status == 200, host


def test_csv_bodies_have_a_size_limit(server):
    from pipeline.serving.app import CSV_MAX_BYTES

    big = b'{"clip": "x", "utterances": [], "pad": "' + b"x" * CSV_MAX_BYTES + b'"}'
    announced = request(server.url + "/api/csv", "POST", big, {"Content-Type": "application/json"})
    assert announced.status == 413 and announced.json()["error"] == "too_large"
    streamed = request(server.url + "/api/csv", "POST", big, {"Content-Type": "application/json"}, chunked=True)
    assert streamed.status == 413 and "CSV" in streamed.json()["detail"]


def test_preview_makes_webm_the_browser_plays(server, served_models, tmp_path):
    """/api/preview: a clip the browser cannot play (.flv here) comes back as VP8 + Opus WebM of the same length; a
    clip without video as audio/webm; a corrupt one is refused like a prediction's clip."""
    from extractors.media import probe

    flv = _convert(served_models["clip"], tmp_path / "talk.flv", "-c:v", "flv", "-c:a", "libmp3lame", "-ar", "22050")
    body, ctype = multipart({"clip": ("talk.flv", flv.read_bytes())})
    reply = request(server.url + "/api/preview", "POST", body, {"Content-Type": ctype})
    assert reply.status == 200 and reply.headers["content-type"] == "video/webm", reply.body[:300]
    (tmp_path / "preview.webm").write_bytes(reply.body)
    codecs = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", str(tmp_path / "preview.webm")],
                            capture_output=True, text=True, check=True).stdout.split()
    assert codecs == ["vp8", "opus"]
    assert probe(tmp_path / "preview.webm")["duration"] == pytest.approx(probe(flv)["duration"], abs=0.3)
    wav = _convert(served_models["clip"], tmp_path / "talk.wav", "-vn")
    body, ctype = multipart({"clip": ("talk.wav", wav.read_bytes())})
    sound = request(server.url + "/api/preview", "POST", body, {"Content-Type": ctype})
    assert sound.status == 200 and sound.headers["content-type"] == "audio/webm"
    body, ctype = multipart({"clip": ("bad.flv", b"FLV" + os.urandom(3000))})
    bad = request(server.url + "/api/preview", "POST", body, {"Content-Type": ctype})
    assert bad.status == 422 and bad.json()["error"] == "unreadable_media" and "bad.flv" in bad.json()["detail"]
    assert leftovers(server.tmp_root) == []


def test_a_prediction_past_the_time_limit_is_stopped(served_models, tmp_path):
    """--time-limit really stops the work: the worker process and everything it started are killed, the client gets
    503 time_limit within seconds of the limit, the worker is replaced and the next clip is answered."""
    from pipeline.serving.app import create_app
    from pipeline.serving.server import BackgroundServer
    from pipeline.serving.worker import start_workers

    limit = 10.0  # a fresh worker's first clip loads openSMILE and mediapipe: seconds on a loaded machine
    workers = start_workers(served_models["runs"], 1, time_limit=limit)
    tmp_root = tmp_path / "tmp"
    app = create_app(workers, tmp_root=tmp_root, max_utterances=None)
    with BackgroundServer(app) as server:
        first = workers[0].pid
        started = time.monotonic()
        reply = upload(server.url, served_models["clip"], ("many.srt", _cues(3000, 6.0)))
        took = time.monotonic() - started
        assert reply.status == 503 and reply.json()["error"] == "time_limit", reply.body
        assert "took longer than the server's limit of 10 s" in reply.json()["detail"] and "--time-limit" in reply.json()["detail"]
        assert limit <= took < limit + 30
        assert _alive({first}) == set() and not any(group == first for _, group, _ in _processes().values())
        again = upload(server.url, served_models["clip"], served_models["srt"])
        assert again.status == 200 and workers[0].pid not in (None, first)
        wait_until(lambda: leftovers(tmp_root) == [])
    assert workers[0].pid is None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_server_mid_prediction_and_leaves_nothing(served_models, tmp_path, sig):
    """A real `cli.py serve` process, busy with a prediction that would take minutes: SIGTERM (or Ctrl-C's SIGINT)
    stops it within seconds; the client gets 503 stopping; no process it started survives and its temporary folders
    (uploads, the worker's own) are gone."""
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "cli.py", "serve", "--checkpoint", str(served_models["runs"]), "--port", "0",
                             "--max-utterances", "100000", "--time-limit", "3600"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    client = None
    try:
        line = ""
        deadline = time.monotonic() + 120
        while "serving on" not in line:
            assert time.monotonic() < deadline and proc.poll() is None, "serve did not start"
            line = proc.stderr.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
        answer: dict = {}

        def post() -> None:
            try:
                answer["reply"] = upload(url, served_models["clip"], ("many.srt", _cues(20000, 6.0)))
            except OSError as e:
                answer["error"] = e

        client = threading.Thread(target=post)
        client.start()
        wait_until(lambda: request(url + "/api/health").json()["queue"]["running"] == 1, timeout=60)
        time.sleep(1.0)  # well inside the prediction
        family = _family(proc.pid)
        assert len(family) >= 1 and list(tmp_path.glob("multilogue-worker-*")) and list(tmp_path.glob("multilogue-serve-*/req-*"))
        sent = time.monotonic()
        proc.send_signal(sig)
        code = proc.wait(timeout=30)
        stopped = time.monotonic() - sent
        assert stopped < 10, f"took {stopped:.1f} s to stop"
        assert code == 130 and "interrupted" in proc.stderr.read()
        client.join(timeout=30)
        assert "reply" in answer and answer["reply"].status == 503 and answer["reply"].json()["error"] == "stopping", answer
        wait_until(lambda: _alive(family) == set(), timeout=5)
        assert list(tmp_path.iterdir()) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if client is not None:
            client.join(timeout=30)


def test_workers_end_with_a_server_killed_outright(served_models, tmp_path):
    """kill -9 gives the server no chance to clean up; its worker process notices within a second that its server is
    gone and ends itself with everything it started, mid-prediction too."""
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "cli.py", "serve", "--checkpoint", str(served_models["runs"]), "--port", "0",
                             "--max-utterances", "100000"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        deadline = time.monotonic() + 120
        while "serving on" not in line:
            assert time.monotonic() < deadline and proc.poll() is None, "serve did not start"
            line = proc.stderr.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
        client = threading.Thread(target=lambda: _ignore_errors(lambda: upload(url, served_models["clip"], ("many.srt", _cues(20000, 6.0)))))
        client.start()
        wait_until(lambda: request(url + "/api/health").json()["queue"]["running"] == 1, timeout=60)
        family = _family(proc.pid)
        assert family
        proc.kill()
        proc.wait(timeout=10)
        wait_until(lambda: _alive(family) == set(), timeout=5)
        client.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _ignore_errors(fn) -> None:
    try:
        fn()
    except OSError:
        pass
