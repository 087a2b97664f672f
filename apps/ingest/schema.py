"""OpenAPI description of the Langfuse-compatible OTLP route's Basic authentication."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BasicSecretKeyScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "apps.ingest.otlp.api.BasicSecretKeyAuthentication"
    name = ["langfuseBasic", "langfuseBearer"]

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        return [{"langfuseBasic": []}, {"langfuseBearer": []}]  # either one, not both

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, Any]]:
        return [
            {
                "type": "http",
                "scheme": "basic",
                "description": "`Basic base64(public:secret)` as the Langfuse SDK sends it, with "
                "a Driftline project key (ingest scope) as the secret; the public part is ignored.",
            },
            {
                "type": "http",
                "scheme": "bearer",
                "description": "A Driftline project key with the ingest scope.",
            },
        ]
