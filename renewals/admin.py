from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from renewals.models import RenewalAlert, RenewalDecision


class RenewalDecisionInline(admin.TabularInline):
    model = RenewalDecision
    extra = 0
    can_delete = False
    fields = ["decided_at", "decision", "decided_by", "note", "proposed_terms", "snooze_until"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False  # decisions are recorded through the queue, which applies them


@admin.register(RenewalAlert)
class RenewalAlertAdmin(SimpleHistoryAdmin):
    list_display = [
        "contract",
        "end_date",
        "notice_deadline",
        "status",
        "owner",
        "annual_recurring_value",
        "currency",
        "escalated_at",
    ]
    list_filter = ["status", "currency"]
    search_fields = ["contract__number", "contract__customer__legal_name"]
    list_select_related = ["contract", "owner"]
    raw_id_fields = ["contract", "owner", "decided_by", "renewal_version"]
    readonly_fields = [
        "contract",
        "end_date",
        "raised_at",
        "raised_on",
        "window_days",
        "window_start",
        "notice_deadline",
        "currency",
        "annual_recurring_value",
        "remaining_value",
        "status",
        "escalated_at",
        "decided_at",
        "decided_by",
        "decision_note",
        "proposed_terms",
        "renewal_version",
        "snoozed_until",
    ]
    inlines = [RenewalDecisionInline]
