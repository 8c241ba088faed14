from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "insights"

    def ready(self) -> None:
        # The leakage scan joins the scheduler's cycle (beat and POST /api/v1/runs, only=["leakage"])
        # after billing (order 50): what billing could bill today is billed, so a finding is a real
        # leak and not a period the same cycle is about to invoice.
        from revexos.cycle import cycle_step_register

        def run(*, as_of, contract_ids=None):
            from insights.services.leakage import leakage_scan

            return leakage_scan(as_of=as_of, contract_ids=contract_ids).as_dict()

        def due(*, as_of):
            from contracts.models import Contract
            from insights.models import LeakageFinding

            return [Contract.objects.all(), LeakageFinding.objects.all()]  # scan contracts, resolve findings

        cycle_step_register("leakage", order=60, run=run, due=due)

        # The dashboards' stored projections catch up last, after everything the cycle changed:
        # the customers marked dirty and, once a day, every row (they are computed as of a day).
        # One step, chunked by customer inside (a customer's contracts are projected together).
        def projections_run(*, as_of, contract_ids=None):
            from insights.services.projections import projections_refresh

            return projections_refresh(contract_ids, today=as_of, stale_only=True)

        def projections_due(*, as_of):
            from contracts.models import Contract
            from insights.models import ContractProjection, ProjectionDirty

            # Contracts to project, customers marked dirty, stored rows to refresh or drop: an empty
            # tenant has none, so the idle beat skips it (revexos.cycle.cycle_steps_due).
            return [Contract.objects.all(), ProjectionDirty.objects.all(), ContractProjection.objects.all()]

        cycle_step_register("projections", order=90, run=projections_run, due=projections_due)

        # A leakage review task links to its finding on the review task list (billing never imports insights).
        from billing.hooks import review_task_subject_provider
        from insights.selectors_leakage import findings_of_review_tasks

        review_task_subject_provider(findings_of_review_tasks)
