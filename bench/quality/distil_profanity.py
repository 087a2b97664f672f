"""Distil alt-profanity-check's linear SVM into ``apps/quality/data/toxicity_words.json``.

alt-profanity-check 1.9.1 (MIT, https://github.com/dimitrismistriotis/alt-profanity-check) ships
a TF-IDF bag of words and a linear SVM trained on ~200k human-labelled tweets and Wikipedia
comments (data Driftline does not have) as two joblib pickles. A pickle can run code when it is
loaded, so the server never loads them: this script reads them once, at build time, through an
unpickler that only constructs the scikit-learn and numpy classes listed in :data:`ALLOWED`,
and writes what the decision needs as JSON: per vocabulary word its idf and its SVM coefficient
(the mean of the five cross-validation folds' SVMs, so the score is the mean of their decision
functions), and the mean intercept. :func:`apps.quality.scorers.toxicity.word_score` computes
the same score from it.

Every word keeps its idf even where its coefficient is ~0: the TF-IDF row is L2-normalised over
all vocabulary words of the text, so dropping a word would change every other word's share.

Usage: ``python -m bench.quality.distil_profanity`` (also run by ``bench.quality.train_toxicity``);
the package is installed data-only by ``make install``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from apps.lib.datasets import package_dir

OUT = Path(__file__).resolve().parents[2] / "apps" / "quality" / "data" / "toxicity_words.json"
PACKAGE = "profanity_check"
VERSION = "1.9.1"
# (module, name) pairs the pickles may construct; anything else raises.
ALLOWED = frozenset(
    {
        ("sklearn.calibration", "CalibratedClassifierCV"),
        ("sklearn.calibration", "_CalibratedClassifier"),
        ("sklearn.calibration", "_SigmoidCalibration"),
        ("sklearn.svm._classes", "LinearSVC"),
        ("sklearn.feature_extraction.text", "TfidfVectorizer"),
        ("sklearn.feature_extraction.text", "TfidfTransformer"),
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy", "float64"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "_reconstruct"),
    }
)
# The vectorizer settings the server's tokeniser reproduces; a newer model with other settings
# must fail the build rather than be scored wrongly.
EXPECTED_VECTORIZER = {
    "analyzer": "word",
    "lowercase": True,
    "token_pattern": r"(?u)\b\w\w+\b",
    "ngram_range": (1, 1),
    "strip_accents": None,
    "preprocessor": None,
    "tokenizer": None,
    "binary": False,
    "norm": "l2",
    "use_idf": True,
    "sublinear_tf": False,
}


def _plain_dtype(*args: Any) -> np.dtype[Any]:
    """``numpy.dtype`` for the unpickler, refusing object dtypes: an object array's items are
    unpickled by a nested unpickler, which joblib releases before 1.6 did not restrict."""
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise ValueError("object arrays are not allowed in the model files")
    return dtype


def _load(path: Path) -> Any:
    import joblib
    from joblib.numpy_pickle import NumpyUnpickler

    major, minor = (int(part) for part in joblib.__version__.split(".")[:2])
    if (major, minor) < (1, 6):
        raise RuntimeError(f"joblib {joblib.__version__}: 1.6 or newer is needed to load safely")

    class RestrictedUnpickler(NumpyUnpickler):  # type: ignore[misc]
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) not in ALLOWED:
                raise ValueError(f"{path.name}: {module}.{name} is not on the allow-list")
            if (module, name) == ("numpy", "dtype"):
                return _plain_dtype
            return super().find_class(module, name)

    with path.open("rb") as handle:
        return RestrictedUnpickler(str(path), handle, ensure_native_byte_order=False).load()


def load_original() -> tuple[Any, Any]:
    """``(vectorizer, calibrated classifier)`` of the installed alt-profanity-check."""
    data = package_dir(PACKAGE) / "data"
    vectorizer = _load(data / "vectorizer.joblib")
    model = _load(data / "model.joblib")
    for key, value in EXPECTED_VECTORIZER.items():
        if getattr(vectorizer, key) != value:
            raise ValueError(f"vectorizer.{key} is {getattr(vectorizer, key)!r}, not {value!r}")
    return vectorizer, model


def original_decision(texts: list[str]) -> np.ndarray:
    """The original model's linear score: the mean of its fold SVMs' decision functions."""
    vectorizer, model = load_original()
    rows = vectorizer.transform(texts)
    folds = [c.estimator.decision_function(rows) for c in model.calibrated_classifiers_]
    return np.asarray(np.mean(folds, axis=0), dtype=np.float64)


def distil() -> dict[str, Any]:
    vectorizer, model = load_original()
    folds = model.calibrated_classifiers_
    coef = np.mean([c.estimator.coef_[0] for c in folds], axis=0)
    intercept = float(np.mean([c.estimator.intercept_[0] for c in folds]))
    idf = vectorizer.idf_
    words = {
        word: [float(f"{idf[index]:.10g}"), float(f"{coef[index]:.10g}")]
        for word, index in sorted(vectorizer.vocabulary_.items())
    }
    return {
        "about": (
            "alt-profanity-check's TF-IDF + linear SVM, distilled for "
            "apps/quality/scorers/toxicity.py (word_score); per word: [idf, coefficient]."
        ),
        "source": {
            "name": f"alt-profanity-check {VERSION} (profanity_check/data/*.joblib)",
            "licence": "MIT",
            "copyright": "2018 Victor Zhou, 2021 Menelaos Kotoglou and Dimitrios Mistriotis",
            "url": "https://github.com/dimitrismistriotis/alt-profanity-check",
            "trained_on": "~200k human-labelled tweets and Wikipedia comments (its README)",
        },
        "generated_by": "python -m bench.quality.distil_profanity",
        "token_pattern": vectorizer.token_pattern,
        "lowercase": True,
        "norm": "l2",
        "intercept": float(f"{intercept:.10g}"),
        "words": words,
    }


def main() -> None:
    payload = distil()
    words = payload.pop("words")
    head = json.dumps(payload, indent=1)[:-2]
    # One word per line keeps diffs of the committed file readable.
    lines = [f"  {json.dumps(w, ensure_ascii=False)}: {json.dumps(v)}" for w, v in words.items()]
    OUT.write_text(head + ',\n "words": {\n' + ",\n".join(lines) + "\n }\n}\n", encoding="utf-8")
    print(f"wrote {len(words)} words to {OUT} ({OUT.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
