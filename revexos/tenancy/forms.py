from __future__ import annotations

from django import forms

from revexos.tenancy.services.provisioning import tenant_domain_for, tenant_provision_validate


class SignupForm(forms.Form):
    company_name = forms.CharField(label="Company name", max_length=200)
    slug = forms.CharField(
        label="Workspace address",
        max_length=32,
        help_text="Lowercase letters, digits and hyphens; your workspace will live at <slug>.%s.",
    )
    admin_email = forms.EmailField(label="Your work e-mail")
    password = forms.CharField(
        label="Password", widget=forms.PasswordInput, help_text="At least 10 characters, not a common password."
    )

    def __init__(self, *args, base_domain: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["slug"].help_text = self.fields["slug"].help_text % base_domain

    def clean_slug(self):
        return self.cleaned_data["slug"].strip().lower()

    def clean(self):
        data = super().clean()
        slug = data.get("slug", "")
        errors = tenant_provision_validate(
            slug=slug,
            domain=tenant_domain_for(slug),
            admin_email=data.get("admin_email", ""),
            admin_password=data.get("password", ""),
        )
        mapping = {"slug": "slug", "domain": "slug", "admin_email": "admin_email", "admin_password": "password"}
        for field, problems in errors.items():
            target = mapping[field]
            if target in self.errors or target not in data:  # already reported by the field itself
                continue
            for problem in problems:
                self.add_error(target, problem)
        return data
