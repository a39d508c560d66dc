"""The page of `cli.py serve` in a real browser: headless Chromium from the system's packages (Debian's `chromium`),
driven by Playwright with an explicit executable path (Playwright's own browser download is never used).

Upload a generated clip and its transcript, see the progress, the table, the sentiment timeline and the emotion
bands; click an utterance and the video seeks there; play and the cursor follows; download JSON and CSV; earlier
results stay listed; a corrupt file, an empty file, a non-media file and a clip without speech each show a
readable message. Chromium missing is a failure, not a skip: `make test` installs it.
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
    from pipeline.serving.app import BackgroundServer, create_app

    tmp_root = tmp_path_factory.mktemp("browser-tmp")
    app = create_app([served_models["predictor"]], max_upload_mb=5, tmp_root=tmp_root)
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
