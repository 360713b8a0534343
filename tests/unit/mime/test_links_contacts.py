"""Links, contacts, messengers and order ids found in text, and what must not be found."""

from __future__ import annotations

import pytest

from gateway.mime.contacts import find_contacts
from gateway.mime.links import find_links, parse_url
from gateway.mime.orders import find_orders
from gateway.mime.types import ContactKind


@pytest.mark.parametrize(
    ("text", "host", "obfuscated"),
    [
        ("see https://shop.example/x?y=1.", "shop.example", False),
        ("visit www.shop.com today", "www.shop.com", False),
        ("order at shop.de now", "shop.de", False),
        ("www dot shop dot com", "www.shop.com", True),
        ("go to shop[.]com", "shop.com", True),
        ("shop (dot) de", "shop.de", True),
        ("shop . de", "shop.de", True),
        ("hxxps://evil[.]com/x", "evil.com", True),
        ("http://xn--bcher-kva.de/", "bücher.de", False),
    ],
)
def test_links_found(text: str, host: str, obfuscated: bool) -> None:
    """Plain, bare and obfuscated domains are found with their host and obfuscation mark."""
    links = find_links(text)
    assert [(link.host, link.obfuscated) for link in links] == [(host, obfuscated)]


@pytest.mark.parametrize(
    "text",
    [
        "Thank you.Regards",
        "Thank you. Regards",
        "Danke. de nada",
        "e.g. this, z.B. dies, i.e. that",
        "version v1.2.3 and 3.14",
        "photo.zip and readme.md",
        "gracias. es un placer",
        "the file invoice.pdf",
        "see 60_whitelist.cf",
    ],
)
def test_sentences_are_not_links(text: str) -> None:
    """Ordinary prose and file names do not become links."""
    assert find_links(text) == []


def test_userinfo_and_backslash_do_not_fool_the_host() -> None:
    """The host is what a browser would visit, not what the URL starts with."""
    assert parse_url("https://amazon.de@evil.example/")[2] == "evil.example"
    assert parse_url("https://evil.example\\@amazon.de/")[2] == "evil.example"


@pytest.mark.parametrize(
    ("text", "value", "obfuscated"),
    [
        ("mail info@shop.de", "info@shop.de", False),
        ("info (at) shop (dot) de", "info@shop.de", True),
        ("info [at] shop.de", "info@shop.de", True),
        ("info @ shop.de", "info@shop.de", True),
        ("info at shop dot de", "info@shop.de", True),
    ],
)
def test_email_addresses(text: str, value: str, obfuscated: bool) -> None:
    """Plain and obfuscated addresses are validated and normalised."""
    emails = [c for c in find_contacts(text, []) if c.kind is ContactKind.EMAIL]
    assert [(c.value, c.obfuscated) for c in emails] == [(value, obfuscated)]


def test_at_alone_is_prose() -> None:
    """'look at shop.de' is no address."""
    assert [c for c in find_contacts("please look at shop.de", []) if c.kind is ContactKind.EMAIL] == []


@pytest.mark.parametrize(
    ("text", "e164"),
    [
        ("Tel. +49 30 1234567", "+49301234567"),
        ("call 030 1234567", "+49301234567"),
        ("Звоните 8 (912) 345-67-89", "+79123456789"),
        ("bel +33 1 42 68 53 00", "+33142685300"),
        ("zadzwoń 0048 501 234 567", "+48501234567"),
        ("ring +46 8-123 456 78", "+46812345678"),
    ],
)
def test_phone_numbers(text: str, e164: str) -> None:
    """Phone numbers of the supported locales are found in E.164 form."""
    assert [c.value for c in find_contacts(text, []) if c.kind is ContactKind.PHONE] == [e164]


@pytest.mark.parametrize(
    "text",
    [
        "delivered 01.02.2024 at 10:00",
        "on 2024-05-01 10:00",
        "price 1.234,56 EUR",
        "Sendungsnummer: 1234 5678 9012",
        "tracking 00340434161234567890",
        "10115 Berlin",
        "item 1043946570",
        "sent 9/24/2002 11:00",
        "load 0.18 0.23 0.33",
        "host 10.20.40.142",
        "Austin, TX 75044-6749",
        "row 1655 150 0 0",
    ],
)
def test_not_phone_numbers(text: str) -> None:
    """Dates, prices, tracking numbers, postcodes and ids are not phone numbers."""
    assert [c for c in find_contacts(text, []) if c.kind is ContactKind.PHONE] == []


def test_order_id_is_not_a_phone() -> None:
    """An Amazon order id excluded by its span gives no phone number."""
    text = "order 302-1234567-7654321"
    spans = [(o.start, o.end) for o in find_orders(text)]
    assert [c for c in find_contacts(text, spans) if c.kind is ContactKind.PHONE] == []


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("WhatsApp: +49 151 23456789", "whatsapp:+4915123456789"),
        ("wa.me/4915123456789", "whatsapp:+4915123456789"),
        ("Telegram @myshop", "telegram:@myshop"),
        ("https://t.me/ShopBot", "telegram:@shopbot"),
        ("viber://chat?number=%2B380501234567", "viber:+380501234567"),
        ("вайбер +380 50 123 4567", "viber:+380501234567"),
        ("WeChat ID: shop_cn", "wechat:shop_cn"),
    ],
)
def test_messengers(text: str, value: str) -> None:
    """Messenger links and names followed by a number or handle become messenger contacts."""
    assert value in [c.value for c in find_contacts(text, []) if c.kind is ContactKind.MESSENGER]


def test_messenger_name_in_prose_is_no_handle() -> None:
    """'Telegram and WhatsApp are apps' names no contact."""
    assert find_contacts("Telegram and WhatsApp are apps", []) == []


@pytest.mark.parametrize(
    ("text", "marketplace", "value"),
    [
        ("Order 302-1234567-7654321", "amazon", "302-1234567-7654321"),
        ("digital D01-1234567-1234567", "amazon", "d01-1234567-1234567"),
        ("eBay 12-34567-89012", "ebay", "12-34567-89012"),
        ("Bestelnummer: 1043946570", "bol", "1043946570"),
        ("nr zamówienia: 29f8ac30-1e1b-11ee-a5c7-f9f5f4a6e2e6", "allegro", "29f8ac30-1e1b-11ee-a5c7-f9f5f4a6e2e6"),
    ],
)
def test_order_ids(text: str, marketplace: str, value: str) -> None:
    """Order ids are recognised with their marketplace."""
    assert [(o.marketplace, o.value) for o in find_orders(text)] == [(marketplace, value)]


def test_bare_ten_digits_is_no_order() -> None:
    """A ten-digit number without an order label is not a bol.com order id."""
    assert find_orders("ref 1043946570") == []
