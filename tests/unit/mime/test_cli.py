"""`gateway parse FILE [--json]`: what an admin sees of a message."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from gateway.cli import main
from tests.unit.mime.helpers import build


def test_parse_human_report(tmp_path: Path) -> None:
    """The human report lists texts with provenance, links, contacts and defects."""
    path = tmp_path / "m.eml"
    path.write_bytes(
        build(
            "Write to info (at) shop (dot) de\n\nOn Mon, Buyer wrote:\n> where is it?\n",
            html='<p>Hi <a href="https://shop.example/x">shop</a></p><p style="display:none">secret</p>',
        )
    )
    result = CliRunner().invoke(main, ["parse", str(path)])
    assert result.exit_code == 0, result.output
    assert "text/plain (quoted)" in result.output
    assert "text/html (hidden)" in result.output
    assert "email: info@shop.de" in result.output
    assert "https://shop.example/x" in result.output
    assert "hidden-text:display-none" in result.output


def test_parse_json(tmp_path: Path) -> None:
    """--json prints one JSON object with the ParsedMessage fields."""
    path = tmp_path / "m.eml"
    path.write_bytes(build("Order 302-1234567-7654321", attachments=(("a.txt", "text/plain", b"hi"),)))
    result = CliRunner().invoke(main, ["parse", "--json", str(path)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["texts"][0]["source"] == "subject"
    assert data["order_ids"][0]["value"] == "302-1234567-7654321"
    assert data["attachments"][0]["detected_type"] == "text/plain"
    assert data["is_reply"] is True


def test_parse_unreadable_file(tmp_path: Path) -> None:
    """A missing file is a usage error (exit 2) with a message on stderr."""
    result = CliRunner().invoke(main, ["parse", str(tmp_path / "missing.eml")])
    assert result.exit_code == 2
    assert "cannot read" in result.output or "does not exist" in result.output
