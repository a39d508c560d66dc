"""Throughput, latency and memory of `cli.py serve` on a 10 s clip, with 1 and 4 concurrent clients; how fast it
refuses over-limit requests while busy, stops a prediction at its time limit, and stops on SIGTERM.

The server runs as `python cli.py serve --port 0 [--workers N]` in its own process, on the same checkpoints as
bench/predict_speed.py (a regression model and six emotion models with the paper's dimensions and the default
feature spec, random weights: speed does not depend on them; `--checkpoint DIR` uses real ones). The clip is a
generated two-speaker conversation (espeak-ng over real faces, 240x240 H.264 at 10 fps) cut to 10 s, uploaded
with its .srt ("transcript") or without it, when the server transcribes it with Whisper tiny.en ("whisper").

Measured, per server (each --workers value):
1. the first request of each kind (cold: extractor libraries and Whisper load on first use);
2. per kind and number of concurrent clients (1, 4): `--requests` requests shared by the clients, each client
   sending its next one when the last is answered; requests per minute (answers / wall time) and the median and
   95th-percentile latency (send to answer, upload included), and any 503s;
3. memory (first server only): the resident set size (VmRSS, and its peak VmHWM, from /proc) of the server
   process and of its worker processes (the models live in the workers) after the two cold requests and after every
   10 of `--memory-requests` sequential requests (alternately with and without the transcript), before the load
   runs; and at the end.
4. refusals while busy (4 clients keep the worker busy with transcript requests meanwhile): `--refusals` of each
   over-limit request, sent one after another, timed from send to answer: a clip over --max-upload-mb (its
   Content-Length announces it; and streamed without one), a clip over --max-clip-seconds, a transcript of more
   utterances than --max-utterances (the issue's 1.7 MB, 20,000-cue .srt), a file under a wrong field name, a Host
   that is not the server's; the worst (max) and the median per kind.
5. the time limit (a server started with `--time-limit --limit-seconds` and no utterance cap): the 20,000-cue
   transcript, time from send to its 503 `time_limit` (the limit plus how long killing takes), then how long the
   next normal request waits for the replaced worker; then SIGTERM while a prediction runs: time until the
   server process has exited, and whether any process it started or temporary folder is left.

    python bench/serve_speed.py [--workers 1 2] [--requests 16] [--memory-requests 50] [--refusals 5] [--seconds 10]
                                [--limit-seconds 10] [--checkpoint DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from tests.webclient import multipart, request, upload  # noqa: E402  (stdlib-only client)

MAX_UPLOAD_MB, MAX_CLIP_SECONDS, MAX_UTTERANCES = 5, 60, 500  # the limits the measured servers run with


def start(ckpt: Path, workers: int, *extra: str, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(REPO / "cli.py"), "serve", "--checkpoint", str(ckpt), "--port", "0",
                             "--workers", str(workers), "--max-queue", "8", *extra], cwd=REPO, stderr=subprocess.PIPE, text=True, env=env)
    line = ""
    while "serving on" not in line:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            raise SystemExit("serve did not start")
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # keep draining its log
    return proc, re.search(r"http://\S+:\d+", line).group(0)


def rss_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    get = lambda key: int(re.search(rf"^{key}:\s+(\d+) kB", status, re.M).group(1)) / 1024  # noqa: E731
    return get("VmRSS"), get("VmHWM")


def children(pid: int) -> list[int]:
    """The direct children of a process (Linux /proc): the server's worker processes."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def memory(pid: int) -> str:
    """'server RSS x MiB (peak y), workers RSS ... (peak ...)'."""
    rss, peak = rss_mib(pid)
    workers = [rss_mib(c) for c in children(pid)]
    shown = ", ".join(f"{r:.0f} MiB (peak {p:.0f})" for r, p in workers) or "none"
    return f"server RSS {rss:.0f} MiB (peak {peak:.0f}); worker RSS {shown}"


def cues(n: int, seconds: float) -> bytes:
    """n overlapping one-second cues within `seconds`: the hostile transcript of the issue (20,000 cues, ~1.7 MB)."""
    def clock(x: float) -> str:
        return f"00:00:{x:06.3f}".replace(".", ",")

    starts = [(i * 0.37) % max(0.1, seconds - 1.0) for i in range(n)]
    return "".join(f"{i}\n{clock(a)} --> {clock(a + 1.0)}\nthis is cue number {i} of a long and hostile transcript\n\n"
                   for i, a in enumerate(starts, 1)).encode()


def one(url: str, clip: Path, srt: Path | None) -> tuple[float, int]:
    t = time.perf_counter()
    reply = upload(url, clip, srt)
    if reply.status not in (200, 503):
        raise SystemExit(f"request failed: {reply.status} {reply.body[:300]!r}")
    return time.perf_counter() - t, reply.status


def load(url: str, clip: Path, srt: Path | None, clients: int, total: int) -> dict:
    """`total` requests over `clients` concurrent clients; requests/min, median and p95 latency of the answered ones."""
    latencies: list[float] = []
    refused = [0]
    lock = threading.Lock()
    left = [total]

    def client() -> None:
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            seconds, status = one(url, clip, srt)
            with lock:
                if status == 503:
                    refused[0] += 1
                else:
                    latencies.append(seconds)

    t = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t
    lat = sorted(latencies)
    return {"rpm": 60 * len(lat) / wall, "median": statistics.median(lat), "p95": lat[min(len(lat) - 1, int(0.95 * len(lat)))],
            "n": len(lat), "refused": refused[0], "wall": wall}


def refusals(url: str, clip: Path, srt: Path, tmp: Path, tries: int) -> dict[str, list[float]]:
    """Seconds from send to answer of each over-limit request, `tries` times each; asserts each is refused as expected."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    big = os.urandom((MAX_UPLOAD_MB + 1) * 1024 * 1024)
    long_clip = tmp / "long.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"color=c=gray:s=64x64:d={MAX_CLIP_SECONDS + 30}:r=5", "-f", "lavfi",
                    "-i", f"sine=d={MAX_CLIP_SECONDS + 30}", "-shortest", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
                    str(long_clip)], check=True)
    hostile = ("many.srt", cues(20000, 10.0))
    wrong_field, ctype = multipart({"video": (clip.name, clip.read_bytes())})
    kinds = {
        "over --max-upload-mb, Content-Length announced": (lambda: upload(url, ("big.mp4", big)), 413),
        "over --max-upload-mb, streamed (chunked)": (lambda: upload(url, ("big.mp4", big), chunked=True), 413),
        "over --max-clip-seconds (probed)": (lambda: upload(url, long_clip), 413),
        f"20,000-cue transcript, {len(hostile[1]) / 1e6:.1f} MB (over --max-utterances)": (lambda: upload(url, clip, hostile), 413),
        "a file under a wrong field name": (lambda: request(f"{url}/api/predict", "POST", wrong_field, {"Content-Type": ctype}), 400),
        "a Host that is not the server's": (lambda: request(f"{url}/api/health", headers={"Host": f"evil.example:{port}"}), 400),
    }
    times: dict[str, list[float]] = {}
    for kind, (send, status) in kinds.items():
        for _ in range(tries):
            t = time.perf_counter()
            reply = send()
            times.setdefault(kind, []).append(time.perf_counter() - t)
            if reply.status != status:
                raise SystemExit(f"{kind}: expected {status}, got {reply.status} {reply.body[:300]!r}")
    return times


def time_limit_and_sigterm(ckpt: Path, clip: Path, srt: Path, limit: float, tmp: Path) -> None:
    """A server with --time-limit `limit`: the 20,000-cue transcript's 503, the replaced worker's first answer, and a
    SIGTERM mid-prediction."""
    scratch = tmp / "server-tmp"
    scratch.mkdir()
    proc, url = start(ckpt, 1, "--time-limit", f"{limit:g}", "--max-utterances", "100000", env={**os.environ, "TMPDIR": str(scratch)})
    try:
        one(url, clip, srt)  # warm: the libraries load on first use, inside the limit otherwise
        t = time.perf_counter()
        reply = upload(url, clip, ("many.srt", cues(20000, 10.0)))
        refused = time.perf_counter() - t
        print(f"  20,000-cue transcript with --time-limit {limit:g}: {reply.status} {reply.json().get('error')} after {refused:.2f} s "
              f"({refused - limit:+.2f} s past the limit, upload and parsing included)")
        t = time.perf_counter()
        status = one(url, clip, srt)[1]
        print(f"  the next request (the worker replaced, its models reloaded, its libraries loaded on first use): {status} after "
              f"{time.perf_counter() - t:.2f} s")
        worker_pids = children(proc.pid)
        done: dict = {}
        client = threading.Thread(target=lambda: done.setdefault("reply", upload(url, clip, ("many.srt", cues(20000, 10.0)))))
        client.start()
        deadline = time.monotonic() + 60
        while request(f"{url}/api/health").json()["queue"]["running"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        t = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
        stopped = time.perf_counter() - t
        client.join(timeout=60)
        left = [p for p in worker_pids if Path(f"/proc/{p}").exists()]
        print(f"  SIGTERM mid-prediction: exited ({code}) after {stopped:.2f} s; the client got {done['reply'].status} "
              f"{done['reply'].json().get('error')}; worker processes left: {len(left)}; temporary folders left: {len(list(scratch.iterdir()))}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def ten_second_clip(tmp: Path, seconds: float) -> tuple[Path, Path]:
    """bench/predict_speed.py's conversation cut to exactly `seconds` (re-encoded), with its .srt cut to match."""
    import predict_speed  # bench/predict_speed.py: the same clip maker and checkpoints

    from extractors.transcripts import read_transcript

    long_clip, _ = predict_speed.make_clip(tmp, seconds + 4)
    clip = tmp / "talk.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(long_clip), "-t", f"{seconds}", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip)], check=True)
    kept = [seg for seg in read_transcript(long_clip.with_suffix(".srt")).segments if seg.start < seconds - 0.5]

    def clock(x: float) -> str:
        return f"00:{int(x // 60):02d}:{x % 60:06.3f}".replace(".", ",")

    srt = clip.with_suffix(".srt")
    srt.write_text("".join(f"{i}\n{clock(g.start)} --> {clock(min(g.end, seconds - 0.05))}\n{g.speaker}: {g.text}\n\n"
                           for i, g in enumerate(kept, 1)), encoding="utf-8")
    return clip, srt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], choices=(1, 2))
    ap.add_argument("--requests", type=int, default=16, help="requests per (kind, clients) measurement")
    ap.add_argument("--memory-requests", type=int, default=50)
    ap.add_argument("--refusals", type=int, default=5, help="over-limit requests of each kind, sent while 4 clients keep the server busy")
    ap.add_argument("--limit-seconds", type=float, default=10.0, help="--time-limit of the server that measures it")
    ap.add_argument("--seconds", type=float, default=10.0, help="clip length")
    ap.add_argument("--checkpoint", type=Path, default=None, help="default: paper-sized random-weight checkpoints")
    args = ap.parse_args()
    import predict_speed

    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        tmp = Path(tmp)
        clip, srt = ten_second_clip(tmp, args.seconds)
        ckpt = args.checkpoint or predict_speed.make_checkpoints(tmp / "runs")
        from extractors.media import probe

        print(f"clip {clip.name}: {probe(clip)['duration']:.1f} s, {clip.stat().st_size / 1024:.0f} KiB, "
              f"{srt.read_text().count(' --> ')} utterances in its .srt; {os.cpu_count()} CPUs; "
              f"load average at start {os.getloadavg()[0]:.1f}")
        limits = ("--max-upload-mb", str(MAX_UPLOAD_MB), "--max-clip-seconds", str(MAX_CLIP_SECONDS), "--max-utterances", str(MAX_UTTERANCES))
        for workers in args.workers:
            proc, url = start(ckpt, workers, *limits)
            try:
                print(f"\n--workers {workers}: server up, {memory(proc.pid)}")
                for kind, transcript in (("transcript", srt), ("whisper", None)):
                    print(f"  first request, {kind}: {one(url, clip, transcript)[0]:.2f} s (cold)")
                if workers == args.workers[0] and args.memory_requests:
                    print(f"  memory after those 2 requests: {memory(proc.pid)}")
                    for i in range(1, args.memory_requests + 1):
                        one(url, clip, srt if i % 2 else None)  # both routes, alternately
                        if i % 10 == 0:
                            print(f"  after {i} more sequential requests (alternately with and without transcript): {memory(proc.pid)}", flush=True)
                print("  | kind | clients | requests/min | median latency | p95 latency | answered | 503 | load avg |")
                print("  |---|---|---|---|---|---|---|---|")
                for kind, transcript in (("transcript", srt), ("whisper", None)):
                    for clients in (1, 4):
                        r = load(url, clip, transcript, clients, args.requests)
                        print(f"  | {kind} | {clients} | {r['rpm']:.1f} | {r['median']:.2f} s | {r['p95']:.2f} s | {r['n']} | "
                              f"{r['refused']} | {os.getloadavg()[0]:.1f} |", flush=True)
                if args.refusals:
                    stop_load = threading.Event()

                    def keep_busy() -> None:
                        while not stop_load.is_set():
                            load(url, clip, srt, 4, 4)

                    busy = threading.Thread(target=keep_busy, daemon=True)
                    busy.start()
                    time.sleep(2.0)
                    times = refusals(url, clip, srt, tmp, args.refusals)
                    stop_load.set()
                    busy.join()
                    print(f"  refusals while 4 clients keep the worker busy ({args.refusals} of each, load avg {os.getloadavg()[0]:.1f}):")
                    print("  | over-limit request | answer | worst | median |")
                    print("  |---|---|---|---|")
                    for kind, seconds in times.items():
                        print(f"  | {kind} | {'400' if 'field' in kind or 'Host' in kind else '413'} | {max(seconds) * 1000:.0f} ms | "
                              f"{statistics.median(seconds) * 1000:.0f} ms |")
                print(f"  memory at the end: {memory(proc.pid)}")
            finally:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=120)
        if args.limit_seconds:
            print(f"\ntime limit and SIGTERM (load avg {os.getloadavg()[0]:.1f}):")
            time_limit_and_sigterm(ckpt, clip, srt, args.limit_seconds, tmp)
        print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
