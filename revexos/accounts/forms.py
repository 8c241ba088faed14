from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from revexos.accounts.models import Role, User


class LoginForm(AuthenticationForm):
    username = forms.EmailField(
        label="E-mail", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        # Arriving with the e-mail filled in (after sign-up), the cursor belongs in the password.
        if self.initial.get("username"):
            self.fields["username"].widget.attrs.pop("autofocus", None)
            self.fields["password"].widget.attrs["autofocus"] = True

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That e-mail and password do not match an account here. Check both and try again.",
    }


class UserCreateForm(forms.Form):
    email = forms.EmailField(label="E-mail")
    full_name = forms.CharField(label="Full name", max_length=150, required=False)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)
    send_invite = forms.BooleanField(label="E-mail an invitation to set a password", required=False, initial=True)
    password = forms.CharField(
        label="Or set a password now",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to let the user choose one from the invitation.",
    )

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("A user with this e-mail already exists.")
        return email

    def clean(self):
        data = super().clean()
        if not data.get("send_invite") and not data.get("password"):
            raise forms.ValidationError("Either send an invitation or set a password.")
        if data.get("password"):
            from django.contrib.auth.password_validation import validate_password

            try:
                validate_password(data["password"], user=User(email=data.get("email", "")))
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return data


class UserUpdateForm(forms.Form):
    full_name = forms.CharField(label="Full name", max_length=150, required=False)
    role = forms.ChoiceField(choices=Role.choices)
    is_active = forms.BooleanField(label="Active", required=False)


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100, help_text="What will use this key, e.g. “Jira sync”.")
