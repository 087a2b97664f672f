"""Rebuild ``apps/quality/data/toxicity_words.json`` (alt-profanity-check's SVM, distilled by
:mod:`bench.quality.distil_profanity`) and then ``apps/quality/data/learned_toxicity.json`` (see
:mod:`bench.quality.learned`), whose word head scores with the first.

Usage: ``python -m bench.quality.train_toxicity`` (embeddings of the training text are cached in
``/work/cache/``, or ``$DRIFTLINE_BENCH_CACHE``; the first run embeds them).
"""

from apps.quality.scorers import toxicity
from bench.quality import distil_profanity
from bench.quality.learned import build

if __name__ == "__main__":
    distil_profanity.main()
    toxicity.reset_cache()
    result = build("toxicity")
    for point in result["operating_points"]:
        print(point)
