"""The embedding pipeline against a raw encode of the same texts.

    python -m bench.embed [--texts 2000] [--chunk 64]

Raw: ``provider.embed(texts)`` on the distinct texts, in chunks of ``--chunk`` (what one embed
task gets). Pipeline: the same texts stored as PENDING calls of a fresh bench project, then
``call_embeddings_create`` (the ``embed_calls`` task's service: load the calls, normalise and
hash, look for stored vectors, encode, insert halfvec rows, mark the calls) on chunks of
``--chunk`` call ids, in this process (no broker hop, so this is the service's overhead on top
of the model). The ratio pipeline/raw throughput is the figure to watch (target >= 0.9). Also
prints this process's peak RSS (model loaded): the embed worker's memory floor.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import uuid
from datetime import timedelta

from tqdm import tqdm

from bench.common import RESULTS, print_table, setup_django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--chunk", type=int, default=64)
    args = parser.parse_args()
    setup_django()

    from django.utils import timezone

    from apps.accounts.models import Organization, Project
    from apps.embeddings.providers import get_provider
    from apps.embeddings.services import call_embeddings_create
    from apps.lib.datasets import load_snips
    from apps.traces.models import Call, EmbedStatus

    texts = list(dict.fromkeys(text for text, _ in load_snips()))[: args.texts]
    provider = get_provider()
    provider.embed(texts[:32])  # load the model and warm it: not part of either figure

    t0 = time.perf_counter()
    for start in tqdm(range(0, len(texts), args.chunk), desc="raw encode", unit="chunk"):
        provider.embed(texts[start : start + args.chunk])
    raw_s = time.perf_counter() - t0

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
    t0 = time.perf_counter()
    done = 0
    for start in tqdm(range(0, len(ids), args.chunk), desc="pipeline", unit="chunk"):
        outcome = call_embeddings_create(
            project_id=project.pk,
            call_ids=ids[start : start + args.chunk],
            provider=provider,
            score_injection=False,
        )
        done += outcome.calls_done
    pipe_s = time.perf_counter() - t0
    assert done == len(ids), (done, len(ids))
    project.delete()

    raw_rate, pipe_rate = len(texts) / raw_s, len(texts) / pipe_s
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print_table(
        f"Embedding, {len(texts):,} distinct SNIPS texts, chunks of {args.chunk}, {provider.key}",
        ["raw texts/s", "pipeline texts/s", "ratio", "peak RSS MB"],
        [[raw_rate, pipe_rate, pipe_rate / raw_rate, peak_mb]],
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "embed.json").write_text(
        json.dumps(
            {
                "texts": len(texts),
                "chunk": args.chunk,
                "raw_texts_per_s": raw_rate,
                "pipeline_texts_per_s": pipe_rate,
                "ratio": pipe_rate / raw_rate,
                "peak_rss_mb": peak_mb,
                "provider": provider.key,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
