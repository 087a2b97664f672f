"""A rule deleted while its evaluation is queued (or between lookup and lock) is not a crash."""

from __future__ import annotations

import pytest

from apps.alerts import tasks
from apps.alerts.services import evaluation


@pytest.mark.django_db
def test_evaluating_a_deleted_rule_answers_instead_of_raising(project, error_rule) -> None:
    rule_id = error_rule.pk
    error_rule.delete()
    outcome = evaluation.rule_evaluate(rule_id=rule_id)
    assert (outcome.ok, outcome.error) == (False, "rule: deleted")
    assert tasks.evaluate_rule.run(rule_id) == "missing"
