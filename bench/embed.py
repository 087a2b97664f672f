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
service: one read of the calls, normalise and hash, one read of stored vectors, encode, COPY the
halfvec rows, mark the calls) on chunks of ``--chunk`` call ids, in this process (no broker
hop). Twice: on distinct texts (every text through the model: the unique-text figure), then on
new calls repeating those texts (content-addressed reuse: none re-encoded, real traffic repeats
prompts). Its time is split into the model, the vector write (PostgreSQL's HNSW insert
included) and the rest.

First, before this process loads a model, the embed worker's pool (``--pool``, 2 as ``make
run`` starts it): the pipeline in that many forked processes, each with its share of the cores
(``DRIFTLINE_WORKER_PROCESSES``, as a prefork Celery child), against one process of every core
and the raw encodes, each series forked alike and interleaved round by round. One process waits
on PostgreSQL writing its vectors while another encodes: this is the product's throughput.

Timing is interleaved chunk by chunk: for every chunk, each backend's raw encode and then the
pipeline on the same texts, so a neighbour's load on a shared machine slows all of them alike
and the ratios (pipeline(default)/torch-fp32-raw, target >= 3; pipeline/raw of the same backend,
target >= 0.9) hold even where absolute figures move. The load average is printed beside them.
Also: each backend's batch independence (smallest cosine between a text embedded alone and in
its chunk), the device, and the GPU when torch sees one.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from apps.embeddings.providers import bundled_model_path
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


def _calls_create(project: Any, texts: Sequence[str]) -> list[str]:
    from django.utils import timezone

    from apps.traces.models import Call, EmbedStatus

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
    return [str(c.id) for c in calls]


WARM = 8  # texts embedded and stored before the timing starts


class _Tally:
    """Seconds and counts of one timed series (a backend's raw encode, or a pipeline run)."""

    def __init__(self) -> None:
        self.seconds = self.model_s = self.write_s = 0.0
        self.texts = self.rows = self.embedded = self.reused = 0

    def rate(self) -> float:
        return self.texts / self.seconds if self.seconds else float("nan")

    def as_dict(self) -> dict[str, float]:
        return {
            "texts_per_s": self.rate(),
            "seconds": self.seconds,
            "embedded": self.embedded,
            "reused": self.reused,
            "model_share": self.model_s / self.seconds if self.seconds else 0.0,
            "write_share": self.write_s / self.seconds if self.seconds else 0.0,
            "write_ms_per_row": 1000 * self.write_s / max(self.rows, 1),
        }


def _raw_chunk(provider: Any, texts: Sequence[str], tally: _Tally) -> np.ndarray:
    started = time.perf_counter()
    out: np.ndarray = provider.embed(texts)
    tally.seconds += time.perf_counter() - started
    tally.texts += len(texts)
    return out


def _pipeline_chunk(provider: Any, project_id: int, ids: Sequence[str], tally: _Tally) -> None:
    from apps.embeddings.services import call_embeddings_create

    started = time.perf_counter()
    outcome = call_embeddings_create(
        project_id=project_id, call_ids=ids, provider=provider, score_injection=False
    )
    tally.seconds += time.perf_counter() - started
    assert outcome.calls_done == len(ids), (outcome, len(ids))
    tally.texts += len(ids)
    tally.rows += outcome.rows
    tally.embedded += outcome.embedded
    tally.reused += outcome.reused
    tally.model_s += outcome.model_s
    tally.write_s += outcome.write_s


def _measure(
    providers: dict[str, Any], default: str, texts: Sequence[str], chunk: int, desc: str
) -> tuple[dict[str, _Tally], dict[str, np.ndarray], _Tally, _Tally]:
    """Chunk by chunk: every backend's raw encode, the pipeline on new calls with those texts,
    then the pipeline on a second set of calls repeating them."""
    from apps.accounts.models import Organization, Project

    org, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    project = Project.objects.create(
        organization=org, name="Embed bench", slug=f"embed-{uuid.uuid4().hex[:8]}"
    )
    ids, repeat_ids = _calls_create(project, texts), _calls_create(project, texts)
    # Warm: first-run allocations, the staging table; its texts are then stored (not timed).
    for provider in providers.values():
        provider.embed(texts[:WARM])
    _pipeline_chunk(providers[default], project.pk, ids[:WARM], _Tally())
    _pipeline_chunk(providers[default], project.pk, repeat_ids[:WARM], _Tally())
    raw = {name: _Tally() for name in providers}
    parts: dict[str, list[np.ndarray]] = {name: [] for name in providers}
    unique, repeat = _Tally(), _Tally()
    for start in tqdm(range(WARM, len(texts), chunk), desc=desc, unit="chunk", leave=False):
        block = texts[start : start + chunk]
        for name, provider in providers.items():
            parts[name].append(_raw_chunk(provider, block, raw[name]))
        _pipeline_chunk(providers[default], project.pk, ids[start : start + chunk], unique)
        _pipeline_chunk(providers[default], project.pk, repeat_ids[start : start + chunk], repeat)
    assert repeat.embedded == 0, repeat.as_dict()
    project.delete()
    return raw, {n: np.concatenate(p) for n, p in parts.items()}, unique, repeat


def _batch_independence(provider: Any, texts: Sequence[str], batched: np.ndarray) -> float:
    """Smallest cosine between a text embedded alone and in its chunk (1.0000: independent)."""
    alone = np.concatenate([provider.embed([text]) for text in texts])
    return float(np.sum(alone * batched[: len(texts)], axis=1).min())


def _cosine(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    cos = np.sum(a * b, axis=1)  # both L2-normalised
    return float(cos.mean()), float(np.percentile(cos, 1))


def _padded_tokens(provider: Any, texts: Sequence[str], chunk: int) -> tuple[float, float, float]:
    """Tokens per text as the ONNX provider feeds them (chunks of ``chunk``, in the provider's
    own calls, each padded to its longest text): ``(real, padded)`` means and texts a call."""
    lengths = np.array([len(e.ids) for e in provider._tokenizer.encode_batch(list(texts))])
    real = padded = calls = 0
    for start in range(0, len(lengths), chunk):
        block = lengths[start : start + chunk]
        for call in provider.calls(block):
            real += int(block[call].sum())
            padded += int(block[call].max()) * len(call)
            calls += 1
    return real / len(lengths), padded / len(lengths), len(lengths) / calls


def _gemm_rate(threads: int, m: int, k: int, n: int, int8: bool, seconds: float = 1.5) -> float:
    """GFLOP/s (2 per multiply-add) of one ONNX Runtime MatMul (fp32) or MatMulInteger (u8 x
    s8, as the int8 graph runs) of the model's shapes on ``threads`` threads."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if int8:
        weight = numpy_helper.from_array(rng.integers(-127, 127, (k, n), dtype=np.int8), "w")
        node = helper.make_node("MatMulInteger", ["x", "w"], ["y"])
        x_type, y_type = TensorProto.UINT8, TensorProto.INT32
        feed = rng.integers(0, 255, (m, k), dtype=np.uint8)
    else:
        weight = numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32), "w")
        node = helper.make_node("MatMul", ["x", "w"], ["y"])
        x_type = y_type = TensorProto.FLOAT
        feed = rng.standard_normal((m, k)).astype(np.float32)
    graph = helper.make_graph(
        [node],
        "gemm",
        [helper.make_tensor_value_info("x", x_type, [m, k])],
        [helper.make_tensor_value_info("y", y_type, [m, n])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, ["CPUExecutionProvider"])
    session.run(None, {"x": feed})
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        session.run(None, {"x": feed})
        runs += 1
    return 2 * m * k * n * runs / (time.perf_counter() - started) / 1e9


def roofline(
    provider: Any, sets: Mapping[str, Sequence[str]], chunk: int, rates: dict[str, dict[str, float]]
) -> None:
    """FLOPs per text of the model (matrix products; attention scores included) against the
    GFLOP/s ONNX Runtime reaches on a bare matrix product of the model's own shapes on these
    cores: the most texts/s any runtime of this model gets here, against 3x torch."""
    config = json.loads((Path(bundled_model_path()) / "config.json").read_text())
    hidden, inner = int(config["hidden_size"]), int(config["intermediate_size"])
    layers = int(config["num_hidden_layers"])
    threads = provider.threads
    # Nominal fp32 peak: 2 FMA units x 8 lanes x 2 per cycle a core (AVX2); clock from cpuinfo.
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    mhz = [float(line.split(":")[1]) for line in cpuinfo if "cpu MHz" in line]
    peak = threads * 32 * (max(mhz) if mhz else 2500.0) / 1000
    rows = []
    for name, texts in sets.items():
        real, padded, per_call = _padded_tokens(provider, texts, chunk)
        # Multiply-adds a token: Q, K, V, output and the two FFN products, plus attention scores
        # and their weighted sum over the batch's width (~ the padded length).
        per_token = 2 * layers * (4 * hidden * hidden + 2 * hidden * inner + 2 * padded * hidden)
        gflop = per_token * padded / 1e9
        useful = per_token * real / 1e9
        m = max(1, round(padded * per_call))  # GEMM rows of one call
        fp32 = _gemm_rate(threads, m, hidden, inner, int8=False)
        int8 = _gemm_rate(threads, m, hidden, inner, int8=True)
        target = 3 * rates["torch"][name]
        rows.append(
            [
                name,
                f"{real:.1f} / {padded:.1f}",
                f"{useful * 1000:.0f} / {gflop * 1000:.0f}",
                *(f"{rates[b][name] * useful:.1f}" for b in ("torch", "onnx-int8") if b in rates),
                f"{fp32:.1f} / {int8:.1f} (peak {peak:.0f})",
                f"{fp32 / gflop:.0f} / {int8 / gflop:.0f}",
                f"{target:.0f} ({target * useful:.1f} GFLOP/s)",
            ]
        )
    print_table(
        f"Roofline: {layers} layers, hidden {hidden}, FFN {inner}; {threads} threads;"
        f" GEMM = one ONNX Runtime MatMul / MatMulInteger of one batch's rows x {hidden} x"
        f" {inner} (peak: nominal AVX2 fp32); the encodes' GFLOP/s count real tokens only;"
        f" load average {os.getloadavg()[0]:.1f}",
        [
            "texts",
            "tokens real / padded",
            "MFLOP a text real / run",
            "torch fp32 useful GFLOP/s",
            "onnx-int8 useful GFLOP/s",
            "GEMM fp32 / int8 GFLOP/s",
            "ceiling texts/s fp32 / int8",
            "3x torch texts/s",
        ],
        rows,
    )


POOL_ROUNDS = 2


def _forked(procs: int, work: Any, shares: Sequence[Any]) -> float:
    """Wall seconds for ``procs`` forked processes, started together, to run ``work(provider,
    share)`` each on its share; each builds its own provider after the fork, sized as a prefork
    worker's child (``DRIFTLINE_WORKER_PROCESSES``), as Celery forks the embed worker's pool."""
    import multiprocessing as mp

    from django.db import connections

    from apps.celery import PROCESSES_ENV

    connections.close_all()  # each child opens its own
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(procs + 1)
    failures = ctx.Queue()

    def child(share: Any) -> None:
        try:
            os.environ[PROCESSES_ENV] = str(procs)
            provider = work(None, share)
            barrier.wait()
            work(provider, share)
        except BaseException as error:  # reported by the parent
            failures.put(repr(error))
            barrier.abort()
            raise

    children = [ctx.Process(target=child, args=(share,)) for share in shares]
    for process in children:
        process.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        for process in children:
            process.join()
        raise RuntimeError(f"a pool process failed: {failures.get(timeout=5)}") from None
    started = time.perf_counter()
    for process in children:
        process.join()
    seconds = time.perf_counter() - started
    if any(p.exitcode for p in children):
        raise RuntimeError(f"a pool process failed: {failures.get(timeout=5)}")
    return seconds


def _raw_work(backend: str, chunk: int) -> Any:
    def work(provider: Any, texts: Sequence[str]) -> Any:
        from apps.embeddings.providers import provider_create

        if provider is None:  # set up, untimed
            provider = provider_create(backend=backend)
            provider.embed(texts[:WARM])
            return provider
        for start in range(0, len(texts), chunk):
            provider.embed(texts[start : start + chunk])
        return provider

    return work


def _pipeline_work(backend: str, project_id: int) -> Any:
    def work(provider: Any, chunks: Sequence[Sequence[str]]) -> Any:
        from apps.embeddings.providers import provider_create
        from apps.embeddings.services import call_embeddings_create

        if provider is None:
            provider = provider_create(backend=backend)
            provider.embed(["warm up"] * WARM)
            return provider
        for ids in chunks:
            call_embeddings_create(
                project_id=project_id, call_ids=ids, provider=provider, score_injection=False
            )
        return provider

    return work


def pool_measure(
    sets: Mapping[str, Sequence[str]], default: str, chunk: int, procs: int
) -> dict[str, dict[str, float]]:
    """Texts a second, every series in forked processes (before this process loads a model):
    torch fp32 raw and the default backend raw in one process using every core; the pipeline
    in one such process; the pipeline in ``procs`` processes splitting the cores, as the embed
    worker runs (``make run``: concurrency 2). Interleaved round by round; a fresh project for
    every pipeline run, so no vector is reused."""
    from apps.accounts.models import Organization, Project

    org, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    seconds: dict[str, dict[str, float]] = {}
    for name, texts in sets.items():
        total = seconds.setdefault(name, {"torch": 0.0, default: 0.0, "one": 0.0, "pool": 0.0})
        for _ in tqdm(range(POOL_ROUNDS), desc=f"pool {name}", unit="round", leave=False):
            total["torch"] += _forked(1, _raw_work("torch", chunk), [texts])
            total[default] += _forked(1, _raw_work(default, chunk), [texts])
            for series, n in (("one", 1), ("pool", procs)):
                project = Project.objects.create(
                    organization=org, name="Embed pool bench", slug=f"pool-{uuid.uuid4().hex[:8]}"
                )
                ids = _calls_create(project, texts)
                chunks = [ids[i : i + chunk] for i in range(0, len(ids), chunk)]
                shares = [chunks[k::n] for k in range(n)]
                total[series] += _forked(n, _pipeline_work(default, project.pk), shares)
                project.delete()
    return {
        name: {series: POOL_ROUNDS * len(sets[name]) / s for series, s in total.items()}
        for name, total in seconds.items()
    }


def print_pool(rates: Mapping[str, Mapping[str, float]], default: str, procs: int) -> None:
    from apps.embeddings.providers import available_cores

    cores = available_cores()
    rows = []
    for name, rate in rates.items():
        rows.append(
            [
                name,
                rate["torch"],
                rate[default],
                rate["one"],
                rate["pool"],
                rate["pool"] / rate["torch"],
                rate["pool"] / rate[default],
                rate["pool"] / rate["one"],
            ]
        )
    print_table(
        f"Embed worker pool: the pipeline ({default}) in {procs} processes of"
        f" {max(1, cores // procs)} model thread(s), as `make run` starts the embed worker,"
        f" against one process of {cores}; {POOL_ROUNDS} rounds interleaved, each series in"
        " forked processes",
        [
            "texts",
            "torch fp32 raw /s",
            f"{default} raw /s",
            "pipeline, 1 process /s",
            f"pipeline, pool of {procs} /s",
            "pool / torch raw (>= 3)",
            "pool / same backend raw (>= 0.9)",
            "pool / 1 process",
        ],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=2000, help="short texts")
    parser.add_argument("--long", type=int, default=240, help="long multi-sentence texts")
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--backends", default="torch,onnx,onnx-int8")
    parser.add_argument(
        "--no-roofline", action="store_true", help="skip the FLOPs/GEMM ceiling (about 15 s)"
    )
    parser.add_argument(
        "--pool", type=int, default=2, help="embed worker processes (0: skip the pool series)"
    )
    args = parser.parse_args()
    setup_django()

    from django.conf import settings

    from apps.embeddings.providers import available_cores, provider_create, resolve_backend
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
    default = resolve_backend(
        settings.DRIFTLINE_EMBEDDING_BACKEND, settings.DRIFTLINE_EMBEDDING_DEVICE
    )
    # First, while no model is loaded here: the pool's processes are forked from this one.
    pool = pool_measure(sets, default, args.chunk, args.pool) if args.pool > 0 else {}

    providers: dict[str, Any] = {}
    load_s: dict[str, float] = {}
    for backend in dict.fromkeys([*backends, default]):
        started = time.perf_counter()
        providers[backend] = provider_create(backend=backend)
        load_s[backend] = time.perf_counter() - started
    loads = [os.getloadavg()[0]]
    raw: dict[str, dict[str, _Tally]] = {}
    vectors: dict[str, dict[str, np.ndarray]] = {}
    pipe: dict[str, dict[str, _Tally]] = {}
    for name, texts in sets.items():
        rates, out, unique, repeat = _measure(providers, default, texts, args.chunk, name)
        for backend in providers:
            raw.setdefault(backend, {})[name] = rates[backend]
            vectors.setdefault(backend, {})[name] = out[backend]
        pipe[name] = {"unique": unique, "repeat": repeat}
        loads.append(os.getloadavg()[0])
    # The first texts after the warm ones: vectors[...]["short"] starts there.
    sample = short[WARM : WARM + 32]
    independence = {
        backend: _batch_independence(provider, sample, vectors[backend]["short"])
        for backend, provider in providers.items()
    }

    # Where each backend runs (DRIFTLINE_EMBEDDING_DEVICE; the ONNX ones need onnxruntime-gpu
    # for cuda), and the GPU's name when there is one.
    devices = {backend: provider.device for backend, provider in providers.items()}
    device = devices[default]
    if "cuda" in devices.values():
        import torch

        device = f"{device}; GPU {torch.cuda.get_device_name(0)}"
    threads = settings.DRIFTLINE_EMBEDDING_THREADS or available_cores()
    load = f"load average {min(loads):.1f}-{max(loads):.1f} (1 min, sampled per text set)"
    title = (
        f"Embedding: {len(short):,} short + {len(long):,} long texts, chunks of {args.chunk},"
        f" device {device}, {threads} threads, default backend {default}; {load}"
    )
    rows = []
    for backend in providers:
        cos_short = _cosine(vectors[backend]["short"], vectors["torch"]["short"])
        cos_long = _cosine(vectors[backend]["long"], vectors["torch"]["long"])
        rows.append(
            [
                backend,
                raw[backend]["short"].rate(),
                raw[backend]["long"].rate(),
                raw[backend]["short"].rate() / raw["torch"]["short"].rate(),
                raw[backend]["long"].rate() / raw["torch"]["long"].rate(),
                *(f"{c:.4f}" for c in cos_short),
                *(f"{c:.4f}" for c in cos_long),
                f"{independence[backend]:.4f}",
                devices[backend],
                load_s[backend],
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
            "alone vs batch (min cos)",
            "device",
            "load s",
        ],
        rows,
    )
    pipe_rows = []
    for name in sets:
        for kind, label in (("unique", "distinct texts"), ("repeat", "repeated texts (reused)")):
            tally = pipe[name][kind]
            p = tally.as_dict()
            pipe_rows.append(
                [
                    f"{default} {name}, {label}",
                    tally.rate(),
                    tally.rate() / raw["torch"][name].rate(),
                    tally.rate() / raw[default][name].rate(),
                    f"{tally.embedded}/{tally.reused}",
                    p["model_share"],
                    p["write_share"],
                    p["write_ms_per_row"],
                ]
            )
    print_table(
        "Pipeline (call_embeddings_create) with the default backend, interleaved with the raw"
        " encodes above",
        [
            "pipeline",
            "texts/s",
            "/ torch fp32 raw (>= 3)",
            "/ same backend raw (>= 0.9)",
            "encoded/reused",
            "model share",
            "write share",
            "write ms/row",
        ],
        pipe_rows,
    )
    onnx_provider = next((p for b, p in providers.items() if b.startswith("onnx")), None)
    if not args.no_roofline and onnx_provider is not None:
        per_s = {b: {n: t.rate() for n, t in r.items()} for b, r in raw.items()}
        roofline(onnx_provider, sets, args.chunk, per_s)
    if pool:
        print_pool(pool, default, args.pool)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mb:.0f} MB (all backends loaded); {load}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "embed.json").write_text(
        json.dumps(
            {
                "short_texts": len(short),
                "long_texts": len(long),
                "chunk": args.chunk,
                "device": device,
                "devices": devices,
                "default_backend": default,
                "load_average": loads,
                "raw_texts_per_s": {b: {n: t.rate() for n, t in r.items()} for b, r in raw.items()},
                "load_s": load_s,
                "cosine_to_torch": {
                    b: {n: _cosine(vectors[b][n], vectors["torch"][n]) for n in sets}
                    for b in providers
                },
                "alone_vs_batch_min_cosine": independence,
                "pipeline": {n: {k: t.as_dict() for k, t in v.items()} for n, v in pipe.items()},
                "pool": {"processes": args.pool, "texts_per_s": pool},
                "keys": {b: providers[b].key for b in providers},
                "peak_rss_mb": peak_mb,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
