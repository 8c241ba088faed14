from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_POST

from revexos.accounts.decorators import CapabilityRequiredMixin, requires
from revexos.accounts.forms import ApiKeyCreateForm, LoginForm, UserCreateForm, UserUpdateForm
from revexos.accounts.models import ApiKey, User
from revexos.accounts.services import api_key_create, api_key_revoke, user_create, user_update


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def get_initial(self):
        return {"username": self.request.GET.get("email", "")}


class PasswordChangeView(CapabilityRequiredMixin, auth_views.PasswordChangeView):
    capability = "account.self"
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("home")

    def form_valid(self, form):
        messages.success(self.request, "Your password was changed.")
        return super().form_valid(form)


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:login")

    def form_valid(self, form):
        messages.success(self.request, "Your password is set. Sign in with it now.")
        return super().form_valid(form)


def _send_invitation(request, user: User) -> None:
    form = PasswordResetForm({"email": user.email})
    form.is_valid()
    # An invited user has an unusable password, which PasswordResetForm skips; send directly.
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    context = {
        "email": user.email,
        "domain": request.get_host(),
        "site_name": request.tenant.name,
        "uid": urlsafe_base64_encode(force_bytes(user.pk)),
        "user": user,
        "token": default_token_generator.make_token(user),
        "protocol": "https" if request.is_secure() else "http",
        "inviter": request.user,
    }
    form.send_mail("accounts/email/invite_subject.txt", "accounts/email/invite.txt", context, None, user.email)


@requires("users.manage")
def user_list(request):
    users = User.objects.order_by("email")
    return render(request, "accounts/user_list.html", {"users": users, "form": UserCreateForm()})


@requires("users.manage")
def user_create_view(request):
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = user_create(
                email=data["email"], password=data["password"] or None, role=data["role"], full_name=data["full_name"]
            )
        except ValidationError as exc:
            for field, errs in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errs)
        else:
            if data["send_invite"]:
                _send_invitation(request, user)
                messages.success(request, f"{user.email} was added as {user.get_role_display()} and invited by e-mail.")
            else:
                messages.success(request, f"{user.email} was added as {user.get_role_display()}.")
            return redirect("accounts:user_list")
    return render(request, "accounts/user_form.html", {"form": form})


@requires("users.manage")
def user_edit_view(request, pk: int):
    user = get_object_or_404(User, pk=pk)
    form = UserUpdateForm(
        request.POST or None, initial={"full_name": user.full_name, "role": user.role, "is_active": user.is_active}
    )
    if request.method == "POST" and form.is_valid():
        try:
            user_update(user=user, acting_user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            for field, errs in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errs)
        else:
            messages.success(
                request, f"{user.email} is now {user.get_role_display()}{'' if user.is_active else ' (inactive)'}."
            )
            return redirect("accounts:user_list")
    return render(request, "accounts/user_edit.html", {"form": form, "subject": user})


@requires("api_keys.manage")
def api_key_list(request):
    form = ApiKeyCreateForm(request.POST or None)
    new_secret = None
    if request.method == "POST" and form.is_valid():
        issued = api_key_create(name=form.cleaned_data["name"], created_by=request.user)
        new_secret = issued.secret
        form = ApiKeyCreateForm()
    keys = ApiKey.objects.select_related("created_by")
    return render(request, "accounts/api_keys.html", {"keys": keys, "form": form, "new_secret": new_secret})


@require_POST
@requires("api_keys.manage")
def api_key_revoke_view(request, pk: int):
    key = api_key_revoke(key_id=get_object_or_404(ApiKey, pk=pk).pk)
    messages.success(request, f"The key “{key.name}” was revoked; requests using it now get 401.")
    return redirect("accounts:api_keys")
