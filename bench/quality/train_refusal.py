"""Rebuild ``apps/quality/data/learned_refusal.json`` (see :mod:`bench.quality.learned`).

Usage: ``python -m bench.quality.train_refusal`` (embeddings of the training text are cached in
``/work/cache/``, or ``$DRIFTLINE_BENCH_CACHE``; the first run embeds them).
"""

from bench.quality.learned import build

if __name__ == "__main__":
    result = build("refusal")
    for point in result["operating_points"]:
        print(point)
