"""Credit decision speed (issue 5 item 9; budget: p99 <= 50 ms with 1,000,000 list entries and
100,000 past applications).

Builds a database of its own (bench.fleet.bench_database): the bench tree (platform -> 2 lenders
-> 10 branches), a product and 50 dealers per lender, the committed scorecard
credit/scorecard/models/german_v1.json as champion and a retrained copy as challenger (scored in
shadow on every application), a published rule set of 30 rules, then with bulk inserts
1,000,000 black / white list entries (ID numbers, phones, devices, VINs, plates, bank cards;
platform-wide and per lender, some expired) and 100,000 past applications over the last 12
months with their fraud-link keys (1.5 % in rings sharing phones, devices, addresses, cards).

Then it submits applications one at a time through the API exactly as a client would:
`POST /api/v1/credit/applications/` with a token, in-process through `django.test.Client`
(middleware, authentication, permissions, serializers, the whole pipeline, the inserts and the
commit; no web server, no network). Every applicant is new; some hit a list entry, some share
a phone / device / address with a ring. Prints the request time percentiles, the pipeline's own
time (`Application.duration_ms`), each step's p99 and the queries per decision.

    .venv/bin/python bench/credit/decision.py                  # SpatiaLite, temp file
    .venv/bin/python bench/credit/decision.py --postgis        # PostgreSQL + PostGIS
    .venv/bin/python bench/credit/decision.py --entries 100000 --past 10000 --decisions 200
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fleet import DEFAULT_POSTGIS_URL, SEED, bench_database, build_fleet, machine  # noqa: E402

BUDGET_P99_MS = 50.0
WARM_UP = 20
MODEL = ROOT / "credit" / "scorecard" / "models" / "german_v1.json"
DATA = ROOT / "credit" / "data" / "german_credit_train.csv"
HUB_PHONE = "13999990000"
STREETS = ("科技路", "高新路", "唐延路", "丈八北路", "锦业路", "太白南路", "电子正街", "长安南路")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def _address(rng: random.Random) -> str:
    return (
        f"陕西省西安市雁塔区{rng.choice(STREETS)}{rng.randint(1, 300)}号"
        f"{rng.randint(1, 30)}号楼{rng.randint(1, 6)}单元{rng.randint(1, 33)}0{rng.randint(1, 4)}"
    )


def _card(rng: random.Random) -> str:
    return "6222" + "".join(rng.choice("0123456789") for _ in range(12))


def setup(rng: random.Random, *, entries: int, past: int) -> dict:
    """Everything the decisions need; returns the user, product, dealers, the attribute rows,
    the ring values and a sample of listed values."""
    from django.contrib.auth.models import Permission
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import Customer
    from carloan import fakes
    from credit.models import Applicant, Application, CreditRule, Dealer, ListEntry, Product
    from credit.pipeline import LINK_CONFIG, stored_link_value
    from credit.scorecard.artefact import with_fingerprint
    from credit.scorecard.data import read_csv
    from credit.services import (
        credit_rule_save,
        dealer_save,
        product_save,
        ruleset_create,
        ruleset_publish,
        scorecard_promote,
        scorecard_register,
    )

    t0 = time.monotonic()
    fleet = build_fleet(vehicles=0, stock_per_vehicle=0, seed=SEED)
    lenders = [Customer.objects.get(pk=pk) for pk in fleet.lender_ids]
    user = fleet.users["lender_admin"]
    user.role.permissions.add(*Permission.objects.filter(content_type__app_label="credit"))
    lender = lenders[0]
    branch = Customer.objects.get(pk=fleet.branch_ids[lender.pk][0])

    product = product_save(
        product=Product(customer=lender, code="NEW", name="新车贷", terms=[12, 24, 36, 48])
    )
    dealers = [
        dealer_save(
            dealer=Dealer(
                customer=lender,
                code=f"D{i:03d}",
                name=f"车行 {i}",
                years_in_business=rng.randint(1, 15),
                registered_capital=rng.choice([600_000, 2_000_000, 8_000_000, 20_000_000]),
                staff=rng.randint(5, 80),
                monthly_sales=rng.randint(5, 150),
            )
        )
        for i in range(50)
    ]
    artefact = json.loads(MODEL.read_text(encoding="utf-8"))
    champion = scorecard_register(artefact=artefact)
    scorecard_promote(model=champion, to="champion")
    shadow = dict(artefact, version="v1-shadow")
    challenger = scorecard_register(artefact=with_fingerprint(shadow))
    scorecard_promote(model=challenger, to="challenger")

    rule_set = ruleset_create(customer=lender, name="bench")
    expressions = [
        ("applicant.age < 18 or applicant.age > 65", "reject", "AGE"),
        ("lists.blacklist", "reject", "BLACKLIST"),
        ("links.group_size >= 5 and links.bad_members > 0", "reject", "FRAUD_RING"),
        ("links.group_size >= 3", "review", "LINKED"),
        ("application.down_payment_ratio < 0.2", "review", "LOW_DOWN"),
        ("coalesce(bureau.overdue_count_24m, 0) > 3", "reject", "OVERDUE"),
        ("coalesce(bureau.queries_3m, 0) >= 8", "review", "QUERIES"),
        ("application.amount > 400000", "review", "BIG"),
        ("dealer.rating in ['D']", "review", "DEALER_D"),
        ("applicant.monthly_income >= 60000", "fast_track", "HIGH_INCOME"),
    ]
    for i in range(30):
        expression, action, reason = expressions[i % len(expressions)]
        if i >= len(expressions):
            expression = f"({expression}) and application.term_months >= {12 + i}"
        credit_rule_save(
            rule=CreditRule(
                rule_set=rule_set,
                code=f"R{i:03d}",
                name=reason,
                expression=expression,
                action=action,
                reason_code=reason,
                priority=10 * i,
            )
        )
    ruleset_publish(rule_set=rule_set)
    setup_s = time.monotonic() - t0

    # Characteristics for the applicants: the training file's rows.
    data = read_csv(DATA)
    rows = [{k: v for k, v in row.items() if v is not None} for row in data.rows]

    now = timezone.now()
    # 150 rings, each with its own two phones, device, address and bank card.
    rings = [
        {
            "phone": [fakes.make_mobile(rng), fakes.make_mobile(rng)],
            "device": [f"ring-device-{i}"],
            "address": [_address(rng)],
            "bank_card": [_card(rng)],
        }
        for i in range(150)
    ]

    # 1,000,000 list entries, written with executemany (bulk rows skip the services; the values
    # are normalised the way list_entry_create stores them).
    t0 = time.monotonic()
    fields = ["id_number", "phone", "device", "vin", "plate", "bank_card"]
    makers = {
        "id_number": lambda: fakes.make_id_number(rng, region=rng.choice(["610113", "110105"])),
        "phone": lambda: fakes.make_mobile(rng),
        "device": lambda: f"dev-{rng.getrandbits(64):016x}",
        "vin": lambda: fakes.make_vin(rng),
        "plate": lambda: fakes.make_plate(rng),
        "bank_card": lambda: _card(rng),
    }
    listed: dict[str, list[str]] = {f: [] for f in fields}
    assert ListEntry._meta.db_table == "credit_listentry"
    sql = (
        "INSERT INTO credit_listentry (customer_id, kind, field, value, source, reason, "
        "expires_at, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
    )
    batch = []
    with transaction.atomic(), connection.cursor() as cursor:
        for i in range(entries):
            field = fields[i % len(fields)]
            value = makers[field]()
            if len(listed[field]) < 2000:
                listed[field].append(value)
            owner = None if i % 3 == 0 else rng.choice(lenders).pk
            kind = "white" if i % 50 == 0 else "black"
            expires = now - dt.timedelta(days=1) if i % 17 == 0 else None
            batch.append((owner, kind, field, value, "bench", "", expires, now))
            if len(batch) == 10_000:
                cursor.executemany(sql, batch)
                batch = []
        if batch:
            cursor.executemany(sql, batch)
    lists_s = time.monotonic() - t0

    # 100,000 past applications over the last year, with their link keys.
    t0 = time.monotonic()
    statuses = ["approved"] * 6 + ["review"] * 2 + ["rejected"] * 2
    branches = [Customer.objects.get(pk=pk) for pk in fleet.branch_ids[lender.pk]]
    made = 0
    hub_left = min(1000, past // 50)
    link_sql = (
        "INSERT INTO credit_linkkey (application_id, lender_id, kind, value, at) "
        "VALUES (%s, %s, %s, %s, %s)"
    )
    with transaction.atomic():
        while made < past:
            n = min(5000, past - made)
            people, apps, values = [], [], []
            for _ in range(n):
                at = now - dt.timedelta(seconds=rng.randrange(365 * 86400))
                ring = rng.choice(rings) if rng.random() < 0.015 else None
                phone = rng.choice(ring["phone"]) if ring else fakes.make_mobile(rng)
                if hub_left and ring is None and rng.random() < 0.02:
                    # The "hub": one phone on 1,000 recent applications (a dealer's shop phone
                    # nobody put on the ignore list), for the worst case measured apart.
                    phone, at = HUB_PHONE, now - dt.timedelta(seconds=rng.randrange(60 * 86400))
                    hub_left -= 1
                shared = ring is not None and rng.random() < 0.5
                device = ring["device"][0] if shared else f"d-{rng.getrandbits(48)}"
                address = ring["address"][0] if shared else _address(rng)
                card = ring["bank_card"][0] if ring and rng.random() < 0.5 else _card(rng)
                people.append(
                    Applicant(
                        customer=lender,
                        name="历史客户",
                        id_number=fakes.make_id_number(rng),
                        phone=phone,
                        address=address,
                        monthly_income=rng.randint(4000, 40000),
                    )
                )
                status = rng.choice(statuses)
                apps.append(
                    Application(
                        customer=rng.choice(branches),
                        product=product,
                        dealer=rng.choice(dealers),
                        car_price=200000,
                        amount=140000,
                        term_months=36,
                        down_payment=60000,
                        device_fingerprint=device,
                        bank_card=card,
                        attributes=rng.choice(rows),
                        status=status,
                        score=rng.randint(420, 720),
                        outcome=rng.choice(["good"] * 8 + ["bad", "unknown"])
                        if status == "approved"
                        else "unknown",
                        created_at=at,
                        features={"application.date": at.date().isoformat()},
                    )
                )
                values.append((phone, device, address, card, at))
            Applicant.objects.bulk_create(people, batch_size=1000)
            for app, person in zip(apps, people, strict=True):
                app.applicant = person
            Application.objects.bulk_create(apps, batch_size=1000)
            keys = []
            for app, (phone, device, address, card, at) in zip(apps, values, strict=True):
                for kind, raw in (
                    ("phone", phone),
                    ("device", device),
                    ("address", address),
                    ("bank_card", card),
                ):
                    value = LINK_CONFIG.normalise(kind, raw)
                    if value:
                        keys.append((app.pk, lender.pk, kind, stored_link_value(value), at))
            with connection.cursor() as cursor:
                cursor.executemany(link_sql, keys)
            made += n
    past_s = time.monotonic() - t0
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return {
        "user": user,
        "branch": branch,
        "product": product,
        "dealers": dealers,
        "rows": rows,
        "rings": rings,
        "listed": listed,
        "seconds": {"setup": setup_s, "lists": lists_s, "past": past_s},
    }


def payload(rng: random.Random, world: dict) -> dict:
    from carloan import fakes

    roll = rng.random()
    phone = fakes.make_mobile(rng)
    device = f"new-{rng.getrandbits(64):x}"
    address = _address(rng)
    card = _card(rng)
    if roll < 0.05:  # a listed phone (black or white, maybe expired)
        phone = rng.choice(world["listed"]["phone"])
    elif roll < 0.08:  # a ring member applying again
        ring = rng.choice(world["rings"])
        phone, device = rng.choice(ring["phone"]), ring["device"][0]
    elif roll < 0.10:
        address = rng.choice(world["rings"])["address"][0]
    income = rng.choice([6000, 9000, 12000, 18000, 25000, 40000])
    price = rng.choice([120000, 160000, 200000, 260000])
    down = price * rng.choice([2, 3, 4]) // 10
    return {
        "customer": world["branch"].pk,
        "product": world["product"].pk,
        "dealer": rng.choice(world["dealers"]).pk,
        "applicant": {
            "name": "测试客户",
            "id_number": fakes.make_id_number(rng),
            "phone": phone,
            "address": address,
            "employer": "西安某公司",
            "monthly_income": str(income),
        },
        "car_price": str(price),
        "amount": str(price - down),
        "term_months": rng.choice([12, 24, 36]),
        "down_payment": str(down),
        "device_fingerprint": device,
        "ip_address": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        "bank_card": card,
        "attributes": rng.choice(world["rows"]),
        "checks": {"bureau.overdue_count_24m": rng.choice([0, 0, 0, 1, 2, 5])},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgis", action="store_true", help="PostGIS instead of SpatiaLite")
    parser.add_argument("--postgis-url", default=DEFAULT_POSTGIS_URL)
    parser.add_argument("--entries", type=int, default=1_000_000, help="list entries")
    parser.add_argument("--past", type=int, default=100_000, help="past applications")
    parser.add_argument("--decisions", type=int, default=1000, help="measured decisions")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the measured decisions (top 40 by own time)",
    )
    parser.add_argument(
        "--show-queries", action="store_true", help="print the SQL of one decision and stop"
    )
    parser.add_argument(
        "--no-freeze", action="store_true", help="leave the start-up heap to the collector"
    )
    args = parser.parse_args(argv)

    with bench_database(postgis=args.postgis, postgis_url=args.postgis_url, keep=args.keep) as db:
        from django.conf import settings
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext
        from rest_framework.authtoken.models import Token

        from credit.models import Application, DecisionStep

        settings.DEBUG = False  # production behaviour: no query log on every cursor
        rng = random.Random(args.seed)
        world = setup(rng, entries=args.entries, past=args.past)
        token = Token.objects.create(user=world["user"])
        client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
        url = "/api/v1/credit/applications/"

        def post(body):
            response = client.post(url, json.dumps(body), content_type="application/json")
            if response.status_code != 201:
                raise SystemExit(f"HTTP {response.status_code}: {response.content[:500]!r}")
            return response.json()

        for _ in range(WARM_UP):
            post(payload(rng, world))
        if not args.no_freeze:
            # A server freezes its start-up heap (gc.freeze(), see docs/PERFORMANCE.md): a full
            # collection then scans only what requests left, not the ~160,000 objects of
            # Django and the apps (or the rows this process built above), which costs 60-150 ms
            # and lands on about one request in a hundred, i.e. on the p99.
            gc.collect()
            gc.freeze()
        with CaptureQueriesContext(connection) as queries:
            post(payload(rng, world))
        per_decision = len(queries)
        if args.show_queries:
            # Each statement's wall time (client + network + server), median over 100 decisions.
            spent: dict[int, list[float]] = {}
            sqls: dict[int, str] = {}

            def timed(execute, sql, params, many, context):
                t = time.perf_counter()
                try:
                    return execute(sql, params, many, context)
                finally:
                    n = timed.n
                    timed.n += 1
                    spent.setdefault(n, []).append((time.perf_counter() - t) * 1000)
                    sqls.setdefault(n, sql)

            for _ in range(100):
                timed.n = 0
                with connection.execute_wrapper(timed):
                    post(payload(rng, world))
            for n in sorted(spent):
                print(f"{statistics.median(spent[n]):6.2f} ms  {sqls[n][:150]}")
            return 0
        times, cpu, ids, decisions = [], [], [], {}
        load_before = os.getloadavg()[0]
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
        for _ in range(args.decisions):
            body = payload(rng, world)
            t, c = time.perf_counter(), time.thread_time()
            if profiler:
                profiler.enable()
            data = post(body)
            if profiler:
                profiler.disable()
            times.append((time.perf_counter() - t) * 1000)
            cpu.append((time.thread_time() - c) * 1000)
            ids.append(data["id"])
            decisions[data["decision"]] = decisions.get(data["decision"], 0) + 1
        load_after = os.getloadavg()[0]
        if profiler:
            import pstats

            pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(60)
        hub_times, hub_links = [], []
        for _ in range(20):
            body = payload(rng, world)
            body["applicant"]["phone"] = HUB_PHONE
            t = time.perf_counter()
            data = post(body)
            hub_times.append((time.perf_counter() - t) * 1000)
            hub_links.append(data["steps"][2]["details"]["group_size"])
        pipeline_ms = list(
            Application.objects.filter(pk__in=ids).values_list("duration_ms", flat=True)
        )
        steps: dict[str, list[int]] = {}
        for name, us in DecisionStep.objects.filter(application_id__in=ids).values_list(
            "step", "duration_us"
        ):
            steps.setdefault(name, []).append(us)
        linked = DecisionStep.objects.filter(
            application_id__in=ids, step="links", outcome="linked"
        ).count()

        sec = world["seconds"]
        print(f"carloan credit decisions, {dt.date.today():%Y-%m-%d}")  # noqa: DTZ011
        print(f"machine: {machine()}; database: {db.engine}")
        print(
            f"data: {args.entries:,} list entries ({sec['lists']:.0f} s), {args.past:,} past "
            f"applications with link keys ({sec['past']:.0f} s); champion + challenger "
            f"(german_v1), 30 published rules"
        )
        print(
            "command: .venv/bin/python bench/credit/decision.py"
            + (" --postgis" if args.postgis else "")
            + (f" --entries {args.entries}" if args.entries != 1_000_000 else "")
            + (f" --past {args.past}" if args.past != 100_000 else "")
            + (f" --decisions {args.decisions}" if args.decisions != 1000 else "")
            + (" --no-freeze" if args.no_freeze else "")
        )
        print(
            f"{args.decisions} decisions after {WARM_UP} warm-up: "
            + ", ".join(f"{k} {v}" for k, v in sorted(decisions.items()))
            + f"; {linked} linked to earlier applications; {per_decision} SQL queries each"
        )
        print(
            f"load average (1 min) before / after the measured decisions: {load_before:.1f} / "
            f"{load_after:.1f} on {os.cpu_count()} CPUs (the machine is shared: wall "
            "times stretch with the load, the CPU row much less)"
        )
        print()
        print("| measure | p50 | p95 | p99 | max |")
        print("|---|---|---|---|---|")
        print(
            f"| POST /api/v1/credit/applications/ (ms) | {pct(times, 50):.1f} | "
            f"{pct(times, 95):.1f} | {pct(times, 99):.1f} | {max(times):.1f} |"
        )
        print(
            f"| CPU of this process per POST (ms) | {pct(cpu, 50):.1f} | {pct(cpu, 95):.1f} | "
            f"{pct(cpu, 99):.1f} | {max(cpu):.1f} |"
        )
        print(
            f"| pipeline only, `duration_ms` (ms) | {pct(pipeline_ms, 50):.2f} | "
            f"{pct(pipeline_ms, 95):.2f} | {pct(pipeline_ms, 99):.2f} | {max(pipeline_ms):.2f} |"
        )
        for name in ("identity", "lists", "links", "rules", "scorecard", "quota"):
            values = [v / 1000 for v in steps.get(name, [0])]
            print(
                f"| step {name} (ms) | {pct(values, 50):.2f} | {pct(values, 95):.2f} | "
                f"{pct(values, 99):.2f} | {max(values):.2f} |"
            )
        print(
            f"\nworst case apart (not in the table): 20 decisions sharing a phone with "
            f"{min(1000, args.past // 50):,} recent applications (groups capped at "
            f"{max(hub_links)}): p50 {pct(hub_times, 50):.1f} ms, max {max(hub_times):.1f} ms"
        )
        p99 = pct(times, 99)
        verdict = "met" if p99 <= BUDGET_P99_MS else "MISSED"
        print(
            f"\nbudget: p99 <= {BUDGET_P99_MS:.0f} ms: {verdict}"
            f" (mean {statistics.fmean(times):.1f} ms)"
        )
    return 0 if p99 <= BUDGET_P99_MS else 1


if __name__ == "__main__":
    sys.exit(main())
