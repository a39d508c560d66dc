"""The frozen lower layers' token states of texts, computed once and kept on disk, for fine-tuning the layers above.

    bank, offsets = token_bank(texts, encoder, upto=5, max_seq_length=256, cache_dir=Path(".cache/token-states"))
    bank[offsets[i]:offsets[i + 1]]        # (n_tokens_i, 384) float16: text i after layers 0..4

Layout: `cache_dir/<base sha256[:16]>-upto<N>-len<M>/chunk-<id>/{keys,lengths,states}.npy`, one folder per
(base weights, depth, truncation), since each changes the states; a text's key is the sha1 of its UTF-8 bytes.
A chunk holds up to CHUNK texts and is written whole (a temporary folder renamed into place), so an interrupted
run keeps the chunks it finished and a rerun computes only the texts no chunk holds. States are float16 (half the
disk and memory; the features they give differ from float32's by ~1e-3, tests/test_finetune.py) and memory-mapped
when read, so a cache shared by several corpora costs only the texts asked for.

Size: 384 float16 per word piece, 768 bytes; MELD's 11,098 utterances (~14 pieces each) take ~120 MB,
GoEmotions' 54,263 ~0.8 GB.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.progress import Progress

log = logging.getLogger(__name__)
CHUNK = 4096  # texts per chunk file: what an interruption can lose


def text_key(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest().encode()


def cache_folder(cache_dir: Path, base_sha256: str, upto: int, max_seq_length: int) -> Path:
    return Path(cache_dir) / f"{base_sha256[:16]}-upto{upto}-len{max_seq_length}"


def _read_chunks(folder: Path) -> dict[bytes, tuple[np.ndarray, int, int]]:
    """key -> (the chunk's memory-mapped states, start row, length) for every finished chunk in `folder`."""
    found: dict[bytes, tuple[np.ndarray, int, int]] = {}
    if not folder.is_dir():
        return found
    for chunk in sorted(folder.glob("chunk-*")):
        try:
            keys = np.load(chunk / "keys.npy")
            lengths = np.load(chunk / "lengths.npy")
            states = np.load(chunk / "states.npy", mmap_mode="r")
        except (OSError, ValueError) as e:  # a chunk damaged outside this code: computed again
            log.warning("token cache: skipping %s due to %s", chunk, e)
            continue
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        for k, s, n in zip(keys.tolist(), starts.tolist(), lengths.tolist()):
            found[k] = (states, s, n)
    return found


def _write_chunk(folder: Path, keys: list[bytes], states: list[np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    name = "chunk-" + hashlib.sha1(b"".join(keys)).hexdigest()[:16]
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=folder))
    try:
        np.save(tmp / "keys.npy", np.array(keys, dtype="S40"))
        np.save(tmp / "lengths.npy", np.array([len(s) for s in states], dtype=np.int64))
        np.save(tmp / "states.npy", np.concatenate(states).astype(np.float16))
        if (folder / name).exists():  # the same texts written by another run meanwhile
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, folder / name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def token_bank(texts: list[str], encoder: Any, upto: int, max_seq_length: int, base_sha256: str,
               cache_dir: Path | None = None, progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The states of `texts` after the encoder's first `upto` layers, in one array: (total_tokens, hidden) float16,
    and offsets (len(texts) + 1,) int64 (text i is rows offsets[i]:offsets[i+1]). Texts are tokenised and truncated
    as the encoder defines (an empty text is [CLS] [SEP]). cache_dir None: computed in memory, nothing kept."""
    keys = [text_key(t) for t in texts]
    folder = cache_folder(cache_dir, base_sha256, upto, max_seq_length) if cache_dir is not None else None
    found = _read_chunks(folder) if folder is not None else {}
    first: dict[bytes, int] = {}  # each text not cached yet, once
    for i, k in enumerate(keys):
        if k not in found and k not in first:
            first[k] = i
    todo = list(first.values())
    computed: dict[bytes, np.ndarray] = {}
    if todo:
        t = time.perf_counter()
        log.info("token cache: computing layers 0..%d for %d of %d texts%s", upto - 1, len(todo), len(texts),
                 f" into {folder}" if folder else "")
        for start in range(0, len(todo), CHUNK):
            part = todo[start:start + CHUNK]
            states = encoder.token_states([texts[i] for i in part], max_seq_length, upto)
            if folder is not None:
                _write_chunk(folder, [keys[i] for i in part], states)
            computed.update({keys[i]: s for i, s in zip(part, states)})
            if progress:
                progress(min(start + CHUNK, len(todo)), len(todo), stage="encoder token states")
        log.info("token cache: %d texts in %.0f s", len(todo), time.perf_counter() - t)

    def states_of(k: bytes) -> np.ndarray:
        if k in computed:
            return computed[k]
        states, s, n = found[k]
        return states[s:s + n]

    lengths = np.array([len(states_of(k)) for k in keys], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    bank = np.empty((int(offsets[-1]), encoder.hidden), dtype=np.float16)
    for i, k in enumerate(keys):
        bank[offsets[i]:offsets[i + 1]] = states_of(k)
    return bank, offsets
