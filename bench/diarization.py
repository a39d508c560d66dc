"""Speaker diarization on conversations built from real recordings: DER (pyannote.metrics) and real-time factor.

Conversations are joined from real speech in ../shared/data, never from the same corpus twice in one conversation
(two corpora would be told apart by their microphones alone):
- RAVDESS: actors 1-10 for development, 11-20 for the scored test (studio, one microphone, acted emotions: all
  eight emotions at normal intensity; `--strong` adds the strong-intensity takes, shouts and sobs, within which
  one actor's voice varies more than between two actors to this encoder);
- URDU: the talk-show speakers with at least 10 utterances, split in two halves of different speakers (many
  rooms and microphones, spontaneous speech).
Each conversation has 1, 2, 3 or 4 speakers and `--turns` turns; a turn is one speaker's recordings (each trimmed
to its voiced span) joined until it lasts 1-8 s (uniform), cut there; turns are separated by pauses of 0.1-1.0 s,
and with probability 0.15 the next turn starts 0.2-0.6 s before the previous one ends (overlap). Every speaker
gets its own level (0 to -12 dB). The reference is each recording's voiced span with its speaker.

The system is what extraction runs, minus the words: Silero voice activity (the detector Whisper's transcriber
uses; 0.1 s padding, pauses of 0.5 s split) gives the speech, cut into utterances at 20 s, then
extractors.diarize labels it. The baseline labels all of it as one speaker. DER = (missed + false alarm +
confusion) / reference speech, with a 0.25 s collar around reference boundaries, overlaps scored
(pyannote.metrics DiarizationErrorRate), summed over a set's conversations. RTF = diarization seconds (encoder
and clustering, not voice activity) / audio seconds.

`--tune` chooses the cluster-merging similarity and minimum speaker time on the development conversations only and
prints the grid; the scored test conversations then run with the chosen values (extractors.diarize.DEFAULTS
holds the ones chosen here). `--speed` times `extract_clip` on one 60 s conversation with and without
diarization (Whisper transcription, IS09 audio, GloVe text).

    python bench/diarization.py [--sets 5] [--per-set 4] [--turns 14] [--tune] [--strong] [--speed | --speed-only]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from extractors.base import SAMPLE_RATE as SR, Segment  # noqa: E402
from extractors.diarize import DEFAULTS, Diarizer  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
URDU_MIN_FILES = 10
COUNTS = (1, 2, 3, 4)


# ------------------------------------------------------------------ real recordings
def read(path: Path) -> np.ndarray:
    import soundfile as sf

    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    if rate != SR:
        raise SystemExit(f"{path}: {rate} Hz; the shared data is 16 kHz")
    return audio.mean(axis=1)


def voiced(audio: np.ndarray, frame: int = 320) -> np.ndarray:
    """The recording trimmed to its voiced span: frames above 1/30 of its loudest 20 ms frame's RMS."""
    n = len(audio) // frame
    rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1))
    on = np.flatnonzero(rms > rms.max() / 30)
    return audio[on[0] * frame:(on[-1] + 1) * frame] if len(on) else audio


def speakers(strong: bool = False) -> dict[str, dict[str, list[Path]]]:
    """{"dev"|"test": {speaker: recordings}} over both corpora (speaker ids prefixed by corpus). RAVDESS: its
    normal-intensity recordings of all eight emotions, and with `strong` its strong-intensity ones too."""
    out: dict[str, dict[str, list[Path]]] = {"dev": {}, "test": {}}
    for actor in sorted((SHARED / "ravdess").glob("Actor_*")):
        n = int(actor.name.split("_")[1])
        files = [f for f in sorted(actor.glob("*.flac")) if strong or f.name.split("-")[3] == "01"]
        out["dev" if n <= 10 else "test"][f"ravdess/{n:02d}"] = files
    by_speaker: dict[str, list[Path]] = {}
    for f in sorted((SHARED / "urdu").glob("*/*.flac")):
        by_speaker.setdefault(f.name.split("_")[0], []).append(f)
    kept = sorted((s for s, files in by_speaker.items() if len(files) >= URDU_MIN_FILES), key=lambda s: -len(by_speaker[s]))
    for k, s in enumerate(kept):  # alternate down the sizes, so both halves get big and small speakers
        out["dev" if k % 2 == 0 else "test"][f"urdu/{s}"] = by_speaker[s]
    return out


def conversation(pool: dict[str, list[Path]], n_speakers: int, turns: int, rng: np.random.Generator,
                 cache: dict[Path, np.ndarray]) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """(audio, reference [(start, end, speaker)]) of one conversation drawn from one corpus of `pool`."""
    corpus = rng.choice(sorted({k.split("/")[0] for k in pool}))
    names = [str(x) for x in rng.choice(sorted(k for k in pool if k.startswith(corpus)), n_speakers, replace=False)]
    gains = {s: 10 ** (-rng.uniform(0, 12) / 20) for s in names}
    order = list(names) + [str(x) for x in rng.choice(names, max(0, turns - n_speakers))]
    for k in range(1, len(order)):  # no speaker follows itself
        if order[k] == order[k - 1]:
            order[k] = names[(names.index(order[k]) + 1) % n_speakers]
    pieces: list[tuple[float, np.ndarray, str]] = []
    t = 0.0
    for who in order:
        target = rng.uniform(1.0, 8.0)
        length = 0.0
        while length < target - 0.3:
            path = pool[who][int(rng.integers(len(pool[who])))]
            clip = cache.setdefault(path, voiced(read(path)))[: int((target - length) * SR)] * gains[who]
            pieces.append((t + length, clip, who))
            length += len(clip) / SR + 0.15
        end = t + length - 0.15
        t = end - rng.uniform(0.2, 0.6) if rng.random() < 0.15 else end + rng.uniform(0.1, 1.0)
    audio = np.zeros(int((max(a + len(c) / SR for a, c, _ in pieces) + 0.5) * SR), dtype=np.float32)
    for a, clip, _ in pieces:
        audio[int(a * SR):int(a * SR) + len(clip)] += clip
    return audio, [(a, a + len(c) / SR, who) for a, c, who in pieces]


# ------------------------------------------------------------------ the system and the score
def speech_segments(audio: np.ndarray) -> list[Segment]:
    """Silero's speech regions (Whisper's detector at its threshold 0.2), 0.1 s padding, split at 0.5 s pauses and at 20 s."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(threshold=0.2, speech_pad_ms=100, min_silence_duration_ms=500, max_speech_duration_s=20)
    return [Segment(r["start"] / SR, r["end"] / SR, "A", "") for r in get_speech_timestamps(audio, options, sampling_rate=SR)]


def der(reference: list[tuple[float, float, str]], hypothesis: list[Segment], metric) -> None:
    from pyannote.core import Annotation, Segment as Span

    ref, hyp = Annotation(), Annotation()
    for k, (a, b, who) in enumerate(reference):
        ref[Span(a, b), k] = who
    for k, s in enumerate(hypothesis):
        hyp[Span(s.start, s.end), k] = s.speaker
    metric(ref, hyp)


def build(pool, sets: int, per_set: int, turns: int, seed: int) -> dict[tuple[int, int], list]:
    """{(set, n_speakers): [(audio, reference, segments)]}."""
    cache: dict[Path, np.ndarray] = {}
    out = {}
    for k in range(sets):
        rng = np.random.default_rng([seed, k])
        for n in COUNTS:
            convs = []
            for _ in range(per_set):
                audio, ref = conversation(pool, n, turns, rng, cache)
                convs.append((audio, ref, speech_segments(audio)))
            out[k, n] = convs
    return out


def score(convs: dict, embedded: dict, diarizer: Diarizer | None) -> dict[tuple[int, int], float]:
    """DER (percent) per (set, n_speakers); diarizer None: the one-speaker baseline."""
    import warnings

    from pyannote.metrics.diarization import DiarizationErrorRate

    warnings.filterwarnings("ignore", message="'uem' was approximated")  # the scored extent is the reference's and ours
    out = {}
    for key, items in convs.items():
        metric = DiarizationErrorRate(collar=0.25, skip_overlap=False)
        for j, (_, ref, segs) in enumerate(items):
            if diarizer is None:
                hyp = [Segment(s.start, s.end, "S1") for s in segs]
            else:
                windows, emb = embedded[key][j]
                hyp, _ = diarizer.assign([Segment(s.start, s.end, s.speaker, s.text) for s in segs], windows, emb)
            der(ref, hyp, metric)
        out[key] = 100 * abs(metric)
    return out


def embed_all(convs: dict, diarizer: Diarizer) -> tuple[dict, float, float]:
    """Window embeddings of every conversation, and (embedding seconds, audio seconds)."""
    out, spent, audio_s = {}, 0.0, 0.0
    for key, items in convs.items():
        out[key] = []
        for audio, _, segs in items:
            t = time.perf_counter()
            out[key].append(diarizer.embed(audio, segs))
            spent += time.perf_counter() - t
            audio_s += len(audio) / SR
    return out, spent, audio_s


def table(rows: dict[str, dict[tuple[int, int], float]], sets: int) -> None:
    print("| system | " + " | ".join(f"{n} speaker{'s' * (n > 1)}" for n in COUNTS) + " |")
    print("|---" * (len(COUNTS) + 1) + "|")
    for name, ders in rows.items():
        cells = []
        for n in COUNTS:
            if (0, n) not in ders:
                cells.append("-")
                continue
            v = np.array([ders[k, n] for k in range(sets)])
            cells.append(f"{v.mean():.1f} ± {v.std():.1f} ({v.min():.1f}-{v.max():.1f})")
        print(f"| {name} | " + " | ".join(cells) + " |")


def tune(dev: dict, embedded: dict, sets: int) -> dict:
    """The merge similarity and min_speaker with the lowest mean development DER over 2, 3 and 4 speakers."""
    best = None
    print("development DER (mean over sets and speaker counts):")
    for merge in (0.8, 0.825, 0.85, 0.875, 0.9, 1.0):
        line = []
        for min_speaker in (1.5, 4.0):
            settings = {**DEFAULTS, "merge": merge, "min_speaker": min_speaker}
            ders = score(dev, embedded, Diarizer(**settings))
            mean = float(np.mean(list(ders.values())))
            line.append(f"min_speaker {min_speaker}: {mean:.1f}")
            if best is None or mean < best[0]:
                best = (mean, settings)
        print(f"  merge {merge:.2f}: " + ", ".join(line))
    print(f"chosen on development conversations: merge {best[1]['merge']}, min_speaker {best[1]['min_speaker']} "
          f"(development DER {best[0]:.1f})")
    return best[1]


def speed(pool: dict, seed: int, repeats: int) -> None:
    """extract_clip on one ~60 s conversation (a wav in a temporary folder) with diarization off and on."""
    import tempfile

    import soundfile as sf

    from pipeline.extraction.settings import ExtractSettings
    from pipeline.extraction.step import extract_clip

    rng = np.random.default_rng([seed, 99])
    audio, _ = conversation({k: v for k, v in pool.items() if k.startswith("ravdess")}, 2, 18, rng, {})
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "talk.wav"
        sf.write(clip, audio, SR)
        timings = {}
        for mode in ("off", "auto") * repeats:
            settings = ExtractSettings.create(visual="none", diarize=mode)
            extract_clip(clip, settings.build(), settings, audio_only=True, threads=1)  # warm: models loaded
            t = time.perf_counter()
            result = extract_clip(clip, settings.build(), settings, audio_only=True, threads=1)
            timings.setdefault(mode, []).append((time.perf_counter() - t, result["times"].get("diarize", 0.0)))
    off = [w for w, _ in timings["off"]]
    on = [w for w, _ in timings["auto"]]
    share = [d for _, d in timings["auto"]]
    print(f"extract_clip on a {len(audio) / SR:.0f} s 2-speaker conversation, one thread, {repeats} runs each, load {os.getloadavg()[0]:.1f}:")
    print(f"  diarize off {min(off):.2f}-{max(off):.2f} s; on {min(on):.2f}-{max(on):.2f} s, of which diarization "
          f"{min(share):.2f}-{max(share):.2f} s = {100 * min(share) / np.mean(off):.0f}-{100 * max(share) / np.mean(off):.0f}% of extraction without it")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", type=int, default=5, help="random conversation sets (the spread is over these)")
    p.add_argument("--per-set", type=int, default=4, help="conversations per set and speaker count")
    p.add_argument("--turns", type=int, default=14, help="turns per conversation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--strong", action="store_true", help="RAVDESS's strong-intensity takes too (shouts, sobs)")
    p.add_argument("--tune", action="store_true", help="choose merge and min_speaker on the development conversations")
    p.add_argument("--speed", action="store_true", help="time extract_clip with and without diarization")
    p.add_argument("--repeats", type=int, default=3, help="runs of each --speed measurement")
    p.add_argument("--speed-only", action="store_true", help="only the --speed measurement")
    args = p.parse_args()
    if not (SHARED / "ravdess").is_dir() or not (SHARED / "urdu").is_dir():
        print(f"skipped: {SHARED} (RAVDESS and URDU) is not here")
        return 0
    pools = speakers(args.strong)
    print(f"speakers: development {len(pools['dev'])}, test {len(pools['test'])} (no speaker in both); load {os.getloadavg()[0]:.1f}")
    if args.speed_only:
        speed(pools["test"], args.seed, args.repeats)
        return 0
    settings = dict(DEFAULTS)
    if args.tune:
        dev = build(pools["dev"], args.sets, args.per_set, args.turns, args.seed + 1000)
        embedded, _, _ = embed_all(dev, Diarizer(**settings))
        settings = tune(dev, embedded, args.sets)
    test = build(pools["test"], args.sets, args.per_set, args.turns, args.seed)
    diarizer = Diarizer(**settings)
    embedded, spent, audio_s = embed_all(test, diarizer)
    t = time.perf_counter()
    ders = score(test, embedded, diarizer)
    spent += time.perf_counter() - t
    hours = sum(len(a) for items in test.values() for a, _, _ in items) / SR / 60
    print(f"\ntest conversations: {args.sets} sets x {args.per_set} per speaker count, {hours:.1f} min of audio; "
          f"DER %, collar 0.25 s, mean ± std over sets (min-max); load {os.getloadavg()[0]:.1f}")
    table({"one speaker (baseline)": score(test, embedded, None), f"GE2E + spectral clustering (merge {settings['merge']}, min_speaker {settings['min_speaker']})": ders}, args.sets)
    given = {n: score({k: v for k, v in test.items() if k[1] == n}, embedded, Diarizer(**{**settings, "speakers": n})) for n in COUNTS}
    table({"... with --speakers N (the true count)": {k: v for d in given.values() for k, v in d.items()}}, args.sets)
    print(f"\nreal-time factor of diarization (embedding + clustering): {spent / audio_s:.4f} ({spent:.1f} s for {audio_s:.0f} s of audio)")
    if args.speed:
        speed(pools["test"], args.seed, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
