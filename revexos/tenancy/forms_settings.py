from __future__ import annotations

from django import forms

from revexos.tenancy.models import Tenant

LOGO_MAX_BYTES = 2 * 1024 * 1024
LOGO_MAX_SIDE = 4000


class WorkspaceSettingsForm(forms.ModelForm):
    clear_logo = forms.BooleanField(label="Remove the logo", required=False)

    class Meta:
        model = Tenant
        fields = ["name", "auto_issue_invoices", "renewal_window_days", "invoice_accent_color", "invoice_logo"]
        labels = {
            "name": "Workspace name",
            "auto_issue_invoices": "Issue invoices that pass the pre-send checks automatically",
            "renewal_window_days": "Renewal alert window (days before the end date)",
            "invoice_logo": "Invoice logo",
        }
        help_texts = {
            "name": "Shown in the app; invoices carry the issuing entity's legal name instead.",
            "renewal_window_days": "Each contract can set its own; alerts also come early enough to act "
            "before the contract's notice deadline.",
        }
        widgets = {
            "invoice_accent_color": forms.TextInput(attrs={"type": "color"}),
            "invoice_logo": forms.FileInput(attrs={"accept": "image/png,image/jpeg"}),
        }

    def clean_renewal_window_days(self):
        days = self.cleaned_data["renewal_window_days"]
        if days is None or not 1 <= days <= 366:
            raise forms.ValidationError("Enter a number of days from 1 to 366.")
        return days

    def clean_invoice_logo(self):
        logo = self.cleaned_data.get("invoice_logo")
        if not logo or logo == self.instance.invoice_logo:
            return logo
        if logo.size > LOGO_MAX_BYTES:
            raise forms.ValidationError("The logo is larger than 2 MB; export a smaller PNG or JPEG.")
        image = getattr(logo, "image", None)  # set by ImageField's validation (Pillow)
        if image is not None:
            if (image.format or "").upper() not in {"PNG", "JPEG"}:
                raise forms.ValidationError("Upload a PNG or JPEG image.")
            if max(image.size) > LOGO_MAX_SIDE:
                raise forms.ValidationError(f"The logo is larger than {LOGO_MAX_SIDE} pixels on a side.")
        return logo
