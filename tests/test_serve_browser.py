"""The page of `cli.py serve` in a real browser: headless Chromium from the system's packages (Debian's `chromium`),
driven by Playwright with an explicit executable path (Playwright's own browser download is never used).

Upload a generated clip and its transcript, see the progress, the table, the sentiment timeline and the emotion
bands; click an utterance and the video seeks there; play and the cursor follows; download JSON and CSV (the CSV
byte for byte the API's); earlier results stay listed; a corrupt file, an empty file, a non-media file and a clip
without speech each show a readable message; a clip the browser cannot play (.flv, an mp4 of MPEG-4 Part 2 video, a
real CREMA-D clip) plays from the server's preview, its picture really moving; a clip without video says so; the
page fits a 420 px window. Chromium missing is a failure, not a skip: `make test` installs it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.webclient import upload

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
WAIT_MS = 90_000  # a prediction takes 1-3 s here; the first automatic transcription a few more on a loaded machine


def chromium() -> str:
    """Chromium's executable: $CHROMIUM, else chromium / chromium-browser on PATH. Fails (not skips) without one."""
    for candidate in (os.environ.get("CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail("Chromium is not installed, so the page cannot be tested: `make test` installs it "
                "(apt-get install chromium), or set CHROMIUM=/path/to/chromium")


@pytest.fixture(scope="module")
def server(served_models, tmp_path_factory):
    from pipeline.serving.app import create_app
    from pipeline.serving.server import BackgroundServer
    from pipeline.serving.worker import start_workers

    tmp_root = tmp_path_factory.mktemp("browser-tmp")
    app = create_app(start_workers(served_models["runs"], 1, time_limit=120), max_upload_mb=5, tmp_root=tmp_root)
    with BackgroundServer(app) as running:
        running.tmp_root = tmp_root
        yield running
    assert list(tmp_root.iterdir()) == []


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: `make test` installs requirements.txt")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS, headless=True)  # a fresh profile each launch
        yield launched
        launched.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/")
    wait_js(page, "document.getElementById('models').textContent.includes('loaded')")
    # record every progress message, however briefly it shows
    page.evaluate("""() => { window.stages = []; const s = document.getElementById('stage');
        new MutationObserver(() => window.stages.push(s.textContent)).observe(s, {childList: true, characterData: true, subtree: true}); }""")
    yield page
    context.close()
    assert errors == [], errors


def wait_js(page, expression: str, timeout_ms: int = 10_000) -> None:
    """Poll a JavaScript expression until it is true. (Playwright's wait_for_function evaluates strings with eval, which
    the page's content security policy forbids, as it should; page.evaluate is allowed.)"""
    deadline = time.monotonic() + timeout_ms / 1000
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)


def submit(page, clip, transcript=None) -> None:
    page.set_input_files("#clip", clip)
    page.set_input_files("#transcript", transcript if transcript is not None else [])
    page.click("#submit")


def current_time(page) -> float:
    return page.evaluate("document.getElementById('player').currentTime")


def test_upload_watch_seek_and_download(page, served_models, server):
    spans, target = served_models["spans"], served_models["target"]
    submit(page, served_models["clip"], served_models["srt"])
    page.wait_for_selector("#utterances tbody tr", timeout=WAIT_MS)
    stages = page.evaluate("window.stages")
    assert any(s.startswith("uploading talk.mp4") for s in stages) and any(s.startswith("analysing talk.mp4") for s in stages)
    assert page.is_hidden("#progress") and page.is_hidden("#error")

    rows = page.locator("#utterances tbody tr")
    assert rows.count() == 3
    assert page.locator("#utterances thead th").all_inner_texts() == ["start", "end", "speaker", "text", "sentiment", "label", "happiness"]
    cells = [rows.nth(i).locator("td").all_inner_texts() for i in range(3)]
    assert [(c[2], c[3]) for c in cells] == target
    assert "3 utterances" in page.inner_text("#meta") and "talk.srt" in page.inner_text("#meta")

    # the timeline: one bar per utterance, coloured by its label, placed at its time; one band row (happiness)
    bars = page.locator("#timeline rect.utt")
    assert bars.count() == 3
    width = page.evaluate("document.getElementById('timeline').viewBox.baseVal.width")
    duration = page.evaluate("clipEnd(state.current.result)")
    for i, (c, span) in enumerate(zip(cells, spans)):
        assert c[5] in bars.nth(i).get_attribute("class")
        assert float(bars.nth(i).get_attribute("x")) == pytest.approx(span.start / duration * width, abs=2)
        assert float(bars.nth(i).get_attribute("width")) > 10
    assert page.locator("#bands rect.band").count() == 3 and page.inner_text("#band-labels").split() == ["happiness"]
    assert page.locator("#cursor").count() == 1

    # clicking an utterance seeks the video there and marks the row; so does clicking its bar
    wait_js(page, "document.getElementById('player').readyState >= 1", WAIT_MS)
    rows.nth(2).click()
    wait_js(page, f"Math.abs(document.getElementById('player').currentTime - {spans[2].start}) < 0.05")
    assert "current" in rows.nth(2).get_attribute("class")
    cursor_x = float(page.get_attribute("#cursor", "x1"))
    assert cursor_x == pytest.approx(spans[2].start / duration * width, abs=3)
    bars.nth(1).click()
    wait_js(page, f"Math.abs(document.getElementById('player').currentTime - {spans[1].start}) < 0.05")

    # playing moves the cursor along
    page.evaluate("() => { const p = document.getElementById('player'); p.muted = true; p.currentTime = 0; return p.play(); }")
    wait_js(page, "document.getElementById('player').currentTime > 1.0", WAIT_MS)
    page.evaluate("document.getElementById('player').pause()")
    assert float(page.get_attribute("#cursor", "x1")) > 0.9 / duration * width

    # downloads: the JSON the API returned, and its CSV
    with page.expect_download() as got:
        page.click("#download-json")
    shown = json.loads(Path(got.value.path()).read_text(encoding="utf-8"))
    assert got.value.suggested_filename == "talk.json"
    api = upload(server.url, served_models["clip"], served_models["srt"]).json()
    assert shown == api
    with page.expect_download() as got:
        page.click("#download-csv")
    rows_csv = list(csv.DictReader(io.StringIO(Path(got.value.path()).read_text(encoding="utf-8"))))
    assert got.value.suggested_filename == "talk.csv"
    assert [r["text"] for r in rows_csv] == [t for _, t in target] and rows_csv[0]["clip"] == "talk.mp4"
    assert [float(r["sentiment"]) for r in rows_csv] == pytest.approx([u["sentiment"] for u in api["utterances"]])


def test_earlier_results_stay_listed(page, served_models):
    submit(page, served_models["clip"], served_models["srt"])
    page.wait_for_selector("#history li", timeout=WAIT_MS)
    submit(page, {"name": "again.mp4", "mimeType": "video/mp4", "buffer": served_models["clip"].read_bytes()})  # transcribed by Whisper
    wait_js(page, "document.querySelectorAll('#history li').length === 2", WAIT_MS)
    assert page.inner_text("#title") == "again.mp4" and "whisper" in page.inner_text("#meta")
    entries = page.locator("#history li button")
    assert entries.all_inner_texts() == ["again.mp4", "talk.mp4"]
    entries.nth(1).click()
    assert page.inner_text("#title") == "talk.mp4"
    texts = page.locator("#utterances tbody td.col-text").all_inner_texts()
    assert texts == [t for _, t in served_models["target"]]


def test_bad_files_show_a_readable_message(page, served_models, tmp_path):
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)

    def error_after(clip) -> str:
        page.evaluate("document.getElementById('error').hidden = true")
        submit(page, clip)
        page.wait_for_selector("#error:not([hidden])", timeout=WAIT_MS)
        return page.inner_text("#error")

    # refused by the server: a corrupt video, and a clip in which no speech is found
    message = error_after({"name": "corrupt.mp4", "mimeType": "video/mp4", "buffer": b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000)})
    assert "corrupt.mp4" in message and "cannot read it" in message
    quiet = tmp_path / "quiet.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=gray:s=64x64:d=2:r=10", "-f", "lavfi",
                    "-i", "anoisesrc=color=white:amplitude=0.0003:d=2", "-shortest", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", str(quiet)], check=True)
    message = error_after(quiet)
    assert "quiet.mp4" in message and "no speech detected" in message
    assert len(posts) == 2
    # caught before uploading: an empty file, a file that is not a clip
    assert "empty" in error_after({"name": "empty.mp4", "mimeType": "video/mp4", "buffer": b""})
    message = error_after({"name": "notes.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4"})
    assert "notes.pdf" in message and "not a video or audio file" in message
    assert len(posts) == 2
    assert page.is_hidden("#result") and page.is_hidden("#progress") and page.is_enabled("#submit")


def test_a_seven_way_emotion_model_and_a_binary_model_render(page):
    """The page draws what each kind of model reports: a 7-way emotion model's seven probabilities as bands and its
    class in the table; a binary model's P(positive) on the timeline when there is no sentiment score."""
    classes = ["neutral", "happiness", "sadness", "anger", "surprise", "disgust", "fear"]
    both = ["text", "audio"]

    def probs(top: str) -> dict:
        return {c: (0.6 if c == top else 0.4 / 6) for c in classes}

    seven = {"clip": "seven.mp4", "duration": 4.0, "transcript": "seven.srt", "models": {}, "modalities": both, "utterances": [
        {"start": 0.2, "end": 1.8, "speaker": "A", "text": "hello there", "modalities": both, "sentiment": 1.2, "label": "positive",
         "emotions": {}, "emotion": "happiness", "emotion_probs": probs("happiness")},
        {"start": 2.0, "end": 3.9, "speaker": "B", "text": "go away", "modalities": both, "sentiment": -2.0, "label": "negative",
         "emotions": {}, "emotion": "anger", "emotion_probs": probs("anger")}]}
    show = "r => { const e = {name: r.clip, result: r, url: '', when: new Date()}; state.history.unshift(e); show(e); renderHistory(); }"
    page.evaluate(show, seven)
    assert page.inner_text("#band-labels").split() == classes and page.locator("#bands rect.band").count() == 14
    assert page.locator("#utterances thead th").all_inner_texts() == ["start", "end", "speaker", "text", "sentiment", "label", "emotion"]
    assert page.locator("#utterances td.col-emotion").all_inner_texts() == ["happiness 0.60", "anger 0.60"]
    assert page.inner_text("#sentiment-label") == "sentiment"

    binary = {**seven, "clip": "binary.mp4", "utterances": [
        {**u, "sentiment": None, "positive_prob": p, "label": "positive" if p >= 0.5 else "negative", "emotion_probs": None, "emotion": None}
        for u, p in zip(seven["utterances"], (0.8, 0.3))]}
    for u in binary["utterances"]:
        del u["emotion"], u["emotion_probs"]
    page.evaluate(show, binary)
    assert page.inner_text("#sentiment-label") == "P(positive)"
    assert page.locator("#utterances thead th").all_inner_texts() == ["start", "end", "speaker", "text", "label", "positive_prob"]
    assert [page.locator("#timeline rect.utt").nth(i).get_attribute("class") for i in range(2)] == ["utt positive", "utt negative"]
    assert page.is_hidden("#bands") and page.locator("#history li").count() == 2


# ------------------------------------------------------------------ issue 18: every clip plays; CSV; narrow windows
CREMAD = sorted((Path(__file__).resolve().parents[2] / "shared" / "data" / "cremad").glob("*.flv"))


def _convert(src: Path, dst: Path, *args: str) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), *args, str(dst)], check=True)
    return dst


def _posts(page) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url.rsplit("/", 1)[-1]) if r.method == "POST" else None)
    return seen


def _plays_its_picture(page) -> None:
    """The player shows a picture (videoWidth > 0) and playing moves it on."""
    wait_js(page, "document.getElementById('player').videoWidth > 0", WAIT_MS)
    page.evaluate("() => { const p = document.getElementById('player'); p.muted = true; p.currentTime = 0; return p.play(); }")
    wait_js(page, "document.getElementById('player').currentTime > 0.5", WAIT_MS)
    assert page.evaluate("document.getElementById('player').videoWidth") > 0


@pytest.mark.parametrize("kind", ["flv", "mpeg4-mp4", "cremad-flv"])
def test_a_clip_the_browser_cannot_play_plays_from_the_servers_preview(page, served_models, tmp_path, kind):
    """.flv errors in Chromium; an mp4 of MPEG-4 Part 2 video plays its sound behind a black box (videoWidth 0). Both
    get a WebM made by the server, whose picture plays; so does a real CREMA-D talking-face .flv (VP6)."""
    posts = _posts(page)
    if kind == "cremad-flv":
        if not CREMAD:
            pytest.skip("../shared/data/cremad not present")
        clip, transcript = CREMAD[0], None  # transcribed by Whisper
    elif kind == "flv":
        clip, transcript = _convert(served_models["clip"], tmp_path / "talk.flv", "-c:v", "flv", "-c:a", "libmp3lame", "-ar", "22050"), served_models["srt"]
    else:
        clip, transcript = _convert(served_models["clip"], tmp_path / "talk.mp4", "-c:v", "mpeg4", "-c:a", "aac"), served_models["srt"]
    submit(page, clip, transcript)
    page.wait_for_selector("#utterances tbody tr", timeout=WAIT_MS)
    _plays_its_picture(page)
    assert posts == ["predict", "preview"]
    assert "WebM copy the server made" in page.inner_text("#player-note") and page.is_visible("#player-note")
    assert page.evaluate("document.getElementById('player').src").startswith("blob:")


def test_a_clip_without_video_says_so(page, served_models, tmp_path):
    """A .wav plays as it is, and the page says it has no video (no preview asked for); an audio-only .mp4 is
    indistinguishable to the page, so the server's preview answers audio/webm and the page says the same."""
    posts = _posts(page)
    wav = _convert(served_models["clip"], tmp_path / "talk.wav", "-vn")
    submit(page, wav, served_models["srt"])
    page.wait_for_selector("#utterances tbody tr", timeout=WAIT_MS)
    wait_js(page, "!document.getElementById('player-note').hidden", WAIT_MS)
    assert page.inner_text("#player-note") == "talk.wav has no video: only its sound plays."
    page.evaluate("() => { const p = document.getElementById('player'); p.muted = true; return p.play(); }")
    wait_js(page, "document.getElementById('player').currentTime > 0.5", WAIT_MS)
    assert "no-video" in page.get_attribute("#player", "class") and posts == ["predict"]

    sound = _convert(served_models["clip"], tmp_path / "sound.mp4", "-vn", "-c:a", "aac")
    submit(page, sound, served_models["srt"])
    wait_js(page, "document.getElementById('player-note').textContent.includes('sound.mp4 has no video')", WAIT_MS)
    assert posts == ["predict", "predict", "preview"]


def test_the_pages_csv_is_the_apis_csv(page, served_models, server, tmp_path):
    """Download CSV gives the bytes of `?format=csv`: a start of 0.0 stays 0.0 (JSON.stringify would write 0)."""
    srt = served_models["srt"].read_text(encoding="utf-8")
    first = srt.splitlines()[1]
    zero = tmp_path / "zero.srt"
    zero.write_text(srt.replace(first, "00:00:00,000 --> " + first.split(" --> ")[1], 1), encoding="utf-8")
    submit(page, served_models["clip"], zero)
    page.wait_for_selector("#utterances tbody tr", timeout=WAIT_MS)
    with page.expect_download() as got:
        page.click("#download-csv")
    shown = Path(got.value.path()).read_text(encoding="utf-8")
    api = upload(server.url, served_models["clip"], zero, query="?format=csv").text
    assert ",0.0," in api.splitlines()[1]
    assert shown == api


def test_the_page_fits_a_420px_window(browser, server):
    """At 420 px nothing is wider than the window: the table (seven emotions, a long text) scrolls inside its own box."""
    context = browser.new_context(viewport={"width": 420, "height": 900})
    page = context.new_page()
    page.goto(server.url + "/")
    wait_js(page, "document.getElementById('models').textContent.includes('loaded')")
    classes = ["neutral", "happiness", "sadness", "anger", "surprise", "disgust", "fear"]
    utterances = [{"start": 0.2 + 2 * i, "end": 1.9 + 2 * i, "speaker": "ALICE", "text": "a rather long sentence that goes on " * 3,
                   "modalities": ["text", "audio"], "sentiment": -0.21, "label": "neutral", "emotion": "sadness",
                   "emotion_probs": {c: 1 / 7 for c in classes}, "emotions": {c: 0.5 for c in classes[1:]}} for i in range(3)]
    wide = {"clip": "a-clip-with-a-rather-long-file-name.mp4", "duration": 6.0, "transcript": "x.srt", "models": {},
            "modalities": ["text", "audio"], "utterances": utterances}
    page.evaluate("r => { const e = {name: r.clip, result: r, url: '', when: new Date()}; state.history.unshift(e); show(e); renderHistory(); }", wide)
    assert page.locator("#utterances thead th").count() == 13
    assert page.evaluate("document.documentElement.scrollWidth") <= 420
    assert page.evaluate("document.querySelector('#result').getBoundingClientRect().right") <= 420
    box = page.evaluate("(() => { const b = document.querySelector('.table-scroll'); return [b.scrollWidth, b.clientWidth]; })()")
    assert box[0] > box[1]  # the table is wider than the window: it scrolls in its box
    assert page.locator("#utterances td.col-label").first.inner_text() == "neutral"
    context.close()


def test_the_page_shows_what_each_modality_says(browser, served_models, tmp_path_factory):
    """A 7-way emotion model: the table has a column per modality's reading before the fused emotion, the bands a
    row per reading above the seven classes, and an uncertain utterance's emotion carries "?" with the reason."""
    from model.config import TrainConfig
    from pipeline.serving.app import create_app
    from pipeline.serving.server import BackgroundServer
    from pipeline.serving.worker import start_workers
    from pipeline.training.train import run_training

    runs = tmp_path_factory.mktemp("seven-runs")
    run_training(served_models["root"] / "data.pkl", runs / "emotion7", TrainConfig.for_task("emotion-class", epochs=1, batch_size=4,
                                                                                             valid_ratio=0.0, device="cpu"),
                 {"d_global": 8, "d_party": 8, "d_emotion": 8, "d_hidden": 8})
    tmp_root = tmp_path_factory.mktemp("seven-tmp")
    app = create_app(start_workers(runs, 1, time_limit=120), max_upload_mb=5, tmp_root=tmp_root)
    with BackgroundServer(app) as running:
        context = browser.new_context(viewport={"width": 1200, "height": 1000})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(running.url + "/")
        wait_js(page, "document.getElementById('models').textContent.includes('loaded')")
        submit(page, served_models["clip"], served_models["srt"])
        page.wait_for_selector("#utterances tbody tr", timeout=WAIT_MS)
        result = page.evaluate("state.current.result")
        heads = page.locator("#utterances thead th").all_inner_texts()
        assert heads[heads.index("words"):heads.index("emotion") + 1] == ["words", "voice", "face", "emotion"]
        rows = page.locator("#utterances tbody tr")
        for i, u in enumerate(result["utterances"]):
            cells = dict(zip(heads, rows.nth(i).locator("td").all_inner_texts()))
            for key in ("words", "voice", "face"):
                r = u["readings"][key]
                assert cells[key] == f"{r['emotion']} {r['probs'][r['emotion']]:.2f}"
            assert cells["emotion"].endswith(" ?") == u["uncertain"]
        labels = page.locator("#band-labels .band-label").all_inner_texts()
        assert labels[:3] == ["words", "voice", "face"] and labels[3:10] == list(result["utterances"][0]["emotion_probs"])
        assert page.locator("#bands rect.band.reading").count() == 3 * len(result["utterances"])
        context.close()
        assert errors == [], errors
