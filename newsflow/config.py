"""Run settings: YAML files in ``configs/`` loaded into frozen dataclasses.

Each section is a dataclass; unknown keys and out-of-range values raise
:class:`ConfigError` with one line that names the key, so typos are caught::

    from newsflow.config import load_config
    cfg = load_config("configs/default.yaml")
    cfg.read.max_doc_bytes

``configs/default.yaml`` documents every setting; the defaults below are the same.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from typing import Any

import yaml

__all__ = [
    "Config",
    "ConfigError",
    "DedupeConfig",
    "HashtagConfig",
    "LangConfig",
    "OutputConfig",
    "ParseConfig",
    "ReadConfig",
    "load_config",
]

MiB = 1024 * 1024


class ConfigError(ValueError):
    """A bad setting; the message is one line meant for the user."""


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


@dataclasses.dataclass(frozen=True)
class ReadConfig:
    """How ReadDump reads files and archives (resource limits included)."""

    max_doc_bytes: int = 4 * MiB  # a larger document is rejected as too_large
    max_members: int = 100_000  # members per archive before too_many_members
    max_member_bytes: int = 2048 * MiB  # decompressed size of one file or member
    max_expansion_ratio: float = 200.0  # decompressed / compressed, past 64 MiB out
    read_block_bytes: int = 1 * MiB  # size of one read while splitting documents

    def validate(self) -> None:
        _check(self.max_doc_bytes >= 1024, "read.max_doc_bytes must be at least 1024")
        _check(self.max_members >= 1, "read.max_members must be at least 1")
        _check(self.max_member_bytes >= self.max_doc_bytes, "read.max_member_bytes must be >= max_doc_bytes")
        _check(self.max_expansion_ratio >= 2, "read.max_expansion_ratio must be at least 2")
        _check(4096 <= self.read_block_bytes <= 64 * MiB, "read.read_block_bytes must be in 4096..64 MiB")


@dataclasses.dataclass(frozen=True)
class ParseConfig:
    """How SplitHeader turns a raw document into a record."""

    timezone: str | None = None  # IANA zone of the header times, e.g. "Europe/Paris"; None = unknown
    min_year: int = 1800  # header years outside [min_year, max_year] -> implausible_date
    max_year: int = 2200
    max_control_ratio: float = 0.10  # share of control/undecodable chars that makes a body binary

    def validate(self) -> None:
        if self.timezone is not None:
            try:
                import zoneinfo

                zoneinfo.ZoneInfo(self.timezone)
            except Exception as e:  # noqa: BLE001 - any failure means an unknown zone
                raise ConfigError(f"parse.timezone: unknown time zone {self.timezone!r}") from e
        _check(
            1 <= self.min_year <= self.max_year <= 9999, "parse.min_year/max_year must satisfy 1 <= min <= max <= 9999"
        )
        _check(0 < self.max_control_ratio <= 1, "parse.max_control_ratio must be in (0, 1]")


@dataclasses.dataclass(frozen=True)
class LangConfig:
    """How DetectLang identifies the language (see newsflow/core/lang.py and docs/lang.md)."""

    enabled: bool = True
    model_path: str | None = None  # None = the bundled lid.176.ftz; a path or URI (gs://...) otherwise
    threshold: float = 0.15  # lang_score under this -> "und" (scores are prior-corrected chunk averages)
    thresholds: dict[str, float] = dataclasses.field(default_factory=dict)  # per-code threshold overrides
    min_chars: int = 20  # prepared (letters-only) texts shorter than this -> "und"
    max_chars: int = 2000  # text budget: prepared text cut at a word boundary after this many chars
    chunk_words: int = 5  # words per chunk scored by the model (0 = whole text at once)
    prior_weight: float = 1.0  # share of the model's training label prior divided out (0 = plain fastText)
    trust_score: float = 0.5  # a plain fastText answer at least this sure is kept without the chunk rule
    min_ratio: float = 1.2  # "und" unless lang_score >= min_ratio * lang_alt_score (1 = no margin check)
    use_hashtags: bool = False  # append the hashtag words to the body before predicting
    label_map: dict[str, str] = dataclasses.field(default_factory=dict)  # model label/code -> emitted code
    second_model: str | None = "bundled"  # "bundled" (lid.africa16.ftz), "none"/null (off), or a path/URI
    second_min_score: float = 0.99  # second-model probability that replaces an unsure first answer
    second_confirm_score: float = 0.95  # ... that confirms a first answer or replaces a confident one
    second_focus_score: float = 0.5  # ... in a focus language that turns a weak, unconfirmed first answer into "und"
    second_below: float = 0.95  # confident first answers listed in second_neighbours under this are checked
    second_neighbours: dict[str, str] = dataclasses.field(  # first code -> second codes ("a,b") that may replace it
        default_factory=lambda: {"am": "ti", "en": "pcm", "vi": "ig", "fi": "om"}
    )
    second_always: list[str] = dataclasses.field(default_factory=lambda: ["am"])  # neighbours checked at any score
    second_contrast: list[str] = dataclasses.field(default_factory=lambda: ["en", "fr", "pcm"])  # not focus languages
    second_word_share: float = 0.35  # consulted focus answers need this fraction of their language's typical word share

    def __post_init__(self) -> None:
        # YAML mappings arrive with string values; per-code thresholds are numbers.
        try:
            thresholds = {str(k): float(v) for k, v in self.thresholds.items()}
        except (TypeError, ValueError) as e:
            raise ConfigError("lang.thresholds: every value must be a number") from e
        object.__setattr__(self, "thresholds", thresholds)
        if isinstance(self.second_model, str) and self.second_model.strip().lower() in ("none", ""):
            object.__setattr__(self, "second_model", None)
        if not isinstance(self.second_neighbours, dict):
            raise ConfigError("lang.second_neighbours: a mapping of code -> codes, e.g. {vi: ig, fi: 'om,so'}")
        for name in ("second_contrast", "second_always"):
            if not isinstance(getattr(self, name), (list, tuple)):
                raise ConfigError(f"lang.{name}: a list of codes, e.g. [en, fr]")
            object.__setattr__(self, name, [str(c) for c in getattr(self, name)])

    def validate(self) -> None:
        _check(0.0 <= self.threshold <= 1.0, "lang.threshold must be in [0, 1]")
        _check(all(0.0 <= v <= 1.0 for v in self.thresholds.values()), "lang.thresholds values must be in [0, 1]")
        _check(self.min_chars >= 0, "lang.min_chars must be >= 0")
        _check(self.max_chars >= max(1, self.min_chars), "lang.max_chars must be >= min_chars")
        _check(self.chunk_words >= 0, "lang.chunk_words must be >= 0")
        _check(0.0 <= self.prior_weight <= 1.0, "lang.prior_weight must be in [0, 1]")
        _check(self.trust_score >= 0.0, "lang.trust_score must be >= 0 (above 1 turns the shortcut off)")
        _check(self.min_ratio >= 1.0, "lang.min_ratio must be >= 1")
        for name in ("second_min_score", "second_confirm_score", "second_focus_score", "second_below"):
            _check(0.0 <= getattr(self, name) <= 1.01, f"lang.{name} must be in [0, 1] (1.01 = never)")
        _check(0.0 <= self.second_word_share <= 1.0, "lang.second_word_share must be in [0, 1] (0 = no word check)")
        second = self.second_model
        if second is not None and second != "bundled" and ("://" not in second or second.startswith("file://")):
            local = second[len("file://") :] if second.startswith("file://") else second
            _check(os.path.isfile(local), f"lang.second_model: no such file {second!r} (use bundled, none or a path)")
            from newsflow.core.lang import load_words  # the word lists beside it, if any, must be readable

            try:
                load_words(local)
            except ValueError as e:
                raise ConfigError(f"lang.second_model: unreadable word lists: {e}") from e

    def neighbours(self) -> dict[str, tuple[str, ...]]:
        """``second_neighbours`` with each value split at commas."""
        return {k: tuple(c.strip() for c in v.split(",") if c.strip()) for k, v in self.second_neighbours.items()}


@dataclasses.dataclass(frozen=True)
class HashtagConfig:
    """How NormalizeHashtags turns ``hashtags_raw`` into ``hashtags`` (see docs/hashtags.md)."""

    enabled: bool = True  # false = docs pass through unchanged (``hashtags`` as SplitHeader left it)
    fold_accents: bool = False  # true = "étatsunis" -> "etatsunis" (Latin, Greek, Cyrillic letters)
    drop_numeric: bool = True  # drop tags with no letter at all ("#2024", "#1_2")
    drop_stopwords: bool = True  # drop stop words of the doc's lang (stopwords-iso lists)
    min_length: int = 1  # drop tags shorter than this (code points); 1 keeps one-character CJK words
    max_length: int = 139  # drop tags longer than this (code points); 139 is Twitter's limit

    def validate(self) -> None:
        _check(self.min_length >= 1, "hashtags.min_length must be at least 1")
        _check(self.max_length >= self.min_length, "hashtags.max_length must be >= min_length")
        _check(self.max_length <= 10_000, "hashtags.max_length must be at most 10000")


@dataclasses.dataclass(frozen=True)
class DedupeConfig:
    """How Dedupe finds exact and near duplicates (see newsflow/core/dedupe/ and docs/dedupe.md)."""

    enabled: bool = True
    exact: bool = True  # group texts equal after normalization (NFKC, case, punctuation, spacing)
    near: bool = True  # MinHash LSH near duplicates
    shingle: str = "char"  # "char" (character k-grams: robust to OCR noise, any script) or "word"
    shingle_size: int = 5  # characters (or words) per shingle
    num_perm: int = 128  # MinHash permutations (signature = 4 * num_perm bytes)
    bands: int = 32  # LSH bands; bands * rows <= num_perm
    rows: int = 4  # permutations per band; candidates are found from Jaccard ~ (1/bands)**(1/rows)
    lede_chars: int = 250  # texts sharing their first this many normalized characters become candidates (0 = off)
    sketch_size: int = 256  # bottom-k sketch (4 bytes each) used to verify candidate pairs
    threshold: float = 0.8  # estimated Jaccard at or above which a candidate pair matches
    verification: str = "jaccard_or_containment"  # "jaccard", "jaccard_or_containment" or "none"
    containment_threshold: float = 0.95  # smaller doc's estimated containment in the larger that matches...
    min_overlap: int = 250  # ...when they also share at least this many shingles...
    containment_min_jaccard: float = 0.2  # ...and their Jaccard is at least this
    edit_threshold: float = 0.9  # noisy copy (OCR, typos): character alignment at least this matches (0 = off)...
    edit_min_jaccard: float = 0.3  # ...for candidate pairs with at least this Jaccard...
    edit_min_chars: int = 500  # ...whose texts (lines they do not share set aside) have this many characters
    min_shingles: int = 100  # texts with fewer distinct shingles take part in exact matching only
    boilerplate_min_docs: int = 20  # a line found in this many distinct texts is ignored for near matching (0 = off)
    max_bucket: int = 500  # an LSH bucket larger than this compares members with its first max_bucket only
    cc_rounds: int = 4  # large-star/small-star rounds of the connected-components step (2 measured enough)
    seed: int = 1  # permutation seed (--dedupe_against refuses an index written with another one)
    index_retention_days: int = 30  # earlier docs are candidates for a doc dated at most this many days from them
    write_index: bool = True  # write <output>/index/month=YYYY-MM/ for --dedupe_against in later runs
    # the two largest groupings (LSH buckets, resolve) run in this many parts; 0 = auto: 4 on Beam's local
    # runners (in-process, Prism), which hold every shuffle in memory and regroup one part at a time; 1 elsewhere
    group_parts: int = 0

    def validate(self) -> None:
        _check(self.shingle in ("char", "word"), "dedupe.shingle must be char or word")
        _check(1 <= self.shingle_size <= 64, "dedupe.shingle_size must be in 1..64")
        _check(8 <= self.num_perm <= 1024, "dedupe.num_perm must be in 8..1024")
        _check(self.bands >= 1 and self.rows >= 1, "dedupe.bands and dedupe.rows must be >= 1")
        _check(self.bands * self.rows <= self.num_perm, "dedupe.bands * dedupe.rows must be <= num_perm")
        _check(self.lede_chars >= 0, "dedupe.lede_chars must be >= 0")
        _check(16 <= self.sketch_size <= 4096, "dedupe.sketch_size must be in 16..4096")
        _check(0.0 < self.threshold <= 1.0, "dedupe.threshold must be in (0, 1]")
        _check(
            self.verification in ("jaccard", "jaccard_or_containment", "none"),
            "dedupe.verification must be jaccard, jaccard_or_containment or none",
        )
        _check(0.0 < self.containment_threshold <= 1.0, "dedupe.containment_threshold must be in (0, 1]")
        _check(self.min_overlap >= 0, "dedupe.min_overlap must be >= 0")
        _check(0.0 <= self.containment_min_jaccard <= 1.0, "dedupe.containment_min_jaccard must be in [0, 1]")
        _check(0.0 <= self.edit_threshold <= 1.0, "dedupe.edit_threshold must be in [0, 1] (0 = off)")
        _check(0.0 <= self.edit_min_jaccard <= 1.0, "dedupe.edit_min_jaccard must be in [0, 1]")
        _check(self.edit_min_chars >= 1, "dedupe.edit_min_chars must be >= 1")
        _check(self.min_shingles >= 1, "dedupe.min_shingles must be >= 1")
        _check(
            self.boilerplate_min_docs == 0 or self.boilerplate_min_docs >= 2,
            "dedupe.boilerplate_min_docs must be 0 (off) or >= 2",
        )
        _check(self.max_bucket >= 2, "dedupe.max_bucket must be >= 2")
        _check(1 <= self.cc_rounds <= 50, "dedupe.cc_rounds must be in 1..50")
        _check(self.index_retention_days >= 0, "dedupe.index_retention_days must be >= 0")
        _check(0 <= self.group_parts <= 64, "dedupe.group_parts must be in 0..64 (0 = auto)")


@dataclasses.dataclass(frozen=True)
class OutputConfig:
    """How the tables are written."""

    max_rows_per_file: int = 50_000  # a partition with more rows is split into shards (bounds writer memory)
    max_file_mb: float = 256.0  # ... and so is one of more (estimated, uncompressed) MB: zstd files of ~60-100 MB
    row_group_rows: int = 20_000  # rows per Parquet row group at most ...
    row_group_mb: float = 64.0  # ... and about this many (estimated, uncompressed) MB
    compression: str = "zstd"
    compression_level: int | None = None  # zstd 1-22, gzip 1-9, brotli 0-11; None: 3 for zstd, else the codec's
    stale_tmp_hours: float = 6.0  # an earlier run's temporary folder untouched this long is removed

    def validate(self) -> None:
        _check(self.max_rows_per_file >= 1, "output.max_rows_per_file must be >= 1")
        _check(self.stale_tmp_hours > 0, "output.stale_tmp_hours must be > 0")
        _check(self.max_file_mb > 0 and self.row_group_mb > 0, "output.max_file_mb and row_group_mb must be > 0")
        _check(1 <= self.row_group_rows <= 1_000_000, "output.row_group_rows must be in 1..1000000")
        _check(
            self.compression in {"zstd", "snappy", "gzip", "brotli", "lz4", "none"},
            "output.compression must be one of zstd, snappy, gzip, brotli, lz4, none",
        )
        levels = {"zstd": (1, 22), "gzip": (1, 9), "brotli": (0, 11)}
        if self.compression_level is not None:
            _check(self.compression in levels, f"output.compression_level must be null for {self.compression}")
            lo, hi = levels[self.compression]
            _check(
                lo <= self.compression_level <= hi,
                f"output.compression_level must be in {lo}..{hi} for {self.compression}",
            )


_SECTIONS: dict[str, type] = {
    "read": ReadConfig,
    "parse": ParseConfig,
    "lang": LangConfig,
    "hashtags": HashtagConfig,
    "dedupe": DedupeConfig,
    "output": OutputConfig,
}


@dataclasses.dataclass(frozen=True)
class Config:
    """All settings of one run."""

    read: ReadConfig = dataclasses.field(default_factory=ReadConfig)
    parse: ParseConfig = dataclasses.field(default_factory=ParseConfig)
    lang: LangConfig = dataclasses.field(default_factory=LangConfig)
    hashtags: HashtagConfig = dataclasses.field(default_factory=HashtagConfig)
    dedupe: DedupeConfig = dataclasses.field(default_factory=DedupeConfig)
    output: OutputConfig = dataclasses.field(default_factory=OutputConfig)

    def validate(self) -> Config:
        for name in _SECTIONS:
            getattr(self, name).validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Config:
        data = data or {}
        _check(isinstance(data, dict), "config: the top level must be a mapping of sections")
        unknown = sorted(set(data) - set(_SECTIONS))
        if unknown:
            raise ConfigError(f"config: unknown section {unknown[0]!r} (known: {', '.join(_SECTIONS)})")
        sections = {name: _build_section(name, kind, data.get(name)) for name, kind in _SECTIONS.items()}
        return cls(**sections).validate()


def _build_section(name: str, kind: type, values: Any) -> Any:
    if values is None:
        return kind()
    _check(isinstance(values, dict), f"config: section {name!r} must be a mapping")
    hints = typing.get_type_hints(kind)
    fields = {f.name: f for f in dataclasses.fields(kind)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"config: unknown key {name}.{unknown[0]} (known: {', '.join(fields)})")
    kwargs = {}
    for key, value in values.items():
        kwargs[key] = _coerce(f"{name}.{key}", hints[key], value)
    return kind(**kwargs)


def _coerce(key: str, hint: Any, value: Any) -> Any:
    """Check a YAML value against the field's type hint (ints accepted for floats)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or (origin is not None and type(None) in args):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(key, inner[0], value)
    if hint is bool:
        _check(isinstance(value, bool), f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        _check(isinstance(value, int) and not isinstance(value, bool), f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        _check(ok, f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        _check(isinstance(value, str), f"{key}: expected a string, got {value!r}")
        return value
    if origin is dict:
        _check(isinstance(value, dict), f"{key}: expected a mapping, got {value!r}")
        return {str(k): str(v) for k, v in value.items()}
    if origin in (list, tuple):
        _check(isinstance(value, list), f"{key}: expected a list, got {value!r}")
        return tuple(value) if origin is tuple else list(value)
    return value


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate a YAML config; ``None`` gives the defaults."""
    if path is None:
        return Config().validate()
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError as e:
        raise ConfigError(f"config file not found: {path}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {str(e).splitlines()[0]}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {type(e).__name__}: {e}") from e
    try:
        return Config.from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e
