"""Warm-up imported once by the fork server that starts extraction workers (see pipeline.extract_pool).

Workers are forked from that server, so what is loaded here is loaded once and shared (copy-on-write) by
every worker instead of being loaded by each: the heavy imports (torch through spaCy's thinc, spaCy,
gensim, mediapipe, openSMILE, pocketsphinx, faster-whisper and CTranslate2) and the text extractor's vectors or
model, which are by far the slowest part of a worker's start (GloVe 6B: ~2 s and ~300 MB per worker otherwise;
MiniLM: ~5 s and ~440 MB with sentence-transformers), and the pocketsphinx decoders.

Forking afterwards must be safe, so nothing here may leave a thread pool behind. torch is the one that would:
its OpenMP pool starts at the first parallel op and does not survive fork (a child that then runs torch with
more than one thread hangs; measured with MiniLM). The server sets torch to one thread before warming, so the
warm-up encode runs inline and no pool exists; workers run one thread each anyway. The Whisper model is not
loaded here either, since CTranslate2 starts its compute threads when a model loads: each worker loads it on
its first clip without a transcript (~0.3 s). The text extractor to
warm comes from the environment variable set by the parent while it starts the server; any failure only
costs the speed-up. The server also asks to be killed when the command dies (pipeline.lifeline), and each
worker when the server dies, so a command killed with kill -9 leaves no process behind.
"""

from __future__ import annotations

import json
import logging
import os

ENV = "MULTILOGUE_EXTRACT_PRELOAD"


def warm(choices: dict) -> None:
    """Import the extractors' libraries and load the text extractor's vectors or model (torch on one thread)."""
    import importlib

    try:
        import torch

        torch.set_num_threads(1)  # before anything runs torch: no OpenMP pool in a process that forks
    except ImportError:
        pass

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
        from pipeline.extract_step import build_extractors

        text = build_extractors({"text": tuple(choices["text"])})["text"]
        text(None, [Segment(0.0, 1.0, "A", "warm up")])


SERVER_PID = os.getpid()  # the workers' parent: each worker checks it is still there (pipeline.lifeline)


def _serve() -> None:
    """In the fork server (the parent that starts it sets ENV and PARENT_ENV meanwhile): die with that parent,
    then warm up. Imported anywhere else (ENV unset), nothing happens."""
    from pipeline.lifeline import PARENT_ENV, die_with_parent

    if ENV not in os.environ:
        return
    parent = os.environ.get(PARENT_ENV, "")
    if parent.isdigit() and int(parent) != os.getpid():
        die_with_parent(int(parent))
    try:
        warm(json.loads(os.environ[ENV]))
    except Exception as e:  # never stop the server: workers load what they need themselves
        logging.getLogger(__name__).debug("preload failed: %s", e)


_serve()
