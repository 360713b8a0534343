"""E-mail addresses, phone numbers and messenger handles in text.

Addresses are validated with email-validator (syntax only, no DNS). Obfuscated
addresses ("info (at) shop (dot) de", "info [at] shop.de", "info @ shop.de",
"info at shop dot de") count when unambiguous: a bracketed or spaced ``at``
with a real TLD, or the words ``at`` *and* ``dot`` together ("look at shop.de"
is no address). Phone numbers are parsed with ``phonenumbers`` for the
supported locales; dates, prices, order ids, tracking numbers and postcodes
are kept out. Messenger handles come from links (``wa.me``, ``t.me``,
``viber://``, ``signal.me``) and from a messenger's name followed by a handle
or number ("WhatsApp: +49 151 ...", "Telegram @shop").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from gateway.mime.links import _BRACKETED_DOT, _LABEL, decode_host, is_tld
from gateway.mime.types import ContactKind

# Regions tried, in order, for numbers written without a country code: the
# supported markets (POLICY.md languages). The first region where the number is
# valid wins.
REGIONS = ("DE", "AT", "CH", "GB", "FR", "BE", "IT", "ES", "PL", "NL", "SE", "PT", "BR", "TR", "RU", "UA", "BY", "US")
# Next to Cyrillic text a national number is far more likely Russian, Ukrainian or Belarusian.
CYRILLIC_REGIONS = ("RU", "UA", "BY", *REGIONS[:-4], "US")

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,24}(?![\w-])")
_AT_BRACKETED = r"\s*[\[\(\{<]\s*(?:at|@|ät|a|malpa|małpa|собака|sobaka|klammeraffe)\s*[\]\)\}>]\s*"
_AT_SPACED = r"\s+@\s*|\s*@\s+"
# "at" written as a word, in the supported languages' own names for "@" ("apoio arroba
# loja ponto pt", "zakaz собака shop точка lv", "kundtjanst snabel-a shop punkt se").
_AT_WORD = (
    r"\s+(?:at|arroba|arobase|chiocciola|snabel-?a|malpa|małpa|apenstaartje|aapje|klammeraffe"
    r"|et\s+isareti|et\s+işareti|собака|собачка|равлик|сабачка)\s+"
)
# "dot" as a word in the supported languages, inside an address only ("apoio arroba
# loja ponto pt"); as a link it would turn "un punto de recogida" into un.de.
_WORD_DOT_ANY = r"\s+(?:dot|punkt|point|punto|ponto|punt|nokta|kropka|точка|кропка|кропку)\s+"
_DOMAIN_SEP = rf"(?:{_BRACKETED_DOT}|{_WORD_DOT_ANY}|\.)"
_OBF_EMAIL = re.compile(
    rf"(?<![\w.+-])([\w.+-]{{1,64}})({_AT_BRACKETED}|{_AT_SPACED}|{_AT_WORD})((?:{_LABEL}{_DOMAIN_SEP}){{1,4}}{_LABEL})(?![\w@])",
    re.I,
)
_PHONE = re.compile(r"(?<![\w+.,/-])(?:\+|00)?\(?\d[\d \t().\-/]{5,22}\d(?![\w.,]\d|\w)")
# A calendar date anywhere in a candidate ("01.02.2024", "9/24/2002 11", "2024-05-01 10"): not a phone.
_DATE = re.compile(
    r"(?<!\d)(?:(?:0?[1-9]|[12]\d|3[01])[./-](?:0?[1-9]|[12]\d|3[01])[./-](?:19|20)?\d{2}"
    r"|(?:19|20)\d{2}[./-](?:0?[1-9]|1[0-2])[./-](?:0?[1-9]|[12]\d|3[01]))(?!\d)"
)
# Other number shapes that are no phone: an IPv4 address, a decimal number among
# spaced numbers ("0.18 0.23", "43.5368"), a US ZIP+4 code, several one-digit groups
# ("1655 150 0 0": a table row).
_NUMBERS = re.compile(
    r"^\d{1,3}(?:\.\d{1,3}){3}$|(?:^|\s)\d+\.\d+(?:\s|$)|\.\d{5,}|^\d{5}-\d{4}$|(?:^|\s)\d(?:\s+\d(?:\s|$)){1,}"
)
_PRICE = re.compile(r"^\d{1,3}(?:[., ]\d{3})*[.,]\d{2}$")
_CURRENCY = re.compile(r"(?:[€$£¥₽₴₺]|eur|usd|gbp|pln|zł|zl|sek|chf|rub|uah|try|brl|kr)\s*$", re.I)
_CURRENCY_AFTER = re.compile(r"^\s*(?:[€$£¥₽₴₺]|eur|usd|gbp|pln|zł|sek|chf|rub|uah|brl|kr)", re.I)
_NOT_PHONE_LABEL = re.compile(
    r"(?:tracking|track|sendung|paket|przesyłk|list przewozowy|suivi|colis|spedizione|seguimiento|envío|zending"
    r"|kolli|rastreio|kargo|трек|отслеж|посилк|iban|konto|account|rechnung|invoice|faktur|factur|order|bestell"
    r"|zamówieni|commande|ordine|pedido|sipariş|заказ|замовлен|artikel|item|sku|asin|ean|plz|postcode|zip)"
    r"[^\n\d]{0,25}$",
    re.I,
)
_PHONE_LABEL = re.compile(
    r"(?:tel|phone|call|ruf|telefon|téléphone|telefono|teléfono|numer|nummer|número|номер|телефон|тэлефон|mobil"
    r"|handy|cell|whats\s?app|viber|signal|sms|hotline)[^\n\d]{0,20}$",
    re.I,
)
_MESSENGER_LINK = re.compile(
    r"(?:https?://)?(?:wa\.me/|api\.whatsapp\.com/send/?\?phone=|whatsapp://send\?phone=)(\+?\d{6,15})"
    r"|(?:https?://)?chat\.whatsapp\.com/([A-Za-z0-9]{6,40})"
    r"|(?:https?://)?(?:t|telegram)\.(?:me|dog)/(?:joinchat/|\+)?([A-Za-z0-9_]{3,40})"
    r"|tg://resolve\?domain=([A-Za-z0-9_]{3,40})"
    r"|viber://(?:chat|add|contact)\?number=(?:%2B|\+)?(\d{6,15})"
    r"|(?:https?://)?signal\.me/#p/(\+?\d{6,15})"
    r"|weixin://dl/chat\?([A-Za-z0-9_-]{3,40})",
    re.I,
)
# Substrings every messenger link contains: a cheap test before the big pattern.
_LINK_HINTS = ("wa.me", "whatsapp", "t.me/", "telegram.", "tg://", "viber://", "signal.me", "weixin://")
_MESSENGER_NAME = re.compile(
    r"(whats\s?app|telegram|viber|signal|wechat|weixin|微信|вотсап|ватсап|телеграм|вайбер)", re.I
)
_HANDLE_AFTER = re.compile(r"^[\s:\-–—=(]{0,4}(?:id|ID)?[\s:]{0,3}@?([A-Za-z][A-Za-z0-9_.]{2,31})")
_SERVICE = {
    "whatsapp": "whatsapp",
    "whats app": "whatsapp",
    "вотсап": "whatsapp",
    "ватсап": "whatsapp",
    "telegram": "telegram",
    "телеграм": "telegram",
    "viber": "viber",
    "вайбер": "viber",
    "signal": "signal",
    "wechat": "wechat",
    "weixin": "wechat",
    "微信": "wechat",
}


@dataclass(frozen=True, slots=True)
class FoundContact:
    """A contact detail with its offsets."""

    kind: ContactKind
    value: str
    start: int
    end: int
    obfuscated: bool = False


def valid_address(address: str) -> str | None:
    """The normalised (lowercase) address when syntactically valid, else ``None``."""
    try:
        result = validate_email(address, check_deliverability=False)
    except (EmailNotValidError, ValueError, UnicodeError):
        return None
    return str(result.normalized).lower()


def find_emails(text: str) -> list[FoundContact]:
    """Plain and obfuscated e-mail addresses in ``text``."""
    found: list[FoundContact] = []
    for match in _EMAIL.finditer(text):
        value = valid_address(match.group(0))
        if value and is_tld(value.rsplit(".", 1)[1]):
            found.append(FoundContact(ContactKind.EMAIL, value, match.start(), match.end()))
    for match in _OBF_EMAIL.finditer(text):
        if any(f.start <= match.start() < f.end for f in found):
            continue
        local, at_form, domain_written = match.group(1), match.group(2), match.group(3)
        word_at = re.fullmatch(_AT_WORD, at_form, re.I) is not None
        word_dot = re.search(_WORD_DOT_ANY, domain_written, re.I) is not None
        if word_at and not word_dot:
            continue  # "look at shop.de" is prose, "info at shop dot de" is an address
        if not word_at and not re.search(r"@|\w", at_form):
            continue
        labels = re.split(_DOMAIN_SEP, domain_written, flags=re.I)
        domain = decode_host(".".join(labels))
        value = valid_address(f"{local}@{domain}")
        if value is None or not is_tld(domain.rsplit(".", 1)[1]):
            continue
        if word_at and local.lower() in ("look", "us", "me", "it", "them", "home", "work"):
            continue
        found.append(FoundContact(ContactKind.EMAIL, value, match.start(), match.end(), obfuscated=True))
    return found


def parse_phone(candidate: str, labelled: bool, cyrillic: bool) -> str | None:
    """E.164 form of a phone number candidate, or ``None`` when it is not a valid number.

    ``labelled`` means the text says it is a phone (``Tel:``, a ``tel:`` link), which
    lets a bare run of digits count; ``cyrillic`` tries the RU/UA/BY plans first.
    """
    digits = re.sub(r"\D", "", candidate)
    if not 7 <= len(digits) <= 15:
        return None
    international = candidate.startswith(("+", "00"))
    has_separators = bool(re.search(r"[\s().\-/]", candidate.strip()))
    if not international and not labelled:
        if not has_separators and not candidate.startswith("0"):
            return None  # a bare run of digits is an id more often than a phone
        if len(digits) < 9:
            return None
    regions: tuple[str | None, ...] = (None,) if international else (CYRILLIC_REGIONS if cyrillic else REGIONS)
    text = "+" + candidate[2:] if candidate.startswith("00") else candidate
    for region in regions:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return None


def find_phones(text: str, exclude: list[tuple[int, int]]) -> list[FoundContact]:
    """Phone numbers in ``text`` outside the ``exclude`` spans (order ids, links...)."""
    found: list[FoundContact] = []
    for match in _PHONE.finditer(text):
        start, end = match.span()
        candidate = match.group(0).rstrip(" \t-/(")
        end = start + len(candidate)
        if candidate.startswith("(") and ")" not in candidate:
            candidate, start = candidate[1:], start + 1
        if any(start < b and end > a for a, b in exclude):
            continue
        before = text[max(0, start - 40) : start]
        if _DATE.search(candidate) or _PRICE.match(candidate.strip()) or _NUMBERS.search(candidate):
            continue
        if _CURRENCY.search(before) or _CURRENCY_AFTER.match(text[end : end + 5]):
            continue
        if _NOT_PHONE_LABEL.search(before):
            continue
        context = text[max(0, start - 120) : end + 40]
        cyrillic = bool(re.search(r"[\u0400-\u04ff]", context))
        value = parse_phone(candidate, labelled=bool(_PHONE_LABEL.search(before)), cyrillic=cyrillic)
        if value:
            found.append(FoundContact(ContactKind.PHONE, value, start, end))
    return found


def find_messengers(text: str, phones: list[FoundContact]) -> list[FoundContact]:
    """Messenger links and handles, and phone numbers introduced by a messenger's name."""
    found: list[FoundContact] = []
    lowered = text.lower()
    links = _MESSENGER_LINK.finditer(text) if any(k in lowered for k in _LINK_HINTS) else iter(())
    for match in links:
        wa, wa_group, tg, tg2, viber, signal, wechat = match.groups()
        if wa:
            value = "whatsapp:+" + wa.lstrip("+")
        elif wa_group:
            value = "whatsapp:group/" + wa_group
        elif tg or tg2:
            value = "telegram:@" + (tg or tg2 or "").lower()
        elif viber:
            value = "viber:+" + viber
        elif signal:
            value = "signal:+" + signal.lstrip("+")
        else:
            value = "wechat:" + (wechat or "").lower()
        found.append(FoundContact(ContactKind.MESSENGER, value, match.start(), match.end()))
    for match in _MESSENGER_NAME.finditer(text):
        service = _SERVICE.get(re.sub(r"\s+", " ", match.group(1).lower()), "")
        if not service or any(f.start <= match.start() < f.end for f in found):
            continue
        after = text[match.end() : match.end() + 60]
        phone = next((p for p in phones if 0 <= p.start - match.end() <= 25), None)
        if phone is not None:
            found.append(FoundContact(ContactKind.MESSENGER, f"{service}:{phone.value}", match.start(), phone.end))
            continue
        handle = _HANDLE_AFTER.match(after)
        if handle and (service in ("telegram", "wechat") or "@" in after[: handle.start(1)]):
            name = handle.group(1).rstrip(".")
            if name.lower() in _STOP_WORDS:
                continue
            value = f"{service}:@{name.lower()}" if service == "telegram" else f"{service}:{name.lower()}"
            end = match.end() + handle.start(1) + len(name)
            found.append(FoundContact(ContactKind.MESSENGER, value, match.start(), end))
    return found


# Words that follow a messenger's name in prose ("Telegram and", "WeChat is"), never handles.
_STOP_WORDS = frozenset(
    [
        "and",
        "or",
        "the",
        "for",
        "with",
        "und",
        "oder",
        "der",
        "die",
        "das",
        "mit",
        "für",
        "et",
        "ou",
        "le",
        "la",
        "les",
        "pour",
        "avec",
        "e",
        "o",
        "il",
        "per",
        "con",
        "y",
        "en",
        "el",
        "para",
        "i",
        "lub",
        "oraz",
        "dla",
        "ze",
        "en",
        "of",
        "voor",
        "met",
        "och",
        "eller",
        "för",
        "med",
        "ou",
        "para",
        "com",
        "ve",
        "veya",
        "ile",
        "için",
        "и",
        "или",
        "для",
        "с",
        "та",
        "або",
        "не",
        "is",
        "are",
        "ist",
        "sind",
        "est",
        "sont",
        "app",
        "account",
        "group",
        "chat",
        "number",
        "id",
    ]
)


def find_contacts(
    text: str, exclude: list[tuple[int, int]], emails: list[FoundContact] | None = None
) -> list[FoundContact]:
    """Every e-mail address, phone number and messenger contact in ``text``.

    ``exclude`` spans (order ids, URLs) hold no phone numbers; ``emails`` may be
    passed when the caller already found them.
    """
    emails = find_emails(text) if emails is None else emails
    spans = exclude + [(e.start, e.end) for e in emails]
    phones = find_phones(text, spans)
    messengers = find_messengers(text, phones)
    return sorted(emails + phones + messengers, key=lambda c: (c.start, c.kind.value))
