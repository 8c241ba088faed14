from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "revexos.accounts"
    label = "accounts"
    verbose_name = "Accounts and roles"
