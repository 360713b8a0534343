"""The MAIL/RCPT fast path gives what aiosmtpd's general parser gives, or steps aside."""

from __future__ import annotations

from email._header_value_parser import get_angle_addr
from email.errors import HeaderParseError

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.smtp.server import simple_path

# Characters that matter to the address grammar, plus a few ordinary ones.
ALPHABET = "ab.Z9-_+@<>\"() \t\\:,;[]!#=~{}|`'é"


def general(arg: str) -> tuple[str, str] | None:
    """Aiosmtpd's answer for an argument starting with '<' (None: malformed)."""
    try:
        address, rest = get_angle_addr(arg)
    except HeaderParseError:
        return None
    return address.addr_spec, rest


@given(st.text(alphabet=ALPHABET, max_size=40))
@example("<a@b.c>")
@example("<a@b.c> SIZE=4096 BODY=8BITMIME")
@example("<a@b.c>\t X=1 ")
@example("<a@b.c> (comment) X=1")
@example("<a@b.c>X")
@example("<first.last+tag@mail.seller-shop.example>")
@settings(max_examples=1000)
def test_fast_path_agrees_with_the_general_parser(arg: str) -> None:
    """Whenever the fast path answers, the general parser answers the same."""
    fast = simple_path(arg)
    if fast is not None:
        assert general(arg) == fast


ATOMS = st.text(alphabet="aZ9!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=6)
LABELS = st.text(alphabet="aZ9-", min_size=1, max_size=6)
SEPARATORS = st.sampled_from(["", " ", "  ", "\t", " \t "])
PARAMETERS = st.text(alphabet="SIZE=0123 BODY8ITMX()", max_size=20)


@given(
    st.lists(ATOMS, min_size=1, max_size=3),
    st.lists(LABELS, min_size=1, max_size=4),
    SEPARATORS,
    PARAMETERS,
)
@settings(max_examples=1000)
def test_well_formed_paths_take_the_fast_path_with_the_same_answer(
    local: list[str], domain: list[str], separator: str, parameters: str
) -> None:
    """A dot-atom address with parameters (unless they start with a comment) is fast and identical."""
    arg = f"<{'.'.join(local)}@{'.'.join(domain)}>{separator}{parameters}"
    fast = simple_path(arg)
    if (separator + parameters).lstrip(" \t").startswith("("):
        assert fast is None
    else:
        assert fast is not None
        assert general(arg) == fast


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("<b@marketplace.amazon.de>", ("b@marketplace.amazon.de", "")),
        ("<a@seller.example> SIZE=4096", ("a@seller.example", "SIZE=4096")),
        ("<o'brien+x@seller.example>", ("o'brien+x@seller.example", "")),
    ],
)
def test_common_arguments_take_the_fast_path(arg: str, expected: tuple[str, str]) -> None:
    """What helpdesks send is answered without the general grammar."""
    assert simple_path(arg) == expected


@pytest.mark.parametrize(
    "arg",
    [
        '<"quoted local"@seller.example>',  # quoted local part
        "<a@b.c> (comment) SIZE=1",  # a comment before the parameters
        "<@relay.example:a@b.c>",  # source route
        "<pöstmaster@bücher.example>",  # SMTPUTF8
        "<a@[192.0.2.1]>",  # address literal
        "<a@b..c>",  # malformed: the general parser refuses it
        " <a@b.c>",  # leading space
        "<>",  # null reverse-path
    ],
)
def test_everything_else_is_left_to_aiosmtpd(arg: str) -> None:
    """Unusual forms go to aiosmtpd's parser (which accepts or refuses them)."""
    assert simple_path(arg) is None
