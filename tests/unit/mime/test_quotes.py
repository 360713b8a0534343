"""find_trailing_quote: attribution lines, Outlook blocks and separators in all languages."""

from __future__ import annotations

import pytest

from gateway.mime.quotes import find_trailing_quote

ATTRIBUTIONS = [
    "On Mon, 1 Jan 2024 at 10:00, Buyer <b@x.example> wrote:",
    "Am 01.01.2024 um 10:00 schrieb Käufer <b@x.example>:",
    "Le lun. 1 janv. 2024 à 10:00, Acheteur <b@x.example> a écrit :",
    "Il giorno lun 1 gen 2024 alle ore 10:00 Cliente <b@x.example> ha scritto:",
    "El lun, 1 ene 2024 a las 10:00, Comprador (<b@x.example>) escribió:",
    "W dniu 1.01.2024 o 10:00 Kupujący <b@x.example> napisał(a):",
    "Op ma 1 jan. 2024 om 10:00 schreef Koper <b@x.example>:",
    "Den mån 1 jan. 2024 kl 10:00 skrev Köpare <b@x.example>:",
    "Em seg., 1 de jan. de 2024 às 10:00, Comprador <b@x.example> escreveu:",
    "1 Oca 2024 Pzt, 10:00 tarihinde Alıcı <b@x.example> şunu yazdı:",
    "пн, 1 янв. 2024 г. в 10:00, Покупатель <b@x.example> пишет:",
    "1 січ. 2024 р. о 10:00 Покупець <b@x.example> пише:",
    "1 студз. 2024 г. у 10:00 Пакупнік <b@x.example> напісаў:",
]


@pytest.mark.parametrize("attribution", ATTRIBUTIONS)
def test_attribution_starts_the_quote(attribution: str) -> None:
    """The attribution line in each supported language is part of the trailing quote."""
    text = f"Seller answer.\n\n{attribution}\n> buyer question\n> more\n"
    split = find_trailing_quote(text)
    assert split.start is not None
    assert text[split.start :].startswith(attribution)
    assert text[: split.start].strip() == "Seller answer."


OUTLOOK_BLOCKS = [
    ("From", "Sent", "To", "Subject"),
    ("Von", "Gesendet", "An", "Betreff"),
    ("De", "Envoyé", "À", "Objet"),
    ("Da", "Inviato", "A", "Oggetto"),
    ("De", "Enviado", "Para", "Asunto"),
    ("Od", "Wysłano", "Do", "Temat"),
    ("Van", "Verzonden", "Aan", "Onderwerp"),
    ("Från", "Skickat", "Till", "Ämne"),
    ("De", "Enviada em", "Para", "Assunto"),
    ("Kimden", "Gönderildi", "Kime", "Konu"),
    ("От", "Отправлено", "Кому", "Тема"),
    ("Від", "Надіслано", "Кому", "Тема"),
    ("Ад", "Адпраўлена", "Каму", "Тема"),
]


@pytest.mark.parametrize("labels", OUTLOOK_BLOCKS)
def test_outlook_header_block_quotes_to_the_end(labels: tuple[str, str, str, str]) -> None:
    """Outlook's localised From/Sent/To/Subject block starts a quote running to the end."""
    frm, sent, to, subj = labels
    block = f"{frm}: Buyer <b@x.example>\n{sent}: Monday\n{to}: shop@seller.example\n{subj}: order"
    text = f"Seller answer.\n\n________________________________\n{block}\n\nbuyer text\nmore buyer text\n"
    split = find_trailing_quote(text)
    assert split.start is not None
    assert text[split.start :].lstrip("_\n").startswith(f"{frm}: Buyer")
    assert "buyer text" not in text[: split.start]


@pytest.mark.parametrize(
    "separator", ["-----Original Message-----", "-----Ursprüngliche Nachricht-----", "-----Исходное сообщение-----"]
)
def test_original_message_separator(separator: str) -> None:
    """The '-----Original Message-----' line (localised) starts the quote."""
    text = f"Answer\n{separator}\nFrom: b@x.example\nbuyer words\n"
    split = find_trailing_quote(text)
    assert split.start == len("Answer\n")


def test_non_trailing_quote_is_refused() -> None:
    """A '>' block followed by seller text is not a quote, and the refusal is recorded."""
    split = find_trailing_quote("> buyer\nseller text after it\n")
    assert split.start is None
    assert split.defects == ("quote-not-trailing",)


def test_interleaved_reply_keeps_only_the_last_block() -> None:
    """With answers between quote blocks only the final, trailing block is a quote."""
    text = "> q1\nanswer 1\n> q2\n"
    split = find_trailing_quote(text)
    assert split.start == text.index("> q2")
    assert "quote-not-trailing" in split.defects


def test_html_region_must_be_trailing() -> None:
    """An HTML quote region counts only when nothing but whitespace follows it."""
    text = "mine\nquoted\nmore mine\n"
    assert find_trailing_quote(text, ((5, 12),)).start is None
    assert find_trailing_quote(text, ((5, len(text)),)).start == 5
