"""Driftline settings: one module, read from the environment.

Defaults work on a laptop (embedded PostgreSQL and Redis started by ``make run``); production
differs only by environment variables. ``DRIFTLINE_ENV=production`` turns the safe defaults on:
DEBUG off, SECRET_KEY required, secure cookies.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from apps.queues import BEAT_SCHEDULE, TASK_ROUTES

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def envint(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value else default


def envfloat(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value else default


DRIFTLINE_ENV = env("DRIFTLINE_ENV", "development")
PRODUCTION = DRIFTLINE_ENV == "production"
TESTING = DRIFTLINE_ENV == "test"

DEBUG = envbool("DEBUG", default=not PRODUCTION and not TESTING)
SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        raise RuntimeError("SECRET_KEY must be set when DRIFTLINE_ENV=production")
    SECRET_KEY = "dev-only-insecure-key-never-use-in-production"  # noqa: S105

# The key that encrypts webhook URLs and other secrets at rest (Fernet, urlsafe base64).
# Falls back to one derived from SECRET_KEY so a laptop needs no extra setting.
DRIFTLINE_ENCRYPTION_KEY = env("DRIFTLINE_ENCRYPTION_KEY")

ALLOWED_HOSTS = [h for h in env("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in env("CSRF_TRUSTED_ORIGINS").split(",") if o]
# The URL people reach the UI at: used in alert links and SDK snippets.
DRIFTLINE_BASE_URL = env("DRIFTLINE_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "apps.core",
    "apps.accounts",
    "apps.traces",
    "apps.ingest",
    "apps.embeddings",
    "apps.drift",
    "apps.compare",
    "apps.quality",
    "apps.evaluators",
    "apps.alerts",
    "apps.dashboard",
    "apps.ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "apps.core.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.accounts.login_throttle.LoginThrottleMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "apps.urls"
WSGI_APPLICATION = "apps.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.dashboard.context.project_context",
            ],
        },
    },
]

# --- Stack discovery: `make run`'s state file -----------------------------------------------
# `make run` writes the URLs of the services it started to .driftline/run/services.json; any
# process of the checkout without DATABASE_URL / CELERY_BROKER_URL (a `manage.py` command in a
# second terminal) uses them. The environment always wins. Tests never read it.
DRIFTLINE_STATE_DIR = Path(env("DRIFTLINE_STATE_DIR") or BASE_DIR / ".driftline" / "run")


def _stack_state() -> dict[str, str]:
    if TESTING:
        return {}
    try:
        return dict(json.loads((DRIFTLINE_STATE_DIR / "services.json").read_text()))
    except (OSError, ValueError):
        return {}


DRIFTLINE_STACK = _stack_state()
if (
    not env("DATABASE_URL")
    and DRIFTLINE_STACK.get("postgres_dir")
    and Path(sys.argv[0]).name == "manage.py"
):
    # After `make run` stopped: its embedded PostgreSQL runs for this command, then stops.
    try:
        from devtools.devstack import ensure_postgres_for_cli
    except ImportError:  # an installed server without the checkout's dev tooling
        pass
    else:
        ensure_postgres_for_cli(Path(DRIFTLINE_STACK["postgres_dir"]))

# --- Database -------------------------------------------------------------------------------
# DATABASE_URL points at any PostgreSQL >= 15 with pgvector; `make test` exports the URL of the
# embedded server it starts, `make run` also records it in its state file (above).
DATABASE_URL = env("DATABASE_URL") or DRIFTLINE_STACK.get(
    "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/driftline"
)


def _database_from_url(url: str) -> dict[str, object]:
    parts = urlsplit(url)
    options: dict[str, object] = {}
    host = parts.hostname or ""
    query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    if "host" in query:  # unix socket directory: postgresql://user@/db?host=/path
        host = query["host"]
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": (parts.path or "/driftline").lstrip("/"),
        "USER": parts.username or "postgres",
        "PASSWORD": parts.password or "",
        "HOST": host,
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": envint("DB_CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": options,
        "TEST": {"NAME": env("DATABASE_TEST_NAME", "test_driftline")},
    }


DATABASES = {"default": _database_from_url(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

# --- E-mail (invitations) ---------------------------------------------------------------------
# No mail server by default: an invitation's one-time link is shown to the admin who made it.
# With EMAIL_HOST set, the link is also e-mailed (SMTP, STARTTLS with EMAIL_USE_TLS).
EMAIL_HOST = env("EMAIL_HOST")
EMAIL_PORT = envint("EMAIL_PORT", 587)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", default=True)
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "driftline@localhost")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
# `make run` collects into .driftline/run/static at start; whitenoise serves the compressed
# copies (gzip/brotli); no manifest, so template paths stay as written.
STATIC_ROOT = Path(env("DRIFTLINE_STATIC_ROOT") or BASE_DIR / ".driftline" / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Security ---------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
# `make run` serves production settings over http:// on loopback and turns these off.
SESSION_COOKIE_SECURE = envbool("DRIFTLINE_SECURE_COOKIES", PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PRODUCTION else None
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0)
# Prompts and responses are attacker-controlled: scripts only from our own origin, no inline.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'; object-src 'none'"
)

# --- Sign-in throttling (apps/accounts/login_throttle.py) ---------------------------------------
LOGIN_MAX_FAILURES_PER_USER = envint("LOGIN_MAX_FAILURES_PER_USER", 5)
LOGIN_MAX_FAILURES_PER_IP = envint("LOGIN_MAX_FAILURES_PER_IP", 20)
LOGIN_LOCKOUT_SECONDS = envint("LOGIN_LOCKOUT_SECONDS", 900)

# --- Ingestion limits -------------------------------------------------------------------------
# The raw (or decompressed) body limit; checked before parsing, also for gzip bombs.
INGEST_MAX_BODY_BYTES = envint("INGEST_MAX_BODY_BYTES", 10 * 1024 * 1024)
INGEST_MAX_BATCH_EVENTS = envint("INGEST_MAX_BATCH_EVENTS", 1000)
# Prompt and response text beyond this many characters is truncated and flagged.
INGEST_MAX_TEXT_CHARS = envint("INGEST_MAX_TEXT_CHARS", 100_000)
# Each JSON field of a call (messages, metadata, tags) over this many bytes refuses the event.
INGEST_MAX_JSON_BYTES = envint("INGEST_MAX_JSON_BYTES", 1024 * 1024)
# Token bucket per project: sustained events/s and burst size. 0 disables the limit.
INGEST_RATE_LIMIT_EVENTS_PER_S = envfloat("INGEST_RATE_LIMIT_EVENTS_PER_S", 5000.0)
INGEST_RATE_LIMIT_BURST = envint("INGEST_RATE_LIMIT_BURST", 50_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = INGEST_MAX_BODY_BYTES

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL") or DRIFTLINE_STACK.get(
    "CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"
)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
# Re-deliver tasks of a worker that died (OOM, SIGKILL); tasks guard against poison messages
# by being idempotent and bounded in attempts.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Longer than any task may run, so a slow task is not delivered twice.
    "visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 2 * 3600),
    # --- Broker outages (issue 13): notice a dead or restarted Redis and reconnect.
    "health_check_interval": envint("CELERY_REDIS_HEALTH_CHECK_S", 10),
    "socket_connect_timeout": 5,
    "socket_keepalive": True,
    "retry_on_timeout": True,
}
# Workers (and beat) wait for the broker for ever, at start and after losing it: a Redis
# restart is an outage to ride out, not a reason to exit.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# On a lost connection the messages of running tasks go back to the queue (acks_late) and are
# redelivered; cancelling those tasks means they run once more after reconnection, instead of
# finishing and failing to ack on a dead channel. Tasks are idempotent (the follow-up claims).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Embeddings -------------------------------------------------------------------------------
DRIFTLINE_EMBEDDING_PROVIDER = env("DRIFTLINE_EMBEDDING_PROVIDER", "sentence-transformers")
# A sentence-transformers model name or path; empty means the bundled all-MiniLM-L6-v2.
DRIFTLINE_EMBEDDING_MODEL = env("DRIFTLINE_EMBEDDING_MODEL", "")
# torch (fp32) | onnx (ONNX Runtime fp32, the same vectors as torch) | onnx-int8 (int8 weights
# and frozen activation scales: the fastest within the quality bar; see providers.py).
DRIFTLINE_EMBEDDING_BACKEND = env("DRIFTLINE_EMBEDDING_BACKEND", "onnx-int8")
# auto: cuda when torch sees a GPU.
DRIFTLINE_EMBEDDING_DEVICE = env("DRIFTLINE_EMBEDDING_DEVICE", "auto")
DRIFTLINE_EMBEDDING_BATCH_SIZE = envint("DRIFTLINE_EMBEDDING_BATCH_SIZE", 64)
# Model threads (torch / ONNX Runtime intra-op); 0 means the cores this process may use.
DRIFTLINE_EMBEDDING_THREADS = envint("DRIFTLINE_EMBEDDING_THREADS", 0)
# Where the ONNX graphs exported from the local model are cached (built on first use).
DRIFTLINE_EMBEDDING_CACHE_DIR = Path(
    env("DRIFTLINE_EMBEDDING_CACHE_DIR", str(BASE_DIR / ".driftline" / "models"))
)
# HNSW candidates per similar-call search: with the app's index (m 12 / ef_construction 48)
# recall@10 0.968 at 100k vectors a project with 200 (~2 ms); at a million, rebuild the index
# denser and raise this to 700-1,000 (docs/sizing.md).
DRIFTLINE_SEARCH_EF_SEARCH = envint("DRIFTLINE_SEARCH_EF_SEARCH", 200)
# Filtered searches over at most this many vectors are exact (apps/embeddings/selectors.py).
DRIFTLINE_SEARCH_EXACT_MAX_ROWS = envint("DRIFTLINE_SEARCH_EXACT_MAX_ROWS", 5000)
# Calls embedded per project per hour before sampling starts (errors, flagged calls and calls
# with feedback are always embedded).
DRIFTLINE_EMBEDDING_BUDGET_PER_HOUR = envint("DRIFTLINE_EMBEDDING_BUDGET_PER_HOUR", 20_000)

# --- Alerts -----------------------------------------------------------------------------------
DRIFTLINE_WEBHOOK_ALLOW_PRIVATE = envbool("DRIFTLINE_WEBHOOK_ALLOW_PRIVATE", False)
DRIFTLINE_HTTP_TIMEOUT_S = envfloat("DRIFTLINE_HTTP_TIMEOUT_S", 10.0)
# Evaluators: a judge on a private address (local vLLM/Ollama) needs an explicit yes.
DRIFTLINE_LLM_ALLOW_PRIVATE = envbool("DRIFTLINE_LLM_ALLOW_PRIVATE", False)
DRIFTLINE_JUDGE_TIMEOUT_S = envfloat("DRIFTLINE_JUDGE_TIMEOUT_S", 30.0)
# Judge spend per project and UTC day, over all its evaluators (each may have a lower cap).
DRIFTLINE_EVALUATOR_PROJECT_DAILY_BUDGET_USD = envfloat(
    "DRIFTLINE_EVALUATOR_PROJECT_DAILY_BUDGET_USD", 10.0
)

# --- REST framework ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.exceptions.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Driftline API",
    "DESCRIPTION": "Ingestion, read and alerting APIs of Driftline.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.core.schema.error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ChannelKindEnum": "apps.alerts.models.ChannelKind",
        "AlertRuleKindEnum": "apps.alerts.models.RuleKind",
        "EvaluatorKindEnum": "apps.evaluators.models.EvaluatorKind",
        "EvaluatorStatusEnum": "apps.evaluators.models.EvaluatorStatus",
        "SafetyFprEnum": "apps.quality.apis.FPR_FIELD_CHOICES",
    },
}

# --- Logging: one JSON object a line in production, readable lines in development ----------
LOG_LEVEL = env("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "apps.core.logging.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if envbool("LOG_JSON", PRODUCTION) else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "celery": {"level": "INFO"},
    },
}
# Calls waiting to be embedded before new ones are sampled out (must-embed calls still go).
DRIFTLINE_EMBEDDING_MAX_BACKLOG = envint("DRIFTLINE_EMBEDDING_MAX_BACKLOG", 50_000)
# Routes and the beat schedule are declared once, as data, in apps/queues.py.
CELERY_TASK_ROUTES = TASK_ROUTES
CELERY_BEAT_SCHEDULE = BEAT_SCHEDULE
# Celery publishing must not hang an ingest request when the broker is down.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}
