"""Forms for granting, revoking and extending exceptions. They parse input; the services decide."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from contracts.models import Contract, Customer
from revexos.money import CURRENCIES

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _contracts():
    return Contract.objects.filter(status__in=["active", "draft"]).select_related("customer").order_by("number")


def _customers():
    return Customer.objects.filter(is_active=True).order_by("legal_name")


class ContractChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return f"{obj.number} · {obj.customer.legal_name} · {obj.title}"


class ServiceErrorsMixin:
    """Put a service's ValidationError on the matching fields (unknown names go to the form)."""

    field_aliases: dict[str, str] = {}

    def add_service_errors(self, exc: ValidationError) -> None:
        errors = exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
        for name, messages in errors.items():
            target = self.field_aliases.get(name, name)
            for message in messages:
                self.add_error(target if target in self.fields else None, message)


class DiscountForm(ServiceErrorsMixin, forms.Form):
    field_aliases = {"price_line": "line_ref", "approved_by": None}

    contract = ContractChoice(
        queryset=_contracts(),
        required=False,
        help_text="Leave empty for a discount on all of the customer's contracts.",
    )
    customer = forms.ModelChoiceField(
        queryset=_customers(), required=False, help_text="Needed only without a contract."
    )
    line_ref = forms.CharField(
        label="Price line ref",
        required=False,
        max_length=40,
        help_text="Narrow the discount to one price line of the contract, e.g. L1.",
    )
    kind = forms.ChoiceField(choices=[("percentage", "Percentage"), ("fixed", "Fixed amount per billing cycle")])
    value = forms.DecimalField(
        label="Value", max_digits=20, decimal_places=6, help_text="10 = 10 %; for fixed, the amount per cycle."
    )
    start_date = forms.DateField(widget=DATE)
    end_date = forms.DateField(
        widget=DATE, required=False, help_text="Last day of the window; a period running past it is prorated by days."
    )
    max_cycles = forms.IntegerField(
        label="Billing cycles",
        min_value=1,
        max_value=1000,
        required=False,
        help_text="Instead of (or as well as) an end date.",
    )
    no_expiry_reason = forms.CharField(
        label="No-expiry reason",
        required=False,
        max_length=500,
        help_text="Only for a discount that never expires: say why.",
    )
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}), help_text="Why it was granted.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["contract"].queryset = _contracts()
        self.fields["customer"].queryset = _customers()


class CreditForm(ServiceErrorsMixin, forms.Form):
    field_aliases = {"invoices": "pinned_invoices", "approved_by": None}

    customer = forms.ModelChoiceField(queryset=_customers())
    contract = ContractChoice(
        queryset=_contracts(), required=False, help_text="Only this contract's invoices (optional)."
    )
    amount = forms.DecimalField(max_digits=20, decimal_places=3)
    currency = forms.ChoiceField(choices=CURRENCIES, initial="USD")
    expires_on = forms.DateField(label="Expires on", widget=DATE, required=False, help_text="Last day it can be used.")
    no_expiry_reason = forms.CharField(label="No-expiry reason", required=False, max_length=500)
    pinned_invoices = forms.CharField(
        label="Only on invoices",
        required=False,
        max_length=600,
        help_text="Comma-separated: invoice numbers or CONTRACT@YYYY-MM (e.g. C-1001@2026-03). Empty = the next invoices.",
    )
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["contract"].queryset = _contracts()
        self.fields["customer"].queryset = _customers()

    def pins(self) -> list[str]:
        return [p.strip() for p in (self.cleaned_data.get("pinned_invoices") or "").split(",") if p.strip()]


class OverrideForm(ServiceErrorsMixin, forms.Form):
    field_aliases = {"price_line": "line_ref", "approved_by": None}

    contract = ContractChoice(queryset=_contracts())
    line_ref = forms.CharField(label="Price line ref", max_length=40, help_text="e.g. L3")
    role = forms.CharField(
        required=False, max_length=100, help_text="Time & materials: the rate-card role, e.g. engineer."
    )
    rate = forms.DecimalField(label="Custom rate", max_digits=20, decimal_places=6)
    start_date = forms.DateField(widget=DATE)
    end_date = forms.DateField(widget=DATE)
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["contract"].queryset = _contracts()


class RevokeForm(forms.Form):
    reason = forms.CharField(
        max_length=500, error_messages={"required": "Say why it is revoked; it is kept in its history."}
    )


class ExtendForm(ServiceErrorsMixin, forms.Form):
    field_aliases = {"expires_on": "end_date"}

    end_date = forms.DateField(widget=DATE, required=False)
    max_cycles = forms.IntegerField(min_value=1, max_value=1000, required=False)
    reason = forms.CharField(
        max_length=500, error_messages={"required": "Say why it is extended; it is kept in its history."}
    )


FILTER_EXPIRING = [
    ("", "Any time"),
    ("30", "in 30 days"),
    ("60", "in 60 days"),
    ("90", "in 90 days"),
    ("quarter", "this quarter"),
]


class ListFilterForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[("all", "All"), ("discount", "Discounts"), ("credit", "Credits"), ("override", "Custom rates")],
        required=False,
    )
    status = forms.ChoiceField(
        choices=[
            ("live", "Scheduled or active"),
            ("expired", "Expired or used"),
            ("revoked", "Revoked"),
            ("all", "All"),
        ],
        required=False,
    )
    expiring = forms.ChoiceField(label="Expiring", choices=FILTER_EXPIRING, required=False)
