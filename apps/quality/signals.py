"""Per-call quality and safety signals: the one entry point the ingest worker calls.

``compute_signals`` runs every registered scorer (:mod:`apps.quality.scorers`) and merges their
outputs into one JSON-serialisable dict. Keys always present:

================  ===============  ===========================================================
key               type             meaning
================  ===============  ===========================================================
refusal           bool             the answer declines the request
injection         float 0..1       prompt-injection / jailbreak likelihood (>= 0.5 flags)
pii               list[str]        kinds of personal data/secrets in prompt or response
                                   (email, phone, card, iban, ssn, national_id, api_key,
                                   private_key, jwt, secret); values are never copied
toxicity          float 0..1       lexicon toxicity, max of prompt and response (>= 0.5 flags)
empty             bool             a call that did not error returned no text
truncated         bool             stopped by the token limit, or cut inside a code block
response_chars    int              length of the response
json_valid        bool | None      JSON parses; None unless the call expected JSON
flags             list[str]        reasons for ``flagged`` (e.g. "injection", "pii:card")
flagged           bool             any safety signal over its threshold
================  ===============  ===========================================================

plus detail keys (``injection_markers``, ``attack_similarity``, ``pii_prompt``...) and whatever
plug-in scorers add. Email addresses and phone numbers are reported in ``pii`` but do not flag on
their own. A scorer that raises is logged and named in ``scorer_errors``; the other signals still
come back, because one team's plug-in must not stop ingestion.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from apps.quality.scorers import CallContext, registered
from apps.quality.scorers.base import split_messages
from apps.quality.scorers.injection import attack_matrix, attack_similarity

if TYPE_CHECKING:
    from apps.embeddings.providers import EmbeddingProvider

logger = logging.getLogger(__name__)

__all__ = ["attack_similarity", "compute_signals", "similarity_to_attacks", "warm_up"]

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
) -> dict[str, Any]:
    """Signals for one call (see the module docstring for the keys).

    ``call`` is the call's stored fields (``model``, ``status``, ``metadata``, ``messages``,
    ``output_tokens``, ``truncated``...); chat ``messages`` stand in for an empty ``prompt``,
    and only their non-system, non-assistant parts are checked for injection and toxicity.
    ``prompt_embedding`` is the prompt's vector from the process-wide embedding provider, given
    by the embed worker so that injection also uses the similarity to known attacks. It must be
    the vector of the user's text (a plain prompt, or the user/tool messages), not of a rendered
    conversation with the app's system prompt: long role-setting system prompts sit close to
    jailbreaks in embedding space and the combination was calibrated on user text. Without it
    the heuristic alone scores injection (well under 1 ms per typical call).
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
    if errors:
        signals["scorer_errors"] = errors
    return signals


def _as_vector(value: np.ndarray | None) -> npt.NDArray[np.float32] | None:
    if value is None:
        return None
    vector = np.asarray(value, dtype=np.float32).reshape(-1)
    return vector if vector.size else None


def similarity_to_attacks(texts: list[str], provider: EmbeddingProvider) -> npt.NDArray[np.float64]:
    """Embed ``texts`` with ``provider`` and return :func:`attack_similarity` of each."""
    return attack_similarity(provider.embed(texts), provider)


def warm_up(provider: EmbeddingProvider) -> int:
    """Load (or build and cache on disk) the known-attack matrix for ``provider``.

    Call once when an embed worker starts: the first build embeds ~330 long prompts (tens of
    seconds on 2 cores) and should not land on the first ingested call. Returns the number of
    reference attacks.
    """
    return int(attack_matrix(provider).shape[0])
