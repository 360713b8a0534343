"""Charset recovery: declared, missing and wrong labels on the legacy charsets sellers use."""

from __future__ import annotations

import pytest

from gateway.mime.charsets import badness, decode_bytes

SAMPLES = [
    ("Пожалуйста, удалите отзыв", "cp1251"),
    ("Привет мир как дела", "koi8-r"),
    ("Zażółć gęślą jaźń proszę", "cp1250"),
    ("Grüße aus München, schöne Straße", "cp1252"),
    ("Wiadomość od sprzedawcy: dziękujemy", "iso-8859-2"),
]


@pytest.mark.parametrize(("text", "charset"), SAMPLES)
@pytest.mark.parametrize("declared", [None, "iso-8859-1", "utf-8"])
def test_legacy_text_recovered_whatever_the_label(text: str, charset: str, declared: str | None) -> None:
    """Legacy-encoded text decodes correctly with no, a wrong or a mismatched label."""
    decoded = decode_bytes(text.encode(charset), declared)
    assert decoded.text == text
    if declared == "utf-8":
        assert "charset-mismatch" in decoded.defects


def test_utf8_labelled_latin1_is_utf8() -> None:
    """UTF-8 bytes labelled iso-8859-1 are read as UTF-8 (no 'Ã¼' mojibake)."""
    decoded = decode_bytes("Grüße".encode(), "iso-8859-1")
    assert decoded.text == "Grüße"
    assert decoded.charset == "utf-8"
    assert decoded.defects == ("charset-mismatch",)


def test_unknown_charset_recorded() -> None:
    """An unknown label is recorded and the bytes still decoded."""
    decoded = decode_bytes("café".encode(), "x-no-such-charset")
    assert decoded.text == "café"
    assert decoded.defects[0] == "unknown-charset:x-no-such-charset"


def test_badness_scores_mojibake() -> None:
    """Mojibake scores worse than clean text."""
    assert badness("Привет, как дела") == 0
    assert badness("Ïîæàëóéñòà") > 0.5
    assert badness("GrÃ¼ÃŸe") > 0
