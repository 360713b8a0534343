"""The `gateway check` contract (POLICY.md): output shapes and exit codes."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

from click.testing import CliRunner

from gateway.cli import main


def eml(tmp_path: Path, name: str, body: str, to: str = "a1b2@marketplace.amazon.de") -> Path:
    message = EmailMessage()
    message["From"] = "support@seller.example"
    message["To"] = to
    message["Subject"] = "Re: your order"
    message["In-Reply-To"] = "<x@y>"
    message.set_content(body)
    path = tmp_path / name
    path.write_bytes(message.as_bytes())
    return path


def test_json_lines_and_exit_one_on_reject(tmp_path: Path) -> None:
    """--json prints one object per file in the documented shape; a reject exits 1."""
    bad = eml(tmp_path, "bad.eml", "Could you please remove your review?")
    good = eml(tmp_path, "good.eml", "Your parcel arrives tomorrow.")
    result = CliRunner().invoke(main, ["check", "--json", str(bad), str(good)])
    assert result.exit_code == 1, result.output
    first, second = (json.loads(line) for line in result.output.splitlines())
    assert first["file"] == str(bad)
    assert (first["action"], first["profile"]) == ("reject", "amazon")
    finding = first["findings"][0]
    assert set(finding) == {"rule", "category", "action", "language", "evidence", "location"}
    assert finding["category"] == "review.removal"
    assert finding["language"] == "en"
    assert "remove your review" in finding["evidence"]
    assert finding["location"] == "text/plain"
    assert (second["action"], second["findings"]) == ("pass", [])


def test_all_pass_exits_zero_with_text_report(tmp_path: Path) -> None:
    """Without --json a short human report; all passing exits 0."""
    good = eml(tmp_path, "good.eml", "Your parcel arrives tomorrow.")
    result = CliRunner().invoke(main, ["check", str(good)])
    assert result.exit_code == 0
    assert "PASS (profile amazon)" in result.output


def test_profile_option_overrides_recipients(tmp_path: Path) -> None:
    """--profile evaluates under the named profile whatever the recipients."""
    message = eml(tmp_path, "m.eml", "About order 302-1234567-1234567.", to="someone@gmail.com")
    default = CliRunner().invoke(main, ["check", "--json", str(message)])
    assert json.loads(default.output)["profile"] == "default"
    forced = CliRunner().invoke(main, ["check", "--json", "--profile", "amazon", str(message)])
    assert json.loads(forced.output)["profile"] == "amazon"


def test_unreadable_file_and_usage_errors_exit_two(tmp_path: Path) -> None:
    """A missing file or an unknown profile exits 2 with a message on stderr."""
    good = eml(tmp_path, "good.eml", "Your parcel arrives tomorrow.")
    runner = CliRunner()
    missing = runner.invoke(main, ["check", str(good), str(tmp_path / "absent.eml")])
    assert missing.exit_code == 2
    assert "absent.eml: cannot read" in missing.stderr
    unknown = runner.invoke(main, ["check", "--profile", "nope", str(good)])
    assert unknown.exit_code == 2
    assert "unknown profile" in unknown.stderr
    nothing = runner.invoke(main, ["check"])
    assert nothing.exit_code == 2
