"""Settings → Webhooks: endpoints, their signing secret (shown once), the delivery log, redeliver."""

from __future__ import annotations

import re

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from revexos.accounts.decorators import requires
from revexos.webhooks.api import VERIFY_SNIPPET
from revexos.webhooks.events import EVENT_TYPES
from revexos.webhooks.models import WebhookDelivery, WebhookEndpoint
from revexos.webhooks.services import endpoint_create, endpoint_enable, webhook_redeliver


def _snippet_parts() -> tuple[list[str], str]:
    """The verification notes (written as Markdown for the API reference) as the page shows them:
    paragraphs with `inline code` in <code>, and the Python example as a code block."""
    prose, _, rest = VERIFY_SNIPPET.partition("```python")
    code, _, tail = rest.partition("```")
    paragraphs = []
    for block in (prose + tail).strip().split("\n\n"):
        text = escape(" ".join(block.split()))
        paragraphs.append(mark_safe(re.sub(r"`([^`]+)`", r"<code>\1</code>", text)))
    return paragraphs, code.strip("\n")


@requires("webhooks.manage")
def endpoint_list(request):
    errors: dict[str, list[str]] = {}
    values = {"url": "", "events": [], "description": ""}
    if request.method == "POST":
        values = {
            "url": request.POST.get("url", ""),
            "events": request.POST.getlist("events"),
            "description": request.POST.get("description", ""),
        }
        try:
            endpoint = endpoint_create(data=values, user=request.user)
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            # The secret is shown once, on the page the creation redirects to.
            request.session[f"webhook-secret-{endpoint.pk}"] = endpoint.secret
            return redirect("webhooks:endpoint_detail", pk=endpoint.pk)
    context = {
        "endpoints": WebhookEndpoint.objects.order_by("-created_at", "-id"),
        "event_types": EVENT_TYPES.items(),
        "values": values,
        "errors": errors,
        "snippet": _snippet_parts(),
    }
    return render(request, "webhooks/endpoint_list.html", context, status=400 if errors else 200)


@requires("webhooks.manage")
def endpoint_detail(request, pk: int):
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint).select_related("event").prefetch_related("log")
    page = Paginator(deliveries.order_by("-created_at", "-id"), 25).get_page(request.GET.get("page"))
    context = {
        "endpoint": endpoint,
        "page": page,
        "secret": request.session.pop(f"webhook-secret-{endpoint.pk}", None),
    }
    return render(request, "webhooks/endpoint_detail.html", context)


@require_POST
@requires("webhooks.manage")
def endpoint_toggle(request, pk: int):
    endpoint = endpoint_enable(
        endpoint_id=get_object_or_404(WebhookEndpoint, pk=pk).pk, enabled=request.POST.get("enable") == "1"
    )
    messages.success(request, f"{endpoint.url} is {'enabled' if endpoint.is_active else 'disabled'}.")
    return redirect("webhooks:endpoint_detail", pk=endpoint.pk)


@require_POST
@requires("webhooks.manage")
def delivery_redeliver(request, pk: int):
    delivery = get_object_or_404(WebhookDelivery, pk=pk)
    try:
        outcome = webhook_redeliver(delivery_id=delivery.pk)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if outcome.status_code and 200 <= outcome.status_code < 300:
            messages.success(request, f"Delivered again (HTTP {outcome.status_code}).")
        else:
            messages.error(request, f"The receiver answered {outcome.status_code or 'nothing'}; see the log below.")
    return redirect("webhooks:endpoint_detail", pk=delivery.endpoint_id)
