"""Unit tests of newsflow.core.lang: text preparation, decision rule, code mapping, model loading."""
from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsflow.config import ConfigError, LangConfig, load_config
from newsflow.core import lang as L

LID_SHA256 = "8f3472cfe8738a7b6099e8e999c3cbfae0dcd15696aac7d7738a8039db603e83"

CLEAR = {
    "en": "The government announced on Tuesday that the new budget will increase spending on schools.",
    "fr": "Le gouvernement a annoncé mardi que le nouveau budget augmentera les dépenses pour les écoles.",
    "de": "Die Regierung hat am Dienstag angekündigt, dass der neue Haushalt mehr Geld für Schulen vorsieht.",
    "es": "El gobierno anunció el martes que el nuevo presupuesto aumentará el gasto en las escuelas.",
    "ru": "Правительство во вторник объявило, что новый бюджет увеличит расходы на школы.",
    "ja": "政府は火曜日、新しい予算で学校への支出を増やすと発表した。",
}


@pytest.fixture(scope="module")
def model() -> L.LangModel:
    return L.LangModel()


# --- the fastText binding -------------------------------------------------------------------------


def test_exactly_one_fasttext_binding_is_installed() -> None:
    def installed(name: str) -> bool:
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            return False
        return True

    assert installed("fasttext-numpy2")
    for broken in ("fasttext", "fasttext-wheel", "fasttext-predict"):
        assert not installed(broken), f"{broken} overwrites the fasttext module with a broken binding"


def test_binding_predicts_one_by_one_and_as_a_list_consistently(model: L.LangModel) -> None:
    ft = model.model
    texts = list(CLEAR.values())
    expected = list(CLEAR.keys())
    single = [ft.predict(t, k=2) for t in texts]
    for size in (1, 2, 3, len(texts)):  # a list of exactly 2 is what a known broken binding mangles
        labels, probs = ft.predict(texts[:size], k=2)
        assert len(labels) == len(probs) == size
        for i in range(size):
            assert list(labels[i]) == list(single[i][0])
            np.testing.assert_allclose(probs[i], single[i][1], rtol=1e-5)
    for (labels, probs), code in zip(single, expected, strict=True):
        assert labels[0] == L.LABEL_PREFIX + code
        assert len(labels) == 2 and labels[0] != labels[1]
        assert np.all(probs > 0) and np.all(probs <= 1.0 + 1e-4)  # fastText adds 1e-5 per label
        assert probs[0] >= probs[1]
        assert probs[0] > probs[1]  # a known broken binding repeats the top score for every k
        assert probs[0] > 0.5


def test_full_distribution_sums_to_one(model: L.LangModel) -> None:
    probs = model.chunk_probs([CLEAR["en"], CLEAR["de"]])
    assert probs.shape == (2, len(model.labels))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=0.02)
    assert model.codes[int(probs[0].argmax())] == "en"
    assert model.codes[int(probs[1].argmax())] == "de"


SOMALI = (
    "Kooxda ayaa la hadli doonta difaacooda kaddib markii la shaaciyay inuu ku xadgudbay shuruucda "
    "xayiraadaha ee dalkiisa. Dalka ayaa lagu soo rogay xayiraado dhinaca dhaqdhaqaaqa iyo ganacsiga ah, "
    "si loo yareeyo faafitaanka cudurka. Waxyaabaha laga wada hadley ayaa waxaa ka mid ah in kulamada "
    "dhiman lagu qabto goobo aan dad badan joogin."
)


def test_numpy_distributions_match_predict(model: L.LangModel) -> None:
    """lid.176 takes the numpy path; its distributions are fastText's own (pruned labels included)."""
    slow = L.LangModel(model=model.model, fast=False)
    assert model.fast and not slow.fast
    texts = [L.prepare_text(t) for t in [*CLEAR.values(), SOMALI, "zzzz qqqq", "a"]]
    chunks = [c for t in texts for c in L.chunk_words(t, 5)]
    fast_probs, slow_probs = model.chunk_probs(chunks), slow.chunk_probs(chunks)
    assert (slow_probs == 0).any()  # fastText leaves out labels under 1e-5; so must the numpy path
    np.testing.assert_allclose(fast_probs, slow_probs, rtol=1e-3, atol=2e-5)
    assert ((fast_probs == 0) == (slow_probs == 0)).mean() > 0.99
    for text in texts:
        np.testing.assert_allclose(model.top_probs(text), slow.top_probs(text), rtol=1e-3, atol=2e-5)
        whole, chunked = model.text_probs(text, 5)
        np.testing.assert_allclose(whole, slow.top_probs(text), rtol=1e-3, atol=2e-5)
        np.testing.assert_allclose(chunked(), slow.chunk_probs(L.chunk_words(text, 5)), rtol=1e-3, atol=2e-5)
        assert (model.top_probs(text) > 0).sum() <= 5


def test_numpy_and_predict_paths_decide_alike(model: L.LangModel) -> None:
    slow = L.LangModel(model=model.model, fast=False)
    small = L.LangModel(model=model.model)
    small._CACHE_WORDS = 64  # the word cache is emptied many times over; the longest text does not fit at all
    small._sums, small._counts = small._sums[:64], small._counts[:64]
    cfg = LangConfig()
    kwargs = dict(threshold=cfg.threshold, min_chars=cfg.min_chars, max_chars=cfg.max_chars,
                  chunk_size=cfg.chunk_words, prior_weight=cfg.prior_weight, trust_score=cfg.trust_score,
                  min_ratio=cfg.min_ratio)
    for text in [*CLEAR.values(), SOMALI, SOMALI + " " + CLEAR["en"], SOMALI + " " + SOMALI.upper()]:
        a, b, c = L.detect(text, model, **kwargs), L.detect(text, slow, **kwargs), L.detect(text, small, **kwargs)
        assert a == c
        assert (a.lang, a.alt) == (b.lang, b.alt)
        assert a.score == pytest.approx(b.score, abs=1e-4)
    assert L.detect(SOMALI, model, **kwargs).lang == "so"


def test_model_without_numpy_path_uses_predict(model: L.LangModel) -> None:
    """A model whose output layer cannot be read (e.g. quantised with -qout) falls back to predict."""

    class NoOutput:
        def __init__(self, inner) -> None:
            self.inner = inner
            self.f = self

        def getOutputMatrix(self):  # noqa: N802 - fastText's name
            raise ValueError("quantised output")

        def __getattr__(self, name):
            return getattr(self.inner, name) if name != "f" else self

    wrapped = NoOutput(model.model)
    wrapped.f = type("F", (), {"getArgs": model.model.f.getArgs, "getOutputMatrix": wrapped.getOutputMatrix})()
    m = L.LangModel(model=wrapped)
    assert not m.fast
    assert L.detect(CLEAR["fr"], m).lang == "fr"


# --- model loading -----------------------------------------------------------------------------------


def test_bundled_model_is_lid176() -> None:
    path = L.bundled_model_path()
    assert path.name == "lid.176.ftz"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == LID_SHA256


def test_load_model_from_a_path_and_a_file_uri(tmp_path) -> None:
    copy = tmp_path / "copy.ftz"
    shutil.copyfile(L.bundled_model_path(), copy)
    for ref in (str(copy), f"file://{copy}"):
        m = L.LangModel(ref)
        assert len(m.labels) == 176
        assert L.detect(CLEAR["fr"], m).lang == "fr"


def test_load_model_through_a_beam_filesystem(tmp_path, monkeypatch) -> None:
    """A URI with a scheme goes through FileSystems.open into a temp file (here: a fake gs://)."""
    import io

    from apache_beam.io.filesystems import FileSystems

    data = L.bundled_model_path().read_bytes()
    opened = []

    def fake_open(uri: str, *args, **kwargs):
        opened.append(uri)
        return io.BytesIO(data)

    monkeypatch.setattr(FileSystems, "open", staticmethod(fake_open))
    m = L.LangModel("gs://bucket/models/lid.176.ftz")
    assert opened == ["gs://bucket/models/lid.176.ftz"]
    assert L.detect(CLEAR["de"], m).lang == "de"


def test_missing_model_path_raises(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        L.load_model(str(tmp_path / "nope.bin"))


# --- text preparation -----------------------------------------------------------------------------


def test_prepare_text_folds_lines_drops_urls_digits_punctuation_and_lowercases() -> None:
    raw = "Hello, World!\nSee https://example.com/a?b=1 or www.x.org, mail me@x.com @bob\n2024: #Big_News"
    assert L.prepare_text(raw) == "hello world see or mail big news"


def test_prepare_text_composes_to_nfc_and_keeps_marks_inside_words() -> None:
    nfd = unicodedata.normalize("NFD", "Ẹgbẹ́ ọmọ Ọlọ́run")
    out = L.prepare_text(nfd)
    assert out == unicodedata.normalize("NFC", "ẹgbẹ́ ọmọ ọlọ́run")
    assert len(out.split()) == 3  # the tone mark over ẹ (no precomposed form) stays in its word
    hindi = "नमस्ते दुनिया"  # vowel signs and virama are marks, not separators
    assert L.prepare_text(hindi).split() == hindi.split()


def test_prepare_text_cuts_at_a_word_boundary() -> None:
    text = "alpha beta gamma delta"
    assert L.prepare_text(text, max_chars=12) == "alpha beta"
    assert L.prepare_text(text, max_chars=100) == text
    assert L.prepare_text("abcdefghij", max_chars=4) == "abcd"


def _reference_prepare(text: str, max_chars: int | None) -> str:
    """prepare_text written the slow, obvious way: whole text, one character at a time."""
    text = L._URL_RE.sub(" ", unicodedata.normalize("NFC", text))
    keep = [ch if (ch.isalnum() and not ch.isdecimal()) or unicodedata.category(ch)[0] == "M" else " " for ch in text]
    out = " ".join("".join(keep).split()).lower()
    if max_chars is not None and len(out) > max_chars:
        cut = out.rfind(" ", 0, max_chars + 1)
        out = out[: cut if cut > 0 else max_chars]
    return out


PIECES = ["Alpha", "beta", "ΟΔΟΣ", "ὈΔΥΣΣΕΎΣ", "ẹ́", "e\u0301", "İstanbul", "½", "x²", "𝐀𝐁", "𐐀𐐨", "中文", "नमस्ते",
          "42", "_", "#tag", "@bob", "me@x.com", "http://a.b/c", "WWW.X.ORG", "ftp://z", "!?", " ", "  ", "\n", "\t",
          "\u00a0", "\u2028", "\u0301"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=60), st.sampled_from([None, 1, 5, 12, 30, 80]))
def test_prepare_text_matches_the_plain_definition(pieces: list[str], max_chars: int | None) -> None:
    """The fast path (one character class, URL pass only when needed, early stop on long texts) changes nothing."""
    text = "".join(pieces)
    assert L.prepare_text(text, max_chars) == _reference_prepare(text, max_chars)


def test_prepare_text_long_text_stops_early_with_the_same_result() -> None:
    text = " ".join(f"Word{i}, ΣΟΦΟΣ x@y.org" for i in range(400))
    for max_chars in (20, 100, 999, 5000, 100_000):
        assert L.prepare_text(text, max_chars) == _reference_prepare(text, max_chars)


def test_chunk_words() -> None:
    assert L.chunk_words("a b c d e f g", 3) == ["a b c", "d e f", "g"]
    assert L.chunk_words("a b c", 0) == ["a b c"]
    assert L.chunk_words("   ", 3) == []


# --- decision rule -------------------------------------------------------------------------------


def test_aggregate_divides_out_the_prior() -> None:
    chunk = np.array([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]])
    log_prior = np.log(np.array([0.9, 0.05, 0.05]))
    plain = L.aggregate(chunk, log_prior, prior_weight=0.0)
    corrected = L.aggregate(chunk, log_prior, prior_weight=1.0)
    np.testing.assert_allclose(plain, [0.5, 0.3, 0.2], rtol=1e-6)
    assert corrected.argmax() == 1  # the frequent label loses its training-prior advantage
    np.testing.assert_allclose(corrected.sum(), 1.0)


def test_aggregate_is_a_geometric_mean_over_chunks() -> None:
    chunk = np.array([[0.8, 0.2], [0.2, 0.8], [0.6, 0.4]])
    out = L.aggregate(chunk, np.zeros(2), prior_weight=1.0)
    g = np.exp(np.log(chunk).mean(axis=0))
    np.testing.assert_allclose(out, g / g.sum())


def test_decide_threshold_alt_and_merge() -> None:
    codes = ["en", "fr", "no", "nb"]
    res = L.decide(np.array([0.1, 0.2, 0.4, 0.3]), codes, threshold=0.5)
    assert res == L.LangResult("und", pytest.approx(0.4), "nb", pytest.approx(0.3))
    merged = L.decide(np.array([0.1, 0.2, 0.4, 0.3]), ["en", "fr", "no", "no"], threshold=0.5)
    assert merged.lang == "no" and merged.score == pytest.approx(0.7) and merged.alt == "fr"
    per_lang = L.decide(np.array([0.7, 0.3]), ["en", "fr"], threshold=0.5, thresholds={"en": 0.8})
    assert per_lang.lang == "und" and per_lang.alt == "fr"
    assert L.decide(np.array([0.7, 0.3]), ["en", "fr"], threshold=0.5).lang == "en"
    close = np.array([0.34, 0.30, 0.36])
    assert L.decide(close, ["ms", "jv", "id"], threshold=0.1).lang == "id"
    assert L.decide(close, ["ms", "jv", "id"], threshold=0.1, min_ratio=1.2).lang == "und"  # 0.36 < 1.2 * 0.34
    assert L.decide(close, ["id", "jv", "id"], threshold=0.1, min_ratio=1.2).lang == "id"  # collapsed: 0.70


def test_detect_abstains_on_short_text(model: L.LangModel) -> None:
    res = L.detect("Oui !!! 123", model, min_chars=20)
    assert res == L.LangResult("und", 0.0, None, None)


def test_detect_clear_sentences(model: L.LangModel) -> None:
    for code, text in CLEAR.items():
        res = L.detect(text, model, threshold=0.15, min_chars=20)
        assert res.lang == code, (code, res)
        assert 0 < res.score <= 1 and res.alt is not None and res.alt_score is not None
        assert res.alt_score <= res.score


def test_detect_uses_chunk_rule_when_plain_fasttext_is_unsure(model: L.LangModel) -> None:
    """Somali: plain lid.176 answers English with a flat distribution; the chunk rule answers so."""
    text = (
        "Kooxda ayaa la hadli doonta difaacooda kaddib markii la shaaciyay inuu ku xadgudbay shuruucda "
        "xayiraadaha ee dalkiisa. Dalka ayaa lagu soo rogay xayiraado dhinaca dhaqdhaqaaqa iyo ganacsiga ah, "
        "si loo yareeyo faafitaanka cudurka. Waxyaabaha laga wada hadley ayaa waxaa ka mid ah in kulamada "
        "dhiman lagu qabto goobo aan dad badan joogin."
    )
    plain = L.detect(text, model, chunk_size=0, prior_weight=0.0, trust_score=2.0)
    assert plain.lang == "en" and plain.score < 0.5
    ours = L.detect(text, model, threshold=0.15, chunk_size=5, prior_weight=1.0, trust_score=0.5)
    assert ours.lang == "so"


def test_seed_document_is_french(model: L.LangModel, seed_bytes: bytes) -> None:
    lines = seed_bytes.decode("utf-8").splitlines()
    body = "\n".join(lines[1:-2])  # header, hashtag line and trailer left out
    cfg = LangConfig()
    res = L.detect(body, model, threshold=cfg.threshold, min_chars=cfg.min_chars, max_chars=cfg.max_chars,
                   chunk_size=cfg.chunk_words, prior_weight=cfg.prior_weight, trust_score=cfg.trust_score,
                   min_ratio=cfg.min_ratio)
    assert res.lang == "fr" and res.score > 0.9


# --- code mapping -------------------------------------------------------------------------------------


def test_map_label() -> None:
    assert L.map_label("__label__fr") == "fr"
    assert L.map_label("__label__arz") == "arz"  # no ISO 639-1 code: kept
    assert L.map_label("__label__iw") == "he"  # deprecated codes modernised
    assert L.map_label("__label__eng_Latn") == "en"  # GlotLID / OpenLID style
    assert L.map_label("__label__hau_Latn") == "ha"
    assert L.map_label("__label__pcm_Latn") == "pcm"
    assert L.map_label("__label__sh", {"sh": "hbs"}) == "hbs"
    assert L.map_label("__label__nb_x", {"__label__nb_x": "no"}) == "no"
    assert L.map_label("__label__srp_Cyrl", {"sr": "hbs"}) == "hbs"  # map applies after reduction too


def test_label_map_collapse_through_model(model: L.LangModel) -> None:
    collapsed = L.LangModel(model=model.model, label_map={"ms": "id"})
    assert "ms" not in collapsed.codes and collapsed.codes.count("id") == 2


def test_lang_config_defaults_and_validation(tmp_path) -> None:
    cfg = LangConfig()
    got = (cfg.threshold, cfg.min_chars, cfg.max_chars, cfg.chunk_words, cfg.prior_weight, cfg.trust_score,
           cfg.min_ratio, cfg.use_hashtags)
    assert got == (0.15, 20, 2000, 5, 1.0, 0.5, 1.2, False)
    path = tmp_path / "c.yaml"
    path.write_text("lang:\n  thresholds: {en: 0.3}\n  label_map: {ms: id}\n", encoding="utf-8")
    loaded = load_config(path).lang
    assert loaded.thresholds == {"en": 0.3} and loaded.label_map == {"ms": "id"}
    bad_values = ({"threshold": 1.5}, {"chunk_words": -1}, {"prior_weight": 2.0}, {"thresholds": {"en": 3}},
                  {"min_ratio": 0.5})
    for bad in bad_values:
        with pytest.raises(ConfigError):
            LangConfig(**bad).validate()
    with pytest.raises(ConfigError):
        LangConfig(thresholds={"en": "high"})
