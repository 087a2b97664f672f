from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from apps.core import schema  # noqa: F401 - registers the request-body extension
        from apps.core.dbtypes import clamp_timestamps

        connection_created.connect(clamp_timestamps, dispatch_uid="core.clamp_timestamps")
