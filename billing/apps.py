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
