"""Query parameters shared by the compare and insight APIs: a time range, checked once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from django.utils import timezone
from rest_framework import serializers

from apps.core.strict import StrictSerializer


class RangeSerializer(StrictSerializer):
    """``start`` and ``end`` (optional) and ``project``; ``end`` must be after ``start``.

    A subclass with ``default_span`` fills a missing range (``end``: now, ``start``: ``end`` minus
    the span); ``max_span`` bounds its length (a 400 naming ``start``).
    """

    default_span: ClassVar[timedelta | None] = None
    max_span: ClassVar[timedelta | None] = None

    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)
    project = serializers.CharField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("start"), attrs.get("end")
        if self.default_span is not None:
            end = end or timezone.now()
            start = start or end - self.default_span
            attrs = {**attrs, "start": start, "end": end}
        if start and end and start >= end:
            raise serializers.ValidationError({"end": "must be after start"})
        if self.max_span is not None and start and end and end - start > self.max_span:
            raise serializers.ValidationError(
                {"start": f"the window is at most {self.max_span.days} days"}
            )
        return attrs
