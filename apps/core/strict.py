"""A serializer that refuses blank parameters instead of ignoring them.

DRF treats ``?state=`` (or a blank form field) on an optional field as if it were absent, so an
invalid request (``incidents?state=``, ``drift/checks?start=``) was answered as an unfiltered
one. Here a parameter that is present must be valid: blank is a 400 naming it.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class StrictSerializer(serializers.Serializer[Any]):
    def to_internal_value(self, data: Any) -> Any:
        if hasattr(data, "getlist"):
            blank = {
                name: ["may not be blank"]
                for name, field in self.fields.items()
                if name in data
                and not field.read_only
                and not getattr(field, "allow_blank", False)
                and all(value == "" for value in data.getlist(name))
            }
            if blank:
                raise serializers.ValidationError(blank)
        return super().to_internal_value(data)
