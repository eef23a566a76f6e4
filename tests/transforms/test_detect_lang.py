"""DetectLang over Doc dicts: the language fields, abstention, pickling, the disabled switch."""

from __future__ import annotations

import pickle

import apache_beam as beam
from apache_beam.internal import pickler  # Beam's own (cloudpickle-based) pickler, as used on Dataflow
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from newsflow.config import LangConfig
from newsflow.schema import make_doc
from newsflow.transforms.detect_lang import DetectLang, DetectLangFn, doc_text

ENGLISH = "The central bank raised interest rates again on Thursday, citing persistent inflation."
GERMAN = "Die Zentralbank hat am Donnerstag die Zinsen erneut erhöht und verweist auf die hohe Inflation."


def _seed_doc(seed_bytes: bytes) -> dict:
    lines = seed_bytes.decode("utf-8").splitlines()
    return make_doc(doc_id="seed", text="\n".join(lines[1:-2]), hashtags_raw=lines[-2].split())


def _run_fn(fn: DetectLangFn, docs: list[dict]) -> list[dict]:
    """Call a DetectLangFn directly as a runner would for one bundle: process each doc, then finish the bundle."""
    fn.start_bundle()
    out = [wv for doc in docs for wv in fn.process(doc)]
    out.extend(fn.finish_bundle())
    return [wv.value for wv in out]


def _summary(doc: dict) -> tuple:
    """The fields a reader relies on, with the score checked for range rather than value."""
    ok_score = 0.0 < doc["lang_score"] <= 1.0 if doc["lang"] != "und" else doc["lang_score"] >= 0.0
    ok_alt = doc["lang_alt"] is None or (
        isinstance(doc["lang_alt"], str) and 0.0 <= doc["lang_alt_score"] <= doc["lang_score"]
    )
    return doc["doc_id"], doc["lang"], ok_score, ok_alt, doc["text"]


def test_detect_lang_pipeline(seed_bytes: bytes) -> None:
    docs = [
        _seed_doc(seed_bytes),
        make_doc(doc_id="en", text=ENGLISH),
        make_doc(doc_id="de", text=GERMAN),
        make_doc(doc_id="short", text="Oui. 2024 !"),
        make_doc(doc_id="empty", text=""),
    ]
    originals = [dict(d) for d in docs]
    expected = [
        ("seed", "fr", True, True, docs[0]["text"]),
        ("en", "en", True, True, ENGLISH),
        ("de", "de", True, True, GERMAN),
        ("short", "und", True, True, "Oui. 2024 !"),
        ("empty", "und", True, True, ""),
    ]
    p = test_pipeline.TestPipeline()
    pcoll = p | beam.Create(docs)
    out = pcoll | "Detect" >> DetectLang()
    strict = pcoll | "Strict" >> DetectLang(LangConfig(threshold=1.0, trust_score=2.0))
    off = pcoll | "Off" >> DetectLang(LangConfig(enabled=False))
    assert_that(out | "S1" >> beam.Map(_summary), equal_to(expected), label="CheckLang")
    assert_that(
        out | "Keys" >> beam.Map(lambda d: sorted(d)), equal_to([sorted(docs[0])] * len(docs)), label="CheckKeys"
    )
    assert_that(
        strict | "S2" >> beam.Map(lambda d: (d["doc_id"], d["lang"])),
        equal_to([(d["doc_id"], "und") for d in docs]),
        label="CheckStrict",
    )
    assert_that(
        off | "S3" >> beam.Map(lambda d: (d["doc_id"], d["lang"], d["lang_score"], d["lang_alt"])),
        equal_to([(d["doc_id"], "und", 0.0, None) for d in docs]),
        label="CheckOff",
    )
    p.run().wait_until_finish()
    assert docs == originals  # inputs are never mutated


def test_detect_lang_fn_pickles_and_runs_after_unpickling(seed_bytes: bytes) -> None:
    fn = DetectLangFn(LangConfig(label_map={"fr": "fra"}))
    fn.setup()  # a loaded model must not travel with the pickle
    for dumps, loads in ((pickle.dumps, pickle.loads), (pickler.dumps, pickler.loads)):
        blob = dumps(fn)
        assert len(blob) < 20_000
        clone = loads(blob)
        clone.setup()
        out = _run_fn(clone, [_seed_doc(seed_bytes)])
        assert [d["lang"] for d in out] == ["fra"]
    transform = pickler.loads(pickler.dumps(DetectLang(LangConfig(threshold=0.3))))
    assert transform._config.threshold == 0.3


def test_shared_model_is_loaded_once_per_process() -> None:
    """Copies of one DoFn (as a runner makes per thread/bundle) share one loaded model."""
    fn = DetectLangFn()
    blob = pickle.dumps(fn)
    first, second = pickle.loads(blob), pickle.loads(blob)
    first.setup()
    second.setup()
    assert first._holder is not None
    assert first._holder is second._holder
    other = DetectLangFn()  # a different transform instance gets its own handle
    other.setup()
    assert other._holder is not first._holder


def test_doc_text_with_and_without_hashtags() -> None:
    doc = make_doc(text="Corps du texte.", hashtags_raw=["#Élections", "#Paris"])
    assert doc_text(doc, use_hashtags=False) == "Corps du texte."
    assert doc_text(doc, use_hashtags=True) == "Corps du texte.\n#Élections #Paris"


def test_second_model_is_wired_and_can_be_turned_off(shared_dir) -> None:
    """A Tigrinya article: lid.176 alone says Amharic (same script, no `ti` label); with the second model `ti`."""
    import csv
    import sys

    csv.field_size_limit(sys.maxsize)
    with open(shared_dir / "corpora" / "masakhanews" / "tir" / "dev.tsv", encoding="utf-8", newline="") as fh:
        texts = [row["text"] for row in csv.DictReader(fh, delimiter="\t")][:3]
    docs = [make_doc(doc_id=str(i), text=t) for i, t in enumerate(texts)]
    both, alone = DetectLangFn(), DetectLangFn(LangConfig(second_model="none"))
    assert [d["lang"] for d in _run_fn(both, docs)] == ["ti"] * 3
    assert [d["lang"] for d in _run_fn(alone, docs)] == ["am"] * 3
    assert both._holder is not None and both._holder.second is not None
    assert alone._holder is not None and alone._holder.second is None


def test_second_model_counters() -> None:
    """Answers the second model replaced or doubted are counted (``lang_second_replaced``/``lang_second_und``)."""
    from apache_beam.metrics.metric import MetricsFilter

    from newsflow.core import lang as L

    class Stub:  # a second model: English is Pidgin to it, German an unsure Yoruba
        codes = frozenset({"pcm", "yo", "en"})

        def predict(self, prepared: str) -> L.LangResult:
            if "zentralbank" in prepared:
                return L.LangResult("yo", 0.7, None, None)
            return L.LangResult("pcm", 0.99, None, None)

        def predict_batch(self, prepared: list[str]) -> list[L.LangResult]:
            return [self.predict(text) for text in prepared]

    class Fn(DetectLangFn):
        def _load(self):  # the real first model, the stub as second
            holder = super()._load()
            holder.second = Stub()
            return holder

    # every en and de answer is a neighbour checked at any score
    cfg = LangConfig(second_model="none", second_neighbours={"en": "pcm", "de": "pcm"}, second_below=1.01)
    docs = [make_doc(doc_id="en", text=ENGLISH), make_doc(doc_id="de", text=GERMAN)]
    p = test_pipeline.TestPipeline()
    out = p | beam.Create(docs) | beam.ParDo(Fn(cfg))
    assert_that(out | beam.Map(lambda d: (d["doc_id"], d["lang"])), equal_to([("en", "pcm"), ("de", "und")]))
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query(MetricsFilter())["counters"]}
    assert counters.get("lang_second_replaced") == 1 and counters.get("lang_second_und") == 1, counters


def test_batches_keep_each_document_in_its_window_with_its_timestamp() -> None:
    """Documents held for a batch leave it in their own windows, with their own timestamps, one output per input."""
    from apache_beam.testing.util import TestWindowedValue
    from apache_beam.transforms import window

    class SmallBatches(DetectLangFn):
        BATCH_DOCS = 3  # batches fill and flush inside process() as well as at the bundle's end

    texts = [ENGLISH, GERMAN, "Oui. 2024 !"]
    docs = [make_doc(doc_id=str(i), text=texts[i % 3]) for i in range(8)]
    langs = {ENGLISH: "en", GERMAN: "de", "Oui. 2024 !": "und"}
    p = test_pipeline.TestPipeline()
    out = (
        p
        | beam.Create(docs)
        | beam.Map(lambda d: window.TimestampedValue(d, 10 * int(d["doc_id"]) + 1))
        | beam.WindowInto(window.FixedWindows(20))
        | beam.ParDo(SmallBatches())
        | beam.Map(lambda d: (d["doc_id"], d["lang"]))
    )
    expected = [
        TestWindowedValue(
            (d["doc_id"], langs[d["text"]]),
            10 * int(d["doc_id"]) + 1,
            [window.IntervalWindow(20 * (int(d["doc_id"]) // 2), 20 * (int(d["doc_id"]) // 2) + 20)],
        )
        for d in docs
    ]
    assert_that(out, equal_to(expected), reify_windows=True)
    p.run().wait_until_finish()


def test_direct_calls_flush_full_batches_and_the_rest_at_the_bundle_end() -> None:
    class SmallBatches(DetectLangFn):
        BATCH_DOCS = 2

    fn = SmallBatches()
    fn.setup()
    fn.start_bundle()
    docs = [make_doc(doc_id=str(i), text=ENGLISH) for i in range(3)]
    assert list(fn.process(docs[0])) == []
    assert [wv.value["doc_id"] for wv in fn.process(docs[1])] == ["0", "1"]
    assert list(fn.process(docs[2])) == []
    assert [(wv.value["doc_id"], wv.value["lang"]) for wv in fn.finish_bundle()] == [("2", "en")]
    assert list(fn.finish_bundle()) == []
