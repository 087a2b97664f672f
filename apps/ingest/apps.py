from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "apps.ingest"
    label = "ingest"

    def ready(self) -> None:
        from apps.ingest import schema  # noqa: F401 - registers the OpenAPI auth extension
