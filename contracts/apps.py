from django.apps import AppConfig


class ContractsConfig(AppConfig):
    name = "contracts"

    def ready(self) -> None:
        # The shell's search box finds customers and contracts (revexos/search.py).
        from contracts.search import contracts_find, customers_find
        from revexos.search import search_provider_register

        search_provider_register(
            "customers", label="Customers", order=20, capability="customers.view", find=customers_find
        )
        search_provider_register(
            "contracts", label="Contracts", order=30, capability="contracts.view", find=contracts_find
        )
