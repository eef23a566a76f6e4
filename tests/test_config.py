"""Settings: the documented defaults file is the defaults, and bad settings give one clear line."""

from __future__ import annotations

import pytest

from newsflow.config import Config, ConfigError, load_config
from tests.conftest import REPO


def test_default_yaml_documents_exactly_the_defaults() -> None:
    assert load_config(REPO / "configs" / "default.yaml") == Config()


def test_default_yaml_lists_every_key() -> None:
    import yaml

    data = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    assert {k: sorted(v) for k, v in data.items()} == {k: sorted(v) for k, v in Config().to_dict().items()}


def test_the_benchmark_pass_through_config_switches_off_every_decision_and_nothing_else() -> None:
    cfg = load_config(REPO / "benchmarks" / "passthrough.yaml")
    assert (cfg.lang.enabled, cfg.hashtags.enabled, cfg.dedupe.enabled) == (False, False, False)
    on = Config()
    assert (cfg.read, cfg.parse, cfg.output) == (on.read, on.parse, on.output)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"lang": {"treshold": 0.5}}, "unknown key lang.treshold"),
        ({"langs": {}}, "unknown section 'langs'"),
        ({"read": {"max_doc_bytes": "big"}}, "read.max_doc_bytes: expected an integer"),
        ({"read": {"max_doc_bytes": 10}}, "read.max_doc_bytes must be at least 1024"),
        ({"parse": {"timezone": "Mars/Olympus"}}, "unknown time zone"),
        ({"output": {"compression": "rar"}}, "output.compression must be one of"),
        ({"hashtags": {"enabled": "yes"}}, "expected true or false"),
    ],
)
def test_bad_settings_are_one_line_errors(data, message) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        Config.from_dict(data)
    assert "\n" not in str(err.value)


def test_partial_sections_keep_other_defaults(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("parse:\n  timezone: Europe/Paris\n")
    cfg = load_config(path)
    assert cfg.parse.timezone == "Europe/Paris" and cfg.read == Config().read


def test_missing_and_invalid_files(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("read: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
