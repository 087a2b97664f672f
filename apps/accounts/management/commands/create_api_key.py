"""``manage.py create_api_key --project demo --scopes ingest,read`` prints the key last."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import Project
from apps.accounts.services import api_key_create
from apps.core.errors import ApplicationError


class Command(BaseCommand):
    help = "Create a project API key and print it (shown once) on the last line."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--scopes", default="ingest", help="comma-separated: ingest,read,admin")
        parser.add_argument("--name", default="cli")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"no project with slug {options['project']!r}")
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()]
        try:
            created = api_key_create(project=project, name=options["name"], scopes=scopes)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stderr.write(
            f"Created key {created.api_key.name!r} for {project.slug} with scopes "
            f"{','.join(created.api_key.scopes)}; it is shown only now."
        )
        self.stdout.write(created.raw)
