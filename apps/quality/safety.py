"""Per-call quality and safety signals: the one entry point the ingest and embed workers call.

``compute_signals`` runs every registered scorer (:mod:`apps.quality.scorers`) and merges their
outputs into one JSON-serialisable dict. Keys always present:

================  ===============  ===========================================================
key               type             meaning
================  ===============  ===========================================================
refusal           bool             the answer declines the request (``refusal_kind``: full or
                                   partial, "I can't do X, but here is Y")
injection         float 0..1       prompt-injection / jailbreak probability (>= 0.5 flags)
pii               list[str]        kinds of personal data/secrets in prompt or response
                                   (email, phone, card, iban, ssn, national_id, api_key,
                                   private_key, jwt, secret); values are never copied
toxicity          float 0..1       toxicity / harmful content, max of prompt and response
                                   (>= 0.5 flags)
empty             bool             a call that did not error returned no text
truncated         bool             stopped by the token limit, or cut inside a code block
response_chars    int              length of the response
json_valid        bool | None      JSON parses; None unless the call expected JSON
flags             list[str]        reasons for ``flagged`` (e.g. "injection", "pii:card")
flagged           bool             any safety signal over its threshold
signal_source     str              "embedding+heuristic" when a learned probe scored the call
                                   (the embed worker passed vectors), else "heuristic"
safety_fpr        dict             only when a probe scored: the benign FPR of the operating
                                   point each learned signal was cut at (``{"injection": 0.01}``)
================  ===============  ===========================================================

Scores of 0..1 flag at :data:`~apps.quality.scorers.base.FLAG_CUTOFF`; learned scores are
calibrated so that the cut-off is the operating point chosen for a benign false-positive rate
(:func:`operating_points` tells the UI which, and at what expected rate).

plus detail keys (``injection_markers``, ``injection_source``, ``pii_prompt``...) and whatever
plug-in scorers add. Email addresses and phone numbers are reported in ``pii`` but do not flag on
their own. A scorer that raises is logged and named in ``scorer_errors``; the other signals still
come back, because one team's plug-in must not stop ingestion.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from apps.quality.scorers import CallContext, learned, registered
from apps.quality.scorers.base import FLAG_CUTOFF, message_text, split_messages
from apps.quality.scorers.learned import OperatingPointInfo

logger = logging.getLogger(__name__)

__all__ = ["FLAG_CUTOFF", "compute_signals", "operating_points", "warm_up"]

# Where a call carries retrieved documents or tool output (metadata keys, any of them).
CONTEXT_KEYS = ("context", "retrieved_context", "documents", "retrieval", "sources")

_DEFAULTS: dict[str, Any] = {
    "refusal": False,
    "injection": 0.0,
    "pii": [],
    "toxicity": 0.0,
    "empty": False,
    "truncated": False,
    "response_chars": 0,
    "json_valid": None,
}


def compute_signals(
    *,
    prompt: str | None,
    response: str | None,
    call: Mapping[str, Any] | None = None,
    prompt_embedding: np.ndarray | None = None,
    response_embedding: np.ndarray | None = None,
    provider_key: str | None = None,
    safety_fpr: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Signals for one call (see the module docstring for the keys).

    ``call`` is the call's stored fields (``model``, ``status``, ``metadata``, ``messages``,
    ``output_tokens``, ``truncated``...); chat ``messages`` stand in for an empty ``prompt``,
    and only their non-system, non-assistant parts are checked for injection and toxicity.
    ``prompt_embedding`` is the prompt's vector from the process-wide embedding provider, given
    by the embed worker so that injection also uses the similarity to known attacks. It must be
    the vector of the user's text (a plain prompt, or the user/tool messages), not of a rendered
    conversation with the app's system prompt: long role-setting system prompts sit close to
    jailbreaks in embedding space and the probes were trained on user text.
    ``response_embedding`` is the response's vector; ``provider_key`` names their vector space
    (a probe trained in another space is not used). Without vectors the heuristics answer (well
    under 1 ms per typical call) and ``signal_source`` is ``"heuristic"``. Retrieved context
    (``metadata["context"]`` and the other :data:`CONTEXT_KEYS`, or the response of a
    ``retrieval`` span) is checked for indirect injection. ``safety_fpr`` is the project's
    chosen benign FPR per learned signal (:func:`apps.quality.selectors.safety_fpr_for_project`);
    a signal it does not name flags at the deployment's default point.
    """
    fields: Mapping[str, Any] = call or {}
    metadata = fields.get("metadata")
    # Chat calls store their input as messages (prompt empty); the app's own system prompt is
    # kept out of the injection and toxicity checks.
    all_text, user_text = split_messages(fields.get("messages"))
    context = CallContext(
        prompt=prompt or all_text,
        response=response or "",
        call=fields,
        metadata=metadata if isinstance(metadata, Mapping) else {},
        prompt_embedding=_as_vector(prompt_embedding),
        user_text=user_text,
        response_embedding=_as_vector(response_embedding),
        provider_key=provider_key,
        context=_context_text(fields, metadata, response or ""),
        safety_fpr=dict(safety_fpr or {}),
    )
    signals: dict[str, Any] = dict(_DEFAULTS)
    flags: list[str] = []
    errors: list[str] = []
    for scorer in registered():
        try:
            output = scorer.score(context)
        except Exception:
            logger.exception("quality scorer %s failed", scorer.name)
            errors.append(scorer.name)
            continue
        for key, value in output.items():
            if key == "flags":
                flags.extend(str(flag) for flag in value)
            else:
                signals[key] = value
    signals["flags"] = sorted(set(flags))
    signals["flagged"] = bool(flags)
    sources = {v for k, v in signals.items() if k.endswith("_source") and k != "signal_source"}
    signals["signal_source"] = (
        "embedding+heuristic" if "embedding+heuristic" in sources else "heuristic"
    )
    # The operating point (benign FPR) each learned score was cut at, so that a stored flag says
    # what false-positive rate it was raised at even after the project moves its point.
    points = {
        signal: learned.clip_fpr(context.safety_fpr.get(signal) or learned.target_fpr(signal))
        for signal in learned.SIGNALS
        if signals.get(f"{signal}_source") == "embedding+heuristic"
    }
    if points:
        signals["safety_fpr"] = points
    if errors:
        signals["scorer_errors"] = errors
    return signals


def _as_vector(value: np.ndarray | None) -> npt.NDArray[np.float32] | None:
    if value is None:
        return None
    vector = np.asarray(value, dtype=np.float32).reshape(-1)
    return vector if vector.size else None


def _context_text(fields: Mapping[str, Any], metadata: Any, response: str) -> str:
    parts: list[str] = []
    if isinstance(metadata, Mapping):
        for key in CONTEXT_KEYS:
            value = metadata.get(key)
            text = value if isinstance(value, str) else message_text(value)
            if text:
                parts.append(text)
    if fields.get("kind") == "retrieval" and response:
        parts.append(response)
    return "\n".join(parts)


def operating_points(
    provider_key: str | None = None, fprs: Mapping[str, float] | None = None
) -> list[OperatingPointInfo]:
    """Per learned flag: the target benign FPR (``fprs``, a project's choice, else the
    deployment's setting), the FPR expected there (measured on held-out benign data), the
    expected recall (in-distribution and on held-out source families), and whether a probe for
    ``provider_key`` ships."""
    return learned.operating_points(provider_key, fprs)


def warm_up(provider_key: str | None = None) -> int:
    """Load the learned probes (call once when an embed worker starts); returns how many fit
    ``provider_key`` (all shipped ones when None)."""
    loaded = 0
    for signal in learned.SIGNALS:
        found = learned.probe(signal)
        if found is not None and (
            provider_key is None or learned.same_space(found.provider_key, provider_key)
        ):
            loaded += 1
    return loaded
