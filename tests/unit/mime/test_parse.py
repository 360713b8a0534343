"""parse_message: texts with provenance, quotes, hidden text, reply detection, defects."""

from __future__ import annotations

import pytest

from gateway.config import ParserConfig
from gateway.mime.parse import parse_message
from gateway.mime.types import ContactKind, ParsedMessage, TextSource
from tests.unit.mime.helpers import build


def _texts(parsed: ParsedMessage, **marks: bool) -> list[str]:
    return [
        t.text
        for t in parsed.texts
        if t.source in (TextSource.PLAIN, TextSource.HTML) and all(getattr(t, k) == v for k, v in marks.items())
    ]


def test_subject_is_always_first_text(limits: ParserConfig) -> None:
    """texts[0] is the subject, even when the message has none."""
    parsed = parse_message(b"From: a@b.example\r\n\r\nhello\r\n", limits)
    assert parsed.texts[0].source is TextSource.SUBJECT
    assert parsed.texts[0].text == ""
    assert parsed.texts[1].text.strip() == "hello"


def test_plain_reply_splits_trailing_quote(limits: ParserConfig) -> None:
    """The seller's text and the buyer's trailing '>' quote become separate texts."""
    raw = build("Thanks, it ships today.\n\nOn Mon, 1 Jan 2024, Buyer <b@x.example> wrote:\n> Where is it?\n")
    parsed = parse_message(raw, limits)
    assert _texts(parsed, quoted=False) == ["Thanks, it ships today.\n\n"]
    quoted = _texts(parsed, quoted=True)
    assert len(quoted) == 1
    assert quoted[0].startswith("On Mon, 1 Jan 2024")
    assert "> Where is it?" in quoted[0]


def test_quote_followed_by_seller_text_is_not_a_quote(limits: ParserConfig) -> None:
    """A quote with seller text after it stays the seller's text and is recorded as refused."""
    raw = build("> please remove your review\nI really mean it.\n")
    parsed = parse_message(raw, limits)
    assert _texts(parsed, quoted=True) == []
    assert "> please remove your review" in _texts(parsed)[0]
    assert "quote-not-trailing" in parsed.defects


def test_quote_in_proactive_message_is_seller_text(limits: ParserConfig) -> None:
    """Without any reply evidence a 'quote' is the seller's own text."""
    raw = build("Hello\n\n> five stars please\n", reply=False, subject="News")
    parsed = parse_message(raw, limits)
    assert not parsed.is_reply
    assert _texts(parsed, quoted=True) == []
    assert "quote-in-non-reply" in parsed.defects


def test_html_visible_hidden_and_quoted(limits: ParserConfig) -> None:
    """HTML yields visible seller text, hidden text and the blockquote as a quote."""
    html = (
        "<p>Hello,</p><p>we sent it.</p>"
        '<div style="display:none">please delete your review</div>'
        '<blockquote type="cite">My parcel is late</blockquote>'
    )
    parsed = parse_message(build(html=html), limits)
    assert _texts(parsed, quoted=False, hidden=False) == ["Hello,\nwe sent it.\n"]
    assert _texts(parsed, hidden=True) == ["please delete your review\n"]
    assert _texts(parsed, quoted=True) == ["My parcel is late\n"]
    assert "html-only" in parsed.defects
    assert "hidden-text:display-none" in parsed.defects


def test_html_anchor_span_points_at_visible_text(limits: ParserConfig) -> None:
    """An href link carries a span onto its visible anchor text."""
    parsed = parse_message(build(html='<p>See <a href="https://shop.example/x">our shop</a>.</p>'), limits)
    link = next(link for link in parsed.links if link.from_href)
    assert link.host == "shop.example"
    assert parsed.quoted_text(link.span) == "our shop"
    assert parsed.located(link.span) == "text/html"


def test_links_contacts_orders_have_spans_inside_texts(limits: ParserConfig) -> None:
    """Every link, contact and order id found in text points back at what was written."""
    raw = build(
        "Order 302-1234567-7654321: write to info (at) shop (dot) de, call +49 30 1234567, see shop[.]com",
        subject="Re: Order 302-1234567-7654321",
    )
    parsed = parse_message(raw, limits)
    assert {o.value for o in parsed.order_ids} == {"302-1234567-7654321"}
    assert parsed.quoted_text(parsed.order_ids[0].span) == "302-1234567-7654321"
    emails = [c for c in parsed.contacts if c.kind is ContactKind.EMAIL]
    assert [(c.value, c.obfuscated) for c in emails] == [("info@shop.de", True)]
    phones = [c for c in parsed.contacts if c.kind is ContactKind.PHONE]
    assert [p.value for p in phones] == ["+49301234567"]
    assert [(link.host, link.obfuscated) for link in parsed.links] == [("shop.com", True)]
    for item in (*parsed.links, *parsed.contacts, *parsed.order_ids):
        text = parsed.texts[item.span.text_index].text
        assert 0 <= item.span.start < item.span.end <= len(text)


@pytest.mark.parametrize(
    ("subject", "headers", "evidence"),
    [
        ("AW: Lieferung", "", "subject:AW"),
        ("Odp: Zamówienie", "", "subject:Odp"),
        ("Ответ: заказ", "", "subject:Ответ"),
        ("YNT: sipariş", "", "subject:YNT"),
        ("Fwd: Re: order", "", ""),
        ("WG: Lieferung", "", ""),
        ("Your order", "In-Reply-To: <a@b>\r\n", "in-reply-to"),
        ("Your order", "References: <a@b> <c@d>\r\n", "references"),
    ],
)
def test_reply_evidence(subject: str, headers: str, evidence: str, limits: ParserConfig) -> None:
    """Threading headers and localised reply prefixes make a reply; forwards do not."""
    raw = f"From: a@b.example\r\nSubject: {subject}\r\n{headers}\r\nbody\r\n".encode()
    parsed = parse_message(raw, limits)
    assert parsed.reply_evidence == evidence
    assert parsed.is_reply is bool(evidence)


def test_rfc2047_subject_and_wrong_charset_recovered(limits: ParserConfig) -> None:
    """An encoded-word subject decodes; a windows-1251 body labelled iso-8859-1 is recovered."""
    body = "Пожалуйста, удалите отзыв".encode("cp1251")
    raw = (
        b"From: a@b.example\r\nSubject: =?utf-8?b?0JfQsNC60LDQtw==?=\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body
    )
    parsed = parse_message(raw, limits)
    assert parsed.subject == "Заказ"
    assert _texts(parsed) == ["Пожалуйста, удалите отзыв"]
    assert "charset-mismatch" in parsed.defects


def test_nested_message_is_walked_with_depth(limits: ParserConfig) -> None:
    """A message/rfc822 part is parsed recursively; its texts carry depth 1."""
    inner = b"From: x@y.example\r\nSubject: inner subject\r\n\r\ninner body text\r\n"
    raw = (
        b"From: a@b.example\r\nSubject: outer\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nouter body\r\n"
        b"--B\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"--B--\r\n"
    )
    parsed = parse_message(raw, limits)
    nested = [t for t in parsed.texts if t.depth == 1]
    assert [t.text.strip() for t in nested] == ["inner subject", "inner body text"]
    assert nested[1].location == "message/rfc822 > text/plain"
    assert any(a.declared_type == "message/rfc822" for a in parsed.attachments)


def test_garbage_never_raises(limits: ParserConfig) -> None:
    """Bytes that are no message still give a ParsedMessage with a subject text."""
    for raw in (b"", b"\x00\xff" * 100, b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n", b":" * 1000):
        parsed = parse_message(raw, limits)
        assert parsed.texts[0].source is TextSource.SUBJECT
        assert parsed.size == len(raw)


def test_parse_headers_gives_the_header_facts_only() -> None:
    """The headers-only parse has the subject, addresses and reply evidence, and no body texts."""
    from gateway.mime.parse import parse_headers

    raw = (
        b"From: Shop <support@shop.example>\r\nTo: abc@marketplace.amazon.de\r\n"
        b"Subject: =?utf-8?q?Re:_Ihre_Bestellung?=\r\nIn-Reply-To: <a@b>\r\n\r\nBody 302-1234567-1234567\r\n"
    )
    parsed = parse_headers(raw)
    assert (parsed.subject, parsed.from_addr, parsed.to_addrs) == (
        "Re: Ihre Bestellung",
        "support@shop.example",
        ("abc@marketplace.amazon.de",),
    )
    assert parsed.is_reply
    assert [t.source.value for t in parsed.texts] == ["subject"]
    assert parsed.order_ids == ()
    assert parse_headers(b"\xff\xfe garbage").subject == ""
