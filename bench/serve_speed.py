"""Throughput, latency and memory of `cli.py serve` on a 10 s clip, with 1 and 4 concurrent clients.

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
3. memory (first server only): the server process's resident set size (VmRSS, and its peak VmHWM, from /proc)
   after the two cold requests and after every 10 of `--memory-requests` sequential requests (alternately with
   and without the transcript), before the load runs; and at the end.

    python bench/serve_speed.py [--workers 1 2] [--requests 16] [--memory-requests 50] [--seconds 10] [--checkpoint DIR]
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

from tests.webclient import upload  # noqa: E402  (stdlib-only client)


def start(ckpt: Path, workers: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(REPO / "cli.py"), "serve", "--checkpoint", str(ckpt), "--port", "0",
                             "--workers", str(workers), "--max-queue", "8"], cwd=REPO, stderr=subprocess.PIPE, text=True)
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
        for workers in args.workers:
            proc, url = start(ckpt, workers)
            try:
                print(f"\n--workers {workers}: server up, RSS {rss_mib(proc.pid)[0]:.0f} MiB")
                for kind, transcript in (("transcript", srt), ("whisper", None)):
                    print(f"  first request, {kind}: {one(url, clip, transcript)[0]:.2f} s (cold)")
                if workers == args.workers[0] and args.memory_requests:
                    rss, peak = rss_mib(proc.pid)
                    print(f"  memory after those 2 requests: RSS {rss:.0f} MiB (peak {peak:.0f})")
                    for i in range(1, args.memory_requests + 1):
                        one(url, clip, srt if i % 2 else None)  # both routes, alternately
                        if i % 10 == 0:
                            rss, peak = rss_mib(proc.pid)
                            print(f"  after {i} more sequential requests (alternately with and without transcript): "
                                  f"RSS {rss:.0f} MiB (peak {peak:.0f})", flush=True)
                print("  | kind | clients | requests/min | median latency | p95 latency | answered | 503 | load avg |")
                print("  |---|---|---|---|---|---|---|---|")
                for kind, transcript in (("transcript", srt), ("whisper", None)):
                    for clients in (1, 4):
                        r = load(url, clip, transcript, clients, args.requests)
                        print(f"  | {kind} | {clients} | {r['rpm']:.1f} | {r['median']:.2f} s | {r['p95']:.2f} s | {r['n']} | "
                              f"{r['refused']} | {os.getloadavg()[0]:.1f} |", flush=True)
                rss, peak = rss_mib(proc.pid)
                print(f"  memory at the end: RSS {rss:.0f} MiB (peak {peak:.0f})")
            finally:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=120)
        print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
