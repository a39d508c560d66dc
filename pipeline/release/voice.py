"""The voice corpora of the shipped emotion model: RAVDESS (one studio, acted) and URDU (TV talk shows, many
rooms and microphones), with channel augmentation and segmentation jitter, so that the voice stream does not
learn one microphone, one codec or one segmenter.

    clips = voice_clips(Path("../shared/data"))            # labelled recordings and their split
    compute_all(clips, cache=Path(".cache/pretrained/voice"))   # per clip: features of every version x cut (resumable)
    ds = voice_dataset(clips, cache, audio="whisper")     # a dataset: one conversation per (clip, version, cut)

Per clip (cached as one npz, so a rerun computes only what is missing):
- versions: the recording as it is, and (training clips only) AUGMENTED copies, each a seeded random chain of
  gain (+-12 dB), light reverberation (30%: an exponentially decaying noise tail, RT60 0.15-0.5 s), additive
  noise at 10-30 dB SNR (50%: white or brown) and a round trip through a low-bitrate codec with ffmpeg (mp3 32k,
  aac 32k, opus 16k, or GSM full-rate at 8 kHz as the telephone band: Debian's ffmpeg has no AMR-NB encoder),
  or no codec;
- cuts: the utterance as Whisper finds it (the transcriber `predict` uses on a clip without transcript), the
  whole clip (what a one-line .txt transcript gives: extractors.transcripts places it over the whole clip), and
  the Whisper cut with each end moved by up to 0.3 s;
- features of each (version, cut): IS09 and eGeMAPSv02 functionals (openSMILE) and Whisper encoder states
  (extractors.audio_whisper), so bench/voice.py can compare them on the same audio;
- RAVDESS's text: Whisper's transcript of the original recording. URDU is Urdu speech: Whisper tiny.en cannot
  transcribe it, so its text is absent.

Splits: RAVDESS actors 19-20 and URDU_TEST_SPEAKERS are test (original recordings only); every other clip
trains, its copies and cuts kept together with its speaker's other clips on one side of the validation split
(the dataset's meta["groups"]: the speaker).
"""

from __future__ import annotations

import hashlib
import logging
import re
import subprocess
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import numpy as np

log = logging.getLogger(__name__)

SR = 16_000
FEATURE_SETS = {"IS09": 384, "eGeMAPSv02": 88, "whisper": 768}
CUTS = ("whisper", "whole", "jitter")
AUGMENTED = 2  # augmented copies per training clip
JITTER_S = 0.3
RAVDESS_TEST_ACTORS = (19, 20)
RAVDESS = re.compile(r"^03-01-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
RAVDESS_EMOTIONS = {1: "neutral", 2: "neutral", 3: "happiness", 4: "sadness", 5: "anger", 6: "fear", 7: "disgust", 8: "surprise"}
URDU = re.compile(r"^S([MF])(\d+)_F\d+_[AHNS]\d+$")
URDU_EMOTIONS = {"Angry": "anger", "Happy": "happiness", "Neutral": "neutral", "Sad": "sadness"}
CREMAD = re.compile(r"^(\d{4})_[A-Z]{3}_([A-Z]{3})_[A-Z0-9]{2}$")
CREMAD_EMOTIONS = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happiness", "NEU": "neutral", "SAD": "sadness"}
# URDU's held-out speakers: chosen once, by hand, before any model was scored, so that the test split has both
# genders, all four emotions (anger 24, happiness 16, neutral 22, sadness 42 clips) and a quarter of the clips; most
# URDU speakers speak in one emotion only, so speaker and emotion are confounded within the corpus
URDU_TEST_SPEAKERS = ("SM1", "SM24", "SF6", "SM20", "SM3", "SF9", "SF11")
CODECS = {"mp3": ["-c:a", "libmp3lame", "-b:a", "32k", "-f", "mp3"], "aac": ["-c:a", "aac", "-b:a", "32k", "-f", "adts"],
          "opus": ["-c:a", "libopus", "-b:a", "16k", "-f", "ogg"], "gsm": ["-c:a", "libgsm", "-ar", "8000", "-ac", "1", "-f", "gsm"]}


@dataclass(frozen=True)
class VoiceClip:
    """One labelled recording: `key` names it (corpus/relative path without suffix)."""

    corpus: str
    path: Path
    speaker: str
    emotion: str  # neutral, happiness, sadness, anger, surprise, disgust, fear
    split: str  # train or test

    @property
    def key(self) -> str:
        return f"{self.corpus}/{self.path.parent.name}/{self.path.stem}"


def voice_clips(shared: Path) -> list[VoiceClip]:
    """RAVDESS (Actor_*/03-01-*.flac) and URDU (<Emotion>/S*.flac) under `shared` (../shared/data), sorted, and
    CREMA-D's clips (cremad/1001_DFA_ANG_XX.flv, ...: test only, never trained on)."""
    out = []
    for path in sorted((shared / "ravdess").glob("Actor_*/*")):
        m = RAVDESS.match(path.stem)
        if m and path.suffix.lower() in (".flac", ".wav"):
            actor = int(m.group(5))
            out.append(VoiceClip("ravdess", path, f"actor{actor:02d}", RAVDESS_EMOTIONS[int(m.group(1))],
                                 "test" if actor in RAVDESS_TEST_ACTORS else "train"))
    for folder, emotion in URDU_EMOTIONS.items():
        for path in sorted((shared / "urdu" / folder).glob("*.flac")):
            m = URDU.match(path.stem)
            if m:
                speaker = f"S{m.group(1)}{m.group(2)}"
                out.append(VoiceClip("urdu", path, speaker, emotion, "test" if speaker in URDU_TEST_SPEAKERS else "train"))
    for path in sorted((shared / "cremad").glob("*")):
        m = CREMAD.match(path.stem)
        if m and m.group(2) in CREMAD_EMOTIONS:
            out.append(VoiceClip("cremad", path, f"actor{m.group(1)}", CREMAD_EMOTIONS[m.group(2)], "test"))
    return out


# ------------------------------------------------------------------ audio
def load_audio(path: Path) -> np.ndarray:
    """(n,) float32 16 kHz mono of a file (extractors.media)."""
    from extractors.media import decode

    return decode(path, video=False, threads=1).audio


def _through_codec(audio: np.ndarray, codec: str) -> np.ndarray:
    """Encode with ffmpeg at a low bitrate and decode back to 16 kHz float32 (same length, zero-padded/cut)."""
    from extractors.media import ffmpeg_binary

    pcm = np.clip(audio, -1, 1).astype(np.float32).tobytes()
    args = [ffmpeg_binary(), "-v", "error", "-f", "f32le", "-ar", str(SR), "-ac", "1", "-i", "pipe:0"]
    coded = subprocess.run(args + CODECS[codec] + ["pipe:1"], input=pcm, capture_output=True, check=True).stdout
    fmt = {"gsm": ["-f", "gsm", "-ar", "8000"]}.get(codec, [])
    back = subprocess.run([ffmpeg_binary(), "-v", "error", *fmt, "-i", "pipe:0", "-f", "f32le", "-ar", str(SR), "-ac", "1", "pipe:1"],
                          input=coded, capture_output=True, check=True).stdout
    out = np.frombuffer(back, dtype=np.float32)
    out = out[_delay(audio, out):]  # mp3 and aac prepend their encoder's priming samples: cut them
    return np.pad(out, (0, max(0, len(audio) - len(out))))[: len(audio)].copy()


def _delay(original: np.ndarray, coded: np.ndarray, most: int = 4000) -> int:
    """The lag (0..most samples) by which `coded` trails `original`: the peak of their cross-correlation."""
    n = min(len(original), len(coded) - most, 4 * SR)
    if n <= 0:
        return 0
    a, b = original[:n].astype(np.float64), coded[: n + most].astype(np.float64)
    size = 1 << int(np.ceil(np.log2(len(b) + n)))
    xc = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)[: most + 1]
    return int(np.argmax(xc))


def augment(audio: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """A degraded copy of `audio` (16 kHz float32) and the chain that made it (see the module docstring)."""
    recipe: dict[str, Any] = {"gain_db": round(float(rng.uniform(-12, 12)), 1)}
    x = audio.astype(np.float64) * 10 ** (recipe["gain_db"] / 20)
    if rng.random() < 0.3:
        rt60 = float(rng.uniform(0.15, 0.5))
        t = np.arange(int(rt60 * SR)) / SR
        tail = rng.standard_normal(t.size) * np.exp(-6.9 * t / rt60)  # -60 dB at rt60
        tail[0] = 1.0
        tail *= 0.3 / np.sqrt(np.sum(tail[1:] ** 2) + 1e-12)  # direct sound dominates: "light" reverberation
        tail[0] = 1.0
        x = np.convolve(x, tail)[: len(x)]
        recipe["reverb_rt60"] = round(rt60, 2)
    if rng.random() < 0.5:
        snr = float(rng.uniform(10, 30))
        noise = rng.standard_normal(len(x))
        if rng.random() < 0.5:  # brown: most energy low, like hum and rumble
            noise = np.cumsum(noise)
            noise -= np.convolve(noise, np.ones(801) / 801, mode="same")
        power = np.mean(x ** 2) + 1e-12
        x = x + noise * np.sqrt(power / (10 ** (snr / 10)) / (np.mean(noise ** 2) + 1e-12))
        recipe["snr_db"] = round(snr, 1)
    codec = str(rng.choice(["none", *CODECS]))
    x = np.clip(x, -1, 1).astype(np.float32)
    if codec != "none":
        x = _through_codec(x, codec)
        recipe["codec"] = codec
    return x, recipe


def _seed(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256("\0".join(map(str, parts)).encode()).digest()[:8], "big")


# ------------------------------------------------------------------ per clip
@lru_cache(maxsize=1)
def _tools() -> dict[str, Any]:
    """This process's extractors and transcriber (built once per worker)."""
    import torch

    from extractors import build_extractor
    from extractors.asr import build_transcriber

    torch.set_num_threads(1)
    return {"IS09": build_extractor("audio", "IS09"), "eGeMAPSv02": build_extractor("audio", "eGeMAPSv02"),
            "whisper": build_extractor("audio", "whisper"), "asr": build_transcriber("whisper", threads=1)}


def cuts_of(duration: float, speech: tuple[float, float], rng: np.random.Generator) -> dict[str, tuple[float, float]]:
    """The three cuts of a clip: Whisper's span, the whole clip, and Whisper's span with jittered ends."""
    start, end = speech
    a = float(np.clip(start + rng.uniform(-JITTER_S, JITTER_S), 0, duration))
    b = float(np.clip(end + rng.uniform(-JITTER_S, JITTER_S), 0, duration))
    if b - a < 0.5:
        a, b = start, end
    return {"whisper": (start, end), "whole": (0.0, duration), "jitter": (a, b)}


def clip_features(clip: VoiceClip, out: Path) -> Path:
    """Compute and store (atomically) one clip's npz: for each feature set an array (versions, cuts, dim),
    `cuts` (versions, 3, 2) seconds, the transcript and the augmentation recipes. Skips a clip already done."""
    import json

    from core.fileio import atomic_path
    from extractors.base import Media, Segment

    if out.exists():
        return out
    tools = _tools()
    audio = load_audio(clip.path)
    duration = len(audio) / SR
    text = ""
    if clip.corpus == "urdu":  # Urdu speech: the voice-activity filter alone places it
        regions = tools["asr"].speech(audio)
        speech = (regions[0][0] / SR, regions[-1][1] / SR) if regions else (0.0, duration)
    else:
        segments = tools["asr"].transcribe(audio)
        speech = (segments[0].start, segments[-1].end) if segments else (0.0, duration)
        text = " ".join(s.text for s in segments).strip()
    rng = np.random.default_rng(_seed("voice", clip.key))
    versions, recipes = [audio], [{}]
    for _ in range(AUGMENTED if clip.split == "train" else 0):
        x, recipe = augment(audio, rng)
        versions.append(x)
        recipes.append(recipe)
    feats = {name: np.zeros((len(versions), len(CUTS), dim), np.float32) for name, dim in FEATURE_SETS.items()}
    cuts = np.zeros((len(versions), len(CUTS), 2), np.float32)
    for v, x in enumerate(versions):
        spans = cuts_of(duration, speech, rng)
        segs = [Segment(*spans[c], "A", "") for c in CUTS]
        version = Media(path=str(clip.path), audio=x, sample_rate=SR, duration=duration)
        for name in FEATURE_SETS:
            feats[name][v] = tools[name](version, segs)
        cuts[v] = [spans[c] for c in CUTS]
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, cuts=cuts, meta=np.array(json.dumps({"text": text, "recipes": recipes, "duration": duration})), **feats)
    return out


def _npz(cache: Path, clip: VoiceClip) -> Path:
    return cache / f"{clip.key}.npz"


def compute_all(clips: list[VoiceClip], cache: Path, workers: int = 2) -> None:
    """clip_features for every clip not cached yet, in `workers` processes (resumable: one npz per clip)."""
    import multiprocessing

    todo = [c for c in clips if not _npz(cache, c).exists()]
    log.info("voice corpora: %d of %d clips to compute", len(todo), len(clips))
    if not todo:
        return
    ctx = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max(1, workers), mp_context=ctx) as pool:
        for i, _ in enumerate(pool.map(clip_features, todo, [_npz(cache, c) for c in todo], chunksize=4), 1):
            if i % 100 == 0 or i == len(todo):
                log.info("voice corpora: %d/%d clips", i, len(todo))


def load_clip(cache: Path, clip: VoiceClip) -> dict[str, Any]:
    import json

    with np.load(_npz(cache, clip), allow_pickle=False) as z:
        out = {k: z[k] for k in z.files if k != "meta"}
        out.update(json.loads(str(z["meta"])))
    return out


# ------------------------------------------------------------------ datasets
def rows(clips: list[VoiceClip], cache: Path, audio: str, originals_only: bool = False) -> Iterator[tuple[VoiceClip, int, str, np.ndarray, dict]]:
    """(clip, version, cut, feature row, clip data) for every stored (version, cut) of every clip."""
    for clip in clips:
        data = load_clip(cache, clip)
        for v in range(1 if originals_only else data[audio].shape[0]):
            for k, cut in enumerate(CUTS):
                yield clip, v, cut, data[audio][v, k], data


def voice_dataset(clips: list[VoiceClip], cache: Path, audio: str = "whisper", text: Any = None, cuts_in_test: tuple[str, ...] = ("whisper",),
                  normalise: bool = False) -> dict:
    """A dataset (data.schema) of the clips: one conversation of one utterance per (clip, version, cut) for training
    clips, per (clip, cut in `cuts_in_test`) of the original recording for test clips. text: a text extractor for
    RAVDESS's transcripts (None: text absent everywhere). normalise: z-score each speaker's rows with that speaker's
    own mean and deviation (needs several utterances of a speaker; bench/voice.py measures it)."""
    from data.dataset import EMOTIONS, LABEL_COLUMNS, empty_dataset, validate_dataset
    from extractors.base import spec_of

    items = [(c, v, cut, row, data) for c, v, cut, row, data in rows(clips, cache, audio)
             if c.split == "train" or (v == 0 and cut in cuts_in_test)]
    x = np.stack([it[3] for it in items]).astype(np.float32)
    if normalise:
        x = _per_speaker(x, [it[0].corpus + it[0].speaker for it in items])
    texts = [it[4]["text"] if it[0].corpus == "ravdess" else "" for it in items]
    t_dim = 0 if text is None else int(text.dim)
    t = np.zeros((len(items), t_dim), np.float32)
    t_present = np.zeros(len(items), bool)
    if text is not None:
        unique = sorted({s for s in texts if s})
        if unique:
            encoded = dict(zip(unique, text.encode(unique)))
            for i, s in enumerate(texts):
                if s:
                    t[i], t_present[i] = encoded[s], True
    audio_spec = {"name": "voice-corpus", "params": {"features": audio, "normalise": normalise}, "dim": int(x.shape[1])}
    text_spec = spec_of(text) if text is not None else {"name": "none", "params": {}, "dim": 0}
    ds = empty_dataset(features={"text": text_spec, "audio": audio_spec, "visual": {"name": "none", "params": {}, "dim": 0}},
                       provenance={"corpus": "voice corpora (RAVDESS, URDU)", "augmented_copies": AUGMENTED, "cuts": list(CUTS)})
    ds["meta"]["groups"] = {}
    for i, (clip, v, cut, _, data) in enumerate(items):
        vid = f"{clip.key}/v{v}-{cut}"
        label = np.full(len(LABEL_COLUMNS), np.nan, np.float32)
        label[1:] = 0.0
        if clip.emotion != "neutral":
            label[1 + EMOTIONS.index(clip.emotion)] = 1.0
        ds["ID"].append(vid)
        ds["speakers"][vid] = ["A"]
        ds["labels"][vid] = label[None]
        ds["text_feat"][vid] = t[i : i + 1]
        ds["audio_feat"][vid] = x[i : i + 1]
        ds["visual_feat"][vid] = np.zeros((1, 0), np.float32)
        ds["present"][vid] = np.array([[t_present[i], True, False]])
        ds["sentence_in_text"][vid] = [texts[i]]
        ds["meta"]["groups"][vid] = f"{clip.corpus}/{clip.speaker}"
        (ds["train"] if clip.split == "train" else ds["test"]).append(vid)
    return validate_dataset(ds, "voice corpora")


def _per_speaker(x: np.ndarray, speakers: list[str]) -> np.ndarray:
    out = x.copy()
    keys = np.array(speakers)
    for s in set(speakers):
        rows_ = keys == s
        out[rows_] = (x[rows_] - x[rows_].mean(axis=0)) / (x[rows_].std(axis=0) + 1e-6)
    return out
