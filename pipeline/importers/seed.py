"""`cli.py import seed`: the seed's 9-tuple pickle as a dataset, optionally keeping only what a clip can give.

    ds = import_seed("mosi.pkl")                                    # features, labels, speakers and splits as they are
    ds = import_seed("mosi.pkl", text_from_sentences="minilm")      # sentences re-encoded; audio and visual absent
"""

from __future__ import annotations

from pathlib import Path

from core.errors import DatasetError
from core.fileio import input_file, safe_load_pickle
from data.seed import from_seed_tuple


def import_seed(path: str | Path, column: str = "sentiment", text_from_sentences: str | None = None) -> dict:
    """Read a seed 9-tuple pickle safely and convert it; the seed's single label fills `column`.

    text_from_sentences: a text extractor choice; the pickle's features are then replaced by that extractor's
    features of the sentences, with audio and visual absent (pipeline.importers.corpora.sentences_only).
    Raises DatasetError for a file that is not the seed's 9-tuple.
    """
    path = input_file(path, error=DatasetError, fix="pass the seed's .pkl file")
    obj = safe_load_pickle(path)
    if isinstance(obj, dict):
        raise DatasetError(f"{path}: already a dataset dict, not a seed 9-tuple; use it directly with `train --data`")
    if not isinstance(obj, (tuple, list)):
        raise DatasetError(f"{path}: holds a {type(obj).__name__}, not the seed's 9-tuple")
    ds = from_seed_tuple(obj, source=path, column=column)
    if text_from_sentences:
        from pipeline.importers.corpora import sentences_only

        ds = sentences_only(ds, text_from_sentences, source=path)
    return ds
