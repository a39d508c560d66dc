"""Warm-up imported once by the fork server that starts extraction workers (see pipeline.extract._run_all).

Workers are forked from that server, so what is loaded here is loaded once and shared (copy-on-write) by
every worker instead of being loaded by each: the heavy imports (torch through spaCy's thinc, spaCy,
gensim, mediapipe, openSMILE, pocketsphinx, faster-whisper and CTranslate2) and the text extractor's word
vectors, which are by far the slowest part of a worker's start (GloVe 6B: ~2 s and ~300 MB per worker
otherwise), and the pocketsphinx decoders. Nothing here starts a thread pool or a model graph, so forking
afterwards is safe. The Whisper model is not loaded here, since CTranslate2 starts its compute threads when
a model loads: each worker loads it on its first clip without a transcript (~0.3 s). The text extractor to
warm comes from the environment variable set by the parent while it starts the server; any failure only
costs the speed-up.
"""

from __future__ import annotations

import json
import logging
import os

ENV = "MULTILOGUE_EXTRACT_PRELOAD"


def warm(choices: dict) -> None:
    """Import the extractors' libraries and load the text extractor's vectors and tokenizer."""
    import importlib

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before faster_whisper imports huggingface_hub
    for module in ("numpy", "opensmile", "pocketsphinx", "ffmpeg", "mediapipe", "ai_edge_litert.interpreter", "faster_whisper"):
        try:
            importlib.import_module(module)
        except Exception:  # an optional backend that is missing: the worker reports it if it is needed
            pass
    try:  # pocketsphinx decoders (plain C state, no threads): ~0.25 s each per worker otherwise
        from extractors.asr_pocketsphinx import _make_decoder

        _make_decoder("align")
        _make_decoder("asr")
    except Exception:
        pass
    if "text" in choices:
        from extractors.base import Segment
        from pipeline.extract import build_extractors

        text = build_extractors({"text": tuple(choices["text"])})["text"]
        text(None, [Segment(0.0, 1.0, "A", "warm up")])


try:
    warm(json.loads(os.environ.get(ENV, "{}")))
except Exception as e:  # never stop the server: workers load what they need themselves
    logging.getLogger(__name__).debug("preload failed: %s", e)
