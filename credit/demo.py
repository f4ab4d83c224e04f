"""Credit demo data (part of `manage.py load_demo`): per lender two products, a handful of dealers
(one not admitted), a published rule set and a few list entries; the committed scorecard
(credit/scorecard/models/german_v1.json) as champion; and about 240 applications over the last six
months decided by the real pipeline (`application_submit`), among them a fraud ring sharing a phone
and an address, a blacklisted phone and a whitelisted ID number. Applicants carry the German credit
rows of the training file, whose known outcome (good / bad) becomes the outcome of the approved
ones, so the monitoring page has KS / AUC to show; dealers are rated from those outcomes.

The demo roles of each lender get the credit rights (administrator: all; risk officer: submit and
review applications, write, replay and publish rule sets, keep the lists, read the rest). The
scorecard is the server's, not the demo's: a reset leaves it.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from django.contrib.auth.models import Permission
from django.db.models import Q
from django.utils import timezone

from accounts.models import Customer, Role
from carloan import fakes
from carloan.identifiers import id_number_check_char
from credit.models import (
    Applicant,
    Application,
    CreditRule,
    Dealer,
    DecisionStep,
    LinkKey,
    ListEntry,
    Loan,
    MonitoringAlert,
    Product,
    RuleSet,
    ScorecardModel,
)
from credit.services import (
    application_outcome_set,
    application_submit,
    credit_rule_save,
    dealer_rate,
    dealer_save,
    list_entry_create,
    loan_create,
    monitoring_alerts_raise,
    product_save,
    ruleset_create,
    ruleset_publish,
    scorecard_promote,
)
from credit.services.scorecards import scorecard_register_file

DEMO_SOURCE = "演示数据"
LENDERS = ("changan", "xibu")
APPLICATIONS_PER_LENDER = 120
# The risk officer (风控专员): decides reviews, writes, replays and publishes the lender's rules and
# keeps its lists; reads the rest. (Scorecards serve every lender: the platform promotes them.)
OPERATOR_RIGHTS = (
    "view_application",
    "add_application",
    "review_application",
    "view_product",
    "view_dealer",
    "view_listentry",
    "add_listentry",
    "change_listentry",
    "view_ruleset",
    "add_ruleset",
    "change_ruleset",
    "publish_ruleset",
    "view_creditrule",
    "add_creditrule",
    "change_creditrule",
    "delete_creditrule",
    "view_scorecardmodel",
    "view_monitoringalert",
    "view_loan",
)
RULES = (
    ("R010", "年龄", "applicant.age < 18 or applicant.age > 65", "reject", "AGE"),
    (
        "R020",
        "到期年龄",
        "age_at(applicant.birth_date) + application.term_months / 12 > 65",
        "reject",
        "AGE_AT_MATURITY",
    ),
    ("R030", "黑名单", "lists.blacklist", "reject", "BLACKLIST"),
    (
        "R040",
        "团伙",
        "links.group_size >= 4 or (links.group_size >= 2 and links.bad_members > 0)",
        "reject",
        "FRAUD_RING",
    ),
    ("R050", "关联申请", "links.group_size >= 2", "review", "LINKED_APPLICATIONS"),
    ("R060", "首付比例", "application.down_payment_ratio < 0.2", "review", "LOW_DOWN_PAYMENT"),
    ("R070", "征信逾期", "coalesce(bureau.overdue_count_24m, 0) > 3", "reject", "OVERDUE"),
    ("R080", "经销商评级", "dealer.rating == 'D'", "review", "DEALER_RATED_D"),
    ("R090", "二手车车龄", "application.vehicle_age_months > 96", "reject", "OLD_CAR"),
    ("R100", "高收入", "applicant.monthly_income >= 60000", "fast_track", "HIGH_INCOME"),
)
DEALERS = (
    # code, name, years, capital, staff, cars a month
    ("QJ", "曲江汽车城", 12, 20_000_000, 80, 160),
    ("GX", "高新名车广场", 7, 6_000_000, 35, 60),
    ("WY", "未央二手车市场", 4, 1_500_000, 12, 25),
    ("CB", "城北车行", 2, 600_000, 6, 8),
    ("XY", "小雁塔汽贸", 0, 200_000, 2, 2),  # not admitted
)


def _id_number(rng: random.Random, age: int, today: dt.date) -> str:
    born = dt.date(today.year - age, 1, 1) + dt.timedelta(days=rng.randrange(0, 300))
    first17 = f"610113{born:%Y%m%d}{rng.randrange(0, 1000):03d}"
    return first17 + id_number_check_char(first17)


def _grant_rights(customers: dict[str, Customer]) -> None:
    credit = Permission.objects.filter(content_type__app_label="credit")
    for code in LENDERS:
        if code not in customers:
            continue
        for role in Role.objects.filter(customer=customers[code], name="管理员"):
            role.permissions.add(*credit)
        for role in Role.objects.filter(customer=customers[code], name="风控专员"):
            role.permissions.add(*credit.filter(codename__in=OPERATOR_RIGHTS))


def _champion() -> ScorecardModel:
    champion = ScorecardModel.objects.filter(status=ScorecardModel.Status.CHAMPION).first()
    if champion is not None:
        return champion
    model = ScorecardModel.objects.filter(name="german", version="v1").first()
    if model is None:
        model = scorecard_register_file(filename="german_v1.json")
    return scorecard_promote(model=model, to=ScorecardModel.Status.CHAMPION)


def _training_rows() -> list[dict]:
    from credit.scorecard.data import read_csv
    from credit.services.scorecards import ARTEFACT_DIR

    data = read_csv(ARTEFACT_DIR.parent.parent / "data" / "german_credit_train.csv")
    return [
        ({k: v for k, v in row.items() if v is not None}, bool(bad))
        for row, bad in zip(data.rows, data.bad, strict=True)
    ]


def build_credit_demo(*, seed: int, customers: dict[str, Customer]) -> dict[str, int]:
    """Create the credit demo data for the demo lenders in `customers`; returns counts."""
    rng = random.Random(seed)  # noqa: S311 - demo data, reproducible on purpose
    _grant_rights(customers)
    _champion()
    rows = _training_rows()
    now = timezone.now()
    today = timezone.localdate()
    counts = {"applications": 0, "loans": 0, "dealers": 0, "rules": 0}
    for code in LENDERS:
        lender = customers.get(code)
        if lender is None:
            continue
        lender.refresh_from_db()
        branches = [c for c in customers.values() if c.parent_id == lender.pk] or [lender]
        new_car = product_save(
            product=Product(customer=lender, code="NEW", name="新车贷", terms=[12, 24, 36, 48])
        )
        used_car = product_save(
            product=Product(
                customer=lender,
                code="USED",
                name="二手车贷",
                terms=[12, 24, 36],
                max_amount=Decimal("300000"),
                min_down_payment_ratio=Decimal("0.3"),
                annual_rate=Decimal("0.1"),
                band_terms={"approve": {"down_payment_ratio": 0.3}, "review": {"rate_add": 0.03}},
            )
        )
        dealers = [
            dealer_save(
                dealer=Dealer(
                    customer=lender,
                    code=f"{code[:2].upper()}-{dcode}",
                    name=name,
                    years_in_business=years,
                    registered_capital=Decimal(capital),
                    staff=staff,
                    monthly_sales=sales,
                )
            )
            for dcode, name, years, capital, staff, sales in DEALERS
        ]
        counts["dealers"] += len(dealers)
        admitted = [d for d in dealers if d.status == Dealer.Status.ADMITTED]
        rule_set = ruleset_create(customer=lender, name="标准规则")
        for rcode, name, expression, action, reason in RULES:
            credit_rule_save(
                rule=CreditRule(
                    rule_set=rule_set,
                    code=rcode,
                    name=name,
                    expression=expression,
                    action=action,
                    reason_code=reason,
                    priority=int(rcode[1:]),
                )
            )
            counts["rules"] += 1
        ruleset_publish(rule_set=rule_set, at=now - dt.timedelta(days=200))

        blacklisted_phone = fakes.make_mobile(rng)
        list_entry_create(
            kind="black",
            field="phone",
            value=blacklisted_phone,
            customer=lender,
            source=DEMO_SOURCE,
            reason="法院失信被执行人",
        )
        vip = _id_number(rng, 45, today)
        list_entry_create(
            kind="white",
            field="id_number",
            value=vip,
            customer=lender,
            source=DEMO_SOURCE,
            reason="优质老客户",
        )
        ring_phone, ring_address = (
            fakes.make_mobile(rng),
            "陕西省西安市雁塔区丈八北路 88 号 6 号楼 1 单元 1203",
        )
        ring_at = now - dt.timedelta(days=45)

        made: list[tuple[Application, bool]] = []
        for i in range(APPLICATIONS_PER_LENDER):
            attributes, bad = rng.choice(rows)
            age = int(attributes.get("age_in_years") or 35)
            at = now - dt.timedelta(days=rng.uniform(1, 182), hours=rng.uniform(0, 10))
            phone, address = fakes.make_mobile(rng), ""
            id_number = _id_number(rng, min(max(age, 20), 60), today)
            if i < 5:  # the ring: one phone and one flat, five applicants in two weeks
                phone, address = ring_phone, ring_address
                at = ring_at + dt.timedelta(days=3 * i)
            elif i == 5:
                phone = blacklisted_phone
            elif i == 6:
                id_number = vip
            used = rng.random() < 0.3
            product = used_car if used else new_car
            price = Decimal(rng.choice([90_000, 120_000, 160_000, 200_000, 260_000, 320_000]))
            down = (price * Decimal(rng.choice(["0.15", "0.2", "0.3", "0.4"]))).quantize(
                Decimal("1")
            )
            term = min(
                product.terms, key=lambda t: abs(t - int(attributes.get("duration_in_month") or 24))
            )
            checks = {"bureau.overdue_count_24m": rng.choice([0, 0, 0, 0, 1, 2, 4])}
            if used:
                checks["application.vehicle_age_months"] = rng.randint(12, 120)
            app = application_submit(
                customer=rng.choice(branches),
                product=product,
                dealer=rng.choice(dealers if rng.random() < 0.05 else admitted),
                applicant={
                    "name": rng.choice("王李张刘陈杨赵黄周吴") + rng.choice("伟芳娜敏静磊强军洋艳"),
                    "id_number": id_number,
                    "phone": phone,
                    "address": address,
                    "employer": rng.choice(["西安软件园", "陕汽集团", "个体经营", "西北大学"]),
                    "monthly_income": Decimal(rng.choice([5000, 8000, 12000, 18000, 30000])),
                },
                used_car=used,
                car_price=price,
                amount=price - down,
                term_months=term,
                down_payment=down,
                device_fingerprint=f"demo-{rng.getrandbits(40):x}",
                ip_address=f"113.{rng.randint(100, 140)}.{rng.randint(0, 255)}.{rng.randint(1, 9)}",
                bank_card="",
                attributes=attributes,
                checks=checks,
                at=at,
            )
            made.append((app, bad))
        # What became of them: the training labels, for the decided ones older than a month.
        for app, bad in made:
            if app.created_at > now - dt.timedelta(days=30):
                continue
            if app.status == Application.Status.APPROVED:
                loan_create(application=app, at=app.created_at + dt.timedelta(days=2))
                counts["loans"] += 1
            if app.status in (Application.Status.APPROVED, Application.Status.LOAN_CREATED):
                application_outcome_set(application=app, outcome="bad" if bad else "good")
        for dealer in dealers:
            dealer_rate(dealer=dealer)
        counts["applications"] += len(made)
        last_month = (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
        for model in ScorecardModel.objects.filter(status=ScorecardModel.Status.CHAMPION):
            monitoring_alerts_raise(scorecard=model, customer=lender, month=last_month)
    return counts


def reset_credit_demo(tree: list[int]) -> int:
    """Delete the credit rows of the customers `tree` (children before parents: the foreign
    keys are PROTECT) and the demo's platform-wide list entries. Returns the applications
    deleted. Scorecard models stay: they serve the whole server."""
    apps = Application.objects.filter(customer__in=tree)
    count = apps.count()
    MonitoringAlert.objects.filter(customer__in=tree).delete()
    Loan.objects.filter(application__customer__in=tree).delete()
    DecisionStep.objects.filter(application__customer__in=tree).delete()
    LinkKey.objects.filter(Q(application__customer__in=tree) | Q(lender__in=tree)).delete()
    apps.delete()
    Applicant.objects.filter(customer__in=tree).delete()
    CreditRule.objects.filter(rule_set__customer__in=tree).delete()
    RuleSet.objects.filter(customer__in=tree).delete()
    ListEntry.objects.filter(customer__in=tree).delete()
    ListEntry.objects.filter(customer__isnull=True, source=DEMO_SOURCE).delete()
    Dealer.objects.filter(customer__in=tree).delete()
    Product.objects.filter(customer__in=tree).delete()
    return count
