"""Rebuild ``apps/quality/data/learned_toxicity.json`` (see :mod:`bench.quality.learned`).

Usage: ``python -m bench.quality.train_toxicity`` (embeddings of the training text are cached in
``/work/cache/``, or ``$DRIFTLINE_BENCH_CACHE``; the first run embeds them).
"""

from bench.quality.learned import build

if __name__ == "__main__":
    result = build("toxicity")
    for point in result["operating_points"]:
        print(point)
