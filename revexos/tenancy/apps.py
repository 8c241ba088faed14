from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "revexos.tenancy"
    label = "tenancy"
    verbose_name = "Tenancy"

    def ready(self) -> None:
        from revexos.converters import converters_register

        converters_register()  # <id:pk> in every app's urls.py
