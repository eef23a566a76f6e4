"""Pure tests of hashtag extraction (twitter-text conformance) and normalization."""

from __future__ import annotations

import pathlib
import unicodedata

import pytest
import stopwordsiso
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from newsflow.hashtags import (
    DropRule,
    explain_hashtags,
    extract_hashtags,
    extract_hashtags_with_indices,
    normalize_hashtag,
    normalize_hashtags,
    stopword_lang,
    stopwords_for,
)

# ---------------------------------------------------------------------------
# twitter-text conformance (extract.yml, read by path from the shared corpora)
# ---------------------------------------------------------------------------

CONFORMANCE_SECTIONS = {"hashtags": 65, "hashtags_from_astral": 3, "hashtags_with_indices": 8}


@pytest.fixture(scope="module")
def extract_cases(shared_dir: pathlib.Path) -> dict[str, list[dict]]:
    path = shared_dir / "corpora" / "twitter-text-conformance" / "extract.yml"
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)["tests"]


def test_conformance_sections_have_the_expected_case_counts(extract_cases):
    # Guards the parametrization below: every case of each section is exercised.
    assert {name: len(extract_cases[name]) for name in CONFORMANCE_SECTIONS} == CONFORMANCE_SECTIONS


@pytest.mark.parametrize(
    ("section", "index"),
    [(s, i) for s in ("hashtags", "hashtags_from_astral") for i in range(CONFORMANCE_SECTIONS[s])],
    ids=lambda v: str(v),
)
def test_extract_hashtags_conformance(extract_cases, section, index):
    case = extract_cases[section][index]
    got = extract_hashtags(case["text"])
    assert got == case["expected"], f"{case['description']}: {case['text']!r}"


@pytest.mark.parametrize("index", range(CONFORMANCE_SECTIONS["hashtags_with_indices"]))
def test_extract_hashtags_with_indices_conformance(extract_cases, index):
    case = extract_cases["hashtags_with_indices"][index]
    got = extract_hashtags_with_indices(case["text"])
    assert got == case["expected"], f"{case['description']}: {case['text']!r}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("##tag", []),  # a sign right after another sign does not start a tag
        ("＃＃tag #ok", ["ok"]),
        ("AT&T #ok &#39;", ["ok"]),
        ("see https://example.com/page#section and #real", ["real"]),
        ("", []),
        ("#quoi #aton #ÉtatsUnis", ["quoi", "aton", "ÉtatsUnis"]),
    ],
)
def test_extract_hashtags_edges(text, expected):
    assert extract_hashtags(text) == expected


# ---------------------------------------------------------------------------
# The golden seed
# ---------------------------------------------------------------------------


def _seed_hashtag_tokens(seed_bytes: bytes) -> list[str]:
    lines = seed_bytes.decode("utf-8").splitlines()
    tag_lines = [ln for ln in lines if ln.startswith("#")]
    assert len(tag_lines) == 1
    return tag_lines[0].split()


def test_seed_hashtags_fr(seed_bytes):
    tokens = _seed_hashtag_tokens(seed_bytes)
    assert len(tokens) == 11
    decisions = explain_hashtags(tokens, "fr")
    assert [d.raw for d in decisions] == tokens
    assert [d.tag for d in decisions if d.kept] == [
        "aton",
        "discuté",
        "reprise",
        "dialogues",
        "venezuela",
        "étatsunis",
    ]
    assert {d.raw: d.rule for d in decisions if not d.kept} == {
        "#quoi": DropRule.STOPWORD,
        "#lors": DropRule.STOPWORD,
        "#des": DropRule.STOPWORD,
        "#entre": DropRule.STOPWORD,
        "#les": DropRule.STOPWORD,
    }
    assert normalize_hashtags(tokens, "fr") == [d.tag for d in decisions if d.kept]


def test_seed_decision_rests_on_the_french_list():
    # 'quoi', 'lors' and 'entre' are dropped because stopwords-iso's French list has them.
    fr = stopwordsiso.stopwords("fr")
    assert {"quoi", "lors", "entre", "des", "les"} <= fr
    assert not {"aton", "discuté", "reprise", "dialogues", "venezuela"} & fr


def test_seed_without_stopword_rule_keeps_everything(seed_bytes):
    tokens = _seed_hashtag_tokens(seed_bytes)
    assert normalize_hashtags(tokens, "fr", drop_stopwords=False) == [
        "quoi", "aton", "discuté", "lors", "reprise", "des", "dialogues", "entre", "venezuela", "les",
        "étatsunis",
    ]  # fmt: skip


# ---------------------------------------------------------------------------
# One tag
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("＃ｈａｓｈｔａｇ１２３", "hashtag123"),  # NFKC: fullwidth sign, letters and digits
        ("#ﬁnance", "finance"),  # NFKC: ligature
        ("#Venezuela", "venezuela"),
        ("#ÉtatsUnis", "étatsunis"),  # accents kept by default
        ("#Straße", "strasse"),  # full case folding: ß -> ss
        ("#ΣΟΦΙΑ", "σοφια"),  # final sigma folds to σ
        ("(#tag)!", "tag"),  # surrounding punctuation stripped
        ("#«guerre»", "guerre"),
        ("#_tag_", "tag"),
        ("#tag❤️", "tag"),  # trailing emoji + variation selector stripped
        ("#il·lusió", "il·lusió"),  # inner joiners stay
        ("#a-t-on", "a-t-on"),
        ("#தமிழ்", "தமிழ்"),  # a final virama (a mark) stays with its letter
        ("#2024abc", "2024abc"),
        ("e\u0301te\u0301", "été"),  # decomposed input is composed
    ],
)
def test_normalize_hashtag_forms(raw, expected):
    assert normalize_hashtag(raw) == expected


def test_turkish_dotted_and_dotless_i():
    # Without a Turkic language: 'İ' -> 'i' (no stray combining dot), 'I' -> 'i'.
    assert normalize_hashtag("#İstanbul") == "istanbul"
    assert normalize_hashtag("#ISTANBUL") == "istanbul"
    # Turkish/Azeri casing: 'I' -> 'ı', 'İ' -> 'i'.
    assert normalize_hashtag("#ISTANBUL", "tr") == "ıstanbul"
    assert normalize_hashtag("#İSTANBUL", "tr") == "istanbul"
    assert normalize_hashtag("#IŞIK", "az") == "ışık"
    # The dotless ı is a letter of its own and stays.
    assert normalize_hashtag("#ın", "en") == "ın"


def test_accents_kept_or_folded():
    assert normalize_hashtag("#Élections") == "élections"
    assert normalize_hashtag("#Élections", fold_accents=True) == "elections"
    assert normalize_hashtag("#Čeština", fold_accents=True) == "cestina"
    assert normalize_hashtag("#Ἀθῆναι", fold_accents=True) == "αθηναι"
    assert normalize_hashtag("#йогурт", fold_accents=True) == "иогурт"
    # Marks of other scripts are spelling, not accents: they stay.
    assert normalize_hashtag("#महात्मा", fold_accents=True) == "महात्मा"
    assert normalize_hashtag("#ผู้เริ่ม", fold_accents=True) == "ผู้เริ่ม"


@pytest.mark.parametrize("raw", ["#2024", "#０７", "#٤٠٦", "#1_2", "#12·5"])
def test_digits_only_dropped(raw):
    assert explain_hashtags([raw])[0].rule is DropRule.NUMERIC
    assert normalize_hashtag(raw) is None
    assert normalize_hashtag(raw, drop_numeric=False) is not None


@pytest.mark.parametrize("raw", ["#", "＃", "#!!", "#_", "#❤️", "#〃", "##"])
def test_nothing_left_is_empty(raw):
    assert explain_hashtags([raw])[0].rule is DropRule.EMPTY
    assert normalize_hashtag(raw, drop_numeric=False) is None


def test_length_rules():
    assert explain_hashtags(["#ab"], min_length=3)[0].rule is DropRule.TOO_SHORT
    assert normalize_hashtag("#abc", min_length=3) == "abc"
    assert normalize_hashtag("#漢") == "漢"  # default min_length keeps one-character words
    assert explain_hashtags(["#" + "a" * 140])[0].rule is DropRule.TOO_LONG
    assert normalize_hashtag("#" + "a" * 139) == "a" * 139
    long_tag = "#" + "b" * 300  # long tags skip the decision cache: same rules
    assert explain_hashtags([long_tag])[0].rule is DropRule.TOO_LONG
    assert normalize_hashtag(long_tag, max_length=1000) == "b" * 300


def test_repeats_removed_keeping_first_order():
    tags = ["#Paris", "#JO2024", "#paris", "#PARIS", "#ｐａｒｉｓ", "#jo2024", "#Seine"]
    assert normalize_hashtags(tags, "fr") == ["paris", "jo2024", "seine"]
    rules = [d.rule for d in explain_hashtags(tags, "fr")]
    assert rules == [None, None, DropRule.DUPLICATE, DropRule.DUPLICATE, DropRule.DUPLICATE,
                     DropRule.DUPLICATE, None]  # fmt: skip


def test_fold_accents_merges_repeats():
    assert normalize_hashtags(["#Élection", "#election"], fold_accents=True) == ["election"]
    assert normalize_hashtags(["#Élection", "#election"]) == ["élection", "election"]


@pytest.mark.parametrize(
    ("lang", "tag", "is_stopword"),
    [
        ("fr", "#Les", True),
        ("en", "#The", True),
        ("de", "#Und", True),
        ("es", "#Los", True),
        ("en", "#Les", False),  # French stop word, English document
        ("fr", "#The", False),
        ("fr-CA", "#les", True),  # region subtags are ignored
        ("FR", "#les", True),
        ("tr", "#İÇİN", True),  # Turkish casing makes the capitalized stop word match
    ],
)
def test_stopwords_by_language(lang, tag, is_stopword):
    rule = explain_hashtags([tag], lang)[0].rule
    assert (rule is DropRule.STOPWORD) == is_stopword


@pytest.mark.parametrize("lang", [None, "", "und", "xx", "arz"])
def test_no_stopword_rule_without_a_list(lang):
    assert stopwords_for(lang) == frozenset()
    assert normalize_hashtags(["#les", "#the", "#und"], lang) == ["les", "the", "und"]


def test_stopword_rule_can_be_switched_off():
    assert normalize_hashtag("#les", "fr", drop_stopwords=False) == "les"


def test_stopwords_folded_with_the_tags():
    # 'été' is a French stop word (a form of 'être'); folded tags are compared with folded words.
    assert "été" in stopwords_for("fr")
    assert "ete" in stopwords_for("fr", fold_accents=True)
    assert normalize_hashtag("#Été", "fr", fold_accents=True) is None


def test_stopword_lists_are_cached():
    first = stopwords_for("fr")
    assert stopwords_for("fr") is first
    assert stopwords_for("fr-BE") is first
    assert stopword_lang("pt_BR") == "pt"
    assert stopword_lang("und") is None


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

_LANGS = st.sampled_from([None, "und", "fr", "en", "de", "tr", "az", "ar", "ru", "el", "zh", "hi"])
_TAGS = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.characters(categories=["L", "M", "Nd", "Pc", "Po", "Sk", "So"]), max_size=20).map(
        lambda s: "#" + s
    ),
    st.sampled_from(["İ", "I", "ß", "ﬁ", "ǰ", "ΐ", "㈱", "＃", "ς", "e\u0301", "\u0307", "ẞ", "K"]).flatmap(
        lambda c: st.lists(st.sampled_from([c, "a", "#", "1", "-", "\u0301"]), max_size=8).map("".join)
    ),
)


@pytest.mark.parametrize("lang", [None, "tr"])
@pytest.mark.parametrize("fold", [False, True])
@pytest.mark.parametrize("ch", ["ǰ", "ΐ", "ẞ", "ß", "İ", "\u0345", "ﬁ", "㈱", "Å", "K", "ǅ", "ᾼ", "ﾊﾟ", "ŉ", "ﬀ"])
def test_tricky_characters_are_stable_and_composed(ch, fold, lang):
    # Casefolding some of these yields decomposed or compatibility text; the result must be NFC and stable.
    out = normalize_hashtag("#X" + ch + "y", lang, fold_accents=fold)
    assert out is not None
    assert out == unicodedata.normalize("NFC", out)
    assert normalize_hashtag(out, lang, fold_accents=fold) == out


@settings(max_examples=400, deadline=None)
@given(tag=_TAGS, lang=_LANGS, fold=st.booleans())
def test_normalize_never_raises_and_is_idempotent(tag, lang, fold):
    out = normalize_hashtag(tag, lang, fold_accents=fold)
    assert out is None or out != ""
    if out is not None:
        assert normalize_hashtag(out, lang, fold_accents=fold) == out
        assert out == unicodedata.normalize("NFC", out)
        assert not out.startswith(("#", "＃"))


@settings(max_examples=200, deadline=None)
@given(tags=st.lists(_TAGS, max_size=8), lang=_LANGS)
def test_list_has_no_repeats_and_keeps_order(tags, lang):
    out = normalize_hashtags(tags, lang)
    assert len(out) == len(set(out))
    singles = [normalize_hashtag(t, lang) for t in tags]
    assert out == list(dict.fromkeys(s for s in singles if s is not None))


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=60))
def test_extract_never_raises_and_returns_text_slices(text):
    for item in extract_hashtags_with_indices(text):
        start, end = item["indices"]
        assert text[start] in "#＃"
        assert text[start + 1 : end] == item["hashtag"] != ""
