"""The credit back office: scoped lists (another lender's rows are 404), submitting an application
and reading why it was decided, rule-set drafts whose bad rules come back with a caret under the
bad token, publishing (right needed, published versions read-only), replay, registering and
promoting scorecards (platform staff only), dealers' rating, the monitoring page."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.admin import helpers
from django.contrib.auth.models import Permission

from credit.models import Application, CreditRule, Dealer, RuleSet, ScorecardModel
from credit.services import application_outcome_set, ruleset_create
from tests.credit.test_pipeline import (
    applicant,
    catalogue,
    champion,
    grant_credit_perms,
    id_number,
    publish_rules,
    submit,
)

ADMIN = "/admin/credit/"


@pytest.fixture
def credit(world):
    grant_credit_perms(world)
    product, dealer = catalogue(world)
    champion()
    return {"product": product, "dealer": dealer}


def login(client, world, persona):
    client.force_login(world.users[persona])
    return client


def action(client, url, name, ids, **extra):
    data = {"action": name, helpers.ACTION_CHECKBOX_NAME: [str(i) for i in ids], **extra}
    return client.post(url, data, follow=True)


# --- Applications ---------------------------------------------------------------------------
def test_the_list_shows_the_subtree_and_another_lenders_page_is_404(client, world, credit):
    mine = submit(world.customers["a1"], credit["product"], attributes={"x": 3})
    product_b, _ = catalogue(world, "b")
    theirs = submit(world.customers["b"], product_b, attributes={"x": 3})
    login(client, world, "a_admin")
    page = client.get(ADMIN + "application/")
    assert page.status_code == 200
    body = page.content.decode()
    assert f"/admin/credit/application/{mine.pk}/change/" in body
    assert f"/admin/credit/application/{theirs.pk}/change/" not in body
    assert client.get(ADMIN + f"application/{theirs.pk}/change/").status_code == 404


def test_submitting_in_the_admin_decides_and_the_page_says_why(client, world, credit):
    login(client, world, "a_admin")
    form = {
        "customer": world.customers["a1"].pk,
        "product": credit["product"].pk,
        "dealer": credit["dealer"].pk,
        "name": "李四",
        "id_number": id_number(dt.date(1990, 3, 4), 77),
        "phone": "13800138000",
        "address": "",
        "employer": "",
        "monthly_income": "15000",
        "car_price": "200000",
        "down_payment": "80000",
        "amount": "120000",
        "term_months": "36",
        "vin": "",
        "plate": "",
        "device_fingerprint": "",
        "ip_address": "",
        "bank_card": "",
        "attributes_json": '{"x": 2}',
        "checks_json": "{}",
    }
    response = client.post(ADMIN + "application/add/", form, follow=True)
    assert response.status_code == 200
    app = Application.objects.get()
    assert (app.status, app.score, app.reasons) == (
        "review",
        549,
        ["SCORE_REVIEW", "SCORE_REASON:x"],
    )
    body = response.content.decode()
    assert "SCORE_REVIEW" in body
    detail = client.get(ADMIN + f"application/{app.pk}/change/").content.decode()
    assert 'class="credit-why"' in detail
    for step in ("identity", "lists", "links", "rules", "scorecard", "quota", "decision"):
        assert f"<b>{step}</b>" in detail


def test_a_bad_submission_is_refused_with_the_field_named(client, world, credit):
    login(client, world, "a_admin")
    form = {
        "customer": world.customers["a"].pk,
        "product": credit["product"].pk,
        "name": "王五",
        "id_number": id_number(dt.date(1990, 3, 4), 78),
        "phone": "13800138000",
        "monthly_income": "15000",
        "car_price": "200000",
        "down_payment": "80000",
        "amount": "120000",
        "term_months": "18",
        "attributes_json": "{}",
        "checks_json": "{}",
    }
    response = client.post(ADMIN + "application/add/", form, follow=True)
    assert "term_months" in response.content.decode()
    assert not Application.objects.exists()


def test_reviews_are_decided_with_a_reason_and_need_the_right(client, world, credit):
    app = submit(world.customers["a"], credit["product"], attributes={"x": 1})
    url = ADMIN + "application/"
    login(client, world, "a_admin")
    page = action(client, url, "_review", [app.pk])  # the intermediate form
    assert 'name="reason"' in page.content.decode()
    action(client, url, "_review", [app.pk], apply="1", decision="reject", reason="资料不符")
    app.refresh_from_db()
    assert (app.status, app.review_reason) == ("rejected", "资料不符")
    # The branch operator may read applications but not decide them.
    other = submit(world.customers["a1"], credit["product"], attributes={"x": 1})
    login(client, world, "a1_operator")
    response = action(
        client, url, "_review", [other.pk], apply="1", decision="approve", reason="ok"
    )
    other.refresh_from_db()
    assert other.status == "review"
    assert response.status_code == 200


def test_loans_and_outcomes_from_the_list(client, world, credit):
    app = submit(world.customers["a"], credit["product"], attributes={"x": 3})
    login(client, world, "a_admin")
    action(client, ADMIN + "application/", "create_loans", [app.pk])
    app.refresh_from_db()
    assert app.status == Application.Status.LOAN_CREATED
    action(client, ADMIN + "application/", "_outcome", [app.pk], apply="1", outcome="bad")
    app.refresh_from_db()
    assert app.outcome == "bad"


# --- Rule sets ------------------------------------------------------------------------------
def _rule_formset(rule_set_name="规则", rows=()):
    data = {
        "name": rule_set_name,
        "rules-TOTAL_FORMS": str(len(rows)),
        "rules-INITIAL_FORMS": "0",
        "rules-MIN_NUM_FORMS": "0",
        "rules-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"rules-{i}-{key}"] = value
    return data


def test_a_bad_rule_is_refused_with_a_caret_under_the_bad_token(client, world, credit):
    draft = ruleset_create(customer=world.customers["a"], name="草稿")
    login(client, world, "a_admin")
    data = _rule_formset(
        "草稿",
        [
            {
                "priority": "10",
                "code": "R1",
                "name": "age",
                "expression": "applicant.agee > 65",
                "action": "reject",
                "reason_code": "AGE",
                "enabled": "on",
            }
        ],
    )
    response = client.post(ADMIN + f"ruleset/{draft.pk}/change/", data)
    assert response.status_code == 200  # the form again, with the error
    body = response.content.decode()
    assert "applicant.agee" in body and "applicant.age?" in body
    caret = re.search(r'<pre class="rule-caret">(.*?)</pre>', body, re.S)
    assert caret is not None
    assert caret.group(1).splitlines()[1] == "^" * len("applicant.agee")
    assert not CreditRule.objects.exists()
    data["rules-0-expression"] = "applicant.age > 65"
    response = client.post(ADMIN + f"ruleset/{draft.pk}/change/", data, follow=True)
    assert CreditRule.objects.get().expression == "applicant.age > 65"


def test_publishing_needs_the_right_and_freezes_the_version(client, world, credit):
    draft = ruleset_create(customer=world.customers["a"], name="v1")
    CreditRule.objects.create(
        rule_set=draft,
        code="R1",
        name="old",
        expression="applicant.age > 65",
        action="reject",
        reason_code="AGE",
    )
    login(client, world, "a1_operator")
    assert client.get(ADMIN + "ruleset/").status_code == 403
    admin_role = world.users["a_admin"].role
    admin_role.permissions.remove(Permission.objects.get(codename="publish_ruleset"))
    login(client, world, "a_admin")
    page = client.get(ADMIN + "ruleset/").content.decode()
    assert 'value="publish"' not in page
    admin_role.permissions.add(Permission.objects.get(codename="publish_ruleset"))
    client.force_login(world.users["a_admin"].__class__.objects.get(pk=world.users["a_admin"].pk))
    action(client, ADMIN + "ruleset/", "publish", [draft.pk])
    draft.refresh_from_db()
    assert draft.status == RuleSet.Status.PUBLISHED
    assert draft.published_by == world.users["a_admin"]
    # A published version is read-only: its page has no save button and a POST is refused.
    page = client.get(ADMIN + f"ruleset/{draft.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    response = client.post(ADMIN + f"ruleset/{draft.pk}/change/", _rule_formset("changed"))
    assert response.status_code == 403
    draft.refresh_from_db()
    assert draft.name == "v1"


def test_replay_shows_what_publishing_would_change(client, world, credit):
    a = world.customers["a"]
    publish_rules(
        a, [{"expression": "applicant.age > 70", "action": "reject", "reason_code": "OLD"}]
    )
    young = submit(
        a,
        credit["product"],
        attributes={"x": 3},
        person=applicant(id_number=id_number(dt.date(2000, 1, 1), 5)),
    )
    older = submit(
        a,
        credit["product"],
        attributes={"x": 3},
        person=applicant(id_number=id_number(dt.date(1970, 1, 1), 6)),
    )
    draft = ruleset_create(customer=a, name="stricter")
    CreditRule.objects.create(
        rule_set=draft,
        code="R1",
        name="age",
        expression="applicant.age > 50",
        action="reject",
        reason_code="AGE_50",
    )
    login(client, world, "a_admin")
    form = action(client, ADMIN + "ruleset/", "replay", [draft.pk])
    assert 'name="last"' in form.content.decode()
    response = action(client, ADMIN + "ruleset/", "replay", [draft.pk], apply="1", last="100")
    body = response.content.decode()
    assert "2 applications: 1 would change outcome (v1 → v2)." in body
    assert f"/admin/credit/application/{older.pk}/change/" in body
    assert f"/admin/credit/application/{young.pk}/change/" not in body


# --- Scorecards, dealers, monitoring --------------------------------------------------------------
def test_only_platform_staff_register_and_promote_scorecards(client, world, credit):
    everything = Permission.objects.filter(content_type__app_label="credit")
    world.users["platform_admin"].user_permissions.add(*everything)
    login(client, world, "a_admin")
    assert client.get(ADMIN + "scorecardmodel/add/").status_code == 403
    login(client, world, "platform_admin")
    response = client.post(
        ADMIN + "scorecardmodel/add/", {"committed": "german_v1.json"}, follow=True
    )
    assert response.status_code == 200
    german = ScorecardModel.objects.get(name="german")
    assert german.status == "draft"
    action(client, ADMIN + "scorecardmodel/", "make_champion", [german.pk])
    german.refresh_from_db()
    assert german.status == "champion"
    assert ScorecardModel.objects.get(name="edges").status == "retired"
    page = client.get(ADMIN + f"scorecardmodel/{german.pk}/change/").content.decode()
    assert "AUC" in page and german.artefact["fingerprint"] in page


def test_dealers_are_admitted_on_creation_and_rated_from_the_list(client, world, credit):
    login(client, world, "a_admin")
    client.post(
        ADMIN + "dealer/add/",
        {
            "customer": world.customers["a"].pk,
            "code": "SMALL",
            "name": "小车行",
            "years_in_business": "0",
            "registered_capital": "100000",
            "staff": "2",
            "monthly_sales": "3",
        },
        follow=True,
    )
    small = Dealer.objects.get(code="SMALL")
    assert small.status == Dealer.Status.REJECTED
    assert small.rating_details["admission"]["failures"] == [
        "YEARS_IN_BUSINESS",
        "REGISTERED_CAPITAL",
        "STAFF",
    ]
    action(client, ADMIN + "dealer/", "rate", [credit["dealer"].pk])
    credit["dealer"].refresh_from_db()
    # 6 years 22 + capital 2 M 12 + 40 cars / 25 staff 15 + no outcomes yet 10 = 59: C.
    assert (credit["dealer"].rating, credit["dealer"].cooperation) == ("C", "deposit")
    assert credit["dealer"].rating_details["points"] == 59


def test_the_monitoring_page_charts_stability_without_a_cdn(client, world, credit):
    a = world.customers["a"]
    for i, x in enumerate([0.5, 1.5, 2.5, 3, 3, 3]):
        app = submit(
            a,
            credit["product"],
            dealer=credit["dealer"],
            attributes={"x": x},
            at=dt.datetime(2026, 10, 5 + i, tzinfo=dt.UTC),
        )
        if app.status != "rejected":
            application_outcome_set(application=app, outcome="bad" if x < 2 else "good")
    login(client, world, "a_admin")
    page = client.get(ADMIN + "scorecardmodel/monitoring/?months=12")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="credit-monitoring-data"' in body
    assert "vendor/echarts/echarts.min.js" in body
    assert "//cdn" not in body and "https://" not in body.split("<body")[1].split("</footer")[0]
    assert "2026-10" in body
    assert "D1" in body  # the dealer table
    # The branch operator lacks the scorecard right.
    login(client, world, "a1_operator")
    assert client.get(ADMIN + "scorecardmodel/monitoring/").status_code == 403


def test_list_entries_of_another_lender_are_not_visible(client, world, credit):
    from credit.services import list_entry_create

    mine = list_entry_create(
        kind="black", field="phone", value="13900000011", customer=world.customers["a"]
    )
    theirs = list_entry_create(
        kind="black", field="phone", value="13900000012", customer=world.customers["b"]
    )
    platform_wide = list_entry_create(kind="black", field="phone", value="13900000013")
    login(client, world, "a_admin")
    body = client.get(ADMIN + "listentry/").content.decode()
    assert "13900000011" in body
    assert "13900000012" not in body and "13900000013" not in body
    assert client.get(ADMIN + f"listentry/{theirs.pk}/change/").status_code == 404
    assert client.get(ADMIN + f"listentry/{platform_wide.pk}/change/").status_code == 404
    assert client.get(ADMIN + f"listentry/{mine.pk}/change/").status_code == 200


# --- Done when (issue 5) -----------------------------------------------------------------------
def test_a_risk_officer_publishes_rules_and_reads_why_an_application_was_decided(
    client, world, credit, api
):
    """The issue's "done when", with the rights the demo gives its risk officer (风控专员): the
    officer writes and publishes a rule set in the back office, the platform promotes a model,
    then the officer submits applications and reads why each was approved, sent to review or
    rejected."""
    from credit.demo import OPERATOR_RIGHTS

    officer = world.users["a1_operator"]
    officer.role.permissions.set(
        Permission.objects.filter(content_type__app_label="credit", codename__in=OPERATOR_RIGHTS)
    )
    login(client, world, "a1_operator")
    added = client.post(
        ADMIN + "ruleset/add/",
        {**_rule_formset("支行规则"), "customer": world.customers["a1"].pk},
    )
    assert added.status_code == 302, added.content.decode()[-3000:]
    draft = RuleSet.objects.get(customer=world.customers["a1"])
    rows = [
        {
            "priority": "10",
            "code": "R1",
            "name": "高龄",
            "expression": "applicant.age > 60",
            "action": "reject",
            "reason_code": "AGE_OVER_60",
            "enabled": "on",
        },
        {
            "priority": "20",
            "code": "R2",
            "name": "大额",
            "expression": "application.amount > 150000",
            "action": "review",
            "reason_code": "BIG_AMOUNT",
            "enabled": "on",
        },
    ]
    client.post(ADMIN + f"ruleset/{draft.pk}/change/", _rule_formset("支行规则", rows))
    assert draft.rules.count() == 2
    action(client, ADMIN + "ruleset/", "publish", [draft.pk])
    draft.refresh_from_db()
    assert (draft.status, draft.published_by) == (RuleSet.Status.PUBLISHED, officer)

    # The model is the platform's: promoting it is not the lender's risk officer's to do.
    assert client.get(ADMIN + "scorecardmodel/add/").status_code == 403
    world.users["platform_admin"].user_permissions.add(
        *Permission.objects.filter(content_type__app_label="credit")
    )
    login(client, world, "platform_admin")
    client.post(ADMIN + "scorecardmodel/add/", {"committed": "german_v1.json"}, follow=True)
    german = ScorecardModel.objects.get(name="german")
    action(client, ADMIN + "scorecardmodel/", "make_champion", [german.pk])

    officer = officer.__class__.objects.get(pk=officer.pk)  # fresh permission cache
    caller = api(officer)
    good = {  # a German training row the champion approves
        "status_of_existing_checking_account": "no checking account",
        "duration_in_month": 12,
        "credit_history": "critical account/ other credits existing (not at this bank)",
        "purpose": "car (used)",
        "credit_amount": 2000,
        "savings_account_and_bonds": "... >= 1000 DM",
        "present_employment_since": "... >= 7 years",
        "installment_rate_in_percentage_of_disposable_income": 2,
        "property": "real estate",
        "other_installment_plans": "none",
        "housing": "own",
    }
    decided = {}
    for label, born, amount in (
        ("approve", dt.date(1985, 5, 5), "120000"),
        ("review", dt.date(1985, 5, 5), "160000"),
        ("reject", dt.date(1960, 5, 5), "120000"),
    ):
        response = caller.post(
            "/api/v1/credit/applications/",
            {
                "product": credit["product"].pk,
                "applicant": {
                    "name": "王五",
                    "id_number": id_number(born, 400 + len(decided)),
                    "phone": f"1380013{8000 + len(decided)}",
                    "monthly_income": "30000",
                },
                "car_price": "250000",
                "amount": amount,
                "term_months": 36,
                "down_payment": "80000",
                "attributes": good,
            },
            format="json",
        )
        assert response.status_code == 201, response.content
        decided[label] = response.json()
    assert decided["approve"]["decision"] == "approve"
    assert decided["approve"]["scorecard_model"] == "german v1"
    assert decided["approve"]["rule_set_version"] == draft.version
    assert decided["review"]["decision"] == "review"
    assert decided["review"]["reasons"][0] == "BIG_AMOUNT"
    assert decided["reject"]["decision"] == "reject"
    assert decided["reject"]["reasons"] == ["AGE_OVER_60"]
    # The page says why, step by step.
    login(client, world, "a1_operator")
    page = client.get(ADMIN + f"application/{decided['reject']['id']}/change/").content.decode()
    assert "AGE_OVER_60" in page and "rules" in page
