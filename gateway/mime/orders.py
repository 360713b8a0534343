"""Marketplace order ids in text.

Formats (see ``shared/research/marketplace-rules.md``):

- Amazon: ``123-1234567-1234567``; digital orders ``D01-1234567-1234567``.
- eBay: ``12-12345-12345`` (the order number format eBay introduced in 2019).
- Allegro: checkout-form ids are UUIDs; only counted when labelled as an order
  ("zamówienie", "nr zamówienia", "order") because a bare UUID is anything.
- bol.com: order numbers are ten digits (Retailer API ``orderId``, e.g. ``1043946570``);
  a bare ten-digit number is no order id, so only a labelled one counts
  ("bestelnummer", "ordernummer", "order number", "Bestellnummer", "commande").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

AMAZON = re.compile(r"(?<![\w-])(\d{3}-\d{7}-\d{7})(?![\w-])")
AMAZON_DIGITAL = re.compile(r"(?<![\w-])(D\d{2}-\d{7}-\d{7})(?![\w-])")
EBAY = re.compile(r"(?<![\w-])(\d{2}-\d{5}-\d{5})(?![\w-])")
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_ORDER_LABEL = (
    r"(?:zamówieni[ea]|zamowieni[ea]|nr\.? zamówienia|order(?:\s*(?:id|number|no\.?|nr\.?))?|bestel(?:ling|nummer)"
    r"|ordernummer|bestellnummer|bestellung|commande|numéro de commande)"
)
ALLEGRO = re.compile(rf"{_ORDER_LABEL}[\s:#№.-]{{0,12}}({_UUID})(?![\w-])", re.I)
_UUID_ANYWHERE = re.compile(_UUID, re.I)
_TEN_DIGITS = re.compile(r"(?<!\d)\d{10}(?!\d)")
BOL = re.compile(rf"{_ORDER_LABEL}[\s:#№.-]{{0,12}}(\d{{10}})(?![\w-])", re.I)


@dataclass(frozen=True, slots=True)
class FoundOrder:
    """An order id with its marketplace and offsets."""

    marketplace: str
    value: str
    start: int
    end: int


def find_orders(text: str) -> list[FoundOrder]:
    """Every order id in ``text`` in order of position."""
    found: list[FoundOrder] = []
    patterns = [("amazon", AMAZON), ("amazon", AMAZON_DIGITAL), ("ebay", EBAY)]
    # The labelled forms are costly to scan for; only try them when their ids occur.
    if _UUID_ANYWHERE.search(text):
        patterns.append(("allegro", ALLEGRO))
    if _TEN_DIGITS.search(text):
        patterns.append(("bol", BOL))
    for marketplace, pattern in patterns:
        for match in pattern.finditer(text):
            found.append(FoundOrder(marketplace, match.group(1).lower(), match.start(1), match.end(1)))
    found.sort(key=lambda order: order.start)
    return found
