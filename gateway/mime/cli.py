"""``gateway parse FILE [--json]``: show what the gateway understood of a message.

For admins asking "why did the gateway see a link there?": every text with
its provenance (hidden, quoted, attachment), links, contacts, order ids,
images, attachments with their true types and flags, defects and what could
not be scanned. Parses inline (no worker pool), with the configured limits
when ``--config`` is given.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from pathlib import Path
from typing import Any

import click

from gateway.config import ConfigError, ParserConfig, load_config
from gateway.mime.parse import parse_message
from gateway.mime.types import ParsedMessage


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums, frozensets and tuples as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, frozenset | set):
        return sorted(to_jsonable(v) for v in value)
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def _short(text: str, width: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def render(parsed: ParsedMessage) -> str:
    """A human report of ``parsed``."""
    lines = [
        f"subject:   {parsed.subject!r}",
        f"from:      {parsed.from_addr or '-'}",
        f"to:        {', '.join(parsed.to_addrs) or '-'}",
        f"reply:     {'yes (' + parsed.reply_evidence + ')' if parsed.is_reply else 'no (proactive)'}",
        f"size:      {parsed.size} bytes, {parsed.part_count} MIME parts",
        "texts:",
    ]
    for index, part in enumerate(parsed.texts):
        where = part.location + (f" [part {part.part}]" if part.part else "")
        lines.append(f"  [{index}] {where}: {len(part.text)} chars  {_short(part.text)!r}")
    sections: list[tuple[str, list[str]]] = [
        ("links", [f"{ln.url}  host={ln.host or '-'}{' (obfuscated)' if ln.obfuscated else ''}"
                   f"{' (href)' if ln.from_href else ''}  in {parsed.located(ln.span) or 'markup'}"
                   for ln in parsed.links]),
        ("contacts", [f"{c.kind.value}: {c.value}  {c.raw!r}{' (obfuscated)' if c.obfuscated else ''}"
                      f"  in {parsed.located(c.span) or 'markup'}" for c in parsed.contacts]),
        ("order ids", [f"{o.marketplace}: {o.value}  in {parsed.located(o.span)}" for o in parsed.order_ids]),
        ("images", [f"{i.src[:100]}  {'remote' if i.remote else 'embedded'}"
                    f"{' pixel' if i.is_pixel else ''}{' hidden' if i.hidden else ''}" for i in parsed.images]),
        ("attachments", [
            f"{a.filename or '(unnamed)'} [part {a.part}] declared={a.declared_type} detected={a.detected_type or '?'}"
            f" {a.size} bytes flags={','.join(sorted(f.value for f in a.flags)) or '-'}"
            f"{' text=' + str(len(parsed.texts[a.text_index].text)) + ' chars' if a.text_index is not None else ''}"
            f"{' entries=' + str(len(a.entries)) if a.entries else ''}"
            f"{' UNSCANNABLE ' + a.unscannable if a.unscannable else ''}" for a in parsed.attachments]),
        ("defects", list(parsed.defects)),
        ("unscannable", [f"{u.reason}: {u.detail} ({u.location})" for u in parsed.unscannable]),
    ]  # fmt: skip
    for title, items in sections:
        if items:
            lines.append(f"{title}:")
            lines.extend(f"  {item}" for item in items)
    return "\n".join(lines)


@click.command("parse")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="Print the ParsedMessage as one JSON object.")
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), help="Use its [parser] limits."
)
def parse_command(path: Path, as_json: bool, config_path: Path | None) -> None:
    """Show what the gateway understands of the message in PATH ("-" for stdin)."""
    limits = ParserConfig()
    if config_path is not None:
        try:
            limits = load_config(config_path).parser
        except ConfigError as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)
    try:
        raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        click.echo(f"{path}: cannot read: {exc.strerror or exc}", err=True)
        sys.exit(2)
    parsed = parse_message(raw, limits.model_copy(update={"pool_workers": 0}))
    if as_json:
        click.echo(json.dumps(to_jsonable(parsed), ensure_ascii=False))
    else:
        click.echo(render(parsed))
