"""Routes of the alerts API; the project mounts this module under ``api/v1/``."""

from __future__ import annotations

from django.urls import path

from apps.alerts import apis

app_name = "alerts"

urlpatterns = [
    path("channels", apis.ChannelListCreateApi.as_view(), name="channels"),
    path("channels/<int:channel_id>", apis.ChannelDetailApi.as_view(), name="channel-detail"),
    path("channels/<int:channel_id>/test", apis.ChannelTestApi.as_view(), name="channel-test"),
    path("alert-rules", apis.RuleListCreateApi.as_view(), name="rules"),
    path("alert-rules/<int:rule_id>", apis.RuleDetailApi.as_view(), name="rule-detail"),
    path(
        "alert-rules/<int:rule_id>/evaluate", apis.RuleEvaluateApi.as_view(), name="rule-evaluate"
    ),
    path("incidents", apis.IncidentListApi.as_view(), name="incidents"),
    path("incidents/<int:incident_id>", apis.IncidentDetailApi.as_view(), name="incident-detail"),
    path(
        "incidents/<int:incident_id>/acknowledge",
        apis.IncidentAcknowledgeApi.as_view(),
        name="incident-acknowledge",
    ),
    path(
        "incidents/<int:incident_id>/resolve",
        apis.IncidentResolveApi.as_view(),
        name="incident-resolve",
    ),
    path("incidents/<int:incident_id>/mute", apis.IncidentMuteApi.as_view(), name="incident-mute"),
    path("notifications", apis.NotificationListApi.as_view(), name="notifications"),
]
