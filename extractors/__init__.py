"""Feature extractors: one module per extractor behind the `Extractor` protocol, plus media decoding.

    from extractors import build_extractor, build_from_spec, choices, DEFAULTS
    text = build_extractor("text", "glove")                      # GloVe 6B 50-d
    audio = build_extractor("audio", "eGeMAPSv02")               # a choice that presets openSMILE's feature set
    rows = audio(media, segments)                                # (n_utt, audio.dim) float32
    again = build_from_spec("audio", spec_of(audio))             # e.g. from a checkpoint's feature spec
    choices("visual")                                            # ['facemesh', 'pyfeat', 'none']: the CLI's --visual

| modality | name      | dim                                   | params                                       |
|----------|-----------|---------------------------------------|----------------------------------------------|
| text     | glove     | 50 (default vectors) or the file's    | path, lowercase                              |
| text     | minilm    | 384                                   | model, package, package_version, max_seq_length, normalize |
| audio    | opensmile | 384 IS09 / 88 eGeMAPSv02 / 988 emobase / 6373 ComParE_2016 | feature_set, min_seconds |
| audio    | mfcc      | 2 * n_mfcc (80)                       | n_mfcc, n_mels, min_seconds                  |
| audio    | whisper   | 768 (mean + std of tiny.en encoder states) | model, weights, compute_type, pooling, min_seconds |
| visual   | facemesh  | 19                                    | fps, max_side, min_detection_confidence      |
| visual   | pyfeat    | 31                                    | fps, max_side, detector                      |

The registry below is the one list of extractors: the CLI's choices and extractor-specific options, what
extraction builds (in its worker processes too) and what predict rebuilds from a checkpoint all come from
it. Adding an extractor: one new module and one `register_extractor` line here. Importing this package is
cheap: each extractor module is imported, and imports its heavy library (gensim, spaCy, sentence-transformers,
opensmile, torchaudio, mediapipe, py-feat), only when it is first built.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from core.errors import ExtractionError
from data.schema import dim_differences
from extractors.base import REGISTRY, Extractor, Media, NoFeatures, Segment, register, spec_of

DEFAULTS = {"text": "glove", "audio": "opensmile", "visual": "facemesh"}
NONE = "none"  # the choice that leaves a modality out: zero-width features
OPTIONAL = ("visual",)  # modalities an extraction may leave out (text is the model's context, audio its timeline)
OPENSMILE_SETS = ("IS09", "eGeMAPSv02", "emobase", "ComParE_2016")


@dataclass(frozen=True)
class Option:
    """An extractor-specific command-line option: `flag` sets the constructor parameter `param`.

    kind: "file" or "dir", the path the CLI checks exists. runtime: the setting does not change the output
    (it is not in the spec), so predict offers the option too, to rebuild the extractor on this machine.
    """

    flag: str
    param: str
    help: str
    kind: str = "file"
    runtime: bool = False

    @property
    def dest(self) -> str:
        """The argparse attribute and the keyword of extract_folder: "--pyfeat-weights" -> "pyfeat_weights"."""
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Entry:
    """What the registry knows of one extractor beyond its factory (see register_extractor)."""

    variants: dict[str, dict] = field(default_factory=dict)
    options: tuple[Option, ...] = ()
    cache: bool = False


_ENTRIES: dict[str, dict[str, Entry]] = {m: {} for m in REGISTRY}


class _Lazy:
    """Factory for "module:Class" that imports the module on first use. Plain data, so it pickles: worker
    processes receive the factories of the chosen extractors and so see extractors registered at run time."""

    def __init__(self, target: str) -> None:
        module, _, cls = target.partition(":")
        if not module or not cls:
            raise ValueError(f"factory {target!r}: expected 'module:Class'")
        self.target = target
        self.__name__ = self.__qualname__ = cls
        self.__doc__ = f"Build {cls} from {module} (imported on first use)."

    def __call__(self, **params: Any) -> Extractor:
        module, _, cls = self.target.partition(":")
        return getattr(importlib.import_module(module), cls)(**params)

    def __repr__(self) -> str:
        return f"_Lazy({self.target!r})"


def register_extractor(modality: str, name: str, factory: str | Callable[..., Extractor], *,
                       variants: dict[str, dict] | None = None, options: tuple[Option, ...] = (),
                       cache: bool = False) -> None:
    """Register an extractor; after this one call the CLI offers it, extraction builds it and predict
    rebuilds it from a checkpoint's spec.

    factory: "module:Class" (imported on first use, so registering loads nothing) or a module-level class or
    function taking the params as keywords (both reach worker processes, by reference).
    variants: choice names that stand for this extractor with preset params, e.g. {"eGeMAPSv02":
    {"feature_set": "eGeMAPSv02"}}; they replace its name among the choices, the first one being what its
    defaults give. options: its command-line options. cache: it takes `cache_dir` for resources it converts
    once, and gets <--cache-dir>/<name> when the user gives one.
    Raises ValueError for an unknown modality, or a name, choice or flag that is already taken.
    """
    if modality not in REGISTRY:
        raise ValueError(f"unknown modality {modality!r}; expected one of {sorted(REGISTRY)}")
    variants = {str(k): dict(v) for k, v in (variants or {}).items()}
    taken = set(choices(modality)) | set(REGISTRY[modality]) | {NONE}
    clash = ({name} | set(variants)) & taken
    if clash:
        raise ValueError(f"{modality} extractor {name!r}: {sorted(clash)} already taken; choose another name")
    flags = {o.flag for _, _, o in extractor_options()}
    if any(o.flag in flags for o in options):
        raise ValueError(f"{modality} extractor {name!r}: option {[o.flag for o in options]} clashes with {sorted(flags)}")
    register(modality, name)(_Lazy(factory) if isinstance(factory, str) else factory)
    _ENTRIES[modality][name] = Entry(variants, tuple(options), bool(cache))


def _check_modality(modality: str) -> None:
    if modality not in REGISTRY:
        raise ValueError(f"unknown modality {modality!r}; expected one of {sorted(REGISTRY)}")


def entry(modality: str, name: str) -> Entry:
    """The registry's entry for a registered extractor (an empty one for a factory added with `register`)."""
    return _ENTRIES.get(modality, {}).get(name) or Entry()


def available(modality: str | None = None) -> dict[str, list[str]]:
    """Registered extractor names per modality (or for one modality)."""
    mods = [modality] if modality else list(REGISTRY)
    return {m: sorted(REGISTRY[m]) for m in mods}


def choices(modality: str) -> list[str]:
    """What a user may choose for `modality`, in registration order: each extractor's name, or its variants
    when it has some, then "none" where the modality may be left out. The CLI's `choices=`."""
    _check_modality(modality)
    out: list[str] = []
    for name in REGISTRY[modality]:
        out += list(entry(modality, name).variants) or [name]
    return out + ([NONE] if modality in OPTIONAL else [])


def default_choice(modality: str) -> str:
    """The choice that means DEFAULTS[modality] with its default params (the CLI's default)."""
    name = DEFAULTS[modality]
    return next(iter(entry(modality, name).variants), name)


def resolve(modality: str, choice: str | None = None) -> tuple[str, dict[str, Any]]:
    """(registry name, preset params) for a choice: a variant, an extractor name, or "none" (where allowed).

    Raises ValueError for an unknown modality or choice, naming the choices.
    """
    _check_modality(modality)
    choice = choice or DEFAULTS[modality]
    if choice == NONE and modality in OPTIONAL:
        return NONE, {}
    for name in REGISTRY[modality]:
        preset = entry(modality, name).variants.get(choice)
        if preset is not None:
            return name, dict(preset)
    if choice in REGISTRY[modality]:
        return choice, {}
    raise ValueError(f"unknown {modality} extractor {choice!r}; expected one of {choices(modality)}")


def extractor_options() -> list[tuple[str, str, Option]]:
    """Every registered extractor-specific option as (modality, extractor name, option)."""
    return [(m, name, o) for m, names in _ENTRIES.items() for name, e in names.items() for o in e.options]


def build_extractor(modality: str, name: str | None = None, **params: Any) -> Extractor:
    """Build a registered extractor: `name` defaults to DEFAULTS[modality]; params go to its constructor.

    `name` may be a variant (e.g. an openSMILE feature-set name for audio: openSMILE with that set), and
    "none" gives zero-width features for any modality (a spec of a left-out modality rebuilds).
    Raises ValueError for an unknown modality or name, naming the choices.
    """
    _check_modality(modality)
    if name == NONE:
        return NoFeatures(modality, **params)
    name, preset = resolve(modality, name)
    return REGISTRY[modality][name](**{**preset, **params})


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
    if "dim" in spec and dim_differences({modality: spec["dim"]}, {modality: extractor.dim}):
        raise ExtractionError(
            f"{modality} extractor {name!r} with {params} gives {extractor.dim}-d features but the spec says "
            f"{spec['dim']}-d; provide the same inputs (e.g. vector file) the model was trained with"
        )
    return extractor


# ---------------------------------------------------------------------------------------------- registry
# One line per extractor: adding one is a new module plus a line here.
register_extractor("text", "glove", "extractors.text_glove:GloveText", cache=True, options=(
    Option("--glove", "path", "GloVe/word2vec text file to use instead of the packaged GloVe 6B 50-d (converted once, then memory-mapped)"),))
register_extractor("text", "minilm", "extractors.text_minilm:MiniLMText")
register_extractor("audio", "opensmile", "extractors.audio_opensmile:OpenSmileAudio",
                   variants={s: {"feature_set": s} for s in OPENSMILE_SETS})
register_extractor("audio", "mfcc", "extractors.audio_mfcc:MfccAudio")
register_extractor("audio", "whisper", "extractors.audio_whisper:WhisperAudio")
register_extractor("visual", "facemesh", "extractors.visual_facemesh:FaceMeshVisual")
register_extractor("visual", "pyfeat", "extractors.visual_pyfeat:PyFeatVisual", options=(
    Option("--pyfeat-weights", "weights_dir", "folder with py-feat's model weights (offline use)", kind="dir", runtime=True),))
# ------------------------------------------------------------------------------------------------------


__all__ = ["DEFAULTS", "NONE", "OPTIONAL", "REGISTRY", "Entry", "Extractor", "Media", "NoFeatures", "Option", "Segment",
           "available", "build_extractor", "build_from_spec", "choices", "default_choice", "entry", "extractor_options",
           "register", "register_extractor", "resolve", "spec_of"]
