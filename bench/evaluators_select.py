"""Cost of evaluator selection, per call: what the ingest follow-up adds (one ``select_calls``
message per processed batch, sent by name) and what the evaluate worker spends choosing jobs
(load the batch's filter fields, match every active evaluator, deterministic sampling, insert
the jobs under their unique keys).

    python -m bench.evaluators_select [--calls 500] [--evaluators 3] [--rounds 5]

Runs on the bench stack (``.driftline/bench``); the jobs it creates are never sent to a worker.
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import timedelta

from bench.common import percentile, setup_django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=500, help="calls per follow-up batch")
    parser.add_argument("--evaluators", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    setup_django()

    from celery import current_app
    from django.db import transaction
    from django.utils import timezone

    from apps.accounts.models import Organization, Project
    from apps.evaluators import enqueue, services
    from apps.evaluators.models import Evaluator
    from apps.ingest.pipeline import EVALUATE_SELECT_TASK
    from apps.queues import EVALUATE
    from apps.traces.models import Call

    enqueue.evaluate_jobs = lambda *, job_ids: None  # measure selection only, send nothing
    slug = f"bench-eval-{uuid.uuid4().hex[:8]}"
    org = Organization.objects.create(name=slug, slug=slug)
    project = Project.objects.create(organization=org, name=slug, slug=slug)
    for i in range(args.evaluators):
        services.evaluator_create(
            project=project,
            name=f"local-{i}",
            kind="python",
            scorer="language_mismatch",
            sampling_rate=[1.0, 0.1, 0.5][i % 3],
            filters={"environment": ["prod"]} if i % 2 else {},
        )
    ingest_us: list[float] = []
    select_us: list[float] = []
    created = 0
    now = timezone.now()
    for _ in range(args.rounds):
        calls = [
            Call(
                project=project,
                id=uuid.uuid4(),
                model="gpt-4o-mini",
                environment="prod" if i % 2 else "dev",
                prompt="hello",
                response="hi",
                start_time=now - timedelta(seconds=i),
            )
            for i in range(args.calls)
        ]
        Call.objects.bulk_create(calls)
        ids = [str(c.id) for c in calls]
        started = time.perf_counter()
        current_app.send_task(
            EVALUATE_SELECT_TASK, args=[project.pk, ids], queue=f"{EVALUATE}-bench", expires=60
        )
        ingest_us.append((time.perf_counter() - started) / len(ids) * 1e6)
        services._forget_active(project.pk)  # a cold evaluator cache each round (the worst case)
        started = time.perf_counter()
        with transaction.atomic():
            created += services.evaluations_select(project_id=project.pk, call_ids=ids)
        select_us.append((time.perf_counter() - started) / len(ids) * 1e6)
    print(
        f"batches of {args.calls} calls, {args.evaluators} active evaluators, {args.rounds} rounds,"
        f" {created} jobs created"
    )
    print(
        f"ingest follow-up (one select message per batch): median "
        f"{percentile(ingest_us, 50):.2f} us/call, max {max(ingest_us):.2f} us/call"
    )
    print(
        f"selection on the evaluate worker (load + match + sample + insert jobs): median "
        f"{percentile(select_us, 50):.1f} us/call, max {max(select_us):.1f} us/call"
    )
    from django.conf import settings
    from redis import Redis

    Redis.from_url(settings.CELERY_BROKER_URL).delete(f"{EVALUATE}-bench")
    Evaluator.objects.filter(project=project).delete()
    Call.objects.filter(project=project).delete()
    project.delete()
    org.delete()


if __name__ == "__main__":
    main()
