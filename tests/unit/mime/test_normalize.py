"""The matching normaliser: what it folds, and that offsets always map back inside the original."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.mime.normalize import _fold_chars, _fold_slow, normalize


def test_case_diacritics_and_special_letters() -> None:
    """Case, Latin diacritics and letters without decomposition fold to plain forms."""
    assert normalize("Bitte LÖSCHEN Sie Ihre Bewertung").text == "bitte loschen sie ihre bewertung"
    assert normalize("usunąć opinię, Łódź").text == "usunac opinie, lodz"
    assert normalize("Straße").text == "strasse"
    assert normalize("İade ışık").text == "iade isik"


def test_cyrillic_letters_that_make_other_letters_are_kept() -> None:
    """й, ї and ў stay whole; ё folds to е as Russian writers do."""
    assert normalize("Мой йогурт ёлка ў ї").text == "мой йогурт елка ў ї"


def test_invisible_characters_are_removed() -> None:
    """Zero-width spaces, joiners, soft hyphens and bidi marks vanish."""
    assert normalize("re\u200bv\u200di\u00adew\u202e").text == "review"


def test_homoglyphs_fold_into_the_word_s_script() -> None:
    """A Cyrillic letter inside a Latin word and a Latin letter inside a Cyrillic word are folded."""
    assert normalize("Please remove your rеview").text == "please remove your review"
    assert normalize("Удалите oтзыв").text == "удалите отзыв"
    assert normalize("KАUFEN").text == "kaufen"


def test_compatibility_forms_fold() -> None:
    """Fullwidth and mathematical letters, ligatures and circled digits fold by NFKC."""
    assert normalize("ｒｅｖｉｅｗ 𝐫𝐞𝐯𝐢𝐞𝐰 ﬁle ①").text == "review review file 1"


def test_letter_spacing_is_joined() -> None:
    """Four or more single letters with separators join into a word; three do not."""
    assert normalize("r e v i e w and d.e.l.e.t.e").text == "review and delete"
    assert normalize("a b c").text == "a b c"


def test_evidence_maps_back_to_the_original() -> None:
    """A folded span quotes the original text, expansions and deletions included."""
    original = "Grüße! Bitte l ö s c h e n Sie die Bewer\u200btung."
    norm = normalize(original)
    start = norm.text.index("loschen")
    assert norm.original_text(start, start + len("loschen")) == "l ö s c h e n"
    start = norm.text.index("bewertung")
    assert norm.original_text(start, start + len("bewertung")) == "Bewer\u200btung"
    start = norm.text.index("grusse")
    assert norm.original_text(start, start + len("grusse")) == "Grüße"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_offsets_stay_inside_the_original(text: str) -> None:
    """Any folded offset maps to an original offset inside the text, in order."""
    norm = normalize(text)
    previous = 0
    for offset in range(len(norm.text) + 1):
        mapped = norm.to_original(offset)
        assert 0 <= mapped <= len(text)
        assert mapped >= previous
        previous = mapped
    for offset in range(len(text) + 1):
        assert 0 <= norm.from_original(offset) <= len(norm.text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=120))
def test_fast_path_agrees_with_the_reference(text: str) -> None:
    """The whole-string fast path folds exactly like the per-character reference."""
    assert _fold_chars(text).text == _fold_slow(text).text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abcdeẞßİı\u200b\u00ad́ ﬁ…ЁёйРр ", max_size=60))
def test_each_folded_character_maps_to_a_source_character(text: str) -> None:
    """Every folded character comes from the original character its offset names."""
    norm = normalize(text)
    for offset, char in enumerate(norm.text):
        start, end = norm.span(offset, offset + 1)
        assert end > start or not text
        source = text[start:end]
        assert source, (text, offset, char)
