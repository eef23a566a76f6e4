"""newsflow: Apache Beam transforms that turn raw news dumps into clean, deduplicated,
language-tagged Parquet.

::

    import apache_beam as beam
    from newsflow import ReadDump, SplitHeader, DetectLang, NormalizeHashtags, Dedupe

    with beam.Pipeline() as p:
        read = p | ReadDump("dumps/2024-07-05/")
        parsed = read.docs | SplitHeader()
        docs = parsed.docs | DetectLang() | NormalizeHashtags()
        deduped = docs | Dedupe()
"""

from __future__ import annotations

__version__ = "0.1.0"

from newsflow import beam_notices  # noqa: F401 - first: installs its log filter before Beam is imported
from newsflow.config import Config, load_config
from newsflow.io.read_dump import ReadDump
from newsflow.io.write_tables import WriteTables
from newsflow.reasons import Reason
from newsflow.transforms.split_header import SplitHeader

__all__ = [
    "Config",
    "Dedupe",
    "DetectLang",
    "NormalizeHashtags",
    "ReadDump",
    "Reason",
    "SplitHeader",
    "WriteTables",
    "__version__",
    "load_config",
]


def __getattr__(name: str):  # noqa: ANN202 - lazy exports keep `import newsflow` light
    if name == "DetectLang":
        from newsflow.transforms.detect_lang import DetectLang

        return DetectLang
    if name == "NormalizeHashtags":
        from newsflow.transforms.normalize_hashtags import NormalizeHashtags

        return NormalizeHashtags
    if name == "Dedupe":
        from newsflow.transforms.dedupe import Dedupe

        return Dedupe
    raise AttributeError(f"module 'newsflow' has no attribute {name!r}")
