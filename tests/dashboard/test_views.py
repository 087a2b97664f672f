"""The UI pages through Django's test client: roles, tenancy, escaping, exports, keys."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client

from apps.accounts.models import ApiKey
from apps.quality.models import PriceOverride
from apps.traces.models import EmbedStatus, Feedback
from tests.dashboard.factories import make_call, make_feedback, make_incident, make_rule

PASSWORD = "correct horse battery staple"
PAGES = ["/", "/calls/", "/drift/", "/review/", "/alerts/"]


def login(user: object) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)  # type: ignore[attr-defined]
    return client


@pytest.fixture
def calls(project):
    made = [
        make_call(project, ago=timedelta(minutes=10 + i), latency_ms=100.0 * (i + 1))
        for i in range(10)
    ]
    made.append(
        make_call(
            project, status="error", error="RateLimitError: slow down", ago=timedelta(hours=2)
        )
    )
    return made


@pytest.mark.django_db
def test_anonymous_is_sent_to_login(client: Client) -> None:
    for page in [*PAGES, "/settings/"]:
        response = client.get(page)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["alice", "bob", "reviewer_user"])
def test_every_page_answers_200_for_members(request, who, calls) -> None:
    client = login(request.getfixturevalue(who))
    for page in [
        *PAGES,
        f"/calls/{calls[0].id}/",
        "/?range=7d&model=gpt-4o-mini",
        "/calls/?q=password",
    ]:
        response = client.get(page)
        assert response.status_code == 200, page
        assert b"Support bot" in response.content  # the switcher names the current project


@pytest.mark.django_db
def test_settings_for_owner_and_member_but_403_for_reviewer(
    alice, bob, reviewer_user, project
) -> None:
    assert login(alice).get("/settings/").status_code == 200
    assert login(bob).get("/settings/").status_code == 200
    rita = login(reviewer_user)
    assert rita.get("/settings/").status_code == 403
    assert rita.post("/settings/keys/", {"name": "x", "scopes": ["ingest"]}).status_code == 403
    key = ApiKey.objects.create(project=project, name="k", prefix="abc123", secret_hash="0" * 64)
    assert rita.post(f"/settings/keys/{key.pk}/revoke/").status_code == 403
    key.refresh_from_db()
    assert key.revoked_at is None
    assert not ApiKey.objects.filter(name="x").exists()
    # The settings link is not offered to a reviewer.
    assert b'href="/settings/"' not in rita.get("/").content


@pytest.mark.django_db
def test_another_tenants_call_and_project_are_404(charlie, other_project, project, calls) -> None:
    client = login(charlie)
    assert client.get(f"/calls/{calls[0].id}/").status_code == 404
    assert client.get("/?project=support-bot").status_code == 404
    assert client.post("/project/switch/", {"project": "support-bot"}).status_code == 404
    # Their own overview is the empty state, with nothing of the other tenant.
    body = client.get("/").content
    assert b"Send your first call" in body
    assert b"Support bot" not in body


@pytest.mark.django_db
def test_call_detail_escapes_untrusted_text(alice, project) -> None:
    payload = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
    call = make_call(
        project,
        prompt=payload,
        response=payload,
        messages=[{"role": "user", "content": payload}],
        metadata={"note": payload},
        tags=["<b>tag</b>"],
    )
    body = login(alice).get(f"/calls/{call.id}/").content.decode()
    assert "<script>window.__pwned" not in body
    assert "<img src=x" not in body
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in body
    assert "<b>tag</b>" not in body


@pytest.mark.django_db
def test_security_headers(alice) -> None:
    response = login(alice).get("/")
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert (
        "unsafe-inline"
        not in response["Content-Security-Policy"].split("script-src")[1].split(";")[0]
    )
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_pages_have_no_inline_scripts(alice, calls) -> None:
    client = login(alice)
    for page in [*PAGES, "/settings/", f"/calls/{calls[0].id}/"]:
        body = client.get(page).content.decode()
        for chunk in body.split("<script")[1:]:
            head = chunk.split(">", 1)[0]
            assert "src=" in head or 'type="application/json"' in head, (page, head)


@pytest.mark.django_db
def test_overview_empty_state_offers_a_key_and_the_snippet(alice, project) -> None:
    client = login(alice)
    body = client.get("/").content.decode()
    assert "Send your first call" in body
    assert settings.DRIFTLINE_BASE_URL in body
    assert "driftline.init(" in body
    # One question is one LLM call: the wrapped client's request sits in a span, not in a
    # second kind="llm" call, and the feedback id is the model call's.
    assert "@driftline.observe()\ndef answer" in body
    assert "driftline.last_call_id()" in body
    posted = client.post("/settings/keys/", {"name": "sdk", "scopes": ["ingest"]})
    assert posted.status_code == 302  # post/redirect/get: a reload creates nothing
    response = client.get(posted["Location"])
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    key = ApiKey.objects.get(project=project, name="sdk")
    assert key.scopes == ["ingest"]
    text = response.content.decode()
    assert f"dl_{key.prefix}_" in text  # the raw key, shown this once
    assert settings.DRIFTLINE_BASE_URL in text
    # Not shown again anywhere.
    assert f"dl_{key.prefix}_…" in client.get("/settings/").content.decode()


@pytest.mark.django_db
def test_reviewer_sees_no_key_button_on_the_empty_state(reviewer_user, project) -> None:
    body = login(reviewer_user).get("/").content.decode()
    assert "Send your first call" in body
    assert "Create an ingest key" not in body


@pytest.mark.django_db
def test_key_revoke(alice, project) -> None:
    client = login(alice)
    client.post("/settings/keys/", {"name": "ci", "scopes": ["read"]})
    key = ApiKey.objects.get(name="ci")
    response = client.post(f"/settings/keys/{key.pk}/revoke/")
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None


@pytest.mark.django_db
def test_review_label_is_reviewer_feedback(reviewer_user, project, calls) -> None:
    client = login(reviewer_user)
    page = client.get("/review/")
    assert str(calls[0].id) in page.content.decode()
    response = client.post(
        "/review/label/",
        {
            "call_id": str(calls[0].id),
            "score": "0",
            "labels": "Hallucination, off-topic",
            "comment": "made up a menu",
            "next_query": "mode=recent&evil=1",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/review/?mode=recent"
    label = Feedback.objects.get(project=project, call_id=calls[0].id)
    assert label.source == "reviewer"
    assert label.author_id == reviewer_user.pk
    assert label.score == 0.0
    assert label.is_negative
    assert label.labels == ["hallucination", "off-topic"]
    # Labeled calls leave the queue; a second label by the same reviewer replaces the first.
    assert str(calls[0].id) not in client.get("/review/").content.decode()
    client.post("/review/label/", {"call_id": str(calls[0].id), "score": "1"})
    assert Feedback.objects.filter(call_id=calls[0].id).count() == 1


@pytest.mark.django_db
def test_review_label_of_another_tenants_call_is_404(charlie, calls) -> None:
    response = login(charlie).post("/review/label/", {"call_id": str(calls[0].id), "score": "1"})
    assert response.status_code == 404
    assert not Feedback.objects.exists()


@pytest.mark.django_db
def test_review_queue_modes(alice, project) -> None:
    negative = make_call(project, prompt="the negative one")
    make_feedback(project, negative, score=0.0)
    flagged = make_call(project, prompt="the flagged one", flagged=True)
    make_call(project, prompt="a plain one")
    client = login(alice)
    body = client.get("/review/?mode=negative").content.decode()
    assert "the negative one" in body
    assert "the flagged one" not in body
    body = client.get("/review/?mode=signal&signal=flagged").content.decode()
    assert "the flagged one" in body
    assert "the negative one" not in body
    assert flagged.id
    assert client.get("/review/?mode=random").status_code == 200


@pytest.mark.django_db
def test_export_csv_is_formula_safe_and_jsonl_round_trips(alice, project) -> None:
    call = make_call(project, prompt='=HYPERLINK("http://evil")', response="+1+1")
    make_feedback(
        project,
        call,
        source="reviewer",
        author=alice,
        score=0.0,
        comment="@SUM(A1)",
        labels=["-bad"],
    )
    client = login(alice)
    response = client.get("/review/export/?format=csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 1
    assert rows[0]["prompt"] == '\'=HYPERLINK("http://evil")'
    assert rows[0]["response"] == "'+1+1"
    assert rows[0]["comment"] == "'@SUM(A1)"
    assert rows[0]["labels"] == "'-bad"
    assert rows[0]["reviewer"] == "alice"
    response = client.get("/review/export/?format=jsonl")
    assert response["Content-Type"] == "application/x-ndjson"
    lines = b"".join(response.streaming_content).decode().splitlines()
    record = json.loads(lines[0])
    assert record["prompt"] == '=HYPERLINK("http://evil")'  # JSON keeps the value as is
    assert record["labels"] == ["-bad"]


@pytest.mark.django_db
def test_project_switcher(alice, organization, project) -> None:
    from apps.accounts.models import Project

    Project.objects.create(organization=organization, name="Second bot", slug="second-bot")
    client = login(alice)
    response = client.post("/project/switch/", {"project": "second-bot", "next": "/calls/"})
    assert response.status_code == 302
    assert response["Location"] == "/calls/"
    assert client.session["project_slug"] == "second-bot"
    assert b"Second bot" in client.get("/").content
    # An open redirect through "next" is refused.
    response = client.post(
        "/project/switch/", {"project": "support-bot", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


@pytest.mark.django_db
def test_price_overrides_and_members(alice, bob, project) -> None:
    client = login(alice)
    client.post(
        "/settings/prices/",
        {"model_pattern": "gpt-4o*", "input_per_mtok": "2.5", "output_per_mtok": "10"},
    )
    override = PriceOverride.objects.get(project=project)
    assert override.output_per_mtok == 10
    client.post(f"/settings/prices/{override.pk}/delete/")
    assert not PriceOverride.objects.exists()
    client.post("/settings/members/", {"username": "bob", "role": "reviewer"})
    assert login(bob).get("/settings/").status_code == 403
    # A member (not owner) cannot change roles.
    assert (
        login(bob).post("/settings/members/", {"username": "bob", "role": "owner"}).status_code
        == 403
    )


@pytest.mark.django_db
def test_calls_explorer_filters_and_pages(alice, project) -> None:
    for i in range(60):
        make_call(
            project,
            prompt=f"question number {i}",
            ago=timedelta(minutes=i + 1),
            model="claude-3-5-haiku" if i % 2 else "gpt-4o-mini",
        )
    client = login(alice)
    first = client.get("/calls/").content.decode()
    assert "question number 0" in first
    assert "question number 59" not in first
    assert "cursor=" in first
    body = client.get("/calls/?model=claude-3-5-haiku").content.decode()
    assert "question number 1</a>" in body
    assert "question number 2</a>" not in body
    assert client.get("/calls/?cursor=garbage").status_code == 200
    assert client.get("/calls/not-a-uuid/").status_code == 404


@pytest.mark.django_db
def test_alert_rules_and_incident_actions(alice, reviewer_user, project) -> None:
    from django.utils import timezone

    from apps.alerts.models import AlertRule, Incident

    client = login(alice)
    response = client.post(
        "/alerts/rules/",
        {
            "name": "Slow answers",
            "kind": "metric",
            "metric": "latency_p95",
            "operator": ">",
            "threshold": "2000",
            "window": "15m",
        },
    )
    assert response.status_code == 302
    rule = AlertRule.objects.get(project=project)
    assert (rule.metric, rule.threshold, rule.window_s) == ("latency_p95", 2000.0, 900)
    incident = Incident.objects.create(
        project=project,
        rule=rule,
        state="firing",
        severity="warning",
        value=2500.0,
        threshold=2000.0,
        summary="p95 latency 2,500 ms > 2,000 ms",
        started_at=timezone.now(),
    )
    body = client.get("/alerts/").content.decode()
    assert "p95 latency 2,500 ms" in body
    assert (
        login(reviewer_user).post(f"/alerts/incidents/{incident.pk}/acknowledge/").status_code
        == 403
    )
    client.post(f"/alerts/incidents/{incident.pk}/acknowledge/")
    incident.refresh_from_db()
    assert incident.acknowledged_by_id == alice.pk
    client.post(f"/alerts/incidents/{incident.pk}/resolve/")
    incident.refresh_from_db()
    assert incident.state == "resolved"
    client.post(f"/alerts/rules/{rule.pk}/disable/")
    rule.refresh_from_db()
    assert not rule.enabled


def test_incident_page_acknowledge_with_a_note_mute_and_the_windows_calls(
    alice, reviewer_user, project, other_project
) -> None:
    from urllib.parse import parse_qs, urlparse

    from django.utils import timezone

    from apps.alerts.models import AlertRule, Incident

    rule = make_rule(project)
    now = timezone.now()
    incident = make_incident(
        project,
        rule,
        value=0.5,
        sample_count=20,
        summary="Error rate is 50.0% over the last 10 min for model gpt-4o.",
        last_evaluated_at=now,
    )
    inside = make_call(
        project, model="gpt-4o", status="error", start_time=now - timedelta(minutes=5)
    )
    make_call(project, model="gpt-4o", status="error", start_time=now - timedelta(hours=3))
    make_call(project, model="claude-3", status="error", start_time=now - timedelta(minutes=5))
    client = login(alice)
    body = client.get(f"/alerts/incidents/{incident.pk}/").content.decode()
    assert "50.0%" in body
    assert "20.0%" in body  # the threshold in the summary's unit
    # The calls link: the breached window, the incident's group, its errors.
    page = client.get(f"/alerts/incidents/{incident.pk}/")
    url = page.context["calls_url"]
    query = parse_qs(urlparse(url).query)
    assert query["model"] == ["gpt-4o"]
    assert query["status"] == ["error"]
    calls = client.get(url)
    assert [c.id for c in calls.context["calls"]] == [inside.id]

    client.post(
        f"/alerts/incidents/{incident.pk}/acknowledge/",
        {"note": "rolling back", "next": "incident"},
    )
    response = client.post(
        f"/alerts/incidents/{incident.pk}/mute/", {"duration": "4h", "next": "incident"}
    )
    assert response["Location"] == f"/alerts/incidents/{incident.pk}/"
    incident.refresh_from_db()
    assert incident.acknowledged_by_id == alice.pk
    assert (
        timedelta(hours=3, minutes=59) < incident.muted_until - timezone.now() <= timedelta(hours=4)
    )
    events = [(e.kind, e.message) for e in incident.events.order_by("id")]
    assert events[0] == ("acknowledged", "rolling back")
    assert events[1][0] == "muted"
    assert "muted until" in client.get(f"/alerts/incidents/{incident.pk}/").content.decode()
    client.post(f"/alerts/incidents/{incident.pk}/mute/", {"duration": "forever"})
    incident.refresh_from_db()
    assert incident.muted_until is not None  # a bad duration changes nothing
    assert login(reviewer_user).post(f"/alerts/incidents/{incident.pk}/mute/").status_code == 403
    # Another tenant's incident id is a 404.
    other_rule = AlertRule.objects.create(project=other_project, name="x", kind="metric")
    other = Incident.objects.create(
        project=other_project, rule=other_rule, state="firing", severity="warning", started_at=now
    )
    assert client.get(f"/alerts/incidents/{other.pk}/").status_code == 404


def test_rule_form_keeps_its_input_on_an_error_and_rules_are_editable(alice, project) -> None:
    from apps.alerts.models import AlertRule

    client = login(alice)
    body = {
        "name": "Slow answers",
        "kind": "metric",
        "metric": "latency_p95",
        "operator": ">",
        "threshold": "2000",
        "window": "banana",
    }
    response = client.post("/alerts/rules/", body)
    assert response.status_code == 400
    page = response.content.decode()
    assert 'value="Slow answers"' in page
    assert 'value="2000"' in page
    assert 'value="banana"' in page
    assert "duration" in page  # the error names the problem
    assert not AlertRule.objects.exists()

    client.post("/alerts/rules/", {**body, "window": "15m"})
    rule = AlertRule.objects.get()
    edit = client.get(f"/alerts/rules/{rule.pk}/edit/").content.decode()
    assert 'value="Slow answers"' in edit
    assert 'value="15m"' in edit
    response = client.post(
        f"/alerts/rules/{rule.pk}/edit/", {**body, "threshold": "3000", "window": "1h"}
    )
    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.threshold, rule.window_s) == (3000.0, 3600)
    bad = client.post(f"/alerts/rules/{rule.pk}/edit/", {**body, "window": "-"})
    assert bad.status_code == 400
    assert 'value="-"' in bad.content.decode()


def test_every_input_pattern_is_a_valid_v_flag_regex(alice, project) -> None:
    """Chrome compiles ``pattern`` with the ``v`` flag, where ``[-a]`` is a syntax error and
    the whole check silently stops working. Checked with node's RegExp when node is present."""
    import re
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    body = login(alice).get("/settings/").content.decode()
    patterns = re.findall(r'pattern="([^"]*)"', body)
    assert patterns
    for pattern in patterns:
        script = f"new RegExp({json.dumps('^(?:' + pattern + ')$')}, 'v')"
        result = subprocess.run([node, "-e", script], capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"{pattern}: {result.stderr}"


@pytest.mark.django_db
def test_call_detail_says_why_a_call_has_no_embedding(alice, project) -> None:
    # The README's first call is a plain @observe function: a span, never embedded. The page
    # must not tell the user to wait for the embed worker.
    client = login(alice)
    span = make_call(project, kind="span", embed_status=EmbedStatus.NOT_APPLICABLE)
    body = client.get(f"/calls/{span.id}/").content.decode()
    assert "Only LLM calls are embedded; this one is a span." in body
    assert "worker may be behind" not in body
    skipped = make_call(project, embed_status=EmbedStatus.SKIPPED)
    assert "embedding budget" in client.get(f"/calls/{skipped.id}/").content.decode()
    pending = make_call(project, embed_status=EmbedStatus.PENDING)
    assert "worker may be behind" in client.get(f"/calls/{pending.id}/").content.decode()
