"""The dataset format: its schema and validation (data.schema), safe save and load of our dict and of the seed's
9-tuple pickle (data.dataset, data.seed), merging datasets (data.merge) and the one seeded split of videos
(data.splits).

Imports only core/: extractors/, model/ and pipeline/ build on it. Importers that turn other corpora and formats
into datasets live in pipeline.importers; the torch Dataset over it in model.dialogues.
"""

from data.dataset import (
    EMOTIONS,
    FORMAT_VERSION,
    LABEL_COLUMNS,
    MODALITIES,
    empty_dataset,
    feature_dims,
    load_dataset,
    save_dataset,
    validate_dataset,
)

__all__ = [
    "EMOTIONS",
    "FORMAT_VERSION",
    "LABEL_COLUMNS",
    "MODALITIES",
    "empty_dataset",
    "feature_dims",
    "load_dataset",
    "save_dataset",
    "validate_dataset",
]
