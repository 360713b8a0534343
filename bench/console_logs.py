"""How fast the console's log views answer over a large decision log.

Fills a fresh store with ``--decisions`` decisions spread over ``--days`` days
(several accounts, profiles, rules and languages; a fifth of them with two
findings), then times each page through the whole console stack (Starlette
TestClient, signed in, templates, review service, SQL): the median and the
slowest of ``--repeat`` requests.

    python bench/console_logs.py                          # 100k decisions, SQLite in a temp dir
    python bench/console_logs.py --decisions 20000 --repeat 3
    python bench/console_logs.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
      (use an empty database or schema: the decisions are added to it)
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import argon2  # noqa: E402

from gateway.admin.service import ReviewService  # noqa: E402
from gateway.config import SHIPPED_POLICIES, parse_config  # noqa: E402
from gateway.mime.parse import MessageParser  # noqa: E402
from gateway.model import Action, Category, Decision, Envelope, Finding, Verdict  # noqa: E402
from gateway.policy.holder import PolicyHolder, build_policy  # noqa: E402
from gateway.store import open_store  # noqa: E402
from gateway.store.records import AuditEntry, Role  # noqa: E402
from gateway.upstream.pool import UpstreamPool  # noqa: E402
from gateway.web.app import create_app  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

RULES = [
    ("review.removal", Category.REVIEW_REMOVAL, Action.REJECT, "en"),
    ("review.incentive", Category.REVIEW_INCENTIVE, Action.REJECT, "de"),
    ("link.external", Category.LINK_EXTERNAL, Action.QUARANTINE, None),
    ("contact.phone", Category.CONTACT_OFFPLATFORM, Action.REJECT, "it"),
    ("marketing", Category.MARKETING, Action.REJECT, "fr"),
    ("harassment", Category.HARASSMENT, Action.REJECT, "pl"),
]
ACCOUNTS = [f"seller-{n:02d}" for n in range(25)]
PROFILES = ["amazon", "ebay", "allegro", "bol", "walmart", "default"]
PAGES = [
    "/dashboard?period=7",
    "/dashboard?period=30",
    "/dashboard?period=90",
    "/decisions",
    "/decisions?action=reject",
    "/decisions?rule=review",
    "/decisions?language=de&account=seller-03",
    "/decisions?q=order+1234",
    "/decisions?page=100",
    "/audit",
]


def make(n: int, now: datetime, days: int) -> Decision:
    """The n-th synthetic decision (deterministic)."""
    at = now - timedelta(seconds=(n * 86400 * days) // max(1, ARGS.decisions))
    found: tuple[Finding, ...] = ()
    if n % 3:
        rule, category, action, language = RULES[n % len(RULES)]
        found = (Finding(rule, category, action, "synthetic", f"evidence {n}", "text/plain", language),)
        if n % 5 == 0:
            rule, category, action, language = RULES[(n + 1) % len(RULES)]
            found += (Finding(rule, category, action, "synthetic", f"more {n}", "text/html", language),)
    verdict_action = Action.most_severe([f.action for f in found])
    qid = f"B{n:010d}"
    rcpt = (f"buyer{n % 977}@marketplace.amazon.de",)
    return Decision(
        queue_id=qid,
        decided_at=at,
        envelope=Envelope(
            qid, f"support@seller{n % 25}.example", rcpt, "127.0.0.1", "helo", ACCOUNTS[n % 25], True, at
        ),
        verdict=Verdict(verdict_action, PROFILES[n % len(PROFILES)], found),
        subject=f"Your order {n}",
        size=1000 + n % 5000,
        outcome={"pass": "relayed", "quarantine": "quarantined", "reject": "rejected"}[verdict_action.value],
    )


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="console-bench-"))
    url = ARGS.database_url or f"sqlite:///{tmp}/gateway.db"
    config = parse_config(
        {
            "data_dir": str(tmp),
            "store": {"database_url": url},
            "upstreams": {"default": {"host": "127.0.0.1", "port": 9, "tls": "none"}},
            "admin": {"secure_cookies": False, "secret_key": "bench-" + "k" * 40},
        },
        "bench",
        environ={},
    )
    store = open_store(url)
    now = datetime.now(UTC)
    started = time.perf_counter()
    batch: list[Decision] = []
    for n in range(ARGS.decisions):
        batch.append(make(n, now, ARGS.days))
        if len(batch) == 5000:
            store.record_batch(batch, [])
            batch = []
    if batch:
        store.record_batch(batch, [])
    print(f"{ARGS.decisions} decisions over {ARGS.days} days written in {time.perf_counter() - started:.1f}s ({url})")
    for n in range(2000):
        store.write_audit(AuditEntry(f"user{n % 7}", "login", f"user{n % 7}", now - timedelta(minutes=n)))

    holder = PolicyHolder(build_policy(SHIPPED_POLICIES), lambda: build_policy(SHIPPED_POLICIES))
    parser = MessageParser(config.parser)
    service = ReviewService(store, UpstreamPool(config), parser, holder, config)
    app = create_app(config, service, holder)
    store.add_user(
        "bench", argon2.PasswordHasher().hash("bench password 123"), Role.VIEWER, AuditEntry("b", "x", "", now)
    )
    with TestClient(app, base_url="http://console.test", follow_redirects=False) as client:
        form = client.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token is not None
        data = {"name": "bench", "password": "bench password 123", "next": "/", "csrf_token": token.group(1)}
        assert client.post("/login", data=data).status_code == 303
        print(f"{'page':<44} {'median ms':>10} {'max ms':>8}")
        for page in PAGES:
            times = []
            for _ in range(ARGS.repeat):
                begin = time.perf_counter()
                answer = client.get(page)
                times.append((time.perf_counter() - begin) * 1000)
                assert answer.status_code == 200, (page, answer.status_code)
            print(f"{page:<44} {statistics.median(times):>10.1f} {max(times):>8.1f}")
    parser.close()
    store.close()


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--decisions", type=int, default=100_000)
    cli.add_argument("--days", type=int, default=90)
    cli.add_argument("--repeat", type=int, default=5)
    cli.add_argument("--database-url", default="")
    ARGS = cli.parse_args()
    main()
