"""REST API tests: tenancy first (every list and detail scoped to the caller), then behaviour."""

from __future__ import annotations

import random

from carloan import fakes

API = "/api/v1"


def result_ids(response) -> set[int]:
    """The ids on a page of a paginated list (the suite's lists fit on one page)."""
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["next"] is None, "list spans several pages: raise page_size"
    return {row["id"] for row in body["results"]}


def valid_vehicle_payload(customer, seed: int = 1, **overrides) -> dict:
    rng = random.Random(seed)
    payload = {
        "customer": customer.pk,
        # 京 plates: the world's vehicles all carry 陕 plates, so these never clash.
        "plate": f"京a·{seed:05d}",
        "vin": fakes.make_vin(rng),
        "brand": "BYD",
        "model_name": "Qin",
        "borrower_name": "张三",
        "borrower_phone": "+86 138-0013-8000",
        "borrower_id_number": fakes.make_id_number(rng),
        "loan_principal": "120000.00",
        "loan_term_months": 36,
        "loan_start_date": "2026-01-15",
        "repayment_status": "normal",
    }
    payload.update(overrides)
    return payload
