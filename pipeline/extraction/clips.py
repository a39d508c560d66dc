"""Which files are clips: a folder searched recursively (extract, evaluate), the paths a user names (predict), and
the video id each clip gets in a dataset.

    clips = discover_clips("videos/")            # regular media files, sorted, hidden folders skipped
    ids = video_ids("videos/", clips)            # {clip: "s1/talk"}
    clips = collect_clips(["a.mp4", "more/"])    # predict's arguments, folders expanded
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from core.errors import UserError
from core.fileio import file_kind
from extractors.media import CLIP_SUFFIXES

log = logging.getLogger(__name__)


def discover_clips(folder: str | Path, skip: tuple[Path, ...] = (), rejected: list[tuple[Path, str]] | None = None) -> list[Path]:
    """Media files under `folder` (recursive, sorted), skipping hidden folders and the paths in `skip`.

    Only regular files (or links to them) are clips: a named pipe, socket, device or broken link named like a
    clip is left out, since reading it would block or fail; it goes to `rejected` as (path, reason) when a
    list is given, else a warning says so."""
    folder = Path(folder)
    skip = tuple(p.resolve() for p in skip)
    found = []
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (root_path / d).resolve() not in skip)
        for name in files:
            if not name.startswith(".") and Path(name).suffix.lower() in CLIP_SUFFIXES:
                path = root_path / name
                why = _not_a_clip(path)
                if why is None:
                    found.append(path)
                elif rejected is not None:
                    rejected.append((path, why))
                else:
                    log.warning("Skipping %s: %s", path, why)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def _not_a_clip(path: Path) -> str | None:
    """Why a file named like a clip is not one (None when it is a regular file)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return f"a symbolic link to {os.readlink(path)}, which does not exist" if path.is_symlink() else "disappeared"
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    return None if stat.S_ISREG(mode) else f"{file_kind(mode)}, not a regular file; only regular files are clips"


def video_ids(folder: str | Path, clips: list[Path]) -> dict[Path, str]:
    """Video id per clip: its path relative to `folder` without suffix (with it when two clips share a stem)."""
    folder = Path(folder)
    stems = [c.relative_to(folder).with_suffix("").as_posix() for c in clips]
    clash = {s for s in stems if stems.count(s) > 1}
    return {c: (c.relative_to(folder).as_posix() if s in clash else s) for c, s in zip(clips, stems)}


def collect_clips(paths: list[str | Path]) -> list[Path]:
    """Clips from files and folders (folders searched recursively, as `cli.py extract` does), in order.

    Raises UserError for a path that does not exist, a file that is not a media file, or a folder with no clips.
    """
    clips: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = discover_clips(p)
            if not found:
                raise UserError(f"{p}: no clips found (looked for {' '.join(CLIP_SUFFIXES)})")
            clips += found
        elif p.is_file():
            if p.suffix.lower() not in CLIP_SUFFIXES:
                raise UserError(f"{p}: not a clip (expected one of {' '.join(CLIP_SUFFIXES)})")
            clips.append(p)
        else:
            raise UserError(f"{p}: no such clip or folder")
    return list(dict.fromkeys(clips))


def files_beside(clips: list[Path]) -> list[Path]:
    """Every transcript candidate beside the clips that exists (inputs an output must not replace)."""
    from extractors.transcripts import TRANSCRIPT_SUFFIXES

    out = []
    for c in clips:
        for suffix in TRANSCRIPT_SUFFIXES:
            out += [p for p in (c.with_suffix(suffix), c.with_suffix(suffix.upper())) if os.path.lexists(p)]
    return out
