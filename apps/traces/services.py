"""Writes of the traces app that are not the ingest path: the prompt registry."""

from __future__ import annotations

import hashlib

from django.db import IntegrityError, transaction

from apps.accounts.models import Project
from apps.core.errors import ApplicationError
from apps.traces.models import PromptVersion

PROMPT_NAME_MAX = 255
PROMPT_VERSION_MAX = 64
PROMPT_TEMPLATE_MAX = 200_000


def prompt_content_hash(template: str) -> str:
    return hashlib.sha256(template.encode("utf-8", "surrogatepass")).hexdigest()


def default_prompt_version(template: str) -> str:
    """The version name when the app gives none: the SDK computes the same one offline."""
    return prompt_content_hash(template)[:12]


def _clean(value: str, field: str, limit: int) -> str:
    if "\x00" in value:
        raise ApplicationError(f"{field}: must not contain NUL characters", field=field)
    value = value.strip() if field != "template" else value
    if not value:
        raise ApplicationError(f"{field}: must not be empty", field=field)
    if len(value) > limit:
        raise ApplicationError(f"{field}: at most {limit} characters", field=field)
    return value


def prompt_register(
    *, project: Project, name: str, template: str, version: str | None = None
) -> tuple[PromptVersion, bool]:
    """Store one version of a prompt template; returns (version, created).

    Content-addressed: the same text registered again is the version already stored (whatever
    version name it is sent with), so an app that registers its templates at every start does
    not grow the registry. A new text under a version name already taken is refused (409),
    never overwritten: calls already point at that name.
    """
    name = _clean(name, "name", PROMPT_NAME_MAX)
    template = _clean(template, "template", PROMPT_TEMPLATE_MAX)
    digest = prompt_content_hash(template)
    existing = PromptVersion.objects.filter(project=project, name=name, content_hash=digest).first()
    if existing is not None:
        return existing, False
    version = _clean(version, "version", PROMPT_VERSION_MAX) if version else digest[:12]
    taken = PromptVersion.objects.filter(project=project, name=name, version=version).exists()
    if taken:
        raise ApplicationError(
            f"version: {name}@{version} is registered with another template; "
            "register the new text under a new version",
            field="version",
            status_code=409,
        )
    try:
        with transaction.atomic():
            created = PromptVersion.objects.create(
                project=project, name=name, version=version, template=template, content_hash=digest
            )
    except IntegrityError:
        # A concurrent registration of the same text won; answer with its row.
        row = PromptVersion.objects.filter(project=project, name=name, content_hash=digest).first()
        if row is None:
            raise ApplicationError(
                f"version: {name}@{version} was just registered with another template",
                field="version",
                status_code=409,
            ) from None
        return row, False
    return created, True
