"""What decides a clip's features, as one typed, serialisable value built once from the options.

    settings = ExtractSettings.create(text="minilm", audio="eGeMAPSv02", fps=5, asr="whisper", diarize="auto")
    extractors = settings.build()      # modality -> extractor; built once per process and settings
    settings.to_dict()                 # JSON: what a Ray task, a cache key or a log line needs

`extract` builds it from the command line, `evaluate` and `predict` from a checkpoint's feature spec; the same
value then travels to the local worker processes (pipeline.extraction.pool) and the Ray tasks
(pipeline.extraction.ray_tasks) with each clip, so a worker holds no settings of its own, only the extractors
it built for them (`build`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.errors import UserError
from core.options import FPS
from extractors.asr import DEFAULT as DEFAULT_ASR
from extractors.diarize import diarize_spec
from extractors.media import DEFAULT_FPS

log = logging.getLogger(__name__)

# modality -> (registry name, params): what the extractors are built from
Choices = dict[str, tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class ExtractSettings:
    """One extraction's settings.

    choices: modality -> (registry name, params) the extractors are built from; specs: modality -> the built
    extractor's spec {"name", "params", "dim"} (what datasets and checkpoints record); asr: the spec of the
    transcriber for clips without a transcript; diarize: the diarizer's spec (extractors.diarize.diarize_spec; mode
    "off" when none), applied to clips whose transcript names no speaker; fps: frames decoded per second of video; cache_dir: the per-clip
    feature cache (None: none given; extract_folder then puts it beside its output); resources: path, size and
    mtime of files the extractors read (a --glove file), so a file replaced in place changes the cache key;
    factories: extractors registered at run time in this process (modality -> (name, factory)), which worker
    processes add to their registry (they pickle by reference; to_dict leaves them out).
    """

    choices: Choices
    specs: dict[str, dict[str, Any]]
    asr: dict[str, Any]
    fps: float = DEFAULT_FPS
    diarize: dict[str, Any] = field(default_factory=lambda: diarize_spec("off"))
    cache_dir: str | None = None
    resources: dict[str, list] = field(default_factory=dict)
    factories: dict[str, tuple[str, Any]] = field(default_factory=dict, compare=False, repr=False)

    # ------------------------------------------------------------------ making one
    @classmethod
    def create(cls, text: str = "glove", audio: str = "IS09", visual: str = "facemesh", *, fps: float = DEFAULT_FPS,
               asr: str | dict = DEFAULT_ASR, diarize: str | dict = "auto", speakers: int | None = None,
               cache_dir: str | Path | None = None, choices: Choices | None = None, **options: Any) -> "ExtractSettings":
        """Settings from the user's choices, with every extractor and the transcriber built once to check them.

        text, audio, visual: choices of `extractors.choices` (the CLI's --text, --audio-features, --visual).
        options: the registry's extractor-specific options by keyword (glove=PATH, pyfeat_weights=DIR).
        `choices` gives modality -> (registry name, params) directly instead (e.g. from a checkpoint's spec).
        asr: a transcriber name (extractors.asr.TRANSCRIBERS) or a recorded spec. diarize: auto | on | off, or a
        recorded spec (its settings reused); speakers: a fixed speaker count for it (None: found per clip). cache_dir: the per-clip
        cache; resources that an extractor converts once (a --glove file) go under it too when given.
        Raises UserError for a bad choice, option, frame rate, transcriber or diarization setting, and for
        `diarize="on"` when the diarizer's weights are not installed (auto then warns and diarizes nothing).
        """
        FPS.check(fps, "--fps")
        if choices is None:
            resource_cache = Path(cache_dir) if cache_dir is not None else None
            choices = extractor_choices(text, audio, visual, fps=fps, cache_dir=resource_cache, **options)
        from extractors.base import REGISTRY, spec_of

        settings = cls(choices={m: (name, dict(params)) for m, (name, params) in choices.items()}, specs={}, asr={}, fps=float(fps),
                       cache_dir=None if cache_dir is None else str(cache_dir),
                       factories={m: (name, REGISTRY[m][name]) for m, (name, _) in choices.items() if name in REGISTRY[m]})
        extractors = settings.build()  # fails fast on a bad choice, before any clip runs
        specs = {m: spec_of(ex) for m, ex in extractors.items()}
        return replace(settings, specs=specs, asr=transcriber_spec(asr), diarize=diarizer_spec(diarize, speakers),
                       resources=resource_fingerprint(specs))

    # ------------------------------------------------------------------ using one
    def build(self) -> dict[str, Any]:
        """modality -> extractor, built on first use in this process and reused for the same choices (libraries,
        vectors and models load once per worker process, not per clip)."""
        return _BUILT.get(self)

    def builds(self) -> int:
        """1 when this process holds these settings' extractors, else 0 (Ray's report: built once per worker)."""
        return _BUILT.count(self)

    def transcriber(self, threads: int = 0) -> Any:
        """The transcriber of `asr` (one instance per process and thread count)."""
        from extractors.asr import transcriber_from_spec

        return transcriber_from_spec(self.asr, threads=threads)

    def diarizer(self) -> Any:
        """The diarizer of `diarize`, or None when it is off."""
        from extractors.diarize import diarizer_from_spec

        return diarizer_from_spec(self.diarize)

    def diarizes(self, named_speakers: bool) -> bool:
        """Whether a clip is diarized: the diarizer is on and its transcript (if any) names no speaker."""
        from extractors.diarize import is_active

        return is_active(self.diarize) and not named_speakers

    def with_cache(self, cache_dir: str | Path) -> "ExtractSettings":
        return replace(self, cache_dir=str(cache_dir))

    # ------------------------------------------------------------------ serialising
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: everything but the run-time factories."""
        return {"choices": {m: [name, params] for m, (name, params) in self.choices.items()}, "specs": self.specs, "asr": self.asr,
                "diarize": self.diarize, "fps": self.fps, "cache_dir": self.cache_dir, "resources": self.resources}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ExtractSettings":
        return cls(choices={m: (str(v[0]), dict(v[1])) for m, v in d["choices"].items()}, specs=dict(d["specs"]), asr=dict(d["asr"]),
                   fps=float(d["fps"]), cache_dir=d.get("cache_dir"), resources=dict(d.get("resources") or {}),
                   diarize=dict(d.get("diarize") or diarize_spec("off")))

    @property
    def extractor_key(self) -> str:
        """sha256 of what the built extractors depend on (the choices)."""
        return _digest({"choices": self.to_dict()["choices"]})


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


class _BuiltExtractors:
    """This process's extractors, for the one set of choices it last ran (a worker runs one extraction at a time;
    a long-lived Ray worker rebuilds only when another run's choices arrive)."""

    def __init__(self) -> None:
        self.key: str | None = None
        self.extractors: dict[str, Any] = {}

    def get(self, settings: ExtractSettings) -> dict[str, Any]:
        key = settings.extractor_key
        if key != self.key:
            from extractors import build_extractor
            from extractors.base import REGISTRY

            # A worker forked from the fork server, spawned, or started by Ray knows only the extractors registered
            # at import; the factories sent along add those the parent registered at run time.
            for m, (name, factory) in settings.factories.items():
                REGISTRY[m].setdefault(name, factory)
            built = {m: build_extractor(m, name, **params) for m, (name, params) in settings.choices.items()}
            self.key, self.extractors = key, built
        return self.extractors

    def count(self, settings: ExtractSettings) -> int:
        return int(settings.extractor_key == self.key)


_BUILT = _BuiltExtractors()


# ------------------------------------------------------------------ from the user's choices
def extractor_choices(text: str = "glove", audio: str = "IS09", visual: str = "facemesh", *, fps: float = DEFAULT_FPS,
                      cache_dir: str | Path | None = None, **options: Any) -> Choices:
    """modality -> (registry name, params) from the user's choices and extractor-specific options.

    text, audio, visual: choices of `extractors.choices` (the CLI's --text, --audio-features, --visual: an
    extractor name, a variant such as an openSMILE feature set, or "none" where a modality may be left out).
    options: the registry's extractor-specific options by keyword (`Option.dest`: glove=PATH,
    pyfeat_weights=DIR); None means not given. Visual extractors get the run's `fps` (the rate frames are
    decoded at); extractors that convert resources once get <cache_dir>/<name> when `cache_dir` is given.
    Raises UserError for an unknown choice, or an option given for an extractor that is not chosen.
    """
    from extractors import NONE, entry, extractor_options, resolve

    out: Choices = {}
    for m, choice in (("text", text), ("audio", audio), ("visual", visual)):
        try:
            name, params = resolve(m, choice)
        except ValueError as e:
            raise UserError(str(e)) from e
        if m == "visual" and name != NONE:
            params["fps"] = float(fps)
        if cache_dir is not None and entry(m, name).cache:
            params["cache_dir"] = str(Path(cache_dir) / name)
        out[m] = (name, params)
    known = {o.dest: (m, name, o) for m, name, o in extractor_options()}
    for key, value in options.items():
        if key not in known:
            raise TypeError(f"unknown extractor option {key!r}; expected one of {sorted(known)}")
        if value is None:
            continue
        m, name, o = known[key]
        if out[m][0] != name:
            raise UserError(f"{o.flag} only applies with the {m} extractor {name!r} (chosen: {out[m][0]!r})")
        out[m][1][o.param] = str(value)
    return out


def transcriber_spec(asr: str | dict) -> dict[str, Any]:
    """The spec {"name", "params"} of a transcriber name or recorded spec, checked by building it (its model
    loads on first use, not here). UserError for an unknown name or setting."""
    from extractors import asr as transcribers

    try:
        if isinstance(asr, dict):
            return transcribers.spec_of(transcribers.transcriber_from_spec(asr, source="the training data"))
        return transcribers.spec_of(transcribers.build_transcriber(asr))
    except ValueError as e:
        raise UserError(str(e)) from e


def diarizer_spec(diarize: str | dict, speakers: int | None = None) -> dict[str, Any]:
    """The recorded spec of --diarize auto|on|off (or of a recorded spec, its settings reused) and --speakers N.
    UserError for a bad mode or count, or for "on" without the diarizer's weights; "auto" without them warns once
    and gives "off" (extraction then keeps the transcriber's single speaker)."""
    from extractors.speaker_encoder import weights_path

    try:
        spec = (diarize_spec(str(diarize.get("mode", "auto")), speakers, diarize.get("params")) if isinstance(diarize, dict)
                else diarize_spec(diarize, speakers))
    except ValueError as e:
        raise UserError(str(e)) from e
    if spec["mode"] != "off":
        try:
            weights_path()
        except UserError:
            if spec["mode"] == "on":
                raise
            log.warning("no diarizer installed (resemblyzer's weights): clips whose transcript names no speaker stay one speaker")
            return diarize_spec("off")
    return spec


def resource_fingerprint(specs: dict[str, dict]) -> dict[str, list]:
    """Path, size and mtime of files the extractors read (a --glove file): a file replaced in place under
    the same name changes the cache key, so stale features are not reused."""
    out = {}
    for modality, spec in specs.items():
        path = (spec.get("params") or {}).get("path")
        if path and Path(path).is_file():
            st = Path(path).stat()
            out[modality] = [str(path), st.st_size, st.st_mtime_ns]
    return out
