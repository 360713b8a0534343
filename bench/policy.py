"""Policy check time per message, and how it grows with languages and rules.

Measures, with every language and profile loaded, on one core:

- ``evaluate`` alone (the policy engine) and ``parse + evaluate`` (what ``gateway
  check`` and the SMTP path do) over the realistic corpus (tests/data/quality,
  1183 helpdesk messages in 13 languages) and over SpamAssassin ham;
- the median ``evaluate`` time with 1, 2, 4, 8 and 13 languages loaded, and with the
  rule set copied 1x, 2x, 4x and 8x, to show cost grows far slower than rules.

Each message is parsed once, then evaluated ``--repeat`` times; a message's time is
the median of its runs. Results go into docs/benchmarks.md (section bench:policy).

    python bench/policy.py            # full run (about a minute)
    python bench/policy.py --quick    # fewer messages, no write
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.config import SHIPPED_POLICIES, ParserConfig  # noqa: E402
from gateway.mime.parse import parse_message  # noqa: E402
from gateway.mime.types import ParsedMessage  # noqa: E402
from gateway.model import Route  # noqa: E402
from gateway.policy.engine import CompiledPolicy  # noqa: E402
from gateway.policy.examples import EXAMPLE_RECIPIENTS, build_message  # noqa: E402
from gateway.policy.loader import PolicySpecs, load_specs, parse_yaml  # noqa: E402
from gateway.policy.spec import LANGUAGES, MessageExample  # noqa: E402
from gateway.state import MemoryState  # noqa: E402

QUALITY = ROOT / "tests" / "data" / "quality"
SPAMASSASSIN = ROOT / "tests" / "data" / "corpora" / "spamassassin" / "package" / "data"
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:policy:begin -->", "<!-- bench:policy:end -->"
LIMITS = ParserConfig(pool_workers=0)


def quality_messages(limit: int | None) -> list[tuple[bytes, str]]:
    """(raw message, profile) for the realistic corpus."""
    out = []
    for path in sorted(QUALITY.glob("*.yaml")):
        for item in parse_yaml(path.read_bytes()):
            example = MessageExample(
                body=item["body"],
                subject=item.get("subject"),
                quote=item.get("quote"),
                kind=item.get("kind", "reply"),
                profile=item.get("profile", "amazon"),
            )
            out.append((build_message(example, "Sun, 22 Nov 2026 10:00:00 +0000"), example.profile or "amazon"))
    return out[:limit] if limit else out


def ham_messages(limit: int | None) -> list[tuple[bytes, str]]:
    """SpamAssassin ham (easy and hard), evaluated under the Amazon profile."""
    files: list[Path] = []
    for group in ("easy-ham-1", "easy-ham-2", "hard-ham-1"):
        folder = SPAMASSASSIN / group
        if folder.is_dir():
            files.extend(sorted(folder.iterdir()))
    raws = []
    for file in files[:limit] if limit else files:
        raw = file.read_bytes()
        if raw.startswith(b"From "):
            raw = raw.split(b"\n", 1)[1]
        raws.append((raw, "amazon"))
    return raws


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``fn`` in microseconds."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        fn()
        runs.append((time.perf_counter_ns() - start) / 1000)
    return statistics.median(runs)


def route_for(policy: CompiledPolicy, profile: str) -> Route:
    recipient = EXAMPLE_RECIPIENTS.get(profile, EXAMPLE_RECIPIENTS["default"])
    route = policy.route([recipient])
    if route.profile != profile:
        route = Route(profile, route.upstream, (recipient,), profile != "default", None)
    return route


def measure(policy: CompiledPolicy, messages: list[tuple[ParsedMessage, str]], repeat: int) -> list[float]:
    state = MemoryState()
    times = []
    for parsed, profile in messages:
        route = route_for(policy, profile)
        policy.evaluate(parsed, route, state)  # warm the memo as a running gateway is
        times.append(timed(lambda p=parsed, r=route: policy.evaluate(p, r, state), repeat))
    return times


def subset(specs: PolicySpecs, languages: Sequence[str], copies: int = 1) -> PolicySpecs:
    """The specs with only some languages, and the rules copied ``copies`` times."""
    lexicons = {k: v for k, v in specs.lexicons.items() if k in languages or k == "*"}
    rules = list(specs.rules)
    for n in range(2, copies + 1):
        rules += [r.model_copy(update={"id": f"{r.id}.copy{n}"}) for r in specs.rules if r.signal is None]
    return PolicySpecs(specs.profiles, tuple(rules), lexicons, specs.digest, specs.sources)


def row(name: str, times: list[float], sizes: list[int] | None = None) -> str:
    size = f" | {statistics.median(sizes) / 1024:.1f} KB" if sizes else " | "
    return f"| {name} | {len(times)}{size} | {statistics.median(times):.0f} µs | {percentile(times, 0.99):.0f} µs |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    limit = 200 if args.quick else None
    gc.disable()
    specs = load_specs(SHIPPED_POLICIES)
    policy = CompiledPolicy(specs)

    lines = ["| corpus | messages, median size | median | p99 |", "|---|---|---|---|"]
    parsed_sets: dict[str, list[tuple[ParsedMessage, str]]] = {}
    for name, raws in (
        ("realistic helpdesk (13 languages)", quality_messages(limit)),
        ("SpamAssassin ham", ham_messages(limit)),
    ):
        if not raws:
            continue
        parse_times = []
        parsed: list[tuple[ParsedMessage, str]] = []
        for raw, profile in raws:
            start = time.perf_counter_ns()
            parsed.append((parse_message(raw, LIMITS), profile))
            parse_times.append((time.perf_counter_ns() - start) / 1000)
        parsed_sets[name] = parsed
        sizes = [len(raw) for raw, _ in raws]
        evaluate = measure(policy, parsed, args.repeat)
        lines.append(row(f"{name}: evaluate", evaluate, sizes))
        lines.append(
            row(f"{name}: parse + evaluate", [p + e for p, e in zip(parse_times, evaluate, strict=True)], sizes)
        )
        typical = [e for e, (raw, _) in zip(evaluate, raws, strict=True) if 1024 <= len(raw) <= 3072]
        if typical:
            lines.append(row(f"{name}: evaluate, 1-3 KB messages", typical))

    realistic = parsed_sets.get("realistic helpdesk (13 languages)", [])
    growth = ["", "| languages loaded | rules | terms | median evaluate |", "|---|---|---|---|"]
    sample = realistic[: 300 if not args.quick else 100]
    for count in (1, 2, 4, 8, 13):
        chosen = [lang for lang in LANGUAGES if lang in specs.lexicons][:count]
        sized = CompiledPolicy(subset(specs, chosen))
        times = measure(sized, sample, args.repeat)
        growth.append(
            f"| {count} ({', '.join(chosen) if count < 13 else 'all'}) | {len(sized.finding_rules)} "
            f"| {len(sized.index.terms) + len(sized.index.regex_terms)} | {statistics.median(times):.0f} µs |"
        )
    growth += ["", "| rule set | rules | median evaluate | time ratio |", "|---|---|---|---|"]
    base = None
    for copies in (1, 2, 4, 8):
        sized = CompiledPolicy(subset(specs, list(LANGUAGES), copies))
        median = statistics.median(measure(sized, sample, args.repeat))
        base = base or median
        growth.append(f"| x{copies} | {len(sized.finding_rules)} | {median:.0f} µs | {median / base:.2f} |")
    gc.enable()
    table = "\n".join(lines + growth)
    print(table)
    if not args.quick:
        write(table)


def write(table: str) -> None:
    header = (
        "Policy check time, one core, every language and profile loaded (`python bench/policy.py`).\n"
        "`evaluate` is the policy engine alone; `parse + evaluate` is what `gateway check` and the SMTP\n"
        "path do per message. Each message's time is the median of 5 runs.\n\n"
    )
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n"
    block = f"{BEGIN}\n## Policy check\n\n{header}{table}\n{END}"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOC.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
