from django.apps import AppConfig


class DiscountsConfig(AppConfig):
    name = "discounts"
    verbose_name = "Discounts, credits and price overrides"

    def ready(self) -> None:
        # The lifecycle joins the scheduler's cycle (beat and POST /api/v1/runs) before billing
        # (order 50), so statuses are current when the invoices of the same day are made. Billing
        # itself reads the dates, not the status, so a late or missing step never changes an invoice.
        from revexos.cycle import cycle_step_register

        def run(*, as_of, contract_ids=None):
            from discounts.services.lifecycle import exceptions_lifecycle_run

            return exceptions_lifecycle_run(as_of=as_of, actor_label=f"cycle as of {as_of:%-d %b %Y}")

        def due(*, as_of):
            from discounts.models import Credit, Discount, PriceOverride

            return [Discount.objects.all(), PriceOverride.objects.all(), Credit.objects.all()]

        cycle_step_register("discounts", order=45, run=run, due=due)

        # A contract's discount as columns of the contracts CSV import.
        from contracts.services.imports import ImportExtension, import_columns_register
        from discounts.services.imports import COLUMNS, discount_from_import

        import_columns_register(
            ImportExtension(name="discounts", header_columns=COLUMNS, after_create=discount_from_import)
        )
