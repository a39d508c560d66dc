"""Speaker diarization: the GE2E encoder against resemblyzer's own output, who-speaks-when on real voices (RAVDESS
actors, URDU talk-show speakers from ../shared/data, skipped without it), the bad inputs of issue 17 (one voice,
silence, music, a 1 s clip, 100 short turns, another language), splitting an utterance at a change of speaker, and
the plumbing: transcripts that name speakers win, the cache key, the recorded spec, predict's choice, the plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from extractors.base import SAMPLE_RATE as SR, Segment
from extractors.diarize import Diarizer, diarize_spec, split_segment

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
RAVDESS = SHARED / "ravdess"
URDU = SHARED / "urdu"
needs_ravdess = pytest.mark.skipif(not RAVDESS.is_dir(), reason="needs ../shared/data/ravdess")
# the real 2-person clip of the README: actors 11 and 13 (two men) taking turns, neutral/calm/happy/sad takes
TWO_VOICES = [("Actor_11", "03-01-01-01-01-01-11.flac"), ("Actor_13", "03-01-01-01-01-01-13.flac"),
              ("Actor_11", "03-01-02-01-01-01-11.flac"), ("Actor_13", "03-01-02-01-01-01-13.flac"),
              ("Actor_11", "03-01-03-01-02-01-11.flac"), ("Actor_13", "03-01-03-01-02-01-13.flac"),
              ("Actor_11", "03-01-04-01-02-01-11.flac"), ("Actor_13", "03-01-04-01-02-01-13.flac")]


def read(path: Path) -> np.ndarray:
    import soundfile as sf

    audio, rate = sf.read(str(path), dtype="float32")
    assert rate == SR
    return audio


def voiced(audio: np.ndarray, frame: int = 320) -> np.ndarray:
    """The recording trimmed to its voiced span (frames above 1/30 of the loudest 20 ms frame's RMS)."""
    n = len(audio) // frame
    rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1))
    on = np.flatnonzero(rms > rms.max() / 30)
    return audio[on[0] * frame:(on[-1] + 1) * frame]


def join(files: list[Path], gap: float = 0.3) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The voiced spans of `files` one after another with `gap` s between them, and each one's (start, end)."""
    parts, spans, t = [], [], 0.0
    for f in files:
        v = voiced(read(f))
        parts += [v, np.zeros(int(gap * SR), np.float32)]
        spans.append((t, t + len(v) / SR))
        t += len(v) / SR + gap
    return np.concatenate(parts), spans


def write_wav(path: Path, audio: np.ndarray) -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, SR)
    return path


@pytest.fixture(scope="module")
def two_voices():
    if not RAVDESS.is_dir():
        pytest.skip("needs ../shared/data/ravdess")
    audio, spans = join([RAVDESS / a / f for a, f in TWO_VOICES])
    return audio, spans, [a for a, _ in TWO_VOICES]


# ------------------------------------------------------------------ the encoder is resemblyzer's
@needs_ravdess
def test_encoder_matches_resemblyzer() -> None:
    pytest.importorskip("librosa", reason="the reference (resemblyzer's own mel) needs librosa")
    pytest.importorskip("webrtcvad", reason="resemblyzer imports webrtcvad")
    from resemblyzer import VoiceEncoder
    from resemblyzer.audio import normalize_volume, wav_to_mel_spectrogram

    from extractors.speaker_encoder import SpeakerEncoder

    wav = normalize_volume(read(RAVDESS / "Actor_01" / "03-01-05-02-01-01-01.flac"), -30, increase_only=True).astype(np.float32)
    ours = SpeakerEncoder()
    mel, ref_mel = ours.mel(wav), wav_to_mel_spectrogram(wav)
    assert mel.shape == ref_mel.shape == (1 + len(wav) // 160, 40)
    np.testing.assert_allclose(mel, ref_mel, rtol=1e-4, atol=1e-5 * ref_mel.max())
    embedding, partials = ours.embed_utterance(wav)
    ref_embedding, ref_partials, _ = VoiceEncoder("cpu", verbose=False).embed_utterance(wav, return_partials=True)
    assert partials.shape == ref_partials.shape and partials.shape[0] > 1
    np.testing.assert_allclose(partials, ref_partials, atol=2e-5)
    np.testing.assert_allclose(embedding, ref_embedding, atol=2e-5)


# ------------------------------------------------------------------ real voices
def test_two_real_voices_get_two_labels_through_extract(two_voices, tmp_path) -> None:
    """The real 2-person clip (two RAVDESS actors taking turns) through `cli.py extract`: Whisper cuts the utterances,
    the diarizer names the two voices, each turn gets its actor's label; with --diarize off all are "A"."""
    import cli
    from data.dataset import load_dataset

    audio, spans, actors = two_voices
    write_wav(tmp_path / "clips" / "talk.wav", audio)
    common = ["extract", str(tmp_path / "clips"), "--visual", "none", "--audio-features", "mfcc", "--workers", "1",
              "--cache-dir", str(tmp_path / "cache")]
    assert cli.main([*common, "-o", str(tmp_path / "on.pkl")]) == 0
    ds = load_dataset(tmp_path / "on.pkl")
    assert ds["meta"]["features"]["diarize"]["mode"] == "auto" and ds["meta"]["features"]["diarize"]["name"] == "ge2e"
    assert ds["meta"]["diarized"] == {"talk": 2}
    labels = ds["speakers"]["talk"]
    timings = ds["meta"]["timings"]["talk"]
    by_actor: dict[str, set] = {}
    for (a, b), who in zip(timings, labels):
        k = int(np.argmax([min(b, e) - max(a, s) for s, e in spans]))
        by_actor.setdefault(actors[k], set()).add(who)
    assert sorted(map(sorted, by_actor.values())) == [["S1"], ["S2"]], (labels, timings)
    assert cli.main([*common, "-o", str(tmp_path / "off.pkl"), "--diarize", "off"]) == 0
    off = load_dataset(tmp_path / "off.pkl")
    assert set(off["speakers"]["talk"]) == {"A"} and off["meta"]["features"]["diarize"]["mode"] == "off"


def test_one_real_voice_gets_one_label() -> None:
    if not RAVDESS.is_dir():
        pytest.skip("needs ../shared/data/ravdess")
    files = sorted((RAVDESS / "Actor_12").glob("03-01-0[1-5]-01-0*-01-12.flac"))[:8]
    audio, spans = join(files)
    out, info = Diarizer().diarize(audio, [Segment(a, b, "A", "kids are talking by the door") for a, b in spans])
    assert info["speakers"] == 1 and {s.speaker for s in out} == {"S1"} and len(out) == len(spans)


def test_given_count_and_a_change_inside_one_utterance(two_voices) -> None:
    """Two turns with no pause between them, given as one utterance with word times: split at the change, each part
    with its own words; --speakers 2 fixes the count."""
    audio, spans, _ = two_voices
    # utterance 2 and 3 of the clip (actor 13 then actor 11) as one, the pause between them kept
    a, b = spans[1][0], spans[2][1]
    words = [(f"w{k}", s + 0.1 * j, s + 0.1 * j + 0.08) for k, (s, e) in enumerate(spans[1:3]) for j in range(int((e - s) / 0.1))]
    segments = [Segment(*spans[0], "A", "first"), Segment(a, b, "A", " ".join(w[0] for w in words), {}, words), Segment(*spans[3], "A", "last")]
    out, info = Diarizer(speakers=2).diarize(audio, segments)
    assert info["split"] == 1 and [s.speaker for s in out] == ["S1", "S2", "S1", "S2"]
    assert set(out[1].text.split()) == {"w0"} and set(out[2].text.split()) == {"w1"}
    assert abs(out[1].end - spans[1][1]) < 0.35 and abs(out[2].start - spans[2][0]) < 0.35


# ------------------------------------------------------------------ bad input
def test_short_clip_and_many_short_turns(two_voices) -> None:
    audio, spans, _ = two_voices
    one_second = audio[int(spans[0][0] * SR):int(spans[0][0] * SR) + SR]
    out, info = Diarizer().diarize(one_second, [Segment(0.1, 0.9, "A", "kids are")])
    assert [s.speaker for s in out] == ["S1"] and info["speakers"] == 1
    # 100 turns of 0.12 s: labels for every one, never more than the encoder can tell apart
    turns = [Segment(0.13 * k, 0.13 * k + 0.12, "A", f"t{k}") for k in range(100)]
    out, info = Diarizer().diarize(audio, turns)
    assert len(out) == 100 and all(s.speaker.startswith("S") for s in out) and 1 <= info["speakers"] <= 8


def test_no_speech_gets_no_speakers(tmp_path) -> None:
    """Silence and music: the transcriber finds no speech, so nothing is diarized and predict reports no speakers."""
    from pipeline.extraction.settings import ExtractSettings
    from pipeline.extraction.step import extract_clip
    from pipeline.prediction.predict import _speakers_note

    t = np.arange(4 * SR) / SR
    chord = sum(0.1 * np.sin(2 * np.pi * f * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2 for f in (261.6, 329.6, 392.0))
    settings = ExtractSettings.create(visual="none", audio="mfcc", diarize="on")
    for name, audio in (("silence", np.zeros(3 * SR, np.float32)), ("music", chord.astype(np.float32))):
        result = extract_clip(write_wav(tmp_path / f"{name}.wav", audio), settings.build(), settings, audio_only=True, threads=1)
        assert result["info"]["diarized"] is False and [s[3] for s in result["segments"]] == [""], name
        segments = [Segment(a, b, sp, tx) for a, b, sp, tx, _ in result["segments"]]
        assert _speakers_note(result["info"], segments) == "none (no speech)"


def test_another_language_gives_labels_or_a_note(tmp_path) -> None:
    """Two URDU talk-show speakers: Whisper's English model finds words or none; either way no crash, and labels are
    S1.. when it did."""
    if not URDU.is_dir():
        pytest.skip("needs ../shared/data/urdu")
    from pipeline.extraction.settings import ExtractSettings
    from pipeline.extraction.step import extract_clip

    files = sorted(URDU.glob("*/SM5_*.flac"))[:2] + sorted(URDU.glob("*/SM4_*.flac"))[:2]
    audio, _ = join([files[0], files[2], files[1], files[3]], gap=0.6)
    settings = ExtractSettings.create(visual="none", audio="mfcc")
    result = extract_clip(write_wav(tmp_path / "urdu.wav", audio), settings.build(), settings, audio_only=True, threads=1)
    speakers = [s[2] for s in result["segments"]]
    if result["info"]["diarized"]:
        assert all(s.startswith("S") for s in speakers) and result["info"]["speakers"] >= 1
    else:
        assert [s[3] for s in result["segments"]] == [""]


def test_split_segment_without_word_times() -> None:
    seg = Segment(0.0, 4.0, "A", "one two three four five six seven eight", {"sentiment": 1.0})
    parts = split_segment(seg, [2.0], ["0", "1"])
    assert [p.text for p in parts] == ["one two three four", "five six seven eight"]
    assert [(p.start, p.end) for p in parts] == [(0.0, 2.0), (2.0, 4.0)] and all(p.labels == {"sentiment": 1.0} for p in parts)
    # a part that would get no word gives its time to a neighbour
    parts = split_segment(Segment(0.0, 4.0, "A", "hello"), [3.5], ["0", "1"])
    assert [(p.start, p.end, p.text) for p in parts] == [(0.0, 4.0, "hello")]


# ------------------------------------------------------------------ plumbing
def test_spec_settings_and_choice() -> None:
    from pipeline.extraction.settings import ExtractSettings, diarizer_spec
    from pipeline.prediction.predict import LoadedModel, choose_diarize
    from core.errors import UserError

    spec = diarize_spec("auto", 3)
    assert spec["name"] == "ge2e" and spec["params"]["speakers"] == 3 and spec["params"]["weights"] == "resemblyzer 0.1.4"
    with pytest.raises(UserError, match="--diarize sometimes"):
        diarizer_spec("sometimes")
    for bad in (0, 33, "two"):  # one rule for the library and the CLI (test_bad_speaker_count_is_a_usage_error)
        with pytest.raises(ValueError, match="from 1 to 32"):
            diarize_spec("on", bad)
    settings = ExtractSettings.create(visual="none", audio="mfcc", diarize="on", speakers=2)
    back = ExtractSettings.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert back.diarize == settings.diarize and back.diarizer().speakers == 2
    old = dict(settings.to_dict())
    del old["diarize"]  # a settings dict from before diarization
    assert ExtractSettings.from_dict(old).diarizer() is None

    def model(recorded):
        return LoadedModel(Path("c.pt"), "regression", None, None, {}, diarize=recorded)

    assert choose_diarize([model(None)])["mode"] == "auto"  # a checkpoint from before diarization: diarize
    assert choose_diarize([model(diarize_spec("off"))])["mode"] == "off"  # as its training data
    assert choose_diarize([model(diarize_spec("off"))], "on")["mode"] == "on"
    kept = choose_diarize([model(diarize_spec("auto", params={**diarize_spec("auto")["params"], "merge": 0.7}))], speakers=2)
    assert kept["params"]["merge"] == 0.7 and kept["params"]["speakers"] == 2


def test_named_speakers_win_and_the_cache_key(tmp_path) -> None:
    """A transcript naming speakers is never diarized and keeps its cache key whatever --diarize says; so does every
    clip with --diarize off (keys as before diarization); a transcript without names is keyed with the diarizer."""
    from extractors.transcripts import read_transcript
    from pipeline.extraction.cache import cache_key, clip_key
    from pipeline.extraction.settings import ExtractSettings

    write_wav(tmp_path / "named.wav", np.zeros(SR, np.float32))
    (tmp_path / "named.srt").write_text("1\n00:00:00,000 --> 00:00:00,500\nALICE: hi\n\n2\n00:00:00,500 --> 00:00:01,000\nhello\n", encoding="utf-8")
    write_wav(tmp_path / "plain.wav", np.zeros(SR, np.float32))
    (tmp_path / "plain.txt").write_text("hi there\nhello\n", encoding="utf-8")
    write_wav(tmp_path / "bare.wav", np.zeros(SR, np.float32))
    assert read_transcript(tmp_path / "named.srt").named_speakers and not read_transcript(tmp_path / "plain.txt").named_speakers
    csv = tmp_path / "t.csv"
    csv.write_text("start,end,speaker,text\n0,1,,hi\n", encoding="utf-8")
    assert not read_transcript(csv).named_speakers
    on = ExtractSettings.create(visual="none", audio="mfcc", diarize="auto")
    off = ExtractSettings.create(visual="none", audio="mfcc", diarize="off")
    for clip, diarized in (("named", False), ("plain", True), ("bare", True)):
        digest, key_on, transcript = clip_key(str(tmp_path / f"{clip}.wav"), True, on)
        _, key_off, _ = clip_key(str(tmp_path / f"{clip}.wav"), True, off)
        assert (key_on != key_off) == diarized, clip
        assert key_off == cache_key(digest, None if transcript is None else clip_key.__globals__["file_digest"](transcript), off, True)


def test_plot_has_a_lane_per_speaker(tmp_path) -> None:
    from pipeline.prediction.output import plot_predictions, speaker_colours

    utts = [{"start": i, "end": i + 0.9, "speaker": f"S{1 + i % 2}", "text": "x", "sentiment": 0.5, "label": "positive",
             "emotions": {}, "modalities": ["text"]} for i in range(4)]
    assert speaker_colours(utts) == {"S1": "tab:blue", "S2": "tab:orange"}
    out = plot_predictions([{"clip": "talk.wav", "duration": 4.0, "utterances": utts}], tmp_path / "p.png")
    assert out.stat().st_size > 1000


def test_bad_speaker_count_is_a_usage_error(capsys) -> None:
    import cli

    with pytest.raises(SystemExit) as e:
        cli.main(["extract", "nowhere", "--speakers", "0"])
    assert e.value.code == 2 and "--speakers: '0': give a number of speakers from 1 to 32" in capsys.readouterr().err
