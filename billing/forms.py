"""Forms of the finance workspace. They validate input; the services decide."""

from __future__ import annotations

from django import forms

from billing.models import InvoiceStatus, PaymentStatus, ReviewTaskKind
from billing.selectors import DUE_WINDOWS

INVOICE_SORTS = [
    ("", "Drafts, then newest issued"),
    ("-number", "Number, highest first"),
    ("number", "Number, lowest first"),
    ("-issue_date", "Issued, newest first"),
    ("issue_date", "Issued, oldest first"),
    ("due_date", "Due, soonest first"),
    ("-due_date", "Due, latest first"),
    ("-total", "Total, largest first"),
    ("total", "Total, smallest first"),
]


class InvoiceFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *InvoiceStatus.choices])
    customer = forms.ChoiceField(required=False)
    contract = forms.CharField(
        required=False,
        max_length=50,
        widget=forms.TextInput(attrs={"placeholder": "Contract number", "type": "search"}),
    )
    due = forms.ChoiceField(required=False, choices=[("", "Any due date"), *DUE_WINDOWS.items()])
    held = forms.ChoiceField(required=False, choices=[("", "Held or not"), ("yes", "Held drafts"), ("no", "Not held")])
    payment = forms.ChoiceField(
        required=False, choices=[("", "Any payment state"), ("open", "Open (not settled)"), *PaymentStatus.choices]
    )
    sort = forms.ChoiceField(required=False, choices=INVOICE_SORTS)

    def __init__(self, *args, customers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer"].choices = [("", "Any customer"), *[(str(pk), name) for pk, name in customers]]

    def filters(self) -> dict[str, str]:
        if not self.is_valid():
            return {}
        return {k: (v or "").strip() for k, v in self.cleaned_data.items()}


class CreditNoteForm(forms.Form):
    amount = forms.DecimalField(min_value=0, max_digits=20, decimal_places=3)
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}))


class PoForm(forms.Form):
    po_number = forms.CharField(max_length=100, label="PO number")


class ReviewFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("open", "Open"), ("resolved", "Resolved"), ("", "All")])
    kind = forms.ChoiceField(required=False, choices=[("", "Any kind"), *ReviewTaskKind.choices])
    assignee = forms.ChoiceField(required=False)

    def __init__(self, *args, users=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].choices = [
            ("", "Anyone"),
            ("me", "Assigned to me"),
            ("none", "Unassigned"),
            *[(str(u.pk), u.get_full_name() or u.email) for u in users],
        ]
