"""Embedding throughput per backend, and the pipeline against a raw encode of the same texts.

    python -m bench.embed [--texts 2000] [--long 240] [--chunk 64] [--backends torch,onnx,onnx-int8]

Two sets of texts: distinct SNIPS utterances (short, ~10-15 tokens) and longer multi-sentence
texts (eight SNIPS utterances joined into one, ~100-130 tokens). For every backend, in this one
process and on the same texts:

- raw: ``provider.embed`` in chunks of ``--chunk`` (what one embed task gets);
- cosine of each vector to torch fp32's (mean and 1st percentile): how far a backend moves the
  vector space (calibrations and baselines are per backend anyway).

Then the pipeline with the default backend (``DRIFTLINE_EMBEDDING_BACKEND``): the texts stored as
PENDING calls of a fresh bench project, ``call_embeddings_create`` (the ``embed_calls`` task's
service: load the calls, normalise and hash, look for stored vectors, encode, COPY the halfvec
rows, mark the calls) on chunks of ``--chunk`` call ids, in this process (no broker hop). Its
time is split into the model, the vector write (PostgreSQL's HNSW insert included) and the
rest. Printed ratios: pipeline(default)/torch-fp32-raw (target >= 3) and pipeline/raw of the
same backend (target >= 0.9). On a shared machine absolute figures move with the load; ratios
measured in one run hold better. Also prints the device, and the GPU when torch sees one.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
from tqdm import tqdm

from bench.common import RESULTS, setup_django


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """bench.common's table, wide enough for ten columns in a log file."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in header:
        table.add_column(str(column))
    for row in rows:
        table.add_row(*[f"{v:,.2f}" if isinstance(v, float) else str(v) for v in row])
    Console(width=170).print(table)


def _raw(provider: Any, texts: Sequence[str], chunk: int, desc: str) -> tuple[float, np.ndarray]:
    provider.embed(texts[:chunk])  # warm: first-run allocations are not part of the figure
    parts = []
    started = time.perf_counter()
    for start in tqdm(range(0, len(texts), chunk), desc=desc, unit="chunk", leave=False):
        parts.append(provider.embed(texts[start : start + chunk]))
    seconds = time.perf_counter() - started
    return len(texts) / seconds, np.concatenate(parts)


def _pipeline(provider: Any, texts: Sequence[str], chunk: int, desc: str) -> dict[str, float]:
    from django.utils import timezone

    from apps.accounts.models import Organization, Project
    from apps.embeddings.services import call_embeddings_create
    from apps.traces.models import Call, EmbedStatus

    org, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    project = Project.objects.create(
        organization=org, name="Embed bench", slug=f"embed-{uuid.uuid4().hex[:8]}"
    )
    now = timezone.now()
    calls = Call.objects.bulk_create(
        [
            Call(
                project=project,
                id=uuid.uuid4(),
                prompt=text,
                start_time=now - timedelta(seconds=i),
                embed_status=EmbedStatus.PENDING,
                processed_at=now,
            )
            for i, text in enumerate(texts)
        ],
        batch_size=1000,
    )
    ids = [str(c.id) for c in calls]
    done = rows = 0
    model_s = write_s = 0.0
    started = time.perf_counter()
    for start in tqdm(range(0, len(ids), chunk), desc=desc, unit="chunk", leave=False):
        outcome = call_embeddings_create(
            project_id=project.pk,
            call_ids=ids[start : start + chunk],
            provider=provider,
            score_injection=False,
        )
        done += outcome.calls_done
        rows += outcome.rows
        model_s += outcome.model_s
        write_s += outcome.write_s
    seconds = time.perf_counter() - started
    assert done == len(ids), (done, len(ids))
    project.delete()
    return {
        "texts_per_s": len(texts) / seconds,
        "seconds": seconds,
        "model_share": model_s / seconds,
        "write_share": write_s / seconds,
        "write_ms_per_row": 1000 * write_s / max(rows, 1),
    }


def _cosine(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    cos = np.sum(a * b, axis=1)  # both L2-normalised
    return float(cos.mean()), float(np.percentile(cos, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=2000, help="short texts")
    parser.add_argument("--long", type=int, default=240, help="long multi-sentence texts")
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--backends", default="torch,onnx,onnx-int8")
    args = parser.parse_args()
    setup_django()

    from django.conf import settings

    from apps.embeddings.providers import provider_create
    from apps.lib.datasets import load_snips

    snips = list(dict.fromkeys(text for text, _ in load_snips()))
    short = snips[: args.texts]
    # Long texts from utterances the short set does not hold, so no stored vector is reused.
    rest = snips[args.texts :] or snips
    long = [
        ". ".join(rest[(i * 8 + j) % len(rest)] for j in range(8)) + "." for i in range(args.long)
    ]
    sets = {"short": short, "long": long}
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if "torch" not in backends:
        backends.insert(0, "torch")  # the reference for speed and cosine
    default = settings.DRIFTLINE_EMBEDDING_BACKEND

    raw: dict[str, dict[str, float]] = {}
    vectors: dict[str, dict[str, np.ndarray]] = {}
    providers: dict[str, Any] = {}
    for backend in tqdm(backends, desc="backends", unit="backend"):
        started = time.perf_counter()
        provider = provider_create(backend=backend)
        providers[backend] = provider
        raw[backend] = {"load_s": time.perf_counter() - started}
        vectors[backend] = {}
        for name, texts in sets.items():
            rate, out = _raw(provider, texts, args.chunk, f"{backend} raw {name}")
            raw[backend][name] = rate
            vectors[backend][name] = out

    pipe = {
        name: _pipeline(providers[default], texts, args.chunk, f"pipeline {name}")
        for name, texts in sets.items()
    }

    reference = providers["torch"]
    device = reference.device
    if device == "cuda":
        import torch

        device = f"cuda ({torch.cuda.get_device_name(0)})"
    threads = settings.DRIFTLINE_EMBEDDING_THREADS or os.cpu_count()
    title = (
        f"Embedding: {len(short):,} short + {len(long):,} long texts, chunks of {args.chunk},"
        f" device {device}, {threads} threads, default backend {default}"
    )
    rows = []
    for backend in backends:
        cos_short = _cosine(vectors[backend]["short"], vectors["torch"]["short"])
        cos_long = _cosine(vectors[backend]["long"], vectors["torch"]["long"])
        rows.append(
            [
                backend,
                raw[backend]["short"],
                raw[backend]["long"],
                raw[backend]["short"] / raw["torch"]["short"],
                raw[backend]["long"] / raw["torch"]["long"],
                *(f"{c:.4f}" for c in cos_short),
                *(f"{c:.4f}" for c in cos_long),
                raw[backend]["load_s"],
            ]
        )
    print_table(
        title,
        [
            "backend (raw encode)",
            "short /s",
            "long /s",
            "x torch short",
            "x torch long",
            "cos mean short",
            "cos p1 short",
            "cos mean long",
            "cos p1 long",
            "load s",
        ],
        rows,
    )
    pipe_rows = []
    for name in sets:
        p = pipe[name]
        pipe_rows.append(
            [
                f"{default} {name}",
                p["texts_per_s"],
                p["texts_per_s"] / raw["torch"][name],
                p["texts_per_s"] / raw[default][name],
                p["model_share"],
                p["write_share"],
                p["write_ms_per_row"],
            ]
        )
    print_table(
        "Pipeline (call_embeddings_create) with the default backend",
        [
            "pipeline",
            "texts/s",
            "/ torch fp32 raw (>= 3)",
            "/ same backend raw (>= 0.9)",
            "model share",
            "write share",
            "write ms/row",
        ],
        pipe_rows,
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mb:.0f} MB (all backends loaded)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "embed.json").write_text(
        json.dumps(
            {
                "short_texts": len(short),
                "long_texts": len(long),
                "chunk": args.chunk,
                "device": device,
                "default_backend": default,
                "raw_texts_per_s": raw,
                "cosine_to_torch": {
                    b: {n: _cosine(vectors[b][n], vectors["torch"][n]) for n in sets}
                    for b in backends
                },
                "pipeline": pipe,
                "keys": {b: providers[b].key for b in backends},
                "peak_rss_mb": peak_mb,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
