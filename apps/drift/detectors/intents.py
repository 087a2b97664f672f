"""Intent clusters of a baseline: k-means with k chosen by silhouette, readable labels.

Distances of reference points to their nearest centroid are computed leave-one-out (the point's
own centroid recomputed without it), so they are distributed like the distances of fresh calls;
in-sample distances are biased low and would make every "poorly served" threshold too tight.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .base import FloatArray, IntArray

# A compact English stop list: sklearn's is larger, but it is also applied to labels of new
# groups at test time, where importing sklearn's feature_extraction costs a second.
STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own please s same she should so some such t than that the their theirs
    them themselves then there these they this those through to too under until up very was we
    were what when where which while who whom why will with would you your yours yourself
    yourselves d ll m re ve y want like need get give show tell find let i'd i'm""".split()  # noqa: SIM905 (a word list reads better as text)
)
_TOKEN = re.compile(r"[^\W\d_][\w'-]*", re.UNICODE)


def tokenize(text: str) -> list[str]:
    return [tok for tok in _TOKEN.findall(text.lower()) if tok not in STOP_WORDS and len(tok) > 1]


def term_counts(texts: Sequence[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(tokenize(text))
    return counts


def ctfidf_terms(
    group: Counter[str], background: Counter[str], *, n_classes: int, top: int = 3
) -> list[str]:
    """Class-based TF-IDF (as in BERTopic): terms frequent in ``group`` and rare elsewhere.

    ``background`` holds term counts over all classes (including the group's own);
    ``weight = tf(t, group) * log(1 + A / f(t))`` where ``A`` is the average number of words
    per class and ``f(t)`` the term's total frequency.
    """
    total_words = sum(background.values())
    average = max(total_words / max(n_classes, 1), 1.0)
    group_size = max(sum(group.values()), 1)
    scored = []
    for term, count in group.items():
        frequency = max(background.get(term, 0), count)
        scored.append((count / group_size * np.log1p(average / frequency), term))
    scored.sort(key=lambda pair: (-pair[0], pair[1]))
    return [term for _, term in scored[:top]]


def pairwise_sq_distances(points: FloatArray, centroids: FloatArray) -> FloatArray:
    sq = (
        np.einsum("ij,ij->i", points, points)[:, None]
        - 2.0 * points @ centroids.T
        + np.einsum("ij,ij->i", centroids, centroids)[None, :]
    )
    return np.asarray(np.maximum(sq, 0.0), dtype=np.float64)


@dataclass
class IntentModel:
    """Centroids (k, d), reference sizes (k,) and a label per cluster."""

    centroids: FloatArray
    sizes: IntArray
    labels: list[str]
    silhouette: float

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    def assign(self, vectors: FloatArray) -> tuple[IntArray, FloatArray]:
        """Nearest centroid and Euclidean distance to it, for each row."""
        sq = pairwise_sq_distances(vectors, self.centroids)
        nearest = np.argmin(sq, axis=1).astype(np.int64)
        return nearest, np.sqrt(sq[np.arange(len(vectors)), nearest])

    def assign_leave_one_out(
        self, vectors: FloatArray, members: IntArray
    ) -> tuple[IntArray, FloatArray]:
        """Like :meth:`assign` for the reference points that built the centroids.

        For a point of cluster c (n_c members) the centroid without it is
        ``(n_c mu_c - x) / (n_c - 1)``, so its distance to that centroid is exactly
        ``n_c / (n_c - 1) * ||x - mu_c||``; other centroids do not contain it.
        """
        sq = pairwise_sq_distances(vectors, self.centroids)
        sizes = self.sizes[members].astype(np.float64)
        inflate = np.where(sizes > 1, sizes / np.maximum(sizes - 1, 1), np.inf)
        rows = np.arange(len(vectors))
        sq[rows, members] = sq[rows, members] * inflate**2
        nearest = np.argmin(sq, axis=1).astype(np.int64)
        return nearest, np.sqrt(sq[rows, nearest])


def choose_k(
    vectors: FloatArray,
    *,
    k_range: tuple[int, int],
    sample: int,
    rng: np.random.Generator,
) -> tuple[int, float]:
    """The k with the best silhouette on a subsample (k-means, cosine geometry on unit rows)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    rows = vectors if len(vectors) <= sample else vectors[rng.choice(len(vectors), sample, False)]
    low, high = k_range
    high = min(high, len(rows) - 1)
    best_k, best_score = low, -1.0
    for k in range(low, high + 1):
        model = KMeans(
            n_clusters=k, n_init=2, max_iter=100, random_state=int(rng.integers(1_000_000_000))
        )
        assignment = model.fit_predict(rows)
        if len(np.unique(assignment)) < 2:
            continue
        score = float(silhouette_score(rows, assignment))
        if score > best_score:
            best_k, best_score = k, score
    return best_k, best_score


def fit_intents(
    vectors: FloatArray,
    *,
    texts: Sequence[str] | None,
    k: int | None,
    k_range: tuple[int, int],
    sample: int,
    rng: np.random.Generator,
) -> tuple[IntentModel, IntArray, Counter[str]]:
    """Fit the clusters; returns the model, each reference row's cluster and term counts."""
    from sklearn.cluster import KMeans

    silhouette = float("nan")
    if k is None:
        k, silhouette = choose_k(vectors, k_range=k_range, sample=sample, rng=rng)
    model = KMeans(n_clusters=k, n_init=3, random_state=int(rng.integers(1_000_000_000)))
    members = model.fit_predict(vectors).astype(np.int64)
    # Exact means of the final assignment (the leave-one-out algebra relies on it).
    sizes = np.bincount(members, minlength=k).astype(np.int64)
    keep = sizes > 0
    remap = np.cumsum(keep) - 1
    members = remap[members].astype(np.int64)
    sizes = sizes[keep]
    centroids = np.stack([vectors[members == c].mean(axis=0) for c in range(len(sizes))])
    background: Counter[str] = Counter()
    labels = [f"cluster {c}" for c in range(len(sizes))]
    if texts is not None:
        per_class = [
            term_counts([texts[int(i)] for i in np.flatnonzero(members == c)])
            for c in range(len(sizes))
        ]
        for counts in per_class:
            background.update(counts)
        for c, counts in enumerate(per_class):
            terms = ctfidf_terms(counts, background, n_classes=len(sizes))
            if terms:
                labels[c] = " / ".join(terms)
    intent_model = IntentModel(
        centroids=centroids.astype(np.float64),
        sizes=sizes,
        labels=labels,
        silhouette=silhouette,
    )
    return intent_model, members, background


def group_points(
    vectors: FloatArray, *, distance_threshold: float, min_size: int
) -> list[npt.NDArray[np.int64]]:
    """Agglomerative (average-linkage, cosine) groups of ``vectors``, largest first.

    ``distance_threshold`` is the largest average cosine distance inside a group; groups
    smaller than ``min_size`` are dropped.
    """
    if len(vectors) < max(min_size, 2):
        return []
    from sklearn.cluster import AgglomerativeClustering

    clustering = AgglomerativeClustering(
        n_clusters=None,
        distance_threshold=distance_threshold,
        linkage="average",
        metric="cosine",
    )
    assignment = clustering.fit_predict(vectors)
    groups = [np.flatnonzero(assignment == g).astype(np.int64) for g in np.unique(assignment)]
    groups = [g for g in groups if len(g) >= min_size]
    groups.sort(key=len, reverse=True)
    return groups
