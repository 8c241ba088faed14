from django.apps import AppConfig


class RenewalsConfig(AppConfig):
    name = "renewals"

    def ready(self) -> None:
        # The renewals step joins the scheduler's cycle (beat and POST /api/v1/runs). It runs before
        # billing (order 50) so a contract auto-renewed today bills its new term in the same cycle.
        from revexos.cycle import cycle_step_register

        def run(*, as_of, contract_ids=None):
            from renewals.services.cycle import renewals_cycle_step

            return renewals_cycle_step(as_of=as_of, contract_ids=contract_ids)

        def due(*, as_of):
            from contracts.models import Contract

            return [Contract.objects.all()]  # alerts and renewals all hang off contracts

        cycle_step_register("renewals", order=40, run=run, due=due)
