from __future__ import annotations

from django import forms

from renewals.models import PERSON_DECISIONS, DecisionKind
from renewals.selectors import STATUS_FILTERS


class QueueFilterForm(forms.Form):
    status = forms.ChoiceField(choices=STATUS_FILTERS, required=False)
    owner = forms.ChoiceField(required=False)
    quarter = forms.ChoiceField(required=False)

    def __init__(self, *args, owners: list[tuple[str, str]], quarters: list[str], show_owner: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].choices = [("all", "All owners"), ("mine", "Mine"), ("none", "No owner"), *owners]
        self.fields["quarter"].choices = [("", "Any quarter"), *[(q, q.replace("-", " ")) for q in quarters]]
        if not show_owner:
            del self.fields["owner"]


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[(d.value, d.label) for d in PERSON_DECISIONS])
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "What was agreed, or why"}),
        max_length=2000,
        required=False,
    )
    snooze_until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    term_months = forms.IntegerField(required=False, min_value=1, max_value=120, label="Term (months)")
    uplift_pct = forms.DecimalField(
        required=False, min_value=0, max_value=100, max_digits=9, decimal_places=4, label="Uplift %"
    )

    def proposed_terms(self) -> dict:
        data = self.cleaned_data
        terms = {}
        if data.get("term_months"):
            terms["term_months"] = data["term_months"]
        if data.get("uplift_pct") is not None:
            terms["uplift_pct"] = str(data["uplift_pct"])
        return terms

    @property
    def is_snooze(self) -> bool:
        return self.data.get("decision") == DecisionKind.SNOOZED
