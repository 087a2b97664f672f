"""REST API of the alerts app (admin scope: an ``admin`` key, or an owner/member session).

| method and path                                   | view                    |
| ------------------------------------------------- | ----------------------- |
| GET, POST   /api/v1/channels                      | ChannelListCreateApi    |
| GET, PATCH, DELETE /api/v1/channels/<id>          | ChannelDetailApi        |
| POST        /api/v1/channels/<id>/test            | ChannelTestApi          |
| GET, POST   /api/v1/alert-rules                   | RuleListCreateApi       |
| GET, PATCH, DELETE /api/v1/alert-rules/<id>       | RuleDetailApi           |
| POST        /api/v1/alert-rules/<id>/evaluate     | RuleEvaluateApi         |
| GET         /api/v1/incidents                     | IncidentListApi         |
| GET         /api/v1/incidents/<id>                | IncidentDetailApi       |
| POST        /api/v1/incidents/<id>/acknowledge    | IncidentAcknowledgeApi  |
| POST        /api/v1/incidents/<id>/resolve        | IncidentResolveApi      |
| POST        /api/v1/incidents/<id>/mute           | IncidentMuteApi         |
| GET         /api/v1/notifications                 | NotificationListApi     |

Webhook URLs are never returned, only masked. A webhook's signing secret is returned once, in
the answer that creates the channel.

Size (~510 lines): one view per operation with its nested serializers, for channels, rules and
incidents; split it into ``apis/{channels,rules,incidents}.py`` when it grows further.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from drf_spectacular.utils import (
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Project
from apps.accounts.permissions import HasScope, project_for_request
from apps.alerts import selectors
from apps.alerts.durations import format_duration, parse_duration
from apps.alerts.models import (
    AlertRule,
    Channel,
    ChannelKind,
    Incident,
    IncidentState,
    Metric,
    Notification,
    NotificationStatus,
    Operator,
    RuleKind,
)
from apps.alerts.services import channels, evaluation, incidents, rules
from apps.core.schema import results_of
from apps.core.strict import BodySerializer, StrictSerializer


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "pattern": "^[0-9]+[smhdw]?$", "example": "5m"},
            {"type": "integer", "minimum": 0, "description": "seconds"},
        ]
    }
)
class HumanDurationField(serializers.Field[int, int, str, Any]):
    """``"5m"``, ``"1h"``, ``"7d"`` or seconds in; ``"5m"`` out."""

    default_error_messages = {
        "invalid": "expected a duration such as '5m', '1h' or a number of seconds"
    }

    def to_internal_value(self, data: Any) -> int:
        try:
            return parse_duration(data)
        except ValueError:
            self.fail("invalid")
            raise  # unreachable: fail() raises

    def to_representation(self, value: int) -> str:
        return format_duration(int(value))


class _AdminApi(APIView):
    permission_classes = [HasScope]
    required_scope = "admin"


def _project(request: Request) -> Project:
    # Every alerts API is admin-scoped (_AdminApi).
    return project_for_request(request, scope="admin")


def _page(request: Request) -> tuple[int, int]:
    class PageSerializer(serializers.Serializer[Any]):
        limit = serializers.IntegerField(min_value=1, max_value=500, default=50)
        offset = serializers.IntegerField(min_value=0, default=0)

    page = PageSerializer(data=request.query_params)
    page.is_valid(raise_exception=True)
    return page.validated_data["limit"], page.validated_data["offset"]


# --- channels -----------------------------------------------------------------------------------


class ChannelOutput(serializers.ModelSerializer[Channel]):
    url = serializers.CharField(source="url_masked")

    class Meta:
        model = Channel
        fields = [
            "id",
            "kind",
            "name",
            "url",
            "enabled",
            "disabled_reason",
            "disabled_at",
            "paused_until",
            "last_error",
            "last_sent_at",
            "created_at",
            "updated_at",
        ]


class ChannelListCreateApi(_AdminApi):
    @extend_schema_serializer(component_name="ChannelCreateInput")
    class InputSerializer(BodySerializer):
        kind = serializers.ChoiceField(ChannelKind.choices)
        name = serializers.CharField(max_length=200)
        url = serializers.CharField(max_length=2048)
        secret = serializers.CharField(
            max_length=200, required=False, help_text="webhook only; generated when absent"
        )

    @extend_schema(
        responses={200: results_of("ChannelList", ChannelOutput)}, operation_id="channels_list"
    )
    def get(self, request: Request) -> Response:
        channels = selectors.channel_list(project=_project(request))
        return Response({"results": ChannelOutput(channels, many=True).data})

    @extend_schema(
        request=InputSerializer, responses={201: ChannelOutput}, operation_id="channels_create"
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        channel, secret = channels.channel_create(project=_project(request), **data.validated_data)
        body: dict[str, Any] = dict(ChannelOutput(channel).data)
        if secret is not None:
            body["signing_secret"] = secret  # shown once
        return Response(body, status=status.HTTP_201_CREATED)


class ChannelDetailApi(_AdminApi):
    @extend_schema_serializer(component_name="ChannelUpdateInput")
    class InputSerializer(BodySerializer):
        name = serializers.CharField(max_length=200, required=False)
        url = serializers.CharField(max_length=2048, required=False)
        enabled = serializers.BooleanField(required=False)

    @extend_schema(responses={200: ChannelOutput}, operation_id="channels_retrieve")
    def get(self, request: Request, channel_id: int) -> Response:
        channel = selectors.channel_get(project=_project(request), channel_id=channel_id)
        return Response(ChannelOutput(channel).data)

    @extend_schema(
        request=InputSerializer, responses={200: ChannelOutput}, operation_id="channels_update"
    )
    def patch(self, request: Request, channel_id: int) -> Response:
        channel = selectors.channel_get(project=_project(request), channel_id=channel_id)
        data = self.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        channel = channels.channel_update(channel=channel, **data.validated_data)
        return Response(ChannelOutput(channel).data)

    @extend_schema(responses={204: None}, operation_id="channels_delete")
    def delete(self, request: Request, channel_id: int) -> Response:
        channel = selectors.channel_get(project=_project(request), channel_id=channel_id)
        channels.channel_delete(channel=channel)
        return Response(status=status.HTTP_204_NO_CONTENT)


class NotificationOutput(serializers.ModelSerializer[Notification]):
    channel = serializers.SerializerMethodField()
    incident_id = serializers.SerializerMethodField()
    event = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = [
            "id",
            "channel",
            "incident_id",
            "event",
            "status",
            "attempts",
            "http_status",
            "error",
            "history",
            "next_attempt_at",
            "sent_at",
            "created_at",
        ]

    def get_channel(self, obj: Notification) -> dict[str, Any]:
        return {"id": obj.channel_id, "name": obj.channel.name, "kind": obj.channel.kind}

    def get_incident_id(self, obj: Notification) -> int | None:
        return obj.event.incident_id if obj.event is not None else None

    def get_event(self, obj: Notification) -> str:
        return obj.event.kind if obj.event is not None else "test"


class ChannelTestApi(_AdminApi):
    @extend_schema(request=None, responses={200: NotificationOutput}, operation_id="channels_test")
    def post(self, request: Request, channel_id: int) -> Response:
        channel = selectors.channel_get(project=_project(request), channel_id=channel_id)
        notification = channels.channel_send_test(channel=channel)
        return Response(NotificationOutput(notification).data)


# --- rules --------------------------------------------------------------------------------------


class RuleOutput(serializers.ModelSerializer[AlertRule]):
    window = HumanDurationField(source="window_s")
    pending = HumanDurationField(source="pending_s")
    cooldown = HumanDurationField(source="cooldown_s")
    renotify_interval = HumanDurationField(source="renotify_s")
    check_interval = HumanDurationField(source="check_interval_s")
    channels = serializers.SerializerMethodField()
    open_incident_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = AlertRule
        fields = [
            "id",
            *rules.RULE_FIELDS,
            "open_incident_count",
            "next_check_at",
            "last_evaluated_at",
            "last_error",
            "created_at",
            "updated_at",
        ]

    def get_channels(self, obj: AlertRule) -> list[int]:
        return [c.pk for c in obj.channels.all()]


@extend_schema_serializer(component_name="AlertRuleInput")
class RuleInput(BodySerializer):
    # The fields of rules.RULE_FIELDS, typed (tests/alerts/test_api.py keeps them equal).
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(RuleKind.choices, default=RuleKind.METRIC)
    metric = serializers.ChoiceField(Metric.choices, required=False, allow_blank=True)
    operator = serializers.ChoiceField(Operator.choices, required=False)
    threshold = serializers.FloatField(required=False, allow_null=True)
    critical_threshold = serializers.FloatField(required=False, allow_null=True)
    window = HumanDurationField(required=False)
    min_samples = serializers.IntegerField(min_value=0, max_value=10**9, required=False)
    filters = serializers.DictField(required=False)
    group_by = serializers.ListField(child=serializers.CharField(), required=False, max_length=3)
    params = serializers.DictField(required=False)
    pending = HumanDurationField(required=False)
    cooldown = HumanDurationField(required=False)
    renotify_interval = HumanDurationField(required=False)
    check_interval = HumanDurationField(required=False)
    enabled = serializers.BooleanField(required=False)
    channels = serializers.ListField(child=serializers.IntegerField(), required=False)


class RuleListCreateApi(_AdminApi):
    InputSerializer = RuleInput
    OutputSerializer = RuleOutput

    @extend_schema(
        responses={200: results_of("RuleList", RuleOutput)}, operation_id="alert_rules_list"
    )
    def get(self, request: Request) -> Response:
        rules = selectors.rule_list(project=_project(request))
        return Response({"results": RuleOutput(rules, many=True).data})

    @extend_schema(
        request=RuleInput, responses={201: RuleOutput}, operation_id="alert_rules_create"
    )
    def post(self, request: Request) -> Response:
        data = RuleInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = request.user if request.user is not None else None
        rule = rules.rule_create(project=_project(request), user=user, **data.validated_data)
        rule = selectors.rule_get(project=_project(request), rule_id=rule.pk)
        return Response(RuleOutput(rule).data, status=status.HTTP_201_CREATED)


class RuleDetailApi(_AdminApi):
    InputSerializer = RuleInput
    OutputSerializer = RuleOutput

    @extend_schema(responses={200: RuleOutput}, operation_id="alert_rules_retrieve")
    def get(self, request: Request, rule_id: int) -> Response:
        rule = selectors.rule_get(project=_project(request), rule_id=rule_id)
        return Response(RuleOutput(rule).data)

    @extend_schema(
        request=RuleInput, responses={200: RuleOutput}, operation_id="alert_rules_update"
    )
    def patch(self, request: Request, rule_id: int) -> Response:
        rule = selectors.rule_get(project=_project(request), rule_id=rule_id)
        data = RuleInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        rules.rule_update(rule=rule, **data.validated_data)
        rule = selectors.rule_get(project=_project(request), rule_id=rule_id)
        return Response(RuleOutput(rule).data)

    @extend_schema(responses={204: None}, operation_id="alert_rules_delete")
    def delete(self, request: Request, rule_id: int) -> Response:
        rule = selectors.rule_get(project=_project(request), rule_id=rule_id)
        rules.rule_delete(rule=rule)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RuleEvaluateApi(_AdminApi):
    @extend_schema(
        request=None, responses={200: {"type": "object"}}, operation_id="alert_rules_evaluate"
    )
    def post(self, request: Request, rule_id: int) -> Response:
        rule = selectors.rule_get(project=_project(request), rule_id=rule_id)
        outcome = evaluation.rule_evaluate(rule_id=rule.pk)
        return Response(asdict(outcome))


# --- incidents and notifications ----------------------------------------------------------------


class IncidentOutput(serializers.ModelSerializer[Incident]):
    rule = serializers.SerializerMethodField()
    acknowledged_by = serializers.SerializerMethodField()
    latest_event = serializers.SerializerMethodField()
    confidence = serializers.SerializerMethodField()
    examples = serializers.SerializerMethodField()

    class Meta:
        model = Incident
        fields = [
            "id",
            "rule",
            "state",
            "severity",
            "group",
            "value",
            "threshold",
            "baseline",
            "sample_count",
            "summary",
            "confidence",
            "examples",
            "started_at",
            "fired_at",
            "resolved_at",
            "acknowledged_at",
            "acknowledged_by",
            "muted_until",
            "latest_event",
        ]

    def get_rule(self, obj: Incident) -> dict[str, Any]:
        return {"id": obj.rule_id, "name": obj.rule.name, "kind": obj.rule.kind}

    def get_acknowledged_by(self, obj: Incident) -> str | None:
        user = obj.acknowledged_by
        return user.get_username() if user is not None else None

    def get_latest_event(self, obj: Incident) -> dict[str, Any] | None:
        kind = getattr(obj, "latest_event_kind", None)
        if kind is None:
            return None
        return {"kind": kind, "at": getattr(obj, "latest_event_at", None)}

    def get_confidence(self, obj: Incident) -> str:
        return str(obj.details.get("confidence", ""))

    def get_examples(self, obj: Incident) -> list[Any]:
        examples = obj.details.get("examples", [])
        return examples if isinstance(examples, list) else []


class IncidentDetailOutput(IncidentOutput):
    events = serializers.SerializerMethodField()

    class Meta(IncidentOutput.Meta):
        fields = [*IncidentOutput.Meta.fields, "events"]

    def get_events(self, obj: Incident) -> list[dict[str, Any]]:
        return [
            {
                "kind": e.kind,
                "severity": e.severity,
                "value": e.value,
                "message": e.message,
                "actor": e.actor.get_username() if e.actor is not None else None,
                "created_at": e.created_at,
            }
            for e in obj.events.all()
        ]


class IncidentListApi(_AdminApi):
    class FilterSerializer(StrictSerializer):
        state = serializers.ChoiceField(IncidentState.choices, required=False)
        rule = serializers.IntegerField(required=False)

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: results_of("IncidentList", IncidentOutput)},
        operation_id="incidents_list",
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        limit, offset = _page(request)
        incidents = selectors.incident_list(
            project=_project(request),
            state=filters.validated_data.get("state"),
            rule_id=filters.validated_data.get("rule"),
        )[offset : offset + limit]
        return Response({"results": IncidentOutput(incidents, many=True).data})


class IncidentDetailApi(_AdminApi):
    @extend_schema(responses={200: IncidentDetailOutput}, operation_id="incidents_retrieve")
    def get(self, request: Request, incident_id: int) -> Response:
        incident = selectors.incident_get(project=_project(request), incident_id=incident_id)
        return Response(IncidentDetailOutput(incident).data)


def _incident_answer(request: Request, incident_id: int) -> Response:
    incident = selectors.incident_get(project=_project(request), incident_id=incident_id)
    return Response(IncidentDetailOutput(incident).data)


class IncidentAcknowledgeApi(_AdminApi):
    @extend_schema(
        request=None, responses={200: IncidentDetailOutput}, operation_id="incidents_acknowledge"
    )
    def post(self, request: Request, incident_id: int) -> Response:
        incident = selectors.incident_get(project=_project(request), incident_id=incident_id)
        incidents.incident_acknowledge(incident=incident, user=request.user)
        return _incident_answer(request, incident_id)


class IncidentResolveApi(_AdminApi):
    @extend_schema_serializer(component_name="IncidentResolveInput")
    class InputSerializer(BodySerializer):
        message = serializers.CharField(max_length=2000, required=False, default="")

    @extend_schema(
        request=InputSerializer,
        responses={200: IncidentDetailOutput},
        operation_id="incidents_resolve",
    )
    def post(self, request: Request, incident_id: int) -> Response:
        incident = selectors.incident_get(project=_project(request), incident_id=incident_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        incidents.incident_resolve(
            incident=incident, user=request.user, message=data.validated_data["message"]
        )
        return _incident_answer(request, incident_id)


class IncidentMuteApi(_AdminApi):
    @extend_schema_serializer(component_name="IncidentMuteInput")
    class InputSerializer(BodySerializer):
        duration = HumanDurationField(required=False, default=3600, help_text="0 unmutes")

    @extend_schema(
        request=InputSerializer,
        responses={200: IncidentDetailOutput},
        operation_id="incidents_mute",
    )
    def post(self, request: Request, incident_id: int) -> Response:
        incident = selectors.incident_get(project=_project(request), incident_id=incident_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        incidents.incident_mute(
            incident=incident, user=request.user, duration_s=data.validated_data["duration"]
        )
        return _incident_answer(request, incident_id)


class NotificationListApi(_AdminApi):
    class FilterSerializer(StrictSerializer):
        channel = serializers.IntegerField(required=False)
        incident = serializers.IntegerField(required=False)
        status = serializers.ChoiceField(NotificationStatus.choices, required=False)

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: results_of("NotificationList", NotificationOutput)},
        operation_id="notifications_list",
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        limit, offset = _page(request)
        notifications = selectors.notification_list(
            project=_project(request),
            channel_id=filters.validated_data.get("channel"),
            incident_id=filters.validated_data.get("incident"),
            status=filters.validated_data.get("status"),
        )[offset : offset + limit]
        return Response({"results": NotificationOutput(notifications, many=True).data})
