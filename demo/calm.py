"""Calm synthetic speech for the shipped model's check that calm talk is not called anger, fear or disgust
(`make pretrained` runs this first): the demo's neutral sentences, spoken by espeak-ng in both demo voices.

    python -m demo.calm OUT_DIR        # OUT_DIR/neutral-A.wav, neutral-B.wav and a .txt transcript beside each
"""

from __future__ import annotations

import sys
from pathlib import Path

from demo.clipgen import make_clip, tools_available
from demo.run import CATEGORIES, VOICES

TOPICS = ("meeting", "report", "train", "parcel", "lesson")


def write_calm(out: Path) -> list[Path]:
    """One clip per demo voice speaking every neutral phrase (one topic each), with its one-line-per-sentence .txt."""
    phrases = CATEGORIES["neutral"][2]
    clips = []
    for speaker, voice in VOICES.items():
        clip = out / f"neutral-{speaker}.wav"
        if not clip.exists():
            said = make_clip(clip, [p.format(topic=t) for p, t in zip(phrases, TOPICS)], voice=voice, gap=0.6)
            clip.with_suffix(".txt").write_text("\n".join(s.text for s in said) + "\n", encoding="utf-8")
        clips.append(clip)
    return clips


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m demo.calm OUT_DIR", file=sys.stderr)
        return 2
    if not tools_available():
        print("demo.calm: espeak-ng and ffmpeg are needed (apt-get install espeak-ng ffmpeg); nothing written", file=sys.stderr)
        return 0
    for clip in write_calm(Path(args[0])):
        print(f"wrote {clip}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
