"""Django admin for alerts: read-mostly; secrets are never shown."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin

from apps.alerts.models import AlertRule, Channel, Incident, IncidentEvent, Notification

if TYPE_CHECKING:  # the admin classes are generic only in django-stubs
    ChannelBase = admin.ModelAdmin[Channel]
    RuleBase = admin.ModelAdmin[AlertRule]
    IncidentBase = admin.ModelAdmin[Incident]
    NotificationBase = admin.ModelAdmin[Notification]
    EventInlineBase = admin.TabularInline[IncidentEvent, Incident]
else:
    ChannelBase = RuleBase = IncidentBase = NotificationBase = admin.ModelAdmin
    EventInlineBase = admin.TabularInline


@admin.register(Channel)
class ChannelAdmin(ChannelBase):
    list_display = ["id", "project", "kind", "name", "url_masked", "enabled", "disabled_reason"]
    list_filter = ["kind", "enabled"]
    exclude = ["url_encrypted", "secret_encrypted"]
    readonly_fields = ["url_masked", "disabled_at", "last_error", "last_sent_at", "paused_until"]


@admin.register(AlertRule)
class AlertRuleAdmin(RuleBase):
    list_display = ["id", "project", "name", "kind", "metric", "threshold", "enabled"]
    list_filter = ["kind", "enabled"]
    readonly_fields = ["next_check_at", "eval_state", "eval_started_at", "last_evaluated_at"]


class IncidentEventInline(EventInlineBase):
    model = IncidentEvent
    extra = 0
    readonly_fields = ["kind", "severity", "value", "message", "actor", "created_at"]


@admin.register(Incident)
class IncidentAdmin(IncidentBase):
    list_display = ["id", "rule", "group_key", "state", "severity", "started_at", "resolved_at"]
    list_filter = ["state", "severity"]
    inlines = [IncidentEventInline]


@admin.register(Notification)
class NotificationAdmin(NotificationBase):
    list_display = ["id", "channel", "status", "attempts", "http_status", "created_at"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in Notification._meta.get_fields() if f.concrete]
