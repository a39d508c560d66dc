"""Speech recognition and line alignment on real speech: Whisper tiny.en (faster-whisper) vs pocketsphinx.

1. Word error rate and real-time factor of each transcriber on RAVDESS (../shared/data/ravdess: acted
   emotional speech; the sentence is coded in each file name), on the GRID clips of ../shared/data/clips
   (their .txt is the reference), and on long speech: 10 RAVDESS clips of different actors joined
   (~36 s, `--long` of them) and the GRID clips joined into 30 s. WER = word edits / reference words over the whole
   set, on lower-case words without punctuation (extractors.asr.normalise: "F2" and "f two" compare
   equal). RTF (real-time factor) = processing wall seconds / audio seconds, both engines allowed the
   machine's cores (CTranslate2 `--threads`, default all; pocketsphinx runs on one); CPU RTF = CPU seconds
   of all threads / audio seconds, which a busy shared machine distorts less. Model loading is reported
   apart. `--beams` compares Whisper beam sizes (WER vs speed).
2. Untimed multi-line transcripts placed on the audio: pocketsphinx forced alignment (`align_lines`, the
   default aligner) vs Whisper's word timestamps matched to the lines (`match_lines` below: normalised
   tokens matched in order with difflib, substituted and missing words interpolated). Clips with known
   line boundaries:
   - RAVDESS dialogues: clips of different actors concatenated as recorded (their own silences
     between lines) and "tight" (each clip trimmed to its voiced span, 0.15 s between lines); the truth
     is each clip's voiced span (energy above 1/30 of its loudest 20 ms frame: studio recordings);
   - the GRID clips concatenated (truth: voiced spans);
   - espeak-ng dialogues from demo/clipgen.py with 0.3 s and 0.8 s gaps (exact truth).
   Metrics: mean absolute boundary error in seconds (starts and ends together) and the share of lines
   whose span overlaps the truth with IoU >= 0.5.

    python bench/asr.py [--per-actor 8 | --all] [--beams 1 5] [--long 6] [--dialogues 20] [--threads 0] [--skip-asr] [--skip-align]

Skips with a message (exit 0) when ../shared/data is not there.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from extractors.asr import Word, edit_distance, fill_gaps, normalise, share, widen, word_error_rate  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
RAVDESS = SHARED / "ravdess"
GRID = SHARED / "clips"
SR = 16_000
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fearful", "07": "disgust", "08": "surprised"}
ESPEAK_LINES = ["the weather is lovely today", "I am very happy to see you", "this is terrible news", "we should meet again next week",
                "I cannot believe what happened", "thank you so much for your help", "that was the worst movie I have ever seen",
                "what a wonderful surprise", "please tell me more about it", "I am not sure about this plan"]


# ------------------------------------------------------------------ data
def ravdess_sample(per_actor: int | None) -> list[Path]:
    """Per actor, `per_actor` clips spread over the 8 emotions, both statements, intensities and repetitions
    (deterministic); None: all clips."""
    out = []
    for actor in sorted(RAVDESS.glob("Actor_*")):
        clips = sorted(actor.glob("*.flac"))
        if per_actor is None:
            out += clips
            continue
        a = int(actor.name.split("_")[1])
        picked = []
        for k in range(per_actor):
            emotion = f"{k % 8 + 1:02d}"
            statement = f"{(k + a) % 2 + 1:02d}"
            options = [c for c in clips if c.stem.split("-")[2] == emotion and c.stem.split("-")[4] == statement]
            if options:
                picked.append(options[(a + k // 8) % len(options)])
        out += picked
    return out


def ravdess_text(clip: Path) -> str:
    return STATEMENTS[clip.stem.split("-")[4]]


def decode_all(clips: list[Path]) -> list[np.ndarray]:
    from extractors.media import decode

    return [decode(c, video=False).audio for c in clips]


# ------------------------------------------------------------------ WER
def run_asr(transcriber, audios: list[np.ndarray]) -> tuple[list[str], float, float]:
    """(hypothesis per clip, wall seconds, CPU seconds of this process: all its threads)."""
    hyps, t, cpu = [], time.perf_counter(), time.process_time()
    for a in audios:
        hyps.append(" ".join(s.text for s in transcriber.transcribe(a, SR)))
    return hyps, time.perf_counter() - t, time.process_time() - cpu


def asr_table(name: str, audios: list[np.ndarray], refs: list[str], transcribers: dict[str, object]) -> dict[str, tuple[float, float]]:
    seconds = sum(len(a) for a in audios) / SR
    print(f"\n{name}: {len(audios)} clips, {seconds:.0f} s of audio  (load {os.getloadavg()[0]:.2f})")
    print(f"  {'transcriber':<26} {'WER %':>7} {'RTF':>7} {'CPU RTF':>8}   worst clips")
    out = {}
    for label, tr in transcribers.items():
        hyps, spent, cpu = run_asr(tr, audios)
        w = word_error_rate(refs, hyps)
        worst = sorted(range(len(refs)), key=lambda i: -edit_distance(normalise(refs[i]), normalise(hyps[i])))[:2]
        print(f"  {label:<26} {100 * w:7.1f} {spent / seconds:7.3f} {cpu / seconds:8.3f}   " + "; ".join(repr(hyps[i]) for i in worst))
        out[label] = (w, spent / seconds)
    return out


# ------------------------------------------------------------------ alignment
def match_lines(words: list[Word], lines: list[str], duration: float) -> tuple[list[tuple[float, float]], float]:
    """The Whisper-based aligner that was measured (not the default: see the module docstring).

    Places transcript lines on recognised words; returns (spans, share of line tokens matched).

    Both sides are normalised to tokens and matched in order (difflib). A matched token takes its word's
    time; tokens in a substituted run share the time of the recognised words they replace, by characters;
    tokens with no recognised counterpart share the gap between their timed neighbours. A line spans from
    its first token's start to its last token's end.
    """
    ref = [(k, t) for k, line in enumerate(lines) for t in normalise(line)]
    hyp = [(t, w.start, w.end) for w in words for t in normalise(w.text)]
    times: list[tuple[float, float] | None] = [None] * len(ref)
    matched = 0
    ops = difflib.SequenceMatcher(None, [t for _, t in ref], [t for t, _, _ in hyp], autojunk=False).get_opcodes()
    for op, i1, i2, j1, j2 in ops:
        if op == "equal":
            for i, j in zip(range(i1, i2), range(j1, j2)):
                times[i] = (hyp[j][1], hyp[j][2])
            matched += i2 - i1
        elif op == "replace":
            times[i1:i2] = share(hyp[j1][1], hyp[j2 - 1][2], [len(t) for _, t in ref[i1:i2]])
    fill_gaps(times, [len(t) for _, t in ref], duration)
    spans: list[tuple[float, float] | None] = [None] * len(lines)
    for (k, _), span in zip(ref, times):
        spans[k] = span if spans[k] is None else (spans[k][0], span[1])
    fill_gaps(spans, [len(line) for line in lines], duration)
    return widen([s for s in spans if s is not None], duration), (matched / len(ref) if ref else 0.0)


def voiced(audio: np.ndarray) -> tuple[float, float]:
    from extractors.asr_pocketsphinx import voiced_span

    return voiced_span(audio, SR)


def dialogue(audios: list[np.ndarray], texts: list[str], tight: bool) -> tuple[np.ndarray, list[str], list[tuple[float, float]]]:
    """Concatenate clips into one audio; returns (audio, lines, true spans)."""
    parts, truth, t = [], [], 0.0
    for a in audios:
        v0, v1 = voiced(a)
        if tight:
            a = np.concatenate([a[int(v0 * SR): int(v1 * SR)], np.zeros(int(0.15 * SR), np.float32)])
            v0, v1 = 0.0, v1 - v0
        truth.append((t + v0, t + v1))
        parts.append(a)
        t += len(a) / SR
    audio = np.concatenate(parts) + np.random.default_rng(0).normal(0, 1e-4, int(round(t * SR))).astype(np.float32)[: sum(len(p) for p in parts)]
    return audio.astype(np.float32), list(texts), truth


def ravdess_dialogues(n: int, size: int = 5, seed: int = 0) -> list[tuple[list[Path], list[str]]]:
    """n dialogues of `size` clips, each clip from another actor, emotions and statements varying."""
    rng = np.random.default_rng(seed)
    actors = sorted(RAVDESS.glob("Actor_*"))
    out = []
    for _ in range(n):
        chosen = [sorted(actors[i].glob("*.flac"))[int(rng.integers(60))] for i in rng.choice(len(actors), size, replace=False)]
        out.append((chosen, [ravdess_text(c) for c in chosen]))
    return out


def score(spans: list[tuple[float, float]], truth: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    errors, ious = [], []
    for (a, b), (c, d) in zip(spans, truth):
        errors += [abs(a - c), abs(b - d)]
        inter = max(0.0, min(b, d) - max(a, c))
        ious.append(inter / max(1e-9, max(b, d) - min(a, c)))
    return errors, ious


def compare_alignment(sets: dict[str, list[tuple[np.ndarray, list[str], list[tuple[float, float]]]]], whisper) -> None:
    from extractors.asr_pocketsphinx import align_lines

    print(f"\nline alignment: mean |boundary error|, share of lines with IoU >= 0.5, real-time factor  (load {os.getloadavg()[0]:.2f})")
    print(f"  {'clips':<34} {'lines':>5}  {'pocketsphinx align_lines':>28}  {'whisper words + match_lines':>28}")
    totals: dict[str, list] = {k: [[], []] for k in ("pocketsphinx", "whisper")}
    for name, items in sets.items():
        res: dict[str, list] = {k: [[], [], 0.0] for k in totals}
        seconds = sum(len(a) for a, _, _ in items) / SR
        matched = []
        for audio, lines, truth in items:
            t = time.perf_counter()
            spans, _ = align_lines(audio, SR, lines)
            res["pocketsphinx"][2] += time.perf_counter() - t
            t = time.perf_counter()
            spans_w, share_w = match_lines(whisper.words(audio, SR), lines, len(audio) / SR)
            res["whisper"][2] += time.perf_counter() - t
            matched.append(share_w)
            for k, s in (("pocketsphinx", spans), ("whisper", spans_w)):
                e, i = score(s, truth)
                res[k][0] += e
                res[k][1] += i
        cells = []
        for k in totals:
            errs, ious, spent = res[k]
            cells.append(f"{np.mean(errs):6.3f} s {100 * np.mean(np.array(ious) >= 0.5):5.1f}% RTF {spent / seconds:.3f}")
            totals[k][0] += errs
            totals[k][1] += ious
        print(f"  {name:<34} {sum(len(l) for _, l, _ in items):>5}  " + "  ".join(f"{c:>28}" for c in cells)
              + f"   (Whisper found {100 * np.mean(matched):.0f}% of the lines' words)")
    cells = [f"{np.mean(v[0]):6.3f} s {100 * np.mean(np.array(v[1]) >= 0.5):5.1f}%" for v in totals.values()]
    print(f"  {'all':<34} {len(totals['pocketsphinx'][1]):>5}  " + "  ".join(f"{c:>28}" for c in cells))


def espeak_dialogues(n: int, gap: float) -> list[tuple[np.ndarray, list[str], list[tuple[float, float]]]]:
    import tempfile

    from extractors.media import decode
    from demo.clipgen import make_clip

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(n):
            lines = [ESPEAK_LINES[(k * 3 + i) % len(ESPEAK_LINES)] for i in range(4)]
            segs = make_clip(Path(tmp) / f"d{k}.wav", lines, gap=gap)
            out.append((decode(Path(tmp) / f"d{k}.wav", video=False).audio, lines, [(s.start, s.end) for s in segs]))
    return out


# ------------------------------------------------------------------ main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-actor", type=int, default=8, help="RAVDESS clips per actor (20 actors), spread over emotions and statements")
    ap.add_argument("--all", action="store_true", help="all 1,200 RAVDESS clips")
    ap.add_argument("--beams", type=int, nargs="+", default=[1, 5], help="Whisper beam sizes to compare")
    ap.add_argument("--threads", type=int, default=0, help="CTranslate2 threads (0: all usable cores)")
    ap.add_argument("--dialogues", type=int, default=20, help="RAVDESS dialogues (5 clips each) per alignment condition")
    ap.add_argument("--long", type=int, default=6, help="long-speech items of 10 joined RAVDESS clips each")
    ap.add_argument("--skip-asr", action="store_true")
    ap.add_argument("--skip-align", action="store_true")
    args = ap.parse_args()
    if not RAVDESS.is_dir() or not GRID.is_dir():
        print(f"skipped: the real data is not at {SHARED} (see its README.md)")
        return 0
    import logging

    logging.basicConfig(level=logging.ERROR)
    from extractors.asr import build_transcriber
    from extractors.asr_whisper import BEAM_SIZE, load_model

    print(f"cores {os.cpu_count()}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    t = time.perf_counter()
    load_model(args.threads)
    print(f"Whisper tiny.en model load: {time.perf_counter() - t:.2f} s")
    whisper = {f"whisper beam {b}": build_transcriber("whisper", threads=args.threads, beam_size=b) for b in args.beams}
    if not args.skip_asr:
        clips = ravdess_sample(None if args.all else args.per_actor)
        audios = decode_all(clips)
        refs = [ravdess_text(c) for c in clips]
        emotions = sorted({EMOTIONS[c.stem.split("-")[2]] for c in clips})
        sample = "all clips" if args.all else f"{args.per_actor} per actor"
        transcribers = {**whisper, "pocketsphinx": build_transcriber("pocketsphinx")}
        asr_table(f"RAVDESS ({sample}: {len({c.parent for c in clips})} actors, {len(emotions)} emotions, "
                  f"{len({c.stem.split('-')[4] for c in clips})} sentences)", audios, refs, transcribers)
        grid = sorted(GRID.glob("*.mpg"))
        grid_audio, grid_refs = decode_all(grid), [c.with_suffix(".txt").read_text().strip() for c in grid]
        asr_table("GRID clips", grid_audio, grid_refs, transcribers)
        # long speech: several sentences per 30 s decoding window
        long_audio, long_refs = [], []
        for clips_, texts in ravdess_dialogues(args.long, size=10, seed=1):
            long_audio.append(np.concatenate(decode_all(clips_)))
            long_refs.append(" ".join(texts))
        long_audio.append(np.concatenate([grid_audio[i % len(grid)] for i in range(10)]))
        long_refs.append(" ".join(grid_refs[i % len(grid)] for i in range(10)))
        asr_table(f"long speech: {args.long} x 10 RAVDESS clips of different actors joined, and 10 GRID clips joined (30 s)",
                  long_audio, long_refs, transcribers)
    if not args.skip_align:
        aligner = build_transcriber("whisper", threads=args.threads, beam_size=BEAM_SIZE)
        dialogues = ravdess_dialogues(args.dialogues)
        sets = {}
        for tight in (False, True):
            key = f"RAVDESS x5, {'tight 0.15 s' if tight else 'as recorded'} ({args.dialogues})"
            sets[key] = [dialogue(decode_all(c), texts, tight) for c, texts in dialogues]
        grid = sorted(GRID.glob("*.mpg"))
        sets["GRID x4, as recorded (1)"] = [dialogue(decode_all(grid), [c.with_suffix(".txt").read_text().strip() for c in grid], False)]
        for gap in (0.3, 0.8):
            sets[f"espeak-ng x4, gap {gap} s (10)"] = espeak_dialogues(10, gap)
        compare_alignment(sets, aligner)
    print(f"\nload average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
