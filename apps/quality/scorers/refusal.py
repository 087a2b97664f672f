"""Refusal: the model declined to do what was asked.

The phrase table lists refusals the way a grammar would: a first person, a modal of inability or
refusal ("can't", "am unable to", "won't", "must decline"; "je ne peux pas", "ich kann ...
nicht", "no puedo", "non sono in grado di", "não consigo"), then a verb of helping or producing;
or an apology or "unfortunately" followed by such a negated modal; or an appeal to policy ("this
violates my guidelines", "va à l'encontre de mes directives"). English, French, German, Spanish,
Portuguese, Italian, Dutch, Polish, Russian, Ukrainian, Chinese, Japanese and Korean.

Position counts: refusals open the answer, so only the head of the response is read, and a
*strong* phrasing (an explicit "I can't help with that") counts anywhere in it while a *weak*
one ("I'd rather not", "I don't have access to") counts only in the opening. Idioms built on the
same words are not refusals: "I can't believe/wait/thank you enough/stress enough", "I can't
help but", "no puedo creer", "non posso fare a meno di"; neither is an apology that goes on to
comply ("Sorry for the delay, here is..."), because an apology counts only with a negated modal.
Figures: ``bench/quality/signals.py`` and the held-out ``tests/quality/test_refusal_held_out.py``.

With the response's vector, the learned probe (``data/learned_refusal.json``: embedding + this
heuristic) also answers, which catches phrasings the table lacks; either flags. A refusal that
goes on to help ("I can't do X, but here is Y", "..., I'd recommend consulting a doctor") is
``refusal_kind: "partial"``.
"""

# Pattern table, one phrasing per line; the CJK full-width punctuation is what those languages use.
# ruff: noqa: E501, RUF001

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from apps.quality.scorers import learned
from apps.quality.scorers.base import FLAG_CUTOFF, CallContext, Scorer

# Only the head is searched: a refusal states itself within its first sentences.
HEAD_CHARS = 400
# A weak phrasing counts only when it starts here: the first sentence or two.
OPENING_CHARS = 160
STRONG, WEAK = 1.0, 0.5


@dataclass(frozen=True)
class PhraseFamily:
    """Phrasings of one language (or script) that weigh the same.

    A match scores ``weight`` in the opening of the response and half of it later in the head,
    so a strong family flags anywhere in the head and a weak one only in the opening.
    ``triggers`` are lower-cased substrings, one of which every phrasing contains: a head with
    none of them skips the regex, which is most answers.
    """

    name: str
    weight: float
    triggers: tuple[str, ...]
    pattern: re.Pattern[str]


def _family(name: str, weight: float, triggers: str, phrasings: Sequence[str]) -> PhraseFamily:
    return PhraseFamily(
        name, weight, tuple(triggers.split("|")), re.compile("|".join(phrasings), re.IGNORECASE)
    )


# One clause: no sentence end in between.
_CLAUSE = r"[^.!?。！？\n]"

# --- English -------------------------------------------------------------------------------------

_EN_VERBS = (
    r"(?:help|assist|provide|comply|fulfil+|do|create|write|generate|produce|share|support|"
    r"engage|give|offer|answer|continue|complete|make|participate|discuss|disclose|reveal|"
    r"endorse|facilitate|accommodate|process|perform|carry out|go along|be of assistance|"
    r"satisfy|respond|role-?play|pretend|act|draft|compose|translate|summari[sz]e|explain|"
    r"recommend|condone|encourage|promote|advise|access|browse|look up|retrieve|predict|"
    r"diagnose|prescribe|offer|speculate|impersonate|replicate|reproduce|go into|get into|"
    r"proceed|talk about|weigh in|comment)"
)
# "I can't" and its kin: inability, refusal, prohibition.
_EN_CANT = (
    r"(?:can(?:no|')t|can ?not|could(?:n't| not)|won'?t(?: be able to)?|will not(?: be able to)?|"
    r"(?:am|'m) (?:not able|unable|not allowed|not permitted|not in a position|not going|not"
    r" going to be able) to|(?:must|have to|need to|'ll have to|will have to) (?:decline|refuse) to|"
    r"(?:don't|do not) think I (?:can|could|should)|(?:am|'m) not (?:comfortable|willing)"
    r"(?: to)?|(?:don't|do not) feel comfortable)"
)
# Idioms built on "can't" that are not refusals: "I can't believe", "can't thank you enough".
_EN_IDIOM = (
    r"(?!\s+(?:(?:really|even|quite|possibly|just)\s+)?(?:believe|wait|stress|thank|imagine|"
    r"overstate|emphasi[sz]e|express|tell you how|say enough|agree|get over|remember|recall|"
    r"understand why|help (?:but|feeling|thinking|noticing|wondering|myself|it)\b|recommend\b[^.!?\n]{0,40}"
    r"\benough|praise|deny|complain))"
)
# A negated modal after an apology: "Sorry, I can't", "I'm afraid that's not possible".
_EN_NEGATED = (
    r"(?:can(?:no|')t|can ?not|won'?t|will not|unable|(?:am|'m) not going to|not (?:able|allowed|"
    r"permitted|possible|in a position|comfortable|something|appropriate)|isn't (?:possible|something|"
    r"appropriate)|must decline|have to decline|decline|refuse|(?:don't|do not) (?:actually )?(?:have (?:access|the ability|the capability)|feel comfortable|think I (?:can|should)|provide|engage|create|generate|assist|help))"
)

_ENGLISH_STRONG = [
    # "I can't help with that." / "I won't be able to write that." / "I'm unable to provide ..."
    rf"\bI\s*{_EN_CANT}{_EN_IDIOM}(?:\s+(?:and|or)\s+(?:won't|will not|can't|cannot|shouldn't))?\s+(?:\w+\s+){{0,2}}?{_EN_VERBS}\b",
    r"\bI (?:won't|will not|(?:am|'m) not going to) be (?:help|assist|provid|shar|writ|creat|generat|giv|produc|answer|engag|offer|continu|discuss|do)ing\b",
    rf"\bI(?:'m| am) (?:not (?:able|allowed|permitted|in a position|willing)|unable) to\b{_EN_IDIOM}",
    r"\bI (?:don't|do not) feel comfortable\b",
    r"\bI(?:'m| am) not comfortable (?:with|help|provid|creat|writ|generat|engag|shar|discuss|giv|assist)",
    # An apology or "unfortunately", then a negated modal in the same clause.
    rf"\b(?:I(?:'m| am) (?:so |very |really |truly |terribly )?(?:sorry|afraid)|I apologi[sz]e|(?:my )?apologies|sorry|unfortunately|regrettably|I regret(?: to say)?)\b(?: for (?:any|the) (?:confusion|inconvenience))?,?(?: but)?,? (?:I|that|this|it|as an)\b{_CLAUSE}{{0,50}}?\b{_EN_NEGATED}{_EN_IDIOM}",
    r"\b(?:sorry|afraid|apologi[sz]e|apologies|unfortunately),? (?:but )?as an? (?:AI|language model|assistant)\b",
    r"\bI (?:can(?:no|')t|cannot|won't) (?:and will not |and won't )?(?:help|assist) (?:you )?with (?:that|this)\b",
    # Declining in so many words.
    r"\bI(?: must| have to| need to|'ll have to| will have to|'m going to have to| am going to have to)? (?:respectfully |politely |regretfully )?(?:decline|refuse)\b(?! to (?:believe|accept that))",
    r"\bI(?:'ll| will|'m going to| am going to) (?:have to )?pass on (?:this|that)(?: one)?\b",
    # Policy and guidelines.
    r"\b(?:'s|is|are|would be|goes|go|falls|fall) (?:against|outside) (?:of )?(?:my|the|our|OpenAI's|Anthropic's) (?:\w+ )?(?:guidelines|programming|principles|policies|policy|values|terms|rules|boundaries|scope)\b",
    r"\bviolates? (?:my|our|the|OpenAI's|Anthropic's|Google's) (?:\w+ )?(?:usage |content |safety )?(?:policy|policies|guidelines|terms|rules|principles)\b",
    r"\bthis (?:request|content|question|topic) (?:goes against|violates|is not something I|isn't something I|falls outside|is outside|is beyond)\b",
    r"\bmy (?:\w+ )?(?:guidelines|policies|programming|principles|rules|instructions) (?:don't|do not|won't|will not|prevent|prohibit|forbid|don't allow|do not allow)\b",
    r"\b(?:it(?:'s| is| would be|'d be)|that(?:'s| is| would be)) (?:not appropriate|inappropriate|unethical|irresponsible|not ethical|not responsible) (?:for|of) me to\b",
    r"\bI(?:'m| am) (?:not (?:programmed|designed|built|authori[sz]ed) to|programmed not to|designed not to)\b",
    # "That's not something I can help with." / "This isn't something I'm able to do."
    r"\b(?:that|this|it)(?:'s| is)(?: just| really)? not something I\b",
    r"\b(?:that|this|it) (?:isn't|is not) something I\b",
    # Any subject: "Writing a ransom note isn't something I'll do." (not "... I'd recommend").
    r"\b(?:is|are)(?:n't| not) (?:something|anything) I(?:'ll| will| can| could|'m able to| am able to| am willing to|'m willing to)\b",
    # The relative clause: "that's not a request I can fulfil", "outside what I'm able to do".
    r"\b(?:that|this|it)(?:'s not|'s just not| is not| isn't| is just not) (?:a |an |the )?(?:kind of |sort of |type of )?(?:request|question|topic|thing|task|subject|area|something)s? (?:that )?I(?:'m| am)? (?:can|could|will|am able|'m able|able)\b",
    r"\b(?:outside|beyond) (?:of )?what I(?:'m| am)? (?:can|could|able|allowed|permitted)\b",
    r"\bI'?m just an AI\b",
    # "I'm just a language model, so I can't help with that." / "I'm a text-based AI and can't ..."
    rf"\bI(?:'m| am) (?:just |only |merely )?an? (?:text-based |large )?(?:AI|language model|LLM|chatbot)\b{_CLAUSE}{{0,40}}?\b(?:can(?:no|')t|cannot|don't|do not|(?:am|'m) not|unable|won't|isn't)\b",
    r"\bI (?:can(?:no|')t|cannot|won't|could not|couldn't) in good conscience\b",
    r"\b(?:not|isn't|is not) within my (?:\w+ )?(?:programming|guidelines|principles|capabilities|scope)\b",
    # "As an AI language model, I cannot ..." / "As an AI developed by OpenAI, I don't ..."
    rf"\bas an? (?:(?:responsible|ethical|helpful|harmless|honest|safe) )?(?:AI|artificial intelligence|(?:large )?language model|LLM|chatbot|virtual assistant|digital assistant)\b{_CLAUSE}{{0,60}}?\bI (?:can(?:no|')t|cannot|do not|don't|am not|'m not|must|won't|will not|have no|lack|am unable|'m unable|should not|shouldn't)\b",
]
_ENGLISH_WEAK = [
    # Reluctance and capability limits: refusals when they open the answer, asides later on.
    r"\bI(?: would|'d) (?:rather|prefer) not\b",
    r"\bI(?:'m| am) not (?:sure|certain) (?:that )?I (?:can|should) (?:help|assist|provide|do|write|share|answer)\b",
    r"\bI (?:don't|do not) (?:actually |really )?(?:have|possess) (?:access to|the ability to|the capability to|the means to|real-time|personal (?:opinions|experiences|feelings|beliefs)|the authority to|permission to)\b",
    r"\bI (?:don't|do not) (?:condone|endorse|promote|encourage|provide|create|generate|produce|engage in|assist with|help with)\b",
    # A scope limit: "Sorry, I can only help with questions about our products."
    r"\bI(?: can|'m| am) only (?:able to |allowed to |here to |designed to )?(?:help|assist|answer|discuss|provide|talk about|respond to)\b",
    # The model judging its own answer: "providing detailed instructions ... would be dangerous".
    r"\b(?:providing|giving|sharing|offering|writing|creating|generating|explaining) (?:[\w-]+ ){0,4}?(?:instructions|information|details|guidance|steps|content|advice|directions|a guide|a tutorial)\b[^.!?\n]{0,60}?\bwould (?:be (?:\w+ )?(?:dangerous|illegal|unethical|irresponsible|harmful|inappropriate)|(?:cause|lead to|facilitate|enable) (?:\w+ )?(?:harm|injury|violence|crime))\b",
]

# --- Other languages -----------------------------------------------------------------------------

_FR_VERBS = (
    r"(?:aider|r[ée]pondre|fournir|donner|cr[ée]er|[ée]crire|r[ée]diger|g[ée]n[ée]rer|produire|"
    r"partager|participer|traiter|satisfaire|acc[ée]der|communiquer|divulguer|faire|expliquer|"
    r"traduire|continuer|assister|accomplir|effectuer|r[ée]aliser|soutenir|approuver|pouvoir|"
    r"accepter|proposer|offrir|transmettre|d[ée]voiler|r[ée]v[ée]ler|fournir|conseiller|recommander)\b"
)
_FRENCH = [
    # "je ne peux pas vous aider", "je ne vais pas pouvoir", "je ne peux malheureusement pas fournir"
    rf"\bje ne (?:vous |te |t'|lui |leur |l'|le |la |les |en |y )?(?:peux|pourrai|pourrais|vais|saurais)\b{_CLAUSE}{{0,25}}?\bpas\b{_CLAUSE}{{0,30}}?\b{_FR_VERBS}",
    r"\bje ne suis (?:malheureusement )?pas (?:en mesure|autoris[ée]e?|habilit[ée]e?|capable|en droit|cens[ée]e?|programm[ée]e?) (?:de|d'|à|pour)",
    r"\bil m'est (?:malheureusement |donc )?(?:impossible|interdit) de\b",
    r"\bje suis (?:malheureusement )?dans l'impossibilit[ée] de\b",
    r"\bje (?:dois|vais devoir|me vois (?:dans l'obligation|contraint[e]?) de) (?:respectueusement |poliment )?(?:refuser|d[ée]cliner)\b",
    r"\bje (?:refuse|me refuse [àa]) (?:de |d')?",
    rf"\b(?:va|vont|irait|serait) (?:à|a) l'encontre (?:de|des) {_CLAUSE}{{0,30}}?(?:directives|r[èe]gles|principes|politiques?|consignes|lignes directrices|conditions)",
    rf"\ben tant qu'(?:IA|intelligence artificielle|assistant|mod[èe]le de langage)\b{_CLAUSE}{{0,60}}?\bje ne\b",
    # "Désolé, mais je ne peux pas." / "Malheureusement, je ne pourrai pas."
    r"\b(?:d[ée]sol[ée]e?s?|navr[ée]e?s?|malheureusement|h[ée]las|je regrette),? (?:mais )?(?:je ne (?:\w+ )?(?:peux|pourrai|pourrais|vais|suis|saurais)|il m'est impossible|ce n'est pas possible|je crains)",
    r"\bje crains de ne pas pouvoir\b",
    rf"\bce n'est pas (?:quelque chose|une demande|un sujet)\b{_CLAUSE}{{0,25}}?\b(?:je (?:peux|puis|pourrais)|je (?:ne )?puisse)\b",
]
_DE_VERBS = (
    r"(?:\w*helfen|unterst[üu]tzen|tun|machen|erstellen|schreiben|verfassen|beantworten|bereitstellen|"
    r"geben|liefern|anbieten|erf[üu]llen|nachkommen|ausf[üu]hren|generieren|erzeugen|teilen|"
    r"weitergeben|[üu]bersetzen|zusammenfassen|mitmachen|beteiligen|fortsetzen|empfehlen|nennen|"
    r"zur verf[üu]gung stellen|behilflich sein|preisgeben|verraten|durchf[üu]hren|umsetzen|"
    r"erkl[äa]ren|beraten|zugreifen|fortfahren|eingehen|entsprechen)\b"
)
_GERMAN = [
    # Verb-second as well as verb-first: "Ich kann dir dabei nicht helfen", "Das kann ich leider nicht tun".
    rf"\b(?:ich (?:kann|darf|werde|könnte)|(?:kann|darf|werde|könnte) ich)\b{_CLAUSE}{{0,40}}?\b(?:nicht|keine[nmrs]?)\b(?! nur){_CLAUSE}{{0,30}}?\b{_DE_VERBS}",
    # "Leider kann ich das nicht." / "Tut mir leid, aber das darf ich nicht."
    rf"\b(?:(?:es )?tut mir (?:\w+ )?leid|entschuldigung|leider)\b,?(?: aber| doch)?{_CLAUSE}{{0,40}}?\b(?:kann|darf|werde|könnte)\b{_CLAUSE}{{0,30}}?\b(?:nicht|keine[nmrs]?)\b(?! nur)",
    r"\b(?:das|dies|dabei|damit|hierbei|hiermit|hierzu|dazu) (?:kann|darf|werde) ich (?:dir |ihnen |euch )?(?:leider |so |hier )?nicht\b",
    r"\b(?:ist|wäre) (?:es )?mir (?:leider |derzeit |aktuell )?(?:nicht möglich|unmöglich|nicht gestattet|nicht erlaubt)\b",
    r"\bich bin (?:leider )?(?:nicht (?:in der lage|befugt|berechtigt|autorisiert|dafür gedacht)|au[ßs]erstande)\b",
    r"\bich (?:muss|werde) (?:diese anfrage |das |dies |ihre anfrage |deine anfrage )?(?:leider |höflich |respektvoll )?ablehnen\b",
    rf"\b(?:verstößt|verstösst|widerspricht)\b{_CLAUSE}{{0,30}}?(?:richtlinien|grundsätzen|grundsätze|regeln|nutzungsbedingungen|prinzipien)",
    rf"\bals (?:KI|künstliche intelligenz|sprachmodell|KI-\w+|assistent)\b{_CLAUSE}{{0,60}}?\b(?:kann|darf|habe) ich (?:\w+ )?(?:nicht|keine)",
]
_ES_VERBS = (
    r"(?:ayud\w*|proporcion\w*|ofrec\w*|dar|darte|darle|darles|brind\w*|crear\w*|escribir\w*|redact\w*|"
    r"gener\w*|respond\w*|contest\w*|cumplir\w*|facilit\w*|compart\w*|hacer\w*|asistir\w*|particip\w*|"
    r"continu\w*|traduc\w*|realiz\w*|atender\w*|satisfac\w*|apoy\w*|colabor\w*|divulg\w*|revel\w*|"
    r"acceder|produc\w*|elabor\w*|complac\w*|recomend\w*|aconsej\w*)\b"
)
_SPANISH = [
    # "no puedo ayudarte", "no te puedo dar", "no voy a poder escribir", "no estoy en condiciones de"
    rf"\bno (?:(?:me|te|le|les|lo|la|los|las|nos|se) )?(?:puedo|podré|podría|podemos|voy a|estoy en (?:condiciones|posición|disposición) de|estoy autorizad[oa] (?:a|para)|soy capaz de|me es posible|tengo permitido|debo)\b(?! dejar){_CLAUSE}{{0,25}}?\b{_ES_VERBS}",
    r"\b(?:lo siento|lo lamento|disculp[ae]|perd[óo]n|lamentablemente|desafortunadamente|por desgracia|me temo que)\b(?: mucho)?,?(?: pero)?,? (?:yo )?no (?:puedo|podré|podría|es posible|me es posible|estoy (?:en condiciones|autorizad|en posición)|soy capaz|tengo (?:permitido|permiso|acceso|la capacidad))",
    r"\bno (?:me )?es posible\b(?: para mí)?",
    r"\bno estoy (?:en (?:condiciones|posición)|autorizad[oa]) (?:de|a|para)\b",
    r"\bme niego a\b",
    rf"\bno es (?:algo|una solicitud|un tema)\b{_CLAUSE}{{0,25}}?\bpued[ao]\b",
    r"\bdebo (?:rechazar|declinar|negarme)\b",
    rf"\b(?:va|iría|irían|van) en contra de\b{_CLAUSE}{{0,30}}?(?:directrices|pol[íi]ticas?|normas|principios|pautas|reglas|lineamientos)",
    rf"\bviola\b{_CLAUSE}{{0,20}}?(?:directrices|pol[íi]ticas?|normas|pautas)",
    rf"\bcomo (?:una |un )?(?:IA|inteligencia artificial|modelo de lenguaje|asistente (?:de IA|virtual))\b{_CLAUSE}{{0,60}}?\bno (?:puedo|tengo|debo|me es posible|estoy)\b",
]
_PT_VERBS = (
    r"(?:ajud\w*|auxili\w*|fornec\w*|providenci\w*|oferec\w*|dar|dar-lhe|dar-te|cri\w*|escrev\w*|redigir|"
    r"ger\w*|respond\w*|atend\w*|cumprir|compartilh\w*|partilh\w*|faz\w*|fazê-lo|realiz\w*|particip\w*|"
    r"prest\w*|traduz\w*|continu\w*|colabor\w*|apoi\w*|satisfaz\w*|divulg\w*|revel\w*|produz\w*|"
    r"elabor\w*|acess\w*|aceder|assistir|facilit\w*|recomend\w*|aconselh\w*)\b"
)
_PORTUGUESE = [
    # "não posso ajudar", "não consigo atender", "não lhe posso dar", "não estou autorizado a"
    rf"\bn[ãa]o (?:(?:te|lhe|lhes|o|a|os|as|me|vos) )?(?:posso|poderei|poderia|consigo|conseguirei|vou(?: poder| conseguir)?|sou capaz de|estou (?:autorizad[oa]|em condi[çc][õo]es|apt[oa]) (?:a|de|para)|tenho (?:permiss[ãa]o|autoriza[çc][ãa]o) (?:para|de)|devo)\b(?! deixar){_CLAUSE}{{0,25}}?\b{_PT_VERBS}",
    r"\b(?:desculp[ea]|sinto muito|lamento|infelizmente|perd[ãa]o|receio que|temo que)\b,?(?: mas)?,? (?:eu )?n[ãa]o (?:posso|poderei|poderia|consigo|sou capaz|me [ée] poss[íi]vel|[ée] poss[íi]vel|estou (?:autorizad|em condi|apt)|tenho (?:permiss|autoriza|acesso))",
    r"\bn[ãa]o me [ée] (?:poss[íi]vel|permitido)\b",
    r"\bn[ãa]o estou em condi[çc][õo]es de\b",
    r"\b(?:recuso-me|me recuso|eu me recuso) a\b",
    rf"\bn[ãa]o [ée] (?:algo|um pedido|um assunto)\b{_CLAUSE}{{0,25}}?\b(?:possa|posso|consiga)\b",
    r"\b(?:devo|preciso|tenho de|tenho que) (?:recusar|declinar)\b",
    rf"\bvai contra\b{_CLAUSE}{{0,30}}?(?:diretrizes|pol[íi]ticas?|regras|normas|princ[íi]pios|termos)",
    rf"\bviola\b{_CLAUSE}{{0,20}}?(?:diretrizes|pol[íi]ticas|regras|normas)",
    rf"\bcomo (?:uma |um )?(?:IA|intelig[êe]ncia artificial|modelo de linguagem|assistente (?:de IA|virtual))\b{_CLAUSE}{{0,60}}?\bn[ãa]o (?:posso|consigo|tenho|devo)\b",
]
_IT_VERBS = (
    r"(?:aiut\w*|assist\w*|fornir\w*|dar\w*|offrir\w*|crear\w*|scriver\w*|redigere|gener\w*|"
    r"risponder\w*|soddisfar\w*|fare(?! a meno)|farlo|condivider\w*|partecip\w*|tradurr\w*|continu\w*|"
    r"accontent\w*|esaudir\w*|produrr\w*|elabor\w*|support\w*|divulg\w*|rivel\w*|procedere|"
    r"eseguir\w*|complet\w*|accedere|collabor\w*|facilit\w*|prest\w*|consigli\w*|raccomand\w*)\b"
)
_ITALIAN = [
    # "non posso aiutarti", "non ti posso dare", "non riesco a fornire"
    rf"\bnon (?:(?:ti|le|gli|vi|la|lo|li|ne|mi|ci) )?(?:posso|potrò|potrei|possiamo|riesco a|riuscirò a|devo|intendo)\b{_CLAUSE}{{0,25}}?\b{_IT_VERBS}",
    r"\bnon (?:sono|siamo) (?:purtroppo )?(?:in grado|autorizzat[oaie]|abilitat[oaie]) (?:di|a|ad)\b",
    r"\bnon (?:mi|ci) è (?:purtroppo )?(?:possibile|consentito|permesso)\b",
    r"\b(?:mi dispiace|purtroppo|sono spiacente|spiacente|mi scuso|chiedo scusa|temo(?: che)?|ahimè)\b,?(?: molto| tanto)?,?(?: ma)?,? non (?:posso|potrò|potrei|riesco|sono in grado|mi è (?:possibile|consentito|permesso)|è possibile|sono autorizzat|ho (?:il permesso|accesso|la possibilità))",
    r"\bmi rifiuto di\b",
    rf"\bnon è (?:qualcosa|una richiesta|un argomento)\b{_CLAUSE}{{0,25}}?\b(?:possa|posso|riesca)\b",
    r"\bdevo (?:rifiutare|declinare)\b",
    rf"\b(?:va|andrebbe|vanno) contro\b{_CLAUSE}{{0,30}}?(?:linee guida|politiche|regole|norme|principi|policy|termini)",
    rf"\bviola\b{_CLAUSE}{{0,20}}?(?:linee guida|politiche|regole|norme)",
    rf"\b(?:in quanto|come) (?:un'|una |un )?(?:IA|intelligenza artificiale|modello (?:linguistico|di linguaggio)|assistente)\b{_CLAUSE}{{0,60}}?\bnon (?:posso|ho|devo|sono)\b",
]
_NL_VERBS = (
    r"(?:\w*helpen|assisteren|geven|leveren|verstrekken|verschaffen|maken|schrijven|genereren|"
    r"beantwoorden|doen|delen|ondersteunen|cre[ëe]ren|voldoen|bieden|aanbieden|vertalen|uitvoeren|"
    r"opstellen|produceren|onthullen|meewerken|meedoen|voortzetten|aanraden|adviseren)\b"
)
_DUTCH = [
    # "Ik kan je daar niet mee helpen", "Daar kan ik je helaas niet bij helpen"
    rf"\b(?:ik (?:kan|mag|zal|ga)|(?:kan|mag|zal|ga) ik)\b{_CLAUSE}{{0,40}}?\b(?:niet|geen)\b(?! alleen){_CLAUSE}{{0,30}}?\b{_NL_VERBS}",
    rf"\b(?:het spijt me|sorry|helaas)\b,?(?: maar)?{_CLAUSE}{{0,40}}?\b(?:kan|mag|zal)\b{_CLAUSE}{{0,30}}?\b(?:niet|geen)\b(?! alleen)",
    r"\bik ben (?:helaas )?niet (?:in staat|bevoegd|gemachtigd)\b",
    r"\bhet is (?:mij|me) (?:helaas )?niet (?:toegestaan|mogelijk)\b",
    r"\bik (?:moet|zal) (?:dit|dat|uw verzoek|je verzoek|het verzoek)? ?(?:helaas |beleefd )?(?:weigeren|afwijzen|afslaan)\b",
    r"\bik weiger\b",
    rf"\bin strijd met\b{_CLAUSE}{{0,20}}?(?:richtlijnen|beleid|regels|principes|voorwaarden)",
    rf"\bals (?:AI|kunstmatige intelligentie|taalmodel|AI-\w+)\b{_CLAUSE}{{0,60}}?\b(?:kan|mag|heb) ik (?:\w+ )?(?:niet|geen)\b",
]
_POLISH = [
    rf"\bnie (?:mogę|jestem w stanie|potrafię|wolno mi|będę|mam możliwości)\b{_CLAUSE}{{0,30}}?\b(?:pomóc|pomagać|udziel\w*|dostarcz\w*|stworz\w*|utworz\w*|napisa\w*|wygener\w*|spełni\w*|odpowiedzie\w*|zrobi\w*|poda\w*|przekaza\w*|udostępni\w*|zapewni\w*|wykona\w*|przetłumacz\w*|kontynuowa\w*|uczestnicz\w*|wziąć udział)",
    r"\b(?:przepraszam|niestety|przykro mi)\b,?(?: ale)?,? (?:nie (?:mogę|jestem w stanie|potrafię|wolno mi|mam możliwości)|to nie jest możliwe)",
    r"\bnie jestem w stanie\b",
    r"\bmuszę odmówić\b",
    r"\bodmawiam\b",
    rf"\bjako (?:AI|SI|sztuczna inteligencja|model językowy)\b{_CLAUSE}{{0,60}}?\bnie (?:mogę|mam|jestem)\b",
]
_RU_VERBS = (
    r"(?:помо\w+|предостав\w+|выполн\w+|созда\w+|(?:на)?писа\w*|отве\w+|дать|давать|подели\w+|сгенерир\w+|"
    r"участв\w+|обсужда\w+|предлож\w+|сдела\w+|содейств\w+|поддерж\w+|раскр\w+|переве\w+|продолж\w+)"
)
_RUSSIAN_UKRAINIAN = [
    r"(?:извините|простите|к сожалению|увы|прошу прощения|мне жаль),?\s*(?:но\s+)?(?:я\s+)?не (?:могу|смогу|в состоянии|имею права|буду)",
    rf"\bя не (?:могу|смогу|буду|стану|в состоянии)\s+(?:\S+\s+){{0,2}}?{_RU_VERBS}",
    r"\bне имею права\b",
    r"\bвынужден\w* отказат\w*",
    r"противоречит (?:моим )?(?:правилам|принципам|политике|руководящим)",
    rf"\bкак (?:ИИ|искусственный интеллект|языковая модель|ИИ-ассистент)\b{_CLAUSE}{{0,60}}?\bя не\b",
    # Ukrainian
    r"(?:вибачте|на жаль|перепрошую),?\s*(?:але\s+)?(?:я\s+)?не (?:можу|зможу)",
    r"\bя не (?:можу|зможу)\s+(?:\S+\s+){0,2}?(?:допомог\w+|нада\w+|створ\w+|напис\w+|викона\w+|відпов\w+)",
]
# No word boundaries to rely on in these scripts; the verbs after the negation keep "我不能吃辣"
# (I can't eat spicy food) out.
_CJK = [
    r"(?:抱歉|对不起|對不起|很遗憾|很遺憾|不好意思)[^。！？\n]{0,15}?(?:无法|無法|不能|不可以|没办法|沒辦法|没有办法|沒有辦法|恕难|恕難)",
    r"我(?:无法|無法|不能|不可以|没办法|沒辦法|没有办法|沒有辦法|拒绝|拒絕)[^。！？\n]{0,8}?(?:帮助|幫助|帮你|幫你|帮忙|幫忙|协助|協助|提供|满足|滿足|回答|完成|生成|创建|創建|编写|編寫|撰写|撰寫|写|寫|参与|參與|执行|執行|支持|分享|透露|翻译|翻譯|处理|處理)",
    r"(?:这|這|此)(?:违反|違反|违背|違背)了?[^。！？\n]{0,8}?(?:政策|准则|準則|规定|規定|原则|原則|指南|规则|規則)",
    r"作[为為](?:一个|一個|一名)?(?:AI|人工智能|语言模型|語言模型|AI助手|AI语言模型)[^。！？\n]{0,20}?我(?:不能|无法|無法|没有|沒有)",
    r"恕(?:我)?(?:无法|無法|难以|難以|不能)",
    # Japanese: a polite "cannot" after the help/answer noun, or the business "-kanemasu".
    r"申し訳(?:ありません|ございません)(?:が|けれど(?:も)?)[^。！？\n]{0,40}?(?:でき|出来|かね|お応え|お答え|お手伝い)",
    r"(?:お手伝い|お答え|回答|提供|対応|作成|生成|ご協力|協力|ご案内|お応え|ご提供|お受け)(?:すること|いたすこと)?(?:は|が|に)?(?:でき|出来)(?:ません|ない)",
    r"(?:でき|出来)かねます|しかねます",
    r"お断り(?:します|いたします|させていただきます)",
    r"AI(?:として|なので)[^。！？\n]{0,30}?(?:でき|出来)ません",
    # Korean
    r"(?:죄송하지만|죄송합니다만|죄송합니다|유감스럽게도|안타깝게도)[^.!?\n]{0,40}?(?:수 없|수가 없|어렵습니다)",
    r"(?:도와|도와드릴|도움을 드릴|제공할|제공해 드릴|답변할|답변해 드릴|답변을 드릴|작성할|작성해 드릴|생성할|생성해 드릴|지원할|수행할|응할|협조할|처리할)\s*수\s*(?:가\s*)?없",
]

# Triggers are "|"-separated; every phrasing of a family contains one of its triggers.
FAMILIES: tuple[PhraseFamily, ...] = (
    _family(
        "en",
        STRONG,
        "sorry|afraid|apolog|unfortunately|regret|can't|cannot|can not|couldn|could not|won't|"
        "wont|will not|unable|not able|not allowed|not permitted|not in a position|not going|"
        "decline|refuse|pass on|comfortable|willing|think i|against|outside|violat|this request|"
        "this content|this question|this topic|my |me to|programmed|designed|built|authori|"
        "something|just an ai|as a|i'm a|i am a|i'm just|i'm only|conscience|within my|kind of|"
        "sort of|type of|a request|what i|'s not|is not|isn't|'s just not|is just not",
        _ENGLISH_STRONG,
    ),
    _family(
        "en_weak",
        WEAK,
        "rather not|prefer not|not sure|not certain|don't|do not|only|providing|giving|sharing|"
        "offering|writing|creating|generating|explaining",
        _ENGLISH_WEAK,
    ),
    _family(
        "fr",
        STRONG,
        "je ne|m'est|impossib|refus|déclin|declin|encontre|en tant qu|désol|desol|navr|n'est pas|"
        "malheureusement|hélas|helas|regrette|crains",
        _FRENCH,
    ),
    _family("de", STRONG, "ich |mir |leid|entschuldigung|leider|verst|widerspricht|als ", _GERMAN),
    _family(
        "es",
        STRONG,
        "no |siento|lament|disculp|perd|desgracia|temo|niego|debo|en contra|viola",
        _SPANISH,
    ),
    _family(
        "pt",
        STRONG,
        "não|nao|desculp|sinto|lamento|infelizmente|perd|receio|temo|recus|declin|vai contra|viola",
        _PORTUGUESE,
    ),
    _family(
        "it",
        STRONG,
        "non |dispiace|purtroppo|spiacente|scus|temo|ahim|rifiut|declinare|contro|viola",
        _ITALIAN,
    ),
    _family("nl", STRONG, "ik |spijt|sorry|helaas|het is m|in strijd|als ", _DUTCH),
    _family("pl", STRONG, "nie |przepraszam|niestety|przykro|odmówi|odmawiam|jako", _POLISH),
    _family("ru_uk", STRONG, "не |вынужден|противоречит", _RUSSIAN_UKRAINIAN),
    _family(
        "cjk",
        STRONG,
        "抱歉|对不起|對不起|遗憾|遺憾|不好意思|无法|無法|不能|不可以|办法|辦法|拒绝|拒絕|违|違|作为|作為|恕|"
        "申し訳|でき|出来|かねます|お断り|수|죄송|유감|안타깝",
        _CJK,
    ),
)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


def refusal_score(response: str) -> float:
    """The heaviest refusal phrasing in the head of ``response``: its family's weight when it
    starts in the opening, half of it later in the head, 0.0 when none matches."""
    text = response.strip()
    if not text:
        return 0.0
    head = text[:HEAD_CHARS].translate(_APOSTROPHES)
    lowered = head.lower()
    best = 0.0
    for family in FAMILIES:
        if family.weight <= best or not any(t in lowered for t in family.triggers):
            continue
        for match in family.pattern.finditer(head):
            opening = match.start() < OPENING_CHARS
            best = max(best, family.weight if opening else family.weight / 2)
            if opening:
                break
    return best


def is_refusal(response: str) -> bool:
    """Whether ``response`` opens with (or, when short, consists of) a refusal."""
    return refusal_score(response) >= FLAG_CUTOFF


# After a refusal, a turn to what the model will do instead, a referral to someone who can help,
# or simply a long answer. "but I can't" / "pero no puedo" are the refusal itself, not a turn.
_PIVOT = re.compile(
    "|".join(
        [
            r"\b(?:but|however|instead|that said)\b[^.!?\n]{0,60}\b(?:I can(?!'|not)\b|I could(?!n)\b|I'd be happy|I would be happy|I'm happy|here(?:'s| is| are)|you (?:can|could|might))",
            r"\b(?:what I can do|I can, however|I can instead|here(?:'s| is) (?:a|an|some|the) (?:safer|general|high-level|alternative))\b",
            r"\b(?:I(?:'d| would) (?:recommend|suggest|encourage)|please (?:consult|contact|reach out to|seek|speak (?:to|with)|talk to)|consider (?:consulting|speaking|talking|reaching out))\b",
            r"\b(?:mais|cependant|toutefois|en revanche|par contre)\b[^.!?\n]{0,60}\b(?:je peux|je pourrais|voici|vous pouvez|vous pourriez|je serais (?:heureux|ravi))",
            r"\b(?:pero|sin embargo|no obstante|en cambio)\b[^.!?\n]{0,60}?(?<!no )\b(?:puedo|podría|aquí (?:tienes|está|hay)|puedes|podrías|con gusto)\b",
            r"\b(?:aber|jedoch|allerdings|stattdessen|dafür)\b[^.!?\n]{0,60}\b(?:kann ich|ich kann|könnte ich|ich könnte|hier (?:ist|sind)|sie können|du kannst|gerne)\b(?![^.!?\n]{0,30}\b(?:nicht|keine[nmrs]?)\b)",
            r"\b(?:ma|tuttavia|però|invece)\b[^.!?\n]{0,60}?(?<!non )\b(?:posso|potrei|ecco|puoi|potresti|volentieri)\b",
            r"\b(?:mas|no entanto|contudo|porém|em vez disso)\b[^.!?\n]{0,60}?(?<!não )(?<!nao )\b(?:posso|poderia|aqui est[áa]|você pode|com prazer)\b",
            r"\b(?:maar|echter|in plaats daarvan)\b[^.!?\n]{0,60}\b(?:kan ik|ik kan|hier is|je kunt|u kunt|graag)\b(?![^.!?\n]{0,30}\b(?:niet|geen)\b)",
            r"(?:но|однако|вместо этого)[^.!?\n]{0,60}?(?<!не )(?:могу|вот|вы можете)",
            r"(?:但是?|不过|不過|然而)[^。！？\n]{0,20}(?:我可以|可以为你|可以為你|以下是|你可以)",
            r"(?:ただし|代わりに|しかし|ですが)[^。！？\n]{0,30}(?:できます|ご紹介|お伝え|ご提案)",
        ]
    ),
    re.IGNORECASE,
)
PARTIAL_MIN_CHARS = 300


def refusal_kind(response: str) -> str:
    """``"partial"`` when a refusal goes on to offer or give something, else ``"full"``."""
    text = response.strip()
    if len(text) >= PARTIAL_MIN_CHARS * 2:
        return "partial"
    if _PIVOT.search(text[: HEAD_CHARS * 2].translate(_APOSTROPHES)):
        return "partial"
    return "full"


class RefusalScorer(Scorer):
    name = "refusal"

    def score(self, call: CallContext) -> Mapping[str, Any]:
        heuristic = is_refusal(call.response)
        result: dict[str, Any] = {"refusal_source": "heuristic"}
        refused = heuristic
        learned_score = (
            learned.score(
                "refusal",
                vector=call.response_embedding,
                heuristic=float(heuristic),
                provider_key=call.provider_key,
                fpr=call.safety_fpr.get("refusal"),
            )
            if call.response.strip()
            else None
        )
        if learned_score is not None:
            result["refusal_score"], result["refusal_source"] = learned_score
            # Either says so: the phrase table is precise on the phrasings it knows, the probe
            # catches others (bench: the two together beat each alone on held-out families).
            refused = heuristic or learned_score[0] >= FLAG_CUTOFF
        result["refusal"] = refused
        if refused:
            result["refusal_kind"] = refusal_kind(call.response)
        return result
