from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from accounts import (
            auth_cache,
            receivers,  # noqa: F401  (login / logout / failed-login events)
        )

        auth_cache.connect_signals()
