"""Writes of the credit app (keyword-only, `<entity>_<verb>`, ApplicationError subclasses for
refused operations). The modules:

- `applications`: application_submit (runs the decision pipeline), application_review_decide,
  application_outcome_set, loan_create
- `rulesets`: ruleset_create, credit_rule_save / credit_rule_delete, ruleset_publish,
  ruleset_replay
- `scorecards`: scorecard_register, scorecard_promote
- `catalogue`: product_save, dealer_save, dealer_rate, list_entry_create / _update / _delete
- `monitoring`: monitoring_alerts_raise, monitoring_month_run (every lender, the active models)
"""

from credit.services.applications import (
    application_outcome_set,
    application_review_decide,
    application_submit,
    loan_create,
)
from credit.services.catalogue import (
    dealer_rate,
    dealer_save,
    list_entry_create,
    list_entry_delete,
    list_entry_update,
    product_save,
)
from credit.services.monitoring import monitoring_alerts_raise, monitoring_month_run
from credit.services.rulesets import (
    credit_rule_delete,
    credit_rule_save,
    ruleset_create,
    ruleset_publish,
    ruleset_replay,
)
from credit.services.scorecards import scorecard_promote, scorecard_register

__all__ = [
    "application_outcome_set",
    "application_review_decide",
    "application_submit",
    "credit_rule_delete",
    "credit_rule_save",
    "dealer_rate",
    "dealer_save",
    "list_entry_create",
    "list_entry_delete",
    "list_entry_update",
    "loan_create",
    "monitoring_alerts_raise",
    "monitoring_month_run",
    "product_save",
    "ruleset_create",
    "ruleset_publish",
    "ruleset_replay",
    "scorecard_promote",
    "scorecard_register",
]
