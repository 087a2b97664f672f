"""Serializers that refuse what DRF would silently ignore.

- :class:`StrictSerializer` (query parameters and bodies): DRF treats ``?state=`` (or a blank
  form field) on an optional field as if it were absent, so an invalid request
  (``incidents?state=``, ``drift/checks?start=``) was answered as an unfiltered one. Here a
  parameter that is present must be valid: blank is a 400 naming it.
- :class:`BodySerializer` (request bodies): DRF drops a field it does not declare, so a
  misspelt one (``PATCH {"enabeld": false}``) was answered 200 and changed nothing. Here it is a
  400 naming the field and the fields the body takes; the OpenAPI schema says the same
  (``additionalProperties: false``, :mod:`apps.core.schema`). Query parameters are not checked
  this way: pagination, ``format`` and a proxy's cache-busting ones are not the serializer's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers

# Accepted in every body without being declared: a person (not a key) may name the project in
# the body (``apps.accounts.permissions``), and an HTML form posts its CSRF token.
BODY_ALWAYS_ALLOWED = frozenset({"project", "csrfmiddlewaretoken"})


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


class BodySerializer(StrictSerializer):
    """A request body (or an object nested in one): an undeclared field is a 400 naming it."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            known = set(self.fields)
            unknown = sorted(str(name) for name in data if name not in known | BODY_ALWAYS_ALLOWED)
            errors: dict[str, list[str]] = {}
            if unknown:
                expected = ", ".join(sorted(n for n, f in self.fields.items() if not f.read_only))
                errors = {name: [f"unknown field; this body takes: {expected}"] for name in unknown}
            project = data.get("project")
            if "project" not in known and project is not None and not isinstance(project, str):
                errors["project"] = ["must be a project's slug (a string)"]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)
