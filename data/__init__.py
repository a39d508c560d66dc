"""The dataset: schema, safe save/load, importers and the torch Dataset."""

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
from data.errors import CheckpointError, DatasetError, ExtractionError, UserError

__all__ = [
    "EMOTIONS",
    "FORMAT_VERSION",
    "LABEL_COLUMNS",
    "MODALITIES",
    "CheckpointError",
    "DatasetError",
    "ExtractionError",
    "UserError",
    "empty_dataset",
    "feature_dims",
    "load_dataset",
    "save_dataset",
    "validate_dataset",
]
