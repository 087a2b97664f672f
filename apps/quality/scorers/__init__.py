"""Per-call quality and safety scorers (plug-ins); see :mod:`apps.quality.scorers.base`.

Importing this package registers the built-in scorers: shape (empty/truncated/length/JSON),
refusal, PII, injection and toxicity.
"""

from apps.quality.scorers.base import (
    CallContext,
    Scorer,
    get,
    register,
    registered,
    unregister,
)
from apps.quality.scorers.injection import InjectionScorer
from apps.quality.scorers.pii import PIIScorer
from apps.quality.scorers.refusal import RefusalScorer
from apps.quality.scorers.shape import ShapeScorer
from apps.quality.scorers.toxicity import ToxicityScorer

BUILTIN_SCORERS: tuple[type[Scorer], ...] = (
    ShapeScorer,
    RefusalScorer,
    PIIScorer,
    InjectionScorer,
    ToxicityScorer,
)


def register_builtins() -> None:
    """(Re-)register fresh instances of the built-in scorers."""
    for scorer_class in BUILTIN_SCORERS:
        register(scorer_class())


register_builtins()

__all__ = [
    "BUILTIN_SCORERS",
    "CallContext",
    "InjectionScorer",
    "PIIScorer",
    "RefusalScorer",
    "Scorer",
    "ShapeScorer",
    "ToxicityScorer",
    "get",
    "register",
    "register_builtins",
    "registered",
    "unregister",
]
