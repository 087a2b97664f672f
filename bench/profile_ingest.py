"""Where the ingest API spends its time: py-spy over the whole request path, in one process.

    python -m bench.profile_ingest [--batches 500] [--batch 100]

Re-runs itself under ``py-spy record`` (raw collapsed stacks, 250 Hz, native frames off), posts
``--batches`` gzip batches of ``--batch`` calls through Django's full stack (middleware, key
auth, body limit, msgspec decode, COPY + insert, the follow-up enqueue to Redis) and prints the
functions with the most time: self time (where the CPU is) and inclusive time of our own code
(which step costs). The database's own work shows as time waiting in psycopg.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from bench.common import RESULTS, ROOT, print_table, setup_django

OURS = ("apps/",)


def drive(batches: int, batch: int) -> None:
    setup_django()
    from django.test import Client

    from apps.accounts.models import Organization, Project
    from apps.accounts.services import api_key_create

    org, _ = Organization.objects.get_or_create(slug="bench-profile", defaults={"name": "P"})
    project, _ = Project.objects.get_or_create(
        slug="bench-profile", defaults={"organization": org, "name": "Profile"}
    )
    key = api_key_create(project=project, name="profile", scopes=["ingest"]).raw
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    client.get("/api/v1/health")  # the URLconf and views import on the first request
    now = datetime.now(UTC).isoformat()
    for _ in tqdm(range(batches), desc="batches", unit="batch"):
        events = [
            {
                "type": "call",
                "id": str(uuid.uuid4()),
                "body": {
                    "model": "gpt-4o-mini",
                    "prompt": f"How do I reset my password? ({i})",
                    "response": "Open Settings, then Security.",
                    "input_tokens": 12,
                    "output_tokens": 20,
                    "latency_ms": 840.0,
                    "start_time": now,
                    "tags": ["bench"],
                    "metadata": {"route": "support"},
                },
            }
            for i in range(batch)
        ]
        body = gzip.compress(json.dumps({"batch": events}).encode())
        response = client.post(
            "/api/v1/ingest",
            data=body,
            content_type="application/json",
            headers={"Content-Encoding": "gzip"},
        )
        assert response.status_code == 207, response.content[:300]


def frame_name(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)".
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def report(raw: Path, top: int) -> dict[str, list[tuple[str, float]]]:
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        # Only the request loop, not start-up: Django setup, migrate and first imports.
        if "drive (" not in stack or "_find_and_load" in stack:
            continue
        frames = [frame_name(f) for f in stack.split(";") if f]
        total += count
        if frames:
            self_time[frames[-1]] += count
        for frame in set(frames):
            if any(f"({o}" in frame for o in OURS):
                inclusive[frame] += count
    out = {
        "self": [(name, 100 * n / total) for name, n in self_time.most_common(top)],
        "ours_inclusive": [(name, 100 * n / total) for name, n in inclusive.most_common(top)],
    }
    for title, rows in (("self time", out["self"]), ("our code, inclusive", out["ours_inclusive"])):
        print_table(
            f"py-spy: {title} ({total} samples)",
            ["function (file)", "share"],
            [(name[:100], f"{share:5.1f}%") for name, share in rows],
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=500)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--drive", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        drive(args.batches, args.batch)
        return
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "ingest.txt"
        command = [
            sys.executable,
            "-m",
            "bench.profile_ingest",
            "--drive",
            f"--batches={args.batches}",
            f"--batch={args.batch}",
        ]
        spy = Path(sys.executable).with_name("py-spy")
        subprocess.run(
            [
                str(spy),
                "record",
                "--format",
                "raw",
                "--rate",
                "250",
                "-o",
                str(raw),
                "--",
                *command,
            ],
            check=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        result = report(raw, args.top)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "profile_ingest.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
