"""``manage.py evaluator_backfill --project demo --evaluator helpfulness --hours 24``

Scores the matching calls of a past window with one evaluator, inline (in this process, with a
progress bar), within the evaluator's and the project's daily caps: it stops when the
evaluator pauses. ``--enqueue`` queues the jobs for the ``evaluate`` workers instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from apps.accounts.models import Project
from apps.core.errors import ApplicationError
from apps.evaluators import selectors, services
from apps.evaluators.models import EvaluatorStatus


class Command(BaseCommand):
    help = "Score a past window of calls with one evaluator (within its spend caps)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--evaluator", required=True, help="evaluator name or id")
        parser.add_argument("--hours", type=float, default=24.0, help="window ending now")
        parser.add_argument("--start", help="ISO start (overrides --hours)")
        parser.add_argument("--end", help="ISO end (default now)")
        parser.add_argument("--limit", type=int, default=10_000)
        parser.add_argument("--enqueue", action="store_true", help="queue instead of running")

    def handle(self, *args: Any, **opts: Any) -> None:
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"project {opts['project']!r} not found")
        evaluator = selectors.evaluator_list(project=project).filter(name=opts["evaluator"]).first()
        if evaluator is None and str(opts["evaluator"]).isdigit():
            evaluator = selectors.evaluator_get(project=project, evaluator_id=opts["evaluator"])
        if evaluator is None:
            raise CommandError(f"evaluator {opts['evaluator']!r} not found")
        end = _parse(opts["end"]) if opts["end"] else timezone.now()
        start = _parse(opts["start"]) if opts["start"] else end - timedelta(hours=opts["hours"])
        try:
            if opts["enqueue"]:
                queued = services.evaluator_backfill(
                    evaluator=evaluator, start=start, end=end, limit=opts["limit"]
                )
                self.stdout.write(f"queued {queued} jobs on the evaluate queue")
                return
            if evaluator.status != EvaluatorStatus.ACTIVE:
                raise ApplicationError(f"evaluator is paused: {evaluator.paused_reason}")
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        ids = services.backfill_call_ids(
            evaluator=evaluator, start=start, end=end, limit=opts["limit"]
        )
        job_ids = services.jobs_create(evaluator=evaluator, call_ids=ids)
        counts: dict[str, int] = {}
        bar_file: Any = self.stderr
        with tqdm(total=len(job_ids), desc=evaluator.name, unit="call", file=bar_file) as bar:
            for job_id in job_ids:
                outcome = services.evaluation_run(job_id=job_id, last_attempt=True)
                counts[outcome.status] = counts.get(outcome.status, 0) + 1
                bar.update(1)
                bar.set_postfix(counts)
                if outcome.status != "done":
                    evaluator.refresh_from_db(fields=["status", "paused_reason"])
                    if evaluator.status != EvaluatorStatus.ACTIVE:
                        break
        if evaluator.status != EvaluatorStatus.ACTIVE:
            self.stderr.write(f"stopped, the evaluator paused: {evaluator.paused_reason}")
        already = len(ids) - len(job_ids)
        summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "nothing to do"
        self.stdout.write(f"{summary}; {already} already scored by this version")


def _parse(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"not an ISO date-time: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.get_current_timezone())
