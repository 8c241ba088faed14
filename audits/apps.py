from django.apps import AppConfig


class AuditsConfig(AppConfig):
    name = "audits"

    def ready(self) -> None:
        # Retention: each tenant's cycle deletes the sandboxes, files and findings of its audits
        # whose retention has passed (beat, and POST /api/v1/runs with only=["audit_retention"]).
        from billing.cycle import cycle_step_register

        def run(*, as_of, contract_ids=None):
            from audits.services.audits import audits_purge_expired

            return {"audits_purged": audits_purge_expired()}

        cycle_step_register("audit_retention", order=90, run=run)
