from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "revexos.tenancy"
    label = "tenancy"
    verbose_name = "Tenancy"
