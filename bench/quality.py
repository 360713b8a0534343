"""Measure the shipped policy on the held-out corpus (tests/data/quality/).

Each corpus message is built into a real MIME message (the same builder as the
rule examples), parsed by the real parser and evaluated by the real engine. A
violation counts as stopped when the message is rejected or quarantined under
its profile; a compliant message counts as a false positive when it is.

    python bench/quality.py            # summary table, written into docs/quality.md
    python bench/quality.py --misses   # also list every miss and false positive
    python bench/quality.py --lang de  # one language
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.config import ParserConfig  # noqa: E402
from gateway.mime.parse import parse_message  # noqa: E402
from gateway.model import Action  # noqa: E402
from gateway.policy.engine import CompiledPolicy  # noqa: E402
from gateway.policy.examples import evaluate_example  # noqa: E402
from gateway.policy.loader import load_specs, parse_yaml  # noqa: E402
from gateway.policy.spec import LANGUAGES, MessageExample  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "quality"
DOC = ROOT / "docs" / "quality.md"
BEGIN, END = "<!-- quality:begin -->", "<!-- quality:end -->"


def load_corpus(language: str | None) -> list[dict[str, str]]:
    messages = []
    for path in sorted(CORPUS.glob("*.yaml")):
        if language and path.stem != language:
            continue
        for item in parse_yaml(path.read_bytes()):
            item["lang"] = path.stem
            messages.append(item)
    return messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lang")
    parser.add_argument("--misses", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--policies", type=Path, default=ROOT / "policies", help="policy directory to measure")
    args = parser.parse_args()
    policy = CompiledPolicy(load_specs(args.policies))
    limits = ParserConfig(pool_workers=0)

    stats: dict[str, Counter[str]] = defaultdict(Counter)
    by_category: dict[str, Counter[str]] = defaultdict(Counter)
    misses: list[str] = []
    for item in load_corpus(args.lang):
        example = MessageExample(
            body=item["body"],
            subject=item.get("subject"),
            quote=item.get("quote"),
            kind=item.get("kind", "reply"),
            profile=item.get("profile", "amazon"),
        )
        _, verdict = evaluate_example(policy, lambda raw: parse_message(raw, limits), example)
        stopped = verdict.action is not Action.PASS
        lang, expect = item["lang"], item["expect"]
        if expect == "pass":
            stats[lang]["ham"] += 1
            stats[lang]["fp"] += stopped
            if stopped:
                rules = "; ".join(f"{f.rule}: {f.evidence}" for f in verdict.acting_findings)
                misses.append(f"FP   {item['id']} [{item.get('profile')}] {rules}")
        else:
            stats[lang]["spam"] += 1
            stats[lang]["caught"] += stopped
            by_category[expect]["spam"] += 1
            by_category[expect]["caught"] += stopped
            if not stopped:
                misses.append(f"MISS {item['id']} {expect} [{item.get('profile')}] {item.get('note', '')}")

    rows = ["| language | violations stopped | compliant stopped |", "|---|---|---|"]
    total: Counter[str] = Counter()
    for lang in [lang for lang in LANGUAGES if lang in stats]:
        s = stats[lang]
        total.update(s)
        rows.append(
            f"| {lang} | {s['caught']}/{s['spam']} ({100 * s['caught'] / max(s['spam'], 1):.1f}%) "
            f"| {s['fp']}/{s['ham']} ({100 * s['fp'] / max(s['ham'], 1):.1f}%) |"
        )
    rows.append(
        f"| **all** | {total['caught']}/{total['spam']} ({100 * total['caught'] / max(total['spam'], 1):.1f}%) "
        f"| {total['fp']}/{total['ham']} ({100 * total['fp'] / max(total['ham'], 1):.1f}%) |"
    )
    rows += ["", "| category | violations stopped |", "|---|---|"]
    for category, s in sorted(by_category.items()):
        rows.append(f"| {category} | {s['caught']}/{s['spam']} ({100 * s['caught'] / max(s['spam'], 1):.1f}%) |")
    table = "\n".join(rows)
    print(table)
    if args.misses:
        print("\n".join(misses))
    if not args.no_write and not args.lang and args.policies == ROOT / "policies":
        write_doc(table)


def write_doc(table: str) -> None:
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    block = f"{BEGIN}\n{table}\n{END}"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = text + ("\n" if text else "") + block + "\n"
    DOC.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
