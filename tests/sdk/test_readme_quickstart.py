"""The README's "Send your first call" snippet, run as written against a live server.

A newcomer copies it, puts in the ingest key and runs it; it must send a call that lands. Only
the key, the host and the OpenAI endpoint change (``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``, the
variables the ``openai`` client reads, point it at a local fake of the provider).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from apps.traces.models import Call
from tests.ingest.test_otlp_clients import fake_openai

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["fake_openai"]  # fixture used by name

ROOT = Path(__file__).resolve().parents[2]


def readme_snippet() -> str:
    """The first Python block under the README's "Send your first call" heading."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Send your first call", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the README's first-call section has no python block"
    return match.group(1)


def test_readme_first_call_lands(
    live_server: Any, ingest_key: str, project: Any, fake_openai: str
) -> None:
    snippet = readme_snippet()
    assert 'api_key="dl_..."' in snippet
    assert 'host="http://127.0.0.1:8000"' in snippet
    code = snippet.replace('api_key="dl_..."', f'api_key="{ingest_key}"').replace(
        'host="http://127.0.0.1:8000"', f'host="{live_server.url}"'
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "sdk"), os.environ.get("PYTHONPATH", "")]),
        "OPENAI_BASE_URL": fake_openai,
        "OPENAI_API_KEY": "sk-test",
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Open Settings, then Security." in done.stdout  # the answer it printed

    calls = list(Call.objects.filter(project=project))
    llm = [c for c in calls if c.kind == "llm"]
    assert len(llm) == 1, [(c.name, c.kind) for c in calls]
    call = llm[0]
    assert call.prompt == "How do I reset my password?" or "How do I reset my password?" in str(
        call.messages
    )
    assert call.response == "Open Settings, then Security."
    assert (call.input_tokens, call.output_tokens) == (21, 7)
    assert call.release == "v1"
    # The observed function is the span the call sits in.
    spans = [c for c in calls if c.kind == "span"]
    assert len(spans) == 1
    assert spans[0].name == "answer"
    assert call.trace_id == spans[0].trace_id
