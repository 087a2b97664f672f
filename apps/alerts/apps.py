from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "apps.alerts"
    label = "alerts"

    def ready(self) -> None:
        # Registers the drift and regression evaluators (the metric ones live in evaluators).
        from apps.alerts import detector_evaluators  # noqa: F401
