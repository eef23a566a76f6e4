"""Print the Dataflow options of ``configs/dataflow.yaml`` as command-line flags.

::

    python -m pipelines.ingest --input gs://BUCKET/dumps/2024-07-05/ --output gs://BUCKET/news \\
        $(python deploy/dataflow_flags.py configs/dataflow.yaml)

``--set key=value`` overrides one entry (repeatable), so a scheduler can fill in the
project or region without editing the file. Exit status 2 with one line on stderr, and
nothing on stdout, when a required entry is empty or any value still holds ``FILL_IN``
(``gs://FILL_IN/tmp`` too): the ``$(...)`` then expands to nothing, and the ingest refuses
gs:// paths without a ``--runner``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

__all__ = ["PLACEHOLDER", "REQUIRED_KEYS", "load_options", "main", "to_flags"]

PLACEHOLDER = "FILL_IN"
REQUIRED_KEYS = ("runner", "project", "region", "temp_location", "staging_location")
_SECTION = "dataflow"


def load_options(path: str) -> dict[str, Any]:
    """The ``dataflow`` mapping of the YAML file at ``path``."""
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    section = data.get(_SECTION) if isinstance(data, dict) else None
    if not isinstance(section, dict):
        raise ValueError(f"{path}: no '{_SECTION}' mapping")
    return dict(section)


def _unfilled(value: Any) -> bool:
    """True when the value, or an item of a list value, still holds the placeholder."""
    items = value if isinstance(value, list) else [value]
    return any(isinstance(v, str) and PLACEHOLDER in v for v in items)


def to_flags(options: Mapping[str, Any]) -> list[str]:
    """Beam flags for ``options``: None left out, lists repeated, True as a bare flag, False left out.

    Raises:
      ValueError: a required key is missing or a value is still the placeholder.
    """
    unset = [k for k in REQUIRED_KEYS if options.get(k) in (None, "") or _unfilled(options.get(k))]
    unset += [k for k, v in options.items() if _unfilled(v) and k not in unset]
    if unset:
        raise ValueError(f"fill in {', '.join(unset)} (still {PLACEHOLDER} or empty)")
    if options.get("setup_file") and options.get("sdk_container_image"):
        raise ValueError("set either setup_file or sdk_container_image, not both")
    flags: list[str] = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        if value is True:
            flags.append(f"--{key}")
        elif isinstance(value, list):
            flags.extend(f"--{key}={item}" for item in value)
        else:
            flags.append(f"--{key}={value}")
    return flags


def main(argv: Sequence[str] | None = None) -> int:
    """Print the flags on one line, shell-quoted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="YAML file with a 'dataflow' mapping (configs/dataflow.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one entry")
    args = parser.parse_args(argv)
    try:
        options = load_options(args.path)
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
            options[key] = value
        flags = to_flags(options)
    except (OSError, ValueError, yaml.YAMLError) as e:
        print(f"dataflow_flags: error: {e}", file=sys.stderr)
        return 2
    print(" ".join(shlex.quote(f) for f in flags))
    return 0


if __name__ == "__main__":
    sys.exit(main())
