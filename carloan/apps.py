from django.apps import AppConfig


class CarloanConfig(AppConfig):
    name = "carloan"
    verbose_name = "carloan"

    def ready(self) -> None:
        from carloan import maps  # noqa: F401  (registers the map provider's system check)
