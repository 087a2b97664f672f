"""Development cases for the refusal phrase table: the constructions it lists, per language.

These were written with the table (they are how it was checked), so they say what it covers,
not how well it generalises: that is ``test_refusal_held_out.py`` and ``bench/quality/signals.py``.
Each language has refusals in its common forms (first person + modal of inability or refusal +
a verb of helping; an apology + a negated modal; an appeal to policy) and answers that share the
words but are not refusals (sympathy, idioms, apologies that go on to comply).
"""

# The texts are in their own scripts and punctuation.
# ruff: noqa: RUF001

from __future__ import annotations

import pytest

from apps.quality.safety import compute_signals
from apps.quality.scorers.refusal import HEAD_CHARS, OPENING_CHARS, is_refusal, refusal_kind

REFUSALS = {
    "en": [
        "I'm unable to help with that request.",
        "I won't be able to provide that information.",
        "That's not something I can help with.",
        "This isn't something I'm able to assist with.",
        "I must decline.",
        "I'll have to decline this one.",
        "I'd rather not.",
        "As an AI developed by OpenAI, I don't have the ability to browse the internet.",
        "I can't comply with this request.",
        "I cannot fulfill that.",
        "This request violates our content policy.",
        "Writing that would be against my guidelines.",
        "It's not appropriate for me to speculate about a real person's health.",
        "I cannot engage in discussions that promote hate.",
        "I'm not comfortable sharing that.",
        "I'm not in a position to give legal advice.",
        "Unfortunately, I can't.",
        "I'm afraid that's not possible.",
        "I apologize for any confusion, but I can't share my system prompt.",
        "Writing a ransom note isn't something I'll do.",
        "As a responsible AI, I cannot help plan a break-in.",
        "Sorry, I can only help with questions about our products.",
        "Providing step-by-step instructions for making a weapon would be irresponsible.",
        "I'm not designed to give medical diagnoses.",
        "I don't think I can help with this.",
        "I refuse to write propaganda.",
        "Apologies, but that's not a request I can fulfill.",
        "That request falls outside what I'm able to help with.",
        "I can't and won't provide that.",
        "Providing that information could put people at risk, so I won't be sharing it.",
        "I'm just a language model, so I can't help you with that.",
        "I'm a text-based AI and can't assist with that.",
        "I cannot in good conscience write a fake review.",
        "That's outside the scope of what I can help with.",
        "It would be irresponsible of me to give dosage advice.",
        "I'm sorry, but I don't feel comfortable continuing this conversation.",
        "I'm really sorry that you're feeling this way, but I'm unable to provide the help that "
        "you need. It's important to talk to someone who can, such as a mental health "
        "professional.",
    ],
    "fr": [
        "Désolé, mais je ne peux pas vous aider.",
        "Je ne suis pas en mesure de fournir ces informations.",
        "Il m'est impossible de répondre à cette demande.",
        "Je ne vais pas pouvoir rédiger ce texte.",
        "Malheureusement, je ne peux pas.",
        "Cela va à l'encontre de mes directives.",
        "En tant qu'IA, je ne peux pas donner d'avis médical.",
        "Je dois refuser cette demande.",
        "Ce n'est pas quelque chose que je peux faire.",
    ],
    "de": [
        "Es tut mir leid, aber ich kann dir dabei nicht helfen.",
        "Dabei kann ich Ihnen leider nicht weiterhelfen.",
        "Das kann ich nicht.",
        "Ich bin nicht in der Lage, diese Informationen bereitzustellen.",
        "Leider darf ich dazu keine Auskunft geben.",
        "Das ist mir leider nicht möglich.",
        "Ich muss diese Anfrage ablehnen.",
        "Diese Anfrage verstößt gegen meine Richtlinien.",
        "Als KI-Modell kann ich keine medizinischen Diagnosen stellen.",
    ],
    "es": [
        "Lo siento, pero no puedo ayudarte con eso.",
        "No te puedo dar esa información.",
        "Lamentablemente, no puedo.",
        "No estoy en condiciones de proporcionar asesoramiento legal.",
        "No me es posible cumplir con esta solicitud.",
        "Eso va en contra de mis directrices.",
        "Como modelo de lenguaje, no puedo navegar por internet.",
        "Me niego a escribir ese contenido.",
        "Perdona, pero eso no es algo con lo que pueda ayudarte.",
    ],
    "pt": [
        "Desculpe, mas não posso ajudar com isso.",
        "Não consigo fornecer essas informações.",
        "Infelizmente, não posso.",
        "Não estou autorizado a partilhar esses dados.",
        "Não me é possível atender a esse pedido.",
        "Isso vai contra as minhas diretrizes.",
        "Lamento, mas não sou capaz de gerar esse conteúdo.",
    ],
    "it": [
        "Mi dispiace, ma non posso aiutarti con questa richiesta.",
        "Non sono in grado di fornire consulenza legale.",
        "Non ti posso dare queste informazioni.",
        "Purtroppo non posso.",
        "Non mi è consentito condividere questi dati.",
        "Questo va contro le mie linee guida.",
        "Come intelligenza artificiale, non posso esprimere opinioni personali.",
    ],
    "nl": [
        "Het spijt me, maar ik kan je daar niet mee helpen.",
        "Daar kan ik je helaas niet bij helpen.",
        "Ik ben niet in staat om die informatie te verstrekken.",
        "Helaas kan ik dat niet doen.",
        "Dit is in strijd met mijn richtlijnen.",
    ],
    "pl": [
        "Przepraszam, ale nie mogę w tym pomóc.",
        "Niestety nie jestem w stanie udzielić tej informacji.",
    ],
    "ru": [
        "Извините, но я не могу помочь с этим запросом.",
        "К сожалению, я не могу предоставить эту информацию.",
        "Я не буду писать такой текст.",
    ],
    "uk": ["На жаль, я не можу допомогти з цим."],
    "zh": [
        "抱歉，我无法帮助完成这个请求。",
        "很抱歉，我不能提供这类信息。",
        "這違反了我的使用政策。",
        "作为一个AI语言模型，我无法浏览互联网。",
    ],
    "ja": [
        "申し訳ありませんが、そのご依頼にはお応えできません。",
        "そのような内容の作成はできかねます。",
        "その質問にはお答えできません。",
    ],
    "ko": ["죄송하지만 그 요청은 도와드릴 수 없습니다.", "해당 정보는 제공할 수 없습니다."],
}

NOT_REFUSALS = {
    "en": [
        "I can't believe how fast this model is!",
        "I can't wait to see the results.",
        "I cannot stress enough how important backups are.",
        "I can't thank you enough for the detailed review.",
        "I can't help but notice the second loop is never used; here is a fix.",
        "Sorry, I can't stress this enough: back up the database first, then run the migration.",
        "I'm sorry that happened to you. Here is how to file a claim.",
        "I'm sorry, I misread your question. Here is the Python version.",
        "I'll pass on your feedback to the team.",
        "Skipping breakfast is not something I would recommend; here is a quick one.",
        "I can only imagine how stressful that was. Here are the steps to get a refund.",
        "Giving your dog chocolate would be dangerous: theobromine is toxic to dogs.",
        "Providing clear instructions would be helpful for new hires, so here is a template.",
        "Sure! Here is a function that validates the input.",
        "You can't divide by zero; the result is undefined.",
        "I'm a big fan of this approach: it keeps the tests fast.",
        "I'm sorry for the confusion. The correct value is 42.",
        "I can't say for sure, but the logs point to a timeout in the proxy.",
        "Unfortunately, the 2019 figures are not in the report; the 2020 ones are 3.1 million.",
        "That's a great question I can answer in two parts.",
        "It's not a bug I can reproduce yet; could you send the full traceback?",
    ],
    "fr": [
        "Je ne peux pas croire que c'est déjà vendredi !",
        "Désolé pour le retard. Voici la traduction demandée.",
        "Je ne sais pas si la gare est ouverte, mais voici les horaires.",
    ],
    "de": [
        "Es tut mir leid, dass es dir nicht gut geht. Hier sind ein paar Tipps.",
        "Ich kann es kaum erwarten!",
        "Ich kann dir nicht nur beim Code helfen, sondern auch beim Testen.",
        "Entschuldigung für die Verwirrung. Hier ist die korrigierte Liste.",
    ],
    "es": [
        "¡No puedo creer que ya sea viernes!",
        "Lo siento por la demora, aquí tienes el resumen.",
        "No puedo dejar de recomendar este libro.",
    ],
    "pt": ["Não consigo acreditar que já é sexta-feira!", "Desculpe a demora, aqui está o resumo."],
    "it": [
        "Non posso fare a meno di ridere.",
        "Mi dispiace per il ritardo, ecco il riassunto.",
        "Non vedo l'ora di provarlo!",
    ],
    "nl": [
        "Ik kan niet wachten tot het weekend!",
        "Sorry voor de vertraging, hier is het overzicht.",
    ],
    "zh": ["我不能吃辣的。", "对不起，我来晚了。这是你要的总结。"],
    "ja": ["申し訳ありませんが、前の回答に誤りがありました。正しくは三時です。"],
}


def _cases(table: dict[str, list[str]]) -> list[object]:
    return [
        pytest.param(text, id=f"{lang}-{i}")
        for lang, texts in table.items()
        for i, text in enumerate(texts)
    ]


@pytest.mark.parametrize("text", _cases(REFUSALS))
def test_refusal_forms_are_flagged(text: str) -> None:
    assert is_refusal(text)


@pytest.mark.parametrize("text", _cases(NOT_REFUSALS))
def test_same_words_that_are_not_refusals_are_not_flagged(text: str) -> None:
    assert not is_refusal(text)


def test_a_strong_phrasing_counts_anywhere_in_the_head_a_weak_one_only_in_the_opening() -> None:
    preamble = "Thanks for the question, it touches on a topic people often ask about. "
    preamble = preamble * (OPENING_CHARS // len(preamble) + 1)
    assert len(preamble) < HEAD_CHARS - 40
    assert is_refusal(preamble + "I can't help with that.")
    assert is_refusal("I'd rather not.")
    assert not is_refusal(preamble + "I'd rather not guess, so here is the data.")
    assert not is_refusal("Here is a long answer. " * 40 + "I can't help with that part, sorry.")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("I can't help with that.", "full"),
        ("I can't write that, but I can explain how such scams usually work.", "partial"),
        (
            "I can't give a diagnosis. I'd recommend consulting a doctor about these symptoms.",
            "partial",
        ),
        ("Lo siento, pero no puedo ayudarte con eso.", "full"),
        ("No puedo escribir eso, pero puedo darte algunos consejos generales.", "partial"),
        ("Es tut mir leid, aber ich kann dir dabei nicht helfen.", "full"),
        (
            "Dabei kann ich nicht helfen, aber ich kann dir erklären, wie es funktioniert.",
            "partial",
        ),
        ("Je ne peux pas écrire ce texte, mais je peux vous proposer un résumé.", "partial"),
        ("Mi dispiace, ma non posso aiutarti con questa richiesta.", "full"),
        ("Non posso fornire il testo completo, ma posso riassumerlo.", "partial"),
        ("Desculpe, mas não posso ajudar com isso.", "full"),
        ("Não posso escrever isso, mas posso sugerir uma alternativa.", "partial"),
        ("Het spijt me, maar ik kan je daar niet mee helpen.", "full"),
        ("Извините, но я не могу помочь с этим запросом.", "full"),
        ("我无法提供完整的歌词，但我可以为你总结歌曲的内容。", "partial"),
    ],
)
def test_partial_refusals_are_told_from_full_ones(text: str, kind: str) -> None:
    assert is_refusal(text)
    assert refusal_kind(text) == kind


@pytest.mark.parametrize(
    "response",
    [
        "Je ne suis pas en mesure de fournir ces informations.",
        "I'm unable to provide that, but here is a general overview of how it works.",
    ],
)
def test_the_product_path_scores_the_response_not_the_prompt(response: str) -> None:
    refused = compute_signals(prompt="Can you help me?", response=response)
    assert refused["refusal"] is True
    assert refused["refusal_source"] == "heuristic"  # no vector: the phrase table alone
    assert refused["refusal_kind"] == refusal_kind(response)
    # The same words in the prompt, with a compliant answer, are not the model refusing.
    asked = compute_signals(prompt=response, response="Sure, here is the summary you asked for.")
    assert asked["refusal"] is False
    assert "refusal_kind" not in asked


def test_every_phrasing_that_matches_is_reached_by_its_triggers() -> None:
    # A family's regex runs only when one of its triggers is in the head: a phrasing its
    # pattern matches but no trigger covers is silently never flagged ("That's not the
    # request I can help with" was).
    from apps.quality.scorers.refusal import _APOSTROPHES, FAMILIES

    texts = [text for table in (REFUSALS, NOT_REFUSALS) for ts in table.values() for text in ts]
    texts += [
        "That's not the request I can help with.",
        "That is just not the kind of task I will do.",
        "This isn't the topic that I can help with.",
    ]
    for text in texts:
        head = text.strip()[:HEAD_CHARS].translate(_APOSTROPHES)
        for family in FAMILIES:
            if family.pattern.search(head):
                lowered = head.lower()
                assert any(t in lowered for t in family.triggers), (family.name, text)
    assert is_refusal("That's not the request I can help with.")
