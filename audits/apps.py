from django.apps import AppConfig


class AuditsConfig(AppConfig):
    name = "audits"

    def ready(self) -> None:
        # Retention: each tenant's cycle deletes the sandboxes, files and findings of its audits
        # whose retention has passed (beat, and POST /api/v1/runs with only=["audit_retention"]).
        from billing.cycle import cycle_step_register

        def run(*, as_of, contract_ids=None):
            from django.utils import timezone

            from audits.services.audits import audits_purge_expired
            from revexos.dates import current_tenant
            from revexos.tenancy.services.provisioning import tenant_sandboxes_purge

            now = timezone.now()
            purged = audits_purge_expired(now=now)
            # Then any sandbox of this tenant past its retention that no audit named (never another tenant's).
            dropped = tenant_sandboxes_purge(now=now, owner=current_tenant())
            return {"audits_purged": purged, "sandboxes_dropped": len(dropped)}

        def due(*, as_of):
            from django.db import connection

            from audits.models import Audit
            from revexos.tenancy.models import Tenant

            return [
                Audit.objects.filter(purged_at__isnull=True),
                Tenant.objects.filter(sandbox_of__schema_name=connection.schema_name),  # sandboxes left behind
            ]

        cycle_step_register("audit_retention", order=90, run=run, due=due)
