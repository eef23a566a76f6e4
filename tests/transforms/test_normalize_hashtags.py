"""NormalizeHashtags over Doc dicts, its counters, pickling and its config section."""

from __future__ import annotations

import pathlib

import apache_beam as beam
import pytest
from apache_beam.internal import pickler
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from newsflow.config import Config, ConfigError, HashtagConfig, load_config
from newsflow.schema import make_doc
from newsflow.transforms.normalize_hashtags import NormalizeHashtags, NormalizeHashtagsFn

REPO = pathlib.Path(__file__).resolve().parents[2]

SEED_TAGS = [
    "#quoi", "#aton", "#discuté", "#lors", "#reprise", "#des", "#dialogues", "#entre", "#Venezuela", "#les",
    "#ÉtatsUnis",
]  # fmt: skip


def _docs() -> list[dict]:
    return [
        make_doc(doc_id="fr", lang="fr", hashtags_raw=list(SEED_TAGS)),
        make_doc(doc_id="und", lang="und", hashtags_raw=["#Les", "#2024", "#les", "#Élections"]),
        make_doc(doc_id="en", lang="en", hashtags_raw=["#The", "#Élections", "＃ＢＢＣ", "#bbc"]),
        make_doc(doc_id="none", lang="fr", hashtags_raw=[]),
    ]


def test_normalize_hashtags_pipeline():
    docs = _docs()
    originals = [{**d, "hashtags_raw": list(d["hashtags_raw"])} for d in docs]
    expected_default = [
        {**docs[0], "hashtags": ["aton", "discuté", "reprise", "dialogues", "venezuela", "étatsunis"]},
        {**docs[1], "hashtags": ["les", "élections"]},
        {**docs[2], "hashtags": ["élections", "bbc"]},
        {**docs[3], "hashtags": []},
    ]
    folded = HashtagConfig(fold_accents=True, drop_stopwords=False, drop_numeric=False)
    expected_folded = [
        {**docs[0], "hashtags": ["quoi", "aton", "discute", "lors", "reprise", "des", "dialogues", "entre",
                                 "venezuela", "les", "etatsunis"]},
        {**docs[1], "hashtags": ["les", "2024", "elections"]},
        {**docs[2], "hashtags": ["the", "elections", "bbc"]},
        {**docs[3], "hashtags": []},
    ]  # fmt: skip

    p = test_pipeline.TestPipeline()
    pcoll = p | beam.Create(docs)
    out_default = pcoll | "Default" >> NormalizeHashtags()
    out_folded = pcoll | "Folded" >> NormalizeHashtags(folded)
    out_disabled = pcoll | "Disabled" >> NormalizeHashtags(HashtagConfig(enabled=False))
    assert_that(out_default, equal_to(expected_default), label="CheckDefault")
    assert_that(out_folded, equal_to(expected_folded), label="CheckFolded")
    assert_that(out_disabled, equal_to(originals), label="CheckDisabled")
    raw_after = out_default | beam.Map(lambda d: (d["doc_id"], d["hashtags_raw"]))
    assert_that(raw_after, equal_to([(d["doc_id"], d["hashtags_raw"]) for d in originals]), label="CheckRaw")
    result = p.run()
    result.wait_until_finish()

    # The inputs were not mutated.
    assert docs == originals

    def counter(name: str) -> int:
        found = result.metrics().query(MetricsFilter().with_namespace("newsflow").with_name(name))["counters"]
        return sum(c.committed for c in found)

    # Both enabled branches count; figures are the sum over the default and folded runs.
    assert counter("hashtags_kept") == (6 + 2 + 2) + (11 + 3 + 3)
    assert counter("hashtags_dropped_stopword") == 5 + 1
    assert counter("hashtags_dropped_numeric") == 1
    assert counter("hashtags_dropped_duplicate") == (1 + 1) + (1 + 1)


def test_transform_and_dofn_are_picklable():
    cfg = HashtagConfig(fold_accents=True, min_length=2)
    fn = pickler.loads(pickler.dumps(NormalizeHashtagsFn(cfg)))
    fn.setup()
    doc = make_doc(lang="fr", hashtags_raw=["#Les", "#Été", "#x", "#Crise"])
    assert list(fn.process(doc)) == [{**doc, "hashtags": ["crise"]}]
    assert pickler.loads(pickler.dumps(NormalizeHashtags(cfg)))._config == cfg


def test_default_yaml_matches_hashtag_config_defaults():
    cfg = load_config(REPO / "configs" / "default.yaml")
    assert cfg.hashtags == HashtagConfig()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"min_length": 0}, "hashtags.min_length"),
        ({"min_length": 5, "max_length": 4}, "hashtags.max_length"),
        ({"max_length": 10_001}, "hashtags.max_length"),
        ({"fold_accents": "yes"}, "hashtags.fold_accents"),
        ({"drop_stopword": True}, "hashtags.drop_stopword"),
    ],
)
def test_hashtag_config_validation(values, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_dict({"hashtags": values})


def test_transform_rejects_invalid_config():
    with pytest.raises(ConfigError):
        NormalizeHashtags(HashtagConfig(min_length=0))
