"""OpenAPI post-processing: the error answers every operation can give, documented once.

Every API view answers errors in one shape (``apps/core/api.py``): ``{"error": ..., "field":
...}``. Rather than repeat them on each view, this hook adds to each operation the statuses
it can produce and does not document already: 400 (invalid parameters or body), 401 (no or a
bad key), 403 (a scope or role that does not allow it), 404 for operations with a path
parameter or that name a project, 405 never (routing), 429 where a rate limit applies.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers


def results_of(name: str, output: type[serializers.Serializer[Any]]) -> Any:
    """The schema of a list answer as it really is: ``{"results": [...]}``."""
    return inline_serializer(name, {"results": output(many=True)})


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "field": {"type": "string"},
        "details": {"type": "object"},
    },
}
_DESCRIPTIONS = {
    "400": "invalid parameters or body; `field` names the first one",
    "401": "missing, unknown or revoked key",
    "403": "the key's scopes or the user's role do not allow this",
    "404": "not found in this project (or no such project)",
}


def error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> Any:
    """drf-spectacular ``POSTPROCESSING_HOOKS`` entry."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("Error", ERROR_SCHEMA)
    ref = {"$ref": "#/components/schemas/Error"}
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if path.rstrip("/").endswith("/health"):
                continue
            for status, description in _DESCRIPTIONS.items():
                if status in responses:
                    continue
                responses[status] = {
                    "description": description,
                    "content": {"application/json": {"schema": ref}},
                }
            del method
    return result


class BodySerializerExtension(OpenApiSerializerExtension):  # type: ignore[no-untyped-call]
    """Request bodies of :class:`apps.core.strict.BodySerializer` take no other field: the schema
    says so (``additionalProperties: false``), with the ``project`` slug every body may carry."""

    target_class = "apps.core.strict.BodySerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: Any) -> Any:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["additionalProperties"] = False
            schema.setdefault("properties", {}).setdefault(
                "project",
                {
                    "type": "string",
                    "description": "the project's slug, for a signed-in person; an API key"
                    " acts on its own project",
                },
            )
        return schema
