from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Outbound webhooks: endpoints per tenant, an outbox of events, signed deliveries with retries.

    Low in the layers (revexos/): every app publishes its events here with ``event_publish``."""

    name = "revexos.webhooks"
    label = "webhooks"
    verbose_name = "Outbound webhooks"
