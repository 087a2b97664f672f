"""Overview queries at scale: the raw-table selectors against the rollup selectors.

    python -m bench.overview [--calls 1000000] [--repeat 15] [--regen]

Generates ``--calls`` calls for one bench project with ``INSERT ... SELECT generate_series`` in
the database (no Python row loop: ~4 models x 3 releases x 2 environments, spread over 30 days,
log-normal latencies, 2% errors), builds the rollups once (``rollup_rebuild``, timed), then
times what the overview page runs for each range (series + totals of the current and previous
period), raw and from rollups, with and without a model filter. Also checks the rollup p50/p95/p99
against ``percentile_cont`` on the raw rows of the 30-day window.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import timedelta
from typing import Any

from tqdm import tqdm

from bench.common import RESULTS, percentile, print_table, setup_django

CHUNK = 100_000
SPAN_DAYS = 30


def generate(project_id: int, total: int) -> float:
    """Insert ``total`` calls in chunks (one statement each); returns rows/s."""
    from django.db import connection

    sql = """
        INSERT INTO traces_call (
            project_id, id, trace_id, session_id, end_user_id, name, kind, provider, model,
            prompt, response, input_tokens, output_tokens, total_tokens, cost_usd, cost_source,
            latency_ms, status, error, error_type, release, environment, tags, metadata,
            truncated, start_time, received_at, processed_at, embed_status, pii, flagged,
            signals, refusal)
        SELECT %(p)s, gen_random_uuid(), '', '', 'user-' || (g %% 5000), 'chat', 'llm', 'openai',
            (ARRAY['gpt-4o-mini','gpt-4o','claude-haiku','llama-3-70b'])[1 + g %% 4],
            'How do I reset my password? #' || g, 'Here is how.', it, ot, it + ot,
            (it * 0.15 + ot * 0.6) / 1e6, 'computed',
            -- log-normal latency (Box-Muller): median ~400 ms, long right tail
            exp(6.0 + 0.7 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())),
            CASE WHEN random() < 0.02 THEN 'error' ELSE 'ok' END, '', '',
            'v' || (g %% 3), CASE WHEN g %% 10 = 0 THEN 'staging' ELSE 'prod' END, '{}', '{}', '{}',
            ts, ts, ts, 1, '{}', random() < 0.01, '{}', random() < 0.03
        FROM (
            -- A derived table, not a LATERAL without outer references: that one is computed
            -- once, and every row would share its random values.
            SELECT g, now() - random() * interval '30 days' AS ts,
                (50 + random() * 500)::int AS it, (20 + random() * 400)::int AS ot
            FROM generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) AS g
        ) AS r
    """
    from django.utils import timezone

    from apps.traces.partitions import month_add, month_start, partition_create

    # Partitions for the whole span (30 days back reach into last month).
    first = month_start(timezone.now() - timedelta(days=SPAN_DAYS))
    while first <= timezone.now():
        partition_create(first)
        first = month_add(first, 1)
    t0 = time.perf_counter()
    with tqdm(total=total, desc="generate calls", unit="row", unit_scale=True) as bar:
        for lo in range(0, total, CHUNK):
            hi = min(total, lo + CHUNK)
            with connection.cursor() as cursor:
                cursor.execute(sql, {"p": project_id, "lo": lo, "hi": hi})
            bar.update(hi - lo)
    rate = total / (time.perf_counter() - t0)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE traces_call")
    return rate


def timed(fn: Any, repeat: int) -> list[float]:
    out = []
    fn()  # warm the cache and the plan
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--raw-repeat", type=int, default=0, help="raw runs (default --repeat)")
    parser.add_argument("--regen", action="store_true", help="drop and regenerate the calls")
    args = parser.parse_args()
    setup_django()

    from django.db import connection
    from django.utils import timezone

    from apps.accounts.models import Organization, Project
    from apps.traces import metrics as raw
    from apps.traces import rollup_selectors as rolled
    from apps.traces.models import Call, CallRollup
    from apps.traces.rollups import rollup_rebuild

    org, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    project, _ = Project.objects.get_or_create(
        organization=org, slug=f"overview-{args.calls}", defaults={"name": "Overview bench"}
    )
    existing = Call.objects.filter(project=project).count()
    gen_rate = None
    if args.regen or existing != args.calls:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM traces_call WHERE project_id = %s", [project.pk])
        CallRollup.objects.filter(project=project).delete()
        gen_rate = generate(project.pk, args.calls)
        existing = args.calls

    now = timezone.now()
    t0 = time.perf_counter()
    rollup_rows = rollup_rebuild(
        project_id=project.pk, start=now - timedelta(days=SPAN_DAYS + 1), end=now + timedelta(1)
    )
    rebuild_s = time.perf_counter() - t0
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE traces_callrollup")
        cursor.execute("SELECT pg_total_relation_size('traces_callrollup')")
        rollup_bytes = int(cursor.fetchone()[0])

    def page(source: Any, window: Any, filters: Any) -> Any:
        if source is raw:
            return (
                raw.overview_call_series(project=project, window=window, filters=filters),
                raw.overview_totals(project=project, window=window, filters=filters),
            )
        return (
            rolled.rollup_call_series(project=project, window=window, filters=filters),
            rolled.rollup_overview_totals(project=project, window=window, filters=filters),
        )

    rows: list[list[Any]] = []
    results: dict[str, Any] = {}
    cases = [
        (key, label, filters)
        for key in ("24h", "7d", "30d")
        for label, filters in (
            ("all", raw.OverviewFilters()),
            ("model", raw.OverviewFilters(model="gpt-4o")),
        )
    ]
    for key, label, filters in tqdm(cases, desc="overview queries", unit="case"):
        window = raw.time_window(key)
        raw_ms = timed(lambda w=window, f=filters: page(raw, w, f), args.raw_repeat or args.repeat)
        roll_ms = timed(lambda w=window, f=filters: page(rolled, w, f), args.repeat)
        name = f"{key}/{label}"
        results[name] = {
            "raw_p50_ms": percentile(raw_ms, 50),
            "raw_p95_ms": percentile(raw_ms, 95),
            "rollup_p50_ms": percentile(roll_ms, 50),
            "rollup_p95_ms": percentile(roll_ms, 95),
        }
        r = results[name]
        rows.append(
            [
                name,
                r["raw_p50_ms"],
                r["raw_p95_ms"],
                r["rollup_p50_ms"],
                r["rollup_p95_ms"],
                r["raw_p95_ms"] / r["rollup_p95_ms"],
            ]
        )

    # Accuracy of the sketch over the 30-day window against the exact percentiles.
    window = raw.time_window("30d")
    exact = raw.overview_totals(project=project, window=window, filters=raw.OverviewFilters())[0]
    est = rolled.rollup_overview_totals(
        project=project, window=window, filters=raw.OverviewFilters()
    )[0]
    errors = {
        name: abs(getattr(est.calls, name) - getattr(exact.calls, name))
        / getattr(exact.calls, name)
        for name in ("p50_ms", "p95_ms", "p99_ms")
    }

    print_table(
        f"Overview page (series + totals), {existing:,} calls over {SPAN_DAYS} days, ms",
        ["range/filter", "raw p50", "raw p95", "rollup p50", "rollup p95", "speed-up p95"],
        rows,
    )
    print_table(
        "Rollups",
        [
            "calls",
            "generate rows/s",
            "rebuild s",
            "rollup rows",
            "rollup MB",
            "rel. err p50/95/99",
        ],
        [
            [
                f"{existing:,}",
                f"{gen_rate:,.0f}" if gen_rate else "reused",
                rebuild_s,
                f"{rollup_rows:,}",
                rollup_bytes / 2**20,
                " / ".join(f"{v:.4f}" for v in errors.values()),
            ]
        ],
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"overview-{existing}.json").write_text(
        json.dumps(
            {
                "calls": existing,
                "generate_rows_per_s": gen_rate,
                "rollup_rebuild_s": rebuild_s,
                "rollup_rows": rollup_rows,
                "rollup_bytes": rollup_bytes,
                "percentile_rel_error": errors,
                "queries": results,
                "repeat": args.repeat,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
