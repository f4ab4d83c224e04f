"""The registry of work-order kinds (FEATURES.md K1–K3): who may be sent, and what completing an
order does. Pure data; the completion handlers live in `tasks.completion` and are imported lazily.

Adding a kind = one line here, one handler in `tasks/completion.py`, one test file. The model's
`choices` come from `kind_choices()`, so a new kind needs no migration.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

INSTALL = "install"
REPAIR = "repair"
COVERT_VISIT = "covert_visit"
REPOSSESSION = "repossession"

# accounts.User.Kind values of the people who work in the field (the mobile app's users).
INSTALLER = "installer"
SALESMAN = "salesman"
RECOVERY = "recovery"
FIELD_WORKER_KINDS = (INSTALLER, SALESMAN, RECOVERY)


@dataclass(frozen=True)
class OrderKind:
    label: Promise
    # User.kind values an order of this kind may be assigned to.
    worker_kinds: frozenset[str]
    # "module:function" of the completion handler (see tasks.completion).
    completion: str
    # The mobile app shows this order's vehicle live (position and recent stops).
    shows_vehicle_live: bool = False
    # The worker reports whether the car and its owner were found.
    asks_found: bool = False

    def load_completion(self) -> Callable:
        module, _sep, name = self.completion.partition(":")
        return getattr(importlib.import_module(module), name)


KINDS: dict[str, OrderKind] = {
    INSTALL: OrderKind(_("install"), frozenset({INSTALLER}), "tasks.completion:complete_install"),
    REPAIR: OrderKind(_("repair"), frozenset({INSTALLER}), "tasks.completion:complete_repair"),
    COVERT_VISIT: OrderKind(
        _("covert visit"),
        frozenset({SALESMAN}),
        "tasks.completion:complete_covert_visit",
        asks_found=True,
    ),
    REPOSSESSION: OrderKind(
        _("repossession"),
        frozenset({RECOVERY}),
        "tasks.completion:complete_repossession",
        shows_vehicle_live=True,
    ),
}


def kind_choices() -> list[tuple[str, Promise]]:
    return [(code, kind.label) for code, kind in KINDS.items()]


def kind_of(code: str) -> OrderKind:
    return KINDS[code]
