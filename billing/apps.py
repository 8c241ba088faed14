from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        # The contracts CSV import: milestones delivered before the import, and the preview of what
        # the first billing run will bill (the engine's shadow run).
        from billing.services.onboarding import first_run_preview, milestones_delivered_from_import
        from contracts.services.imports import ImportExtension, import_columns_register, import_first_run_register

        import_columns_register(
            ImportExtension(
                name="milestones", line_columns=("delivered_on",), after_create=milestones_delivered_from_import
            )
        )
        import_first_run_register(first_run_preview)

        # Billing's own steps join the scheduler's cycle (revexos/cycle.py).
        from billing import cycle  # noqa: F401

        # A discount revoked, ended early or extended recomputes the drafts it touches
        # (discounts sits below billing and never imports it).
        from billing.services.adjustments import invoice_discounts_reapply_for
        from discounts.hooks import on_discount_changed

        on_discount_changed(invoice_discounts_reapply_for)

        # A held draft is checked again when its contract or customer changes: the reasons it
        # shows are what is wrong now (a PO added by an amendment releases it).
        from billing.services.invoicing import held_drafts_recheck, held_drafts_recheck_for_discount
        from contracts.hooks import on_contract_changed, on_customer_changed

        on_contract_changed(held_drafts_recheck)
        on_customer_changed(held_drafts_recheck)
        on_discount_changed(held_drafts_recheck_for_discount)

        # The shell's search box finds invoices by number and PO (revexos/search.py).
        from billing.search import invoices_find
        from revexos.search import search_provider_register

        search_provider_register("invoices", label="Invoices", order=10, capability="invoices.view", find=invoices_find)
