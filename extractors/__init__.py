"""Feature extractors: one module per extractor behind the `Extractor` protocol, plus media decoding.

    from extractors import build_extractor, build_from_spec, DEFAULTS
    text = build_extractor("text", "glove")                      # GloVe 6B 50-d
    audio = build_extractor("audio", "opensmile", feature_set="eGeMAPSv02")
    rows = audio(media, segments)                                # (n_utt, audio.dim) float32
    again = build_from_spec("audio", spec_of(audio))             # e.g. from a checkpoint's feature spec

| modality | name      | dim                                   | params                                       |
|----------|-----------|---------------------------------------|----------------------------------------------|
| text     | glove     | 50 (default vectors) or the file's    | path, lowercase                              |
| audio    | opensmile | 384 IS09 / 88 eGeMAPSv02 / 988 emobase / 6373 ComParE_2016 | feature_set, min_seconds |
| audio    | mfcc      | 2 * n_mfcc (80)                       | n_mfcc, n_mels, min_seconds                  |
| visual   | facemesh  | 19                                    | fps, max_side, min_detection_confidence      |
| visual   | pyfeat    | 31                                    | fps, max_side, detector                      |

Importing this package is cheap: each extractor module imports its heavy library (gensim, spaCy, opensmile,
torchaudio, mediapipe, py-feat) only when it first needs it. Adding an extractor: one new module and one
line in `_FACTORIES`.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from data.errors import ExtractionError
from extractors.base import REGISTRY, Extractor, Media, Segment, register, spec_of

DEFAULTS = {"text": "glove", "audio": "opensmile", "visual": "facemesh"}

# modality -> name -> "module:Class"; resolved on first use so nothing heavy loads at import.
_FACTORIES = {
    "text": {"glove": "extractors.text_glove:GloveText"},
    "audio": {"opensmile": "extractors.audio_opensmile:OpenSmileAudio",
              "mfcc": "extractors.audio_mfcc:MfccAudio"},
    "visual": {"facemesh": "extractors.visual_facemesh:FaceMeshVisual",
               "pyfeat": "extractors.visual_pyfeat:PyFeatVisual"},
}

# Names the CLI's --audio-features accepts that are openSMILE feature sets rather than extractor names.
OPENSMILE_SETS = ("IS09", "eGeMAPSv02", "emobase", "ComParE_2016")


def _lazy(target: str) -> Callable[..., Extractor]:
    module, cls = target.split(":")

    def factory(**params: Any) -> Extractor:
        return getattr(importlib.import_module(module), cls)(**params)

    factory.__qualname__ = factory.__name__ = cls
    factory.__doc__ = f"Build {cls} from {module} (imported on first use)."
    return factory


for _modality, _names in _FACTORIES.items():
    for _name, _target in _names.items():
        register(_modality, _name)(_lazy(_target))


def available(modality: str | None = None) -> dict[str, list[str]]:
    """Registered extractor names per modality (or for one modality)."""
    mods = [modality] if modality else list(REGISTRY)
    return {m: sorted(REGISTRY[m]) for m in mods}


def build_extractor(modality: str, name: str | None = None, **params: Any) -> Extractor:
    """Build a registered extractor: `name` defaults to DEFAULTS[modality]; params go to its constructor.

    For audio, an openSMILE feature-set name (IS09, eGeMAPSv02, emobase, ComParE_2016) is accepted as `name`
    and means the opensmile extractor with that feature set.
    Raises ValueError for an unknown modality or name, naming the choices.
    """
    if modality not in REGISTRY:
        raise ValueError(f"unknown modality {modality!r}; expected one of {sorted(REGISTRY)}")
    name = name or DEFAULTS[modality]
    if modality == "audio" and name in OPENSMILE_SETS:
        params = {**params, "feature_set": name}
        name = "opensmile"
    if name not in REGISTRY[modality]:
        choices = sorted(REGISTRY[modality]) + (list(OPENSMILE_SETS) if modality == "audio" else [])
        raise ValueError(f"unknown {modality} extractor {name!r}; expected one of {choices}")
    return REGISTRY[modality][name](**params)


def build_from_spec(modality: str, spec: dict[str, Any], **runtime: Any) -> Extractor:
    """Rebuild the extractor a feature spec {"name", "params", "dim"} describes (e.g. from a checkpoint).

    `runtime` adds settings that do not change the output and so are not in the spec (cache_dir for glove,
    weights_dir for pyfeat), or overrides a stored one that is machine-specific (glove's path, when the
    vector file sits elsewhere on this machine). Raises ExtractionError when the rebuilt extractor's dim
    differs from the spec's (e.g. a different GloVe file).
    """
    try:
        name, params = spec["name"], dict(spec.get("params") or {})
    except (KeyError, TypeError) as e:
        raise ExtractionError(f"feature spec {spec!r}: expected a dict with 'name', 'params' and 'dim'") from e
    extractor = build_extractor(modality, name, **{**params, **runtime})
    if "dim" in spec and int(spec["dim"]) != int(extractor.dim):
        raise ExtractionError(
            f"{modality} extractor {name!r} with {params} gives {extractor.dim}-d features but the spec says "
            f"{spec['dim']}-d; provide the same inputs (e.g. vector file) the model was trained with"
        )
    return extractor


__all__ = ["DEFAULTS", "REGISTRY", "Extractor", "Media", "Segment", "available", "build_extractor",
           "build_from_spec", "register", "spec_of"]
