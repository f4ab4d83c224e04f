"""The credit API end to end: `POST /api/v1/credit/applications/` answers synchronously with the
decision, score, band, reasons, quota and steps; lists and details are scoped (404 for another
lender's ids); reviews, loans and outcomes through their endpoints and rights; the OpenAPI
schema; constant queries per list page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from credit.models import Application
from credit.services import list_entry_create
from tests.conftest import PERSONAS
from tests.credit.test_pipeline import (
    catalogue,
    champion,
    grant_credit_perms,
    id_number,
    publish_rules,
    submit,
)

URL = "/api/v1/credit/applications/"


@pytest.fixture
def credit(world):
    grant_credit_perms(world)
    product, dealer = catalogue(world)
    champion()
    return {"product": product, "dealer": dealer}


def body(credit, **overrides):
    data = {
        "product": credit["product"].pk,
        "dealer": credit["dealer"].pk,
        "applicant": {
            "name": "赵六",
            "id_number": id_number(dt.date(1988, 8, 8), 321),
            "phone": "+86 138 0013 8000",
            "address": "西安市雁塔区科技路 10 号",
            "employer": "西安软件园",
            "monthly_income": "18000.00",
        },
        "used_car": False,
        "car_price": "200000",
        "amount": "120000",
        "term_months": 36,
        "down_payment": "80000",
        "device_fingerprint": "ios-abc-123",
        "ip_address": "10.1.2.3",
        "bank_card": "6222 0200 1234 5678",
        "attributes": {"x": 3},
        "checks": {"bureau": {"overdue_count_24m": 0}, "applicant.name_id_match": True},
    }
    data.update(overrides)
    return data


def test_a_submission_is_decided_in_the_response(world, credit, api):
    publish_rules(
        world.customers["a"],
        [
            {
                "expression": "bureau.overdue_count_24m > 3",
                "action": "reject",
                "reason_code": "OVERDUE",
            }
        ],
    )
    response = api(world.users["a1_operator"]).post(URL, body(credit), format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["status"], data["decision"], data["score"], data["band"]) == (
        "approved",
        "approve",
        550,
        "approve",
    )
    assert data["reasons"] == []
    assert data["customer"] == world.customers["a1"].pk  # the caller's own branch
    assert data["quota"]["approved_amount"] == "120000.00"
    assert data["quota"]["monthly_payment"] == "3760.36"
    assert [s["step"] for s in data["steps"]] == [
        "identity",
        "lists",
        "links",
        "rules",
        "scorecard",
        "quota",
        "decision",
    ]
    rules = data["steps"][3]
    assert (rules["outcome"], rules["details"]["ruleset"]["version"]) == ("pass", 1)
    assert data["rule_set_version"] == 1
    assert data["applicant_id_number"].startswith("610113********")
    assert data["duration_ms"] > 0
    app = Application.objects.get()
    assert app.features["bureau.overdue_count_24m"] == 0
    assert app.features["applicant.phone"] == "13800138000"


def test_a_rejection_and_a_review_say_why(world, credit, api):
    list_entry_create(
        kind="black", field="bank_card", value="6222020012345678", source="法院失信名单"
    )
    client = api(world.users["a_admin"])
    rejected = client.post(URL, body(credit), format="json").json()
    assert (rejected["decision"], rejected["reasons"]) == ("reject", ["BLACKLIST_BANK_CARD"])
    assert rejected["steps"][1]["details"]["entries"][0]["source"] == "法院失信名单"
    review = client.post(URL, body(credit, bank_card="", attributes={"x": 1}), format="json").json()
    assert (review["decision"], review["score"], review["reasons"]) == (
        "review",
        500,
        ["SCORE_REVIEW", "SCORE_REASON:x"],
    )
    assert review["quota"]["band"] == "review"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {
                "applicant": {
                    "name": "x",
                    "id_number": "110105194912310021",
                    "phone": "13800138000",
                    "monthly_income": "1",
                }
            },
            "id_number",
        ),
        ({"term_months": 18}, "term_months"),
        ({"amount": "190000"}, "amount"),
        ({"vin": "LSVAB"}, "vin"),
        ({"checks": {"applicant.agee": 1}}, "checks"),
        ({"attributes": {"x": "many"}}, "attributes"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(world, credit, api, change, field):
    response = api(world.users["a_admin"]).post(URL, body(credit, **change), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Application.objects.exists()


def test_another_lenders_product_or_customer_is_refused(world, credit, api):
    product_b, dealer_b = catalogue(world, "b")
    client = api(world.users["a_admin"])
    response = client.post(URL, body(credit, product=product_b.pk), format="json")
    assert response.status_code == 400 and "product" in response.json()
    response = client.post(URL, body(credit, customer=world.customers["b"].pk), format="json")
    assert response.status_code == 400 and "customer" in response.json()
    response = client.post(URL, body(credit, dealer=dealer_b.pk), format="json")
    assert response.status_code == 400 and "dealer" in response.json()
    # Another lender's id reads exactly like an id that does not exist (no leak).
    foreign = client.post(URL, body(credit, product=product_b.pk), format="json").json()
    missing = client.post(URL, body(credit, product=999999), format="json").json()
    assert foreign["product"] == [
        m.replace("999999", str(product_b.pk)) for m in missing["product"]
    ]
    for bad in ("x", True, [1], 1.5, 2**70, -1, 0):
        response = client.post(URL, body(credit, product=bad), format="json")
        assert response.status_code == 400 and "product" in response.json()
    # A branch may use its lender's product and dealer (the line of ancestors).
    ok = api(world.users["a1_operator"]).post(URL, body(credit), format="json")
    assert ok.status_code == 201, ok.content
    assert Application.objects.count() == 1


def test_rights(world, credit, api):
    assert api().post(URL, body(credit), format="json").status_code == 401
    assert (
        api(world.users["a1_installer"]).post(URL, body(credit), format="json").status_code == 403
    )
    assert api(world.users["a1_installer"]).get(URL).status_code == 403


@pytest.mark.parametrize("persona", [p for p in PERSONAS if p != "a1_installer"])
def test_lists_are_scoped_and_other_ids_are_404(world, credit, api, persona):
    product_b, _ = catalogue(world, "b")
    apps = {
        "a": submit(world.customers["a"], credit["product"], attributes={"x": 3}),
        "a1": submit(world.customers["a1"], credit["product"], attributes={"x": 3}),
        "b": submit(world.customers["b"], product_b, attributes={"x": 3}),
    }
    if persona == "platform_admin":
        from django.contrib.auth.models import Permission

        world.users[persona].user_permissions.add(
            *Permission.objects.filter(content_type__app_label="credit")
        )
    client = api(world.users[persona])
    response = client.get(URL)
    assert response.status_code == 200
    got = {row["id"] for row in response.json()["results"]}
    visible = world.visible_keys(persona)
    assert got == {app.pk for key, app in apps.items() if key in visible}
    for key, app in apps.items():
        status = client.get(f"{URL}{app.pk}/").status_code
        assert status == (200 if key in visible else 404)


def test_review_loan_and_outcome_endpoints(world, credit, api):
    app = submit(world.customers["a"], credit["product"], attributes={"x": 1})
    operator = api(world.users["a1_operator"])
    admin = api(world.users["a_admin"])
    other = api(world.users["b_admin"])
    decision = {"decision": "approve", "reason": "工作证明已核实"}
    assert other.post(f"{URL}{app.pk}/review/", decision).status_code == 404
    response = admin.post(f"{URL}{app.pk}/review/", decision)
    assert response.status_code == 200
    assert response.json()["status"] == "approved"
    assert response.json()["steps"][-1]["step"] == "review"
    again = admin.post(f"{URL}{app.pk}/review/", decision)
    assert again.status_code == 400 and again.json()["code"] == "invalid_transition"
    assert operator.post(f"{URL}{app.pk}/loan/").status_code == 403
    loan = admin.post(f"{URL}{app.pk}/loan/")
    assert loan.status_code == 201
    assert loan.json()["principal"] == "120000.00"
    assert admin.post(f"{URL}{app.pk}/outcome/", {"outcome": "bad"}).json()["outcome"] == "bad"


def test_filters_and_constant_queries(world, credit, api):
    for x in (0.5, 1, 3, 3):
        submit(
            world.customers["a"], credit["product"], dealer=credit["dealer"], attributes={"x": x}
        )
    client = api(world.users["a_admin"])
    rows = client.get(URL, {"status": "approved"}).json()["results"]
    assert len(rows) == 2 and {r["status"] for r in rows} == {"approved"}
    with CaptureQueriesContext(connection) as few:
        client.get(URL)
    for _ in range(6):
        submit(world.customers["a1"], credit["product"], attributes={"x": 3})
    with CaptureQueriesContext(connection) as more:
        client.get(URL)
    assert len(few) == len(more)


def test_the_schema_describes_the_endpoint(world, api):
    schema = api(world.users["a_admin"]).get("/api/v1/schema/", {"format": "json"})
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/credit/applications/" in paths
    assert "/api/v1/credit/applications/{id}/review/" in paths
