"""``python manage.py drift_check --project <slug>``: run a drift check now and print it."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.accounts.models import Project
from apps.core.errors import ApplicationError
from apps.drift.models import CheckStatus, DriftCheck
from apps.drift.selectors import new_intent_groups
from apps.drift.services.baselines import baseline_fit
from apps.drift.services.checks import drift_check_run
from apps.drift.services.monitors import drift_monitor_ensure


class Command(BaseCommand):
    help = "Test the current window of a project against its baseline (fitting one if none)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--window-hours", type=int, help="window size (default: the monitor's)")
        parser.add_argument(
            "--refit", action="store_true", help="fit a fresh trailing baseline first"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"no project with slug {options['project']!r}")
        monitor = drift_monitor_ensure(project=project)
        if options["window_hours"]:
            monitor.window_hours = options["window_hours"]
            monitor.save(update_fields=["window_hours"])
        if options["refit"]:
            from datetime import timedelta

            from django.utils import timezone

            end = timezone.now() - timedelta(hours=monitor.window_hours)
            try:
                baseline_fit(project=project, end=end)
            except ApplicationError as exc:
                raise CommandError(exc.message) from exc
        # Not aligned: a run from the shell tests the window ending now and adds its own row.
        check = drift_check_run(monitor=monitor, aligned=False)
        self.stdout.write(render(check))


def render(check: DriftCheck) -> str:
    lines = [
        f"Drift check {check.pk} of project {check.project_id}: "
        f"{check.window_start:%Y-%m-%d %H:%M} .. {check.window_end:%Y-%m-%d %H:%M} UTC",
        f"status: {check.status}; {check.n} embedded calls in the window, {check.tested_n} tested",
        check.summary,
    ]
    if check.status != CheckStatus.TESTED:
        return "\n".join(lines)
    verdict = "DRIFT" if check.drifted else "no drift"
    lines.append(
        f"verdict: {verdict}; score {check.score:.2f} (-log10 p, p = {check.p_value:.4g}) "
        f"vs threshold p <= {check.threshold:g}"
    )
    for name, result in check.results.items():
        threshold = result.get("threshold")
        lines.append(
            f"  {name:13s} {'FIRED' if result['drifted'] else 'ok   '} "
            f"score {result['score']:.4g} threshold {threshold:.4g} p {result['p_value']:.4g}"
            if isinstance(threshold, int | float)
            else f"  {name:13s} score {result['score']:.4g} p {result['p_value']:.4g}"
        )
    ood = check.out_of_domain
    if ood:
        lines.append(
            f"  out-of-domain {'FIRED' if ood['drifted'] else 'ok   '} "
            f"{ood['flagged']} of {ood['n']} calls ({100 * ood['share']:.1f}%, expected "
            f"{100 * ood['expected_share']:.0f}%, p {ood['p_value']:.3g})"
        )
    stream = check.stream
    if stream.get("events"):
        lines.append(
            f"  streaming     {'ALARM' if stream['alarm'] else 'ok   '} {stream['summary']}"
        )
    moved = [s for s in check.intent_shares if s["moved"]]
    if moved:
        lines.append("intent shares that moved:")
        for share in moved:
            lines.append(
                f"  {share['moved']:6s} {share['name']!r}: "
                f"{100 * share['baseline_share']:.1f}% -> {100 * share['window_share']:.1f}%"
            )
    groups = new_intent_groups(project=check.project, check=check)
    if groups:
        lines.append("new-intent groups:")
        for group in groups:
            lines.append(
                f"  {group['label'] or '(unlabelled)'!r}: {group['size']} calls "
                f"({100 * group['share']:.1f}%), nearest baseline intent "
                f"{group['nearest_cluster_name']!r}"
            )
            for call_id, text in group["examples"][:3]:
                lines.append(f"    {call_id}  {text[:100]}")
    return "\n".join(lines)
