"""Create the admin user, the demo organization/project and its ingest key (idempotent)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from apps.accounts.services import api_key_create, demo_setup


class Command(BaseCommand):
    help = "Create the admin user and the demo project; print the login and an ingest key."

    def handle(self, *args: Any, **options: Any) -> None:
        password = os.environ.get("DRIFTLINE_ADMIN_PASSWORD", "")
        user_model = get_user_model()
        admin = user_model.objects.filter(username="admin").first()
        if admin is None:
            admin = user_model.objects.create_superuser(
                "admin", "admin@localhost", password or None
            )
        elif password and not admin.check_password(password):
            admin.set_password(password)
            admin.save(update_fields=["password"])
        project, _ = demo_setup(admin=admin)
        # The raw key exists only at creation; keep the demo key in the (git-ignored) state folder
        # so every `make run` can print it.
        key_file = Path(settings.DRIFTLINE_STATE_DIR) / "demo-ingest-key"
        raw = key_file.read_text().strip() if key_file.exists() else ""
        if (
            not raw
            or not project.api_keys.filter(prefix=raw.split("_")[1], revoked_at=None).exists()
        ):
            raw = api_key_create(project=project, name="demo", scopes=["ingest", "read"]).raw
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(raw)
            key_file.chmod(0o600)
        self.stdout.write(f"project: {project.slug}  ingest key: {raw}")
