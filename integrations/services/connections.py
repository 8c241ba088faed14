"""Connecting a source: settings, the webhook secret (shown once, masked after, rotatable) and mappings.

Validation follows contracts.wire (one path for the API and the forms): a ``Reader`` over the
posted mapping, errors keyed by field name, nothing written unless every field is good.
"""

from __future__ import annotations

import secrets as pysecrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from contracts.wire import FieldErrors, Reader
from integrations.models import Connection, Mapping, MappingKind, Source

SECRET_GRACE = timedelta(hours=24)

DEFAULT_API_BASES = {
    Source.HUBSPOT: "https://api.hubapi.com",
    Source.ASANA: "https://app.asana.com/api/1.0",
    Source.HARVEST: "https://api.harvestapp.com",
}


@dataclass(frozen=True)
class SourceSpec:
    """What connecting a source asks for. ``secret``: ``generate`` (we make it and the admin pastes it
    into the source), ``paste`` (the source issues it), ``handshake`` (Asana sends it), ``none``."""

    secret: str
    settings: tuple[str, ...]
    required: tuple[str, ...] = ()
    help: str = ""


SPECS: dict[str, SourceSpec] = {
    Source.JIRA: SourceSpec(
        "generate",
        ("change_label",),
        help="Jira → System → WebHooks: paste the URL and the secret; events “Issue updated”.",
    ),
    Source.LINEAR: SourceSpec(
        "paste", ("change_label",), help="Linear → Settings → API → Webhooks: paste the URL, copy its signing secret."
    ),
    Source.ASANA: SourceSpec(
        "handshake",
        ("api_base",),
        required=("api_token",),
        help="Create the webhook with Asana's API (POST /webhooks, target = the URL); the handshake sets the secret.",
    ),
    Source.HUBSPOT: SourceSpec(
        "paste",
        (
            "api_base",
            "pipeline",
            "won_stage",
            "issuing_entity",
            "start_date_property",
            "end_date_property",
            "term_property",
        ),
        required=("api_token",),
        help="HubSpot app → Webhooks: subscribe to deal.propertyChange (dealstage); paste the app's client secret.",
    ),
    Source.SALESFORCE: SourceSpec(
        "none",
        ("api_base", "issuing_entity", "recurring_field", "api_version"),
        required=("organization_id", "api_base", "api_token"),
        help="Setup → Outbound Messages on Opportunity (fields Id, Name, IsWon, StageName, AccountId, CloseDate); "
        "workflow or flow when IsWon becomes true. The organization id must be yours.",
    ),
    Source.HARVEST: SourceSpec(
        "none",
        ("api_base", "account_id"),
        help="CSV: Reports → Detailed time → Export CSV. Scheduled pull: a personal access token and account id.",
    ),
    Source.TOGGL: SourceSpec("none", (), help="Reports → Detailed → Export → CSV."),
}

SETTING_LABELS = {
    "api_base": "API base URL",
    "api_token": "API token",
    "organization_id": "Organization id",
    "account_id": "Account id",
    "pipeline": "Pipeline",
    "won_stage": "Won stage",
    "start_date_property": "Start date property",
    "end_date_property": "End date property",
    "term_property": "Term (months) property",
    "recurring_field": "Line item billing frequency field",
    "api_version": "API version",
    "change_label": "Change-request label",
    "issuing_entity": "Issuing entity (id or invoice prefix)",
}
SETTING_DEFAULTS = {
    "won_stage": "closedwon",
    "pipeline": "default",
    "start_date_property": "contract_start_date",
    "end_date_property": "contract_end_date",
    "term_property": "contract_term_months",
    "recurring_field": "Billing_Frequency__c",
    "api_version": "59.0",
    "change_label": "change-request",
}


def setting(connection: Connection, key: str) -> str:
    value = (connection.settings or {}).get(key)
    if value:
        return str(value)
    if key == "api_base":
        return DEFAULT_API_BASES.get(connection.source, "")
    return SETTING_DEFAULTS.get(key, "")


def secret_generate() -> str:
    return "rvxwh_" + pysecrets.token_urlsafe(32)


def secret_mask(secret: str) -> str:
    if not secret:
        return ""
    return "•" * 8 + secret[-4:]


def accepted_secrets(connection: Connection, *, now=None) -> list[str]:
    """The current secret, plus the previous one while its grace period runs."""
    now = now or timezone.now()
    out = [connection.secret] if connection.secret else []
    if (
        connection.previous_secret
        and connection.previous_secret_expires_at
        and connection.previous_secret_expires_at > now
    ):
        out.append(connection.previous_secret)
    return out


def _url(r: Reader, key: str) -> str:
    value = r.text(key, max_length=300)
    if value:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            r.errors.add(key, f"“{value}” is not a URL; use e.g. https://api.example.com.")
            return ""
        return value.rstrip("/")
    return ""


def _read_settings(source: str, data: Any, errors: FieldErrors, *, existing: dict | None = None) -> dict[str, Any]:
    spec = SPECS[source]
    r = Reader(data, errors)
    r.unknown_keys(
        ("source", "name", "secret", "api_token", "organization_id", "account_id", *spec.settings),
        context=f"for a {Source(source).label} connection",
    )
    values: dict[str, Any] = {"settings": dict(existing or {})}
    values["name"] = r.text("name", max_length=200)
    for key in (*spec.settings, "organization_id", "account_id"):
        if key not in spec.settings and key not in spec.required:
            continue
        if key == "api_base":
            value = _url(r, key)
        else:
            value = r.text(key, max_length=200)
        if value:
            values["settings"][key] = value
        elif key in spec.required and not values["settings"].get(key):
            errors.add(key, f"{SETTING_LABELS.get(key, key)} is required for {Source(source).label}.")
    token = r.text("api_token", max_length=500)
    if "api_token" in spec.required and not token and existing is None:
        errors.add("api_token", f"{Source(source).label} needs an API token to fetch what its webhooks point to.")
    values["api_token"] = token
    if "account_id" in (values["settings"]) and not str(values["settings"]["account_id"]).isdigit():
        errors.add("account_id", "A Harvest account id is a number (Harvest → Developers → your token's Account ID).")
    secret = r.text("secret", max_length=300)
    if secret and spec.secret in ("generate", "paste"):
        if len(secret) < 16:
            errors.add("secret", "A signing secret has at least 16 characters.")
        values["secret"] = secret
    elif secret:
        errors.add("secret", f"{Source(source).label} does not sign with a secret set here.")
    elif spec.secret == "paste" and existing is None:
        errors.add("secret", f"Paste the signing secret that {Source(source).label} shows for the webhook.")
    return values


def connection_create(*, data: Any, user=None) -> tuple[Connection, str]:
    """Connect a source; returns the connection and its secret in full (shown this once)."""
    errors = FieldErrors()
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": ["Send the connection as a JSON object with a source."]})
    source = Reader(data, errors).choice("source", [s.value for s in Source], required=True, what="source")
    errors.raise_if_any()
    values = _read_settings(source, data, errors)
    errors.raise_if_any()
    secret = values.pop("secret", "") or (secret_generate() if SPECS[source].secret == "generate" else "")
    try:
        with transaction.atomic():
            connection = Connection.objects.create(source=source, secret=secret, created_by=user, **values)
    except IntegrityError:
        raise ValidationError(
            {"source": [f"{Source(source).label} is already connected; change or rotate that connection instead."]}
        ) from None
    return connection, secret


def connection_update(*, connection: Connection, data: Any) -> Connection:
    """Change settings (blank fields keep their value; secrets change only by rotation)."""
    errors = FieldErrors()
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": ["Send the settings as a JSON object."]})
    active = data.get("is_active")
    data = {k: v for k, v in data.items() if k not in ("secret", "is_active")}
    values = _read_settings(connection.source, data, errors, existing=connection.settings)
    errors.raise_if_any()
    with transaction.atomic():
        connection = Connection.objects.select_for_update().get(pk=connection.pk)
        connection.name = values["name"] or connection.name
        connection.settings = values["settings"]
        if values["api_token"]:
            connection.api_token = values["api_token"]
        if active is not None:
            connection.is_active = bool(active)
        connection.save()
    return connection


def connection_secret_rotate(*, connection_id: int, secret: str = "", grace: timedelta = SECRET_GRACE) -> str:
    """A new secret (generated, or the one the source now shows); the old one keeps working for
    ``grace`` so deliveries already signed with it are not refused while the source is updated."""
    secret = (secret or "").strip()
    with transaction.atomic():
        connection = Connection.objects.select_for_update().get(pk=connection_id)
        spec = SPECS[connection.source]
        if spec.secret == "none":
            raise ValidationError({"secret": [f"{connection.get_source_display()} does not use a signing secret."]})
        if spec.secret == "paste" and not secret:
            raise ValidationError({"secret": ["Paste the new secret the source shows."]})
        if secret and len(secret) < 16:
            raise ValidationError({"secret": ["A signing secret has at least 16 characters."]})
        now = timezone.now()
        if spec.secret == "handshake":
            new = ""  # the next handshake from Asana brings it
        else:
            new = secret or secret_generate()
        connection.previous_secret = connection.secret
        connection.previous_secret_expires_at = now + grace if connection.secret else None
        connection.secret = new
        connection.secret_rotated_at = now
        connection.save(
            update_fields=["previous_secret", "previous_secret_expires_at", "secret", "secret_rotated_at", "updated_at"]
        )
    return new


def mapping_set(
    *, connection: Connection, kind: str, external: str, contract_ref: str = "", value: str = ""
) -> Mapping:
    from contracts.models import Contract

    errors = FieldErrors()
    external = (external or "").strip()
    if kind not in MappingKind.values:
        errors.add("kind", f"Use one of {', '.join(MappingKind.values)}.")
    if not external or len(external) > 200:
        errors.add("external", "Give the name or key as the source shows it (at most 200 characters).")
    contract = None
    if kind == MappingKind.PROJECT:
        ref = (contract_ref or "").strip()
        contract = Contract.objects.filter(number=ref).first() or (
            Contract.objects.filter(pk=int(ref)).first() if ref.isdigit() and len(ref) < 19 else None
        )
        if contract is None:
            errors.add("contract", f"No contract {ref!r}: use its number.")
    elif not (value or "").strip():
        errors.add("value", "Give the role (task mappings) or the person's name (person mappings).")
    errors.raise_if_any()
    mapping, _ = Mapping.objects.update_or_create(
        connection=connection,
        kind=kind,
        external=external,
        defaults={"contract": contract, "value": (value or "").strip()[:200]},
    )
    return mapping
