"""Tokens, sentences, leetspeak readings and the lexicon term syntax."""

from __future__ import annotations

import pytest

from gateway.mime.normalize import normalize
from gateway.policy.lexicon import TermError, TermIndex, compile_term
from gateway.policy.tokens import leet_variants, tokenize


def hits(index: TermIndex, text: str) -> dict[str, dict[str, list[tuple[int, int]]]]:
    found, _ = index.find(tokenize(normalize(text)))
    return found


def test_sentences_end_at_punctuation_and_blank_lines_not_at_wrapped_lines() -> None:
    """A hard-wrapped line continues its sentence; a short line (a greeting) ends one."""
    text = "Hi Anna,\nWe are sorry about the\ndelay of your parcel. It ships\n\ntomorrow\n- one\n- two"
    tokens = tokenize(normalize(text))
    by_word = dict(zip(tokens.words, tokens.sentences, strict=True))
    assert by_word["hi"] != by_word["we"]
    assert by_word["we"] == by_word["delay"] == by_word["parcel"]
    assert by_word["it"] != by_word["parcel"]
    assert by_word["tomorrow"] != by_word["ships"]
    assert by_word["one"] != by_word["two"]


def test_a_smiley_or_emoji_ending_a_line_ends_the_sentence() -> None:
    """Chatty sellers end a sentence with a smiley and a line break; mid-line it stays one sentence."""
    text = "Pakujemy bez dopłaty :)\nLiczymy na ocenę. Dzięki ;) do jutra\nWysłane 😊\nспасибо))\nдалее"
    tokens = tokenize(normalize(text))
    by_word = dict(zip(tokens.words, tokens.sentences, strict=True))
    assert by_word["doplaty"] != by_word["liczymy"]
    assert by_word["dzieki"] == by_word["do"] == by_word["jutra"]
    assert by_word["wyslane"] != by_word["спасибо"]
    assert by_word["спасибо"] != by_word["далее"]


def test_tokens_keep_inner_apostrophes() -> None:
    """Inner apostrophes stay in a token; hyphens split."""
    assert tokenize(normalize("don’t e-mail м’ясо")).words == ("don't", "e", "mail", "м'ясо")


def test_leet_readings_only_inside_words() -> None:
    """Digits read as letters only in words with letters; numbers stay numbers."""
    assert "review" in leet_variants("r3v13w")
    assert "delete" in leet_variants("de1ete")
    assert leet_variants("302") == ()
    assert leet_variants("5") == ()
    assert leet_variants("отзыв") == ()


@pytest.mark.parametrize(
    ("term", "text", "expected"),
    [
        ("review", "your review", [(1, 1)]),
        ("review", "your reviews", []),
        ("review*", "your reviews", [(1, 1)]),
        ("*bewertung", "die Produktbewertung", [(1, 1)]),
        ("*bewert*", "Bewertungen", [(0, 0)]),
        ("take .. down", "take the bad review down", [(0, 4)]),
        ("take _ down", "take it down", [(0, 2)]),
        ("take _ down", "take down", []),
        ("gift card", "a gift. Card", []),
        ("re:\\b5\\s*stars?\\b", "give 5 stars", [(1, 2)]),
    ],
)
def test_term_syntax(term: str, text: str, expected: list[tuple[int, int]]) -> None:
    """Each term form matches what docs/policies.md says it matches."""
    index = TermIndex([compile_term("en", "c", term)])
    assert hits(index, text).get("en", {}).get("c", []) == expected


def test_terms_are_normalised_like_text() -> None:
    """A term written with diacritics matches text with or without them."""
    index = TermIndex([compile_term("de", "change", "löschen")])
    assert hits(index, "Bitte LOSCHEN")["de"]["change"] == [(1, 1)]
    assert hits(index, "Bitte löschen")["de"]["change"] == [(1, 1)]


def test_leetspeak_matches_terms() -> None:
    """A leetspeak word matches the term it stands for."""
    index = TermIndex([compile_term("en", "review", "review")])
    assert hits(index, "your r3v13w")["en"]["review"] == [(1, 1)]


def test_symbol_only_regex_hit_lands_on_a_token() -> None:
    """A regex match made of symbols (★★★★★) is placed on the token before it."""
    index = TermIndex([compile_term("*", "stars", "re:[★]{4,}")])
    assert hits(index, "rate us ★★★★★")["*"]["stars"] == [(1, 1)]


@pytest.mark.parametrize("term", ["", "_ down", "take ..", "re:", "re:(unclosed", "!!!"])
def test_bad_terms_are_refused(term: str) -> None:
    """Malformed terms raise TermError with a reason."""
    with pytest.raises(TermError):
        compile_term("en", "c", term)
