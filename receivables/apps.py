from django.apps import AppConfig


class ReceivablesConfig(AppConfig):
    """Collections (payments, card payments, bank statements, dunning, aging and DSO).

    Above billing in the layers: billing never imports this app; it calls the hooks this app
    registers in ``billing.hooks`` (unapplied cash at issue, credit notes, the pay link, the
    invoice page's payments card) and runs its cycle step.
    """

    name = "receivables"
    verbose_name = "Collections"

    def ready(self) -> None:
        from billing import hooks
        from receivables.services import ledger
        from revexos.cycle import cycle_step_register

        hooks.on_invoices_issued(ledger.unapplied_cash_apply_at_issue_many)
        hooks.on_invoice_crediting(ledger.invoice_crediting)

        from receivables.services import paylinks

        hooks.pay_url_provider(paylinks.invoice_pay_url)

        from receivables import panels

        hooks.invoice_panel_provider(panels.invoice_payments_panel)

        from revexos.panels import panel_register

        panel_register("customer_detail", panels.customer_payments_panel)

        def run(*, as_of, contract_ids=None):
            from receivables.services.dunning import collections_run

            return collections_run(as_of=as_of)

        # After billing (50): invoices issued today are already in the ledger.
        def due(*, as_of):
            from billing.models import Invoice
            from receivables.models import Payment

            # Reminders chase issued invoices; statements list invoices and payments.
            return [Invoice.objects.exclude(status="draft"), Payment.objects.all()]

        cycle_step_register("collections", order=60, run=run, due=due)
