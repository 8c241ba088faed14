from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self) -> None:
        # The inbox sweep and the Harvest pull join the scheduler's cycle (beat and POST /api/v1/runs,
        # only=["integrations"]) before billing (order 50): a milestone reported while the broker was
        # down, or hours pulled from Harvest, are billed by the same cycle.
        from revexos.cycle import cycle_step_register

        def run(*, as_of, contract_ids=None):
            from integrations.services.inbox import inbox_process_pending
            from integrations.services.time_imports import harvest_pulls_due

            return {**inbox_process_pending(), **harvest_pulls_due()}

        def due(*, as_of):
            from integrations.models import Connection, InboxEvent, InboxStatus, Source
            from integrations.services.inbox import MAX_ATTEMPTS

            return [
                InboxEvent.objects.filter(
                    status__in=[InboxStatus.PENDING, InboxStatus.FAILED], attempts__lt=MAX_ATTEMPTS
                ),
                Connection.objects.filter(source=Source.HARVEST, is_active=True).exclude(api_token=""),
            ]

        cycle_step_register("integrations", order=30, run=run, due=due)

        # Stripe's keys belong to collections (receivables, below us): POST /api/v1/integrations
        # {"source": "stripe", …} connects the account there and GET lists it.
        from integrations.api import integration_source_register
        from receivables.services.stripe import stripe_integration_create, stripe_integration_listing

        integration_source_register("stripe", create=stripe_integration_create, listing=stripe_integration_listing)
