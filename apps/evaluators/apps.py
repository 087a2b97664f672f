from django.apps import AppConfig


class EvaluatorsConfig(AppConfig):
    name = "apps.evaluators"
    label = "evaluators"

    def ready(self) -> None:
        # Scores join the call detail API through a hook of traces (traces sits below us).
        from apps.evaluators.selectors import register_call_detail_scores

        register_call_detail_scores()
