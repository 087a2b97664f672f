"""UI routes, mounted at the site root by ``apps/urls.py``."""

from __future__ import annotations

from django.urls import path

from apps.dashboard.views import (
    agents,
    alerts,
    auth,
    calls,
    compare,
    drift,
    evaluators,
    insights,
    overview,
    prompts,
    review,
    safety,
    sessions,
    settings,
)

app_name = "dashboard"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("login/", auth.LoginView.as_view(), name="login"),
    path("logout/", auth.LogoutView.as_view(), name="logout"),
    path("project/switch/", auth.project_switch, name="project-switch"),
    path("calls/", calls.call_list, name="calls"),
    path("calls/views/", calls.saved_view_create, name="saved-view-create"),
    path("calls/views/<int:view_id>/delete/", calls.saved_view_remove, name="saved-view-delete"),
    path("calls/<str:call_id>/", calls.call_detail, name="call"),
    path("prompts/", prompts.prompts, name="prompts"),
    path("prompts/<path:name>/", prompts.prompt_detail, name="prompt"),
    path("sessions/", sessions.sessions, name="sessions"),
    path("sessions/<path:session_id>/", sessions.session, name="session"),
    path("users/", sessions.users, name="users"),
    path("agents/", agents.agents, name="agents"),
    path("compare/", compare.compare, name="compare"),
    path("insights/", insights.insights, name="insights"),
    path("drift/", drift.drift, name="drift"),
    path("drift/intents/rename/", drift.intent_rename, name="intent-rename"),
    path("drift/groups/name/", drift.group_name, name="drift-group-name"),
    path("drift/groups/review/", drift.group_review, name="drift-group-review"),
    path("drift/check/", drift.check_now, name="drift-check-now"),
    path("drift/baselines/fit/", drift.baseline_fit, name="baseline-fit"),
    path("drift/baselines/<int:baseline_id>/pin/", drift.baseline_pin, name="baseline-pin"),
    path("review/", review.review, name="review"),
    path("review/label/", review.review_label, name="review-label"),
    path("review/export/", review.review_export, name="review-export"),
    path("alerts/", alerts.alerts, name="alerts"),
    path("alerts/rules/", alerts.rule_new, name="rule-create"),
    path("alerts/rules/<int:rule_id>/edit/", alerts.rule_edit, name="rule-edit"),
    path("alerts/rules/<int:rule_id>/<str:action>/", alerts.rule_action, name="rule-action"),
    path("alerts/incidents/<int:incident_id>/", alerts.incident_detail, name="incident"),
    path(
        "alerts/incidents/<int:incident_id>/<str:action>/",
        alerts.incident_action,
        name="incident-action",
    ),
    path("evaluators/", evaluators.evaluators, name="evaluators"),
    path("evaluators/new/", evaluators.evaluator_edit, name="evaluator-create"),
    path("evaluators/<int:evaluator_id>/", evaluators.evaluator_edit, name="evaluator-edit"),
    path(
        "evaluators/<int:evaluator_id>/<str:action>/",
        evaluators.evaluator_action,
        name="evaluator-action",
    ),
    path("evaluators/connections/", evaluators.connection_new, name="llm-connection-create"),
    path(
        "evaluators/connections/<int:connection_id>/delete/",
        evaluators.connection_remove,
        name="llm-connection-delete",
    ),
    path("settings/", settings.settings_page, name="settings"),
    path("settings/keys/", settings.key_create, name="key-create"),
    path("settings/keys/created/", settings.key_created, name="key-created"),
    path("settings/keys/<int:key_id>/revoke/", settings.key_revoke, name="key-revoke"),
    path("settings/members/", settings.member_save, name="member-save"),
    path(
        "settings/members/<int:membership_id>/remove/", settings.member_delete, name="member-remove"
    ),
    path("settings/projects/", settings.project_new, name="project-create"),
    path("settings/retention/", settings.retention_save, name="retention-save"),
    path("settings/invites/", settings.invite_new, name="invite-create"),
    path("settings/invites/created/", settings.invite_created, name="invite-created"),
    path(
        "settings/invites/<int:invitation_id>/revoke/",
        settings.invite_revoke,
        name="invite-revoke",
    ),
    path("invite/<str:token>/", auth.invite_accept, name="invite-accept"),
    path("settings/safety/", safety.safety_settings_save, name="safety-settings-save"),
    path("settings/prices/", settings.price_save, name="price-save"),
    path("settings/prices/<int:override_id>/delete/", settings.price_delete, name="price-delete"),
    path("settings/channels/", settings.channel_new, name="channel-create"),
    path("settings/channels/created/", settings.channel_created, name="channel-created"),
    path(
        "settings/channels/<int:channel_id>/delete/", settings.channel_remove, name="channel-delete"
    ),
    path("settings/channels/<int:channel_id>/test/", settings.channel_test, name="channel-test"),
]
