"""Similar-call search at scale: pgvector HNSW, ``vector`` against ``halfvec``, p50/p95 and
recall@10 against exact search.

    python -m bench.search [--n 100000] [--queries 200] [--ef 40,100]
    python -m bench.search --filtered [--n 100000] [--ef 100]   # recall under filters
    python -m bench.search --insert [--n 30000] [--inserts 2048] [--configs 16:64,16:32]

The vectors: the 14,484 SNIPS utterances embedded once with the bundled MiniLM (cached under
.driftline/cache/, shared with bench.drift), plus synthetic neighbours to reach ``--n``
(``--synth blend``: mixes of a real vector and a near real neighbour; ``--synth noise``: real
vector + isotropic noise, a stress test; see ``build_corpus``). It is not N distinct real
texts, and recall on truly diverse text may differ. Queries are held-out real utterances (not
in the table). Ground truth is exact cosine in numpy over the same (float32 or float16-rounded)
vectors.

The vectors go into a bench-only table (``bench_vectors``) in the bench database, not into the
app's ``embeddings_callembedding``; the index parameters are the app's (m 12, ef_construction 48,
cosine ops; ``apps.embeddings.models.HNSW_M``) unless ``--m`` / ``--efc`` say otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from bench.common import RESULTS, ROOT, percentile, print_table, setup_django

CACHE = ROOT / ".driftline" / "cache"
SHARED_CACHE = Path("/work/cache")
# --filtered: share of the table per project (one large tenant, a long tail of small ones).
PROJECT_SHARES = (0.40, 0.20, 0.12, 0.10, 0.08, 0.05, 0.03, 0.02)
ERROR_RATE = 0.1
DIM = 384
NOISE = 0.03  # per-dimension sigma: cosine ~0.85 between a neighbour and its parent


def snips_vectors() -> npt.NDArray[np.float32]:
    # /work/cache: the embeddings shared between checkouts of this machine.
    cached = sorted(CACHE.glob("snips-*all-MiniLM-L6-v2_384-14484-*.npy")) + sorted(
        SHARED_CACHE.glob("snips-*all-MiniLM-L6-v2_384-14484-*.npy")
    )
    if cached:
        return np.asarray(np.load(cached[0]), dtype=np.float32)
    from apps.embeddings.providers import get_provider
    from apps.lib.datasets import load_snips

    texts = [text for text, _ in load_snips()]
    vectors = np.asarray(get_provider().embed(texts), dtype=np.float32)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(CACHE / f"snips-bench-search-all-MiniLM-L6-v2_384-{len(texts)}-local.npy", vectors)
    return vectors


def build_corpus(
    real: npt.NDArray[np.float32], n: int, queries: int, synth: str, seed: int = 7
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Held-out real queries, and a corpus of the other real vectors plus synthetic ones.

    ``blend`` (default): a synthetic vector is a mix of a real vector and one of its 20 nearest
    real neighbours (weight 0.5-0.95, a little noise): new points on the real data's own
    low-dimensional manifold, like paraphrases. ``noise``: a real vector plus isotropic Gaussian
    noise (cosine ~0.85): full-rank noise in 384 dimensions, the worst case for a graph index
    (hundreds of near-equidistant points around every real one), kept as a stress test.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(real))
    held_out, base = real[order[:queries]], real[order[queries:]]
    extra = max(0, n - len(base))
    parent_idx = rng.integers(0, len(base), extra)
    parents = base[parent_idx]
    if synth == "noise":
        mixed = parents + rng.normal(0, NOISE, size=parents.shape).astype(np.float32)
    else:
        neighbours = np.empty((len(base), 20), dtype=np.int64)
        for start in range(0, len(base), 2000):
            sims = base[start : start + 2000] @ base.T
            neighbours[start : start + 2000] = np.argpartition(-sims, 21, axis=1)[:, 1:21]
        partner = base[neighbours[parent_idx, rng.integers(0, 20, extra)]]
        weight = rng.uniform(0.5, 0.95, size=(extra, 1)).astype(np.float32)
        mixed = weight * parents + (1 - weight) * partner
        mixed += rng.normal(0, 0.005, size=mixed.shape).astype(np.float32)
    mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
    corpus = np.vstack([base, mixed])[:n].astype(np.float32)
    return corpus, held_out


def exact_topk(
    corpus: npt.NDArray[Any], queries: npt.NDArray[np.float32], k: int
) -> npt.NDArray[np.int64]:
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), 50):
        sims = queries[start : start + 50] @ corpus.astype(np.float32).T
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        rows = np.arange(len(top))[:, None]
        out[start : start + 50] = top[rows, np.argsort(-sims[rows, top], axis=1)]
    return out


def load_table(corpus: npt.NDArray[np.float32]) -> float:
    from django.db import connection
    from pgvector import HalfVector
    from pgvector.psycopg import register_vector

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_vectors")
        cursor.execute(
            f"CREATE UNLOGGED TABLE bench_vectors (id bigint PRIMARY KEY, v vector({DIM}), "
            f"h halfvec({DIM}))"
        )
        raw = cursor.connection
        register_vector(raw)
        t0 = time.perf_counter()
        sql = "COPY bench_vectors (id, v, h) FROM STDIN (FORMAT BINARY)"
        with raw.cursor() as cur, cur.copy(sql) as copy:
            copy.set_types(["int8", "vector", "halfvec"])
            for i in tqdm(range(len(corpus)), desc="COPY vectors", unit="row", unit_scale=True):
                copy.write_row((i, corpus[i], HalfVector(corpus[i])))
        cursor.execute("ANALYZE bench_vectors")
        return time.perf_counter() - t0


def build_index(column: str, opclass: str, m: int, efc: int) -> tuple[float, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '2GB'")
        cursor.execute("SET max_parallel_maintenance_workers = 1")
        t0 = time.perf_counter()
        cursor.execute(
            f"CREATE INDEX bench_vectors_{column}_hnsw ON bench_vectors USING hnsw "
            f"({column} {opclass}) WITH (m = {int(m)}, ef_construction = {int(efc)})"
        )
        elapsed = time.perf_counter() - t0
        cursor.execute(f"SELECT pg_relation_size('bench_vectors_{column}_hnsw')")
        size = int(cursor.fetchone()[0])
    return elapsed, size


def run_queries(
    column: str,
    cast: str,
    queries: npt.NDArray[np.float32],
    ef: int,
    table: str = "bench_vectors",
) -> tuple[list[float], list[list[int]]]:
    from django.db import connection, transaction

    latencies, hits = [], []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL hnsw.ef_search = {int(ef)}")
        sql = f"SELECT id FROM {table} ORDER BY {column} <=> %s::{cast}({DIM}) LIMIT 10"  # noqa: S608
        for q in queries[:5]:  # warm the index pages
            cursor.execute(sql, [str(q.tolist())])
        for q in tqdm(queries, desc=f"{column} ef={ef}", unit="q", leave=False):
            literal = str(q.tolist())
            t0 = time.perf_counter()
            cursor.execute(sql, [literal])
            rows = cursor.fetchall()
            latencies.append((time.perf_counter() - t0) * 1000)
            hits.append([int(r[0]) for r in rows])
    return latencies, hits


def recall(hits: list[list[int]], truth: npt.NDArray[np.int64]) -> float:
    return float(
        np.mean([len(set(h) & set(t.tolist())) / 10 for h, t in zip(hits, truth, strict=True)])
    )


def load_filtered_table(corpus: npt.NDArray[np.float32], seed: int = 11) -> tuple[Any, Any]:
    """``bench_vectors`` with a project and a status per row, as the app filters them."""
    from django.db import connection
    from pgvector import HalfVector
    from pgvector.psycopg import register_vector

    rng = np.random.default_rng(seed)
    projects = rng.choice(len(PROJECT_SHARES), size=len(corpus), p=PROJECT_SHARES)
    errors = rng.random(len(corpus)) < ERROR_RATE
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_vectors")
        cursor.execute(
            f"CREATE UNLOGGED TABLE bench_vectors (id bigint PRIMARY KEY, project int, "
            f"error bool, h halfvec({DIM}))"
        )
        raw = cursor.connection
        register_vector(raw)
        sql = "COPY bench_vectors (id, project, error, h) FROM STDIN (FORMAT BINARY)"
        with raw.cursor() as cur, cur.copy(sql) as copy:
            copy.set_types(["int8", "int4", "bool", "halfvec"])
            for i in tqdm(range(len(corpus)), desc="COPY vectors", unit="row", unit_scale=True):
                copy.write_row((i, int(projects[i]), bool(errors[i]), HalfVector(corpus[i])))
        # The app's btree (project, start_time) stands in as (project, error).
        cursor.execute("CREATE INDEX bench_vectors_project ON bench_vectors (project, error)")
        cursor.execute("ANALYZE bench_vectors")
    return projects, errors


def run_filtered_queries(
    queries: npt.NDArray[np.float32],
    filters: list[tuple[int, bool]],
    strategy: str,
    ef: int,
    exact_max: int,
    max_scan: int,
) -> tuple[list[float], list[list[int]], int]:
    """One strategy over all queries. ``post-filter``: HNSW then the WHERE (pgvector < 0.8
    behaviour); ``iterative``: hnsw.iterative_scan = relaxed_order; ``app``: the app's rule
    (exact search when at most ``exact_max`` rows pass, else iterative, exact if it comes back
    short)."""
    from django.db import connection, transaction

    base = f"SELECT id, h <=> %s::halfvec({DIM}) AS d FROM bench_vectors WHERE project = %s"  # noqa: S608 (constants only)
    latencies, hits, exact_used = [], [], 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL hnsw.ef_search = {int(ef)}")
        mode = "off" if strategy == "post-filter" else "relaxed_order"
        cursor.execute(f"SET LOCAL hnsw.iterative_scan = {mode}")
        cursor.execute(f"SET LOCAL hnsw.max_scan_tuples = {int(max_scan)}")
        for i, q in enumerate(tqdm(queries, desc=strategy, unit="q", leave=False)):
            project, ok_only = filters[i]
            where = " AND NOT error" if ok_only else ""
            literal = str(q.tolist())
            t0 = time.perf_counter()
            exact = False
            if strategy == "app":
                cursor.execute(
                    f"SELECT count(*) FROM (SELECT 1 FROM bench_vectors WHERE project = %s{where} "  # noqa: S608
                    f"LIMIT {exact_max + 1}) s",
                    [project],
                )
                exact = int(cursor.fetchone()[0]) <= exact_max
            rows: list[Any] = []
            if not exact:
                cursor.execute(f"{base}{where} ORDER BY d LIMIT 10", [literal, project])
                rows = sorted(cursor.fetchall(), key=lambda r: r[1])
            if strategy == "app" and len(rows) < 10:
                exact = True
            if exact:
                exact_used += 1
                cursor.execute(
                    f"{base}{where} ORDER BY (h <=> %s::halfvec({DIM})) + 0 LIMIT 10",
                    [literal, project, literal],
                )
                rows = cursor.fetchall()
            latencies.append((time.perf_counter() - t0) * 1000)
            hits.append([int(r[0]) for r in rows])
    return latencies, hits, exact_used


def main_filtered(args: argparse.Namespace) -> None:
    setup_django()
    from django.db import connection

    real = snips_vectors()
    corpus, queries = build_corpus(real, args.n, args.queries, args.synth)
    projects, errors = load_filtered_table(corpus)
    build_s, size = build_index("h", "halfvec_cosine_ops", args.m, args.efc)
    # Queries spread over the projects, large and small; every other one also filters status.
    filters = [(i % len(PROJECT_SHARES), i % 2 == 1) for i in range(len(queries))]
    corpus16 = corpus.astype(np.float16).astype(np.float32)
    truth: list[list[int]] = []
    for i, q in enumerate(queries):
        project, ok_only = filters[i]
        mask = projects == project
        if ok_only:
            mask &= ~errors
        idx = np.flatnonzero(mask)
        sims = corpus16[idx] @ q
        truth.append(idx[np.argsort(-sims)[:10]].tolist())
    results: dict[str, Any] = {
        "n": len(corpus),
        "projects": list(PROJECT_SHARES),
        "build_s": build_s,
        "index_mb": size / 2**20,
        "exact_max": args.exact_max,
        "max_scan_tuples": args.max_scan,
    }
    rows: list[list[Any]] = []
    for strategy in ("post-filter", "iterative", "app"):
        for ef in sorted({min(1000, int(x)) for x in args.ef.split(",")}):
            latencies, hits, exact_used = run_filtered_queries(
                queries, filters, strategy, ef, args.exact_max, args.max_scan
            )
            rec = float(
                np.mean([len(set(h) & set(t)) / 10 for h, t in zip(hits, truth, strict=True)])
            )
            small = [j for j, (p, _) in enumerate(filters) if PROJECT_SHARES[p] <= 0.05]
            rec_small = float(np.mean([len(set(hits[j]) & set(truth[j])) / 10 for j in small]))
            r = {
                "p50_ms": percentile(latencies, 50),
                "p95_ms": percentile(latencies, 95),
                "recall_at_10": rec,
                "recall_at_10_small_projects": rec_small,
                "exact_searches": exact_used,
            }
            results[f"{strategy}/ef{ef}"] = r
            rows.append(
                [
                    strategy,
                    ef,
                    r["p50_ms"],
                    r["p95_ms"],
                    f"{rec:.3f}",
                    f"{rec_small:.3f}",
                    f"{exact_used}/{len(queries)}",
                ]
            )
    print_table(
        f"Filtered HNSW search (halfvec), {len(corpus):,} x {DIM} over {len(PROJECT_SHARES)} "
        f"projects (shares {', '.join(f'{s:.0%}' for s in PROJECT_SHARES)}), filter: project, "
        f"and status=ok on every other query ({ERROR_RATE:.0%} errors); {len(queries)} held-out "
        f"queries; truth: exact cosine over the filtered rows; index build {build_s:.0f} s",
        ["strategy", "ef_search", "p50 ms", "p95 ms", "recall@10", "small projects", "exact"],
        rows,
    )
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_vectors")
    RESULTS.mkdir(parents=True, exist_ok=True)
    Path(RESULTS / f"search-filtered-{len(corpus)}.json").write_text(json.dumps(results, indent=2))


INSERT_BATCH = 128  # rows per write: one embed task's 64 calls, prompt and response


def _copy_rows(cursor: Any, table: str, corpus: npt.NDArray[np.float32], rows: range) -> None:
    """``rows`` of the corpus into ``table`` (id, h) by binary COPY, as the embed worker writes."""
    from pgvector import HalfVector

    with cursor.copy(f"COPY {table} (id, h) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["int8", "halfvec"])
        for i in rows:
            copy.write_row((i, HalfVector(corpus[i])))


def _insert_tables(
    corpus: npt.NDArray[np.float32], base: int, configs: list[tuple[int, int]]
) -> dict[str, float]:
    """One table per (m, ef_construction) (and ``none``: no HNSW index) holding the first
    ``base`` rows, its index built in bulk; returns the build seconds per table."""
    from django.db import connection
    from pgvector.psycopg import register_vector

    builds: dict[str, float] = {}
    with connection.cursor() as cursor:
        register_vector(cursor.connection)
        cursor.execute("SET maintenance_work_mem = '2GB'")
        cursor.execute("SET max_parallel_maintenance_workers = 0")
        for name, m, efc in [("none", 0, 0), *((f"m{m}_efc{e}", m, e) for m, e in configs)]:
            table = f"bench_insert_{name}"
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
            # Logged, as the app's table: the insert's WAL is part of its cost.
            cursor.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, h halfvec({DIM}))")
            with cursor.connection.cursor() as cur:
                _copy_rows(cur, table, corpus, range(base))
            t0 = time.perf_counter()
            if m:
                cursor.execute(
                    f"CREATE INDEX {table}_hnsw ON {table} USING hnsw (h halfvec_cosine_ops)"
                    f" WITH (m = {m}, ef_construction = {efc})"
                )
            builds[name] = time.perf_counter() - t0
            cursor.execute(f"VACUUM ANALYZE {table}")
    return builds


def main_insert(args: argparse.Namespace) -> None:
    """What the embed worker pays a row for the HNSW index, per (m, ef_construction), and the
    recall@10 it buys.

    Every table holds the same ``--n - --inserts`` rows with its index built in bulk; then the
    last ``--inserts`` rows go in as the embed worker writes them (binary COPY, batches of
    ``INSERT_BATCH`` rows, a transaction each), batch by batch across the tables in turn, so a
    neighbour's load slows every setting alike. ``none`` is the same table without an HNSW index:
    the rest of a row's cost. Recall is then measured on the full tables (held-out queries).
    """
    setup_django()
    from django.db import connection, transaction

    configs = [tuple(int(x) for x in c.split(":")) for c in args.configs.split(",")]
    real = snips_vectors()
    corpus, queries = build_corpus(real, args.n, args.queries, args.synth)
    base = len(corpus) - args.inserts
    builds = _insert_tables(corpus, base, [(m, e) for m, e in configs])
    names = list(builds)
    seconds = dict.fromkeys(names, 0.0)
    order = list(range(base, len(corpus), INSERT_BATCH))
    for b, start in enumerate(tqdm(order, desc="inserts", unit="batch")):
        rotation = names[b % len(names) :] + names[: b % len(names)]  # no fixed first place
        for name in rotation:
            t0 = time.perf_counter()
            with transaction.atomic(), connection.cursor() as wrapper:
                stop = min(start + INSERT_BATCH, len(corpus))
                _copy_rows(wrapper.cursor, f"bench_insert_{name}", corpus, range(start, stop))
            seconds[name] += time.perf_counter() - t0
    truth = exact_topk(corpus.astype(np.float16), queries, 10)
    efs = sorted({min(1000, int(x)) for x in args.ef.split(",")})
    results: dict[str, Any] = {"n": len(corpus), "inserts": args.inserts, "configs": {}}
    rows: list[list[Any]] = []
    per_row_none = 1000 * seconds["none"] / args.inserts
    for name in names:
        per_row = 1000 * seconds[name] / args.inserts
        entry: dict[str, Any] = {"build_s": builds[name], "ms_per_row": per_row}
        recalls = []
        if name != "none":
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT pg_relation_size('bench_insert_{name}_hnsw')")
                entry["index_mb"] = int(cursor.fetchone()[0]) / 2**20
            for ef in efs:
                latencies, hits = run_queries("h", "halfvec", queries, ef, f"bench_insert_{name}")
                entry[f"ef{ef}"] = {
                    "recall_at_10": recall(hits, truth),
                    "p50_ms": percentile(latencies, 50),
                }
                recalls.append(f"{recall(hits, truth):.3f} / {percentile(latencies, 50):.2f}")
        results["configs"][name] = entry
        rows.append(
            [
                name,
                f"{builds[name]:.1f}",
                f"{entry.get('index_mb', 0.0):.1f}",
                f"{per_row:.3f}",
                f"{per_row - per_row_none:.3f}",
                *(recalls or ["-"] * len(efs)),
            ]
        )
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(f"DROP TABLE bench_insert_{name}")
    print_table(
        f"HNSW insert cost: {len(corpus):,} x {DIM} halfvec ({args.synth}), the last"
        f" {args.inserts:,} rows inserted in COPY batches of {INSERT_BATCH} (interleaved across"
        f" tables); recall@10 over {args.queries} held-out queries; load average"
        f" {os.getloadavg()[0]:.1f}",
        [
            "index",
            "bulk build s",
            "index MB",
            "insert ms/row",
            "HNSW ms/row",
            *(f"recall@10 / p50 ms, ef_search {ef}" for ef in efs),
        ],
        rows,
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    Path(RESULTS / f"search-insert-{len(corpus)}.json").write_text(json.dumps(results, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef", default="100,200,400")
    parser.add_argument("--m", type=int, default=12, help="HNSW m (the app uses 12)")
    parser.add_argument("--efc", type=int, default=48, help="ef_construction (the app: 48)")
    parser.add_argument("--synth", choices=["blend", "noise"], default="blend")
    parser.add_argument("--types", default="halfvec,vector", help="halfvec, vector or both")
    parser.add_argument(
        "--filtered", action="store_true", help="project/status filters over several projects"
    )
    parser.add_argument("--exact-max", type=int, default=5_000, help="the app's EXACT_MAX_ROWS")
    parser.add_argument("--max-scan", type=int, default=100_000, help="hnsw.max_scan_tuples")
    parser.add_argument(
        "--insert", action="store_true", help="insert cost per row vs m / ef_construction"
    )
    parser.add_argument("--inserts", type=int, default=2048, help="--insert: rows inserted")
    parser.add_argument(
        "--configs",
        default="16:64,12:48,12:40,8:48,8:32",
        help="--insert: m:ef_construction settings",
    )
    args = parser.parse_args()
    if args.insert:
        main_insert(args)
        return
    if args.filtered:
        main_filtered(args)
        return
    # pgvector caps hnsw.ef_search at 1000.
    efs = sorted({min(1000, int(x)) for x in args.ef.split(",")})
    setup_django()
    from django.db import connection

    real = snips_vectors()
    corpus, queries = build_corpus(real, args.n, args.queries, args.synth)
    load_s = load_table(corpus)
    results: dict[str, Any] = {
        "n": len(corpus),
        "real": len(real) - args.queries,
        "synthetic": args.synth,
        "m": args.m,
        "ef_construction": args.efc,
        "load_s": load_s,
    }
    rows: list[list[Any]] = []
    truth_f32 = exact_topk(corpus, queries, 10)
    truth_f16 = exact_topk(corpus.astype(np.float16), queries, 10)
    types = args.types.split(",")
    for column, cast, opclass, truth in (
        ("h", "halfvec", "halfvec_cosine_ops", truth_f16),
        ("v", "vector", "vector_cosine_ops", truth_f32),
    ):
        if cast not in types:
            continue
        build_s, size = build_index(column, opclass, args.m, args.efc)
        for ef in efs:
            latencies, hits = run_queries(column, cast, queries, ef)
            r = {
                "build_s": build_s,
                "index_mb": size / 2**20,
                "p50_ms": percentile(latencies, 50),
                "p95_ms": percentile(latencies, 95),
                "recall_at_10": recall(hits, truth),
                "recall_vs_float32_truth": recall(hits, truth_f32),
            }
            results[f"{cast}/ef{ef}"] = r
            rows.append(
                [
                    cast,
                    ef,
                    f"{build_s:.0f}",
                    r["index_mb"],
                    r["p50_ms"],
                    r["p95_ms"],
                    f"{r['recall_at_10']:.3f}",
                    f"{r['recall_vs_float32_truth']:.3f}",
                ]
            )
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX bench_vectors_{column}_hnsw")
    print_table(
        f"HNSW search, {len(corpus):,} x {DIM} ({len(real) - args.queries:,} real SNIPS + "
        f"synthetic '{args.synth}' neighbours), {args.queries} held-out real queries, "
        f"m {args.m}, ef_construction {args.efc}",
        ["type", "ef_search", "build s", "index MB", "p50 ms", "p95 ms", "recall@10", "vs f32"],
        rows,
    )
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_vectors")
    RESULTS.mkdir(parents=True, exist_ok=True)
    Path(
        RESULTS / f"search-{len(corpus)}{'' if args.synth == 'blend' else '-noise'}.json"
    ).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
