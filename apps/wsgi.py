"""WSGI entry point for gunicorn: ``gunicorn apps.wsgi`` (``make run`` starts it so)."""

import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.settings")
application = get_wsgi_application()
# Import the URLconf and every view now, while the worker boots, instead of in its first
# request (seconds on busy cores: the first ingest batches of each worker waited for it).
get_resolver().url_patterns  # noqa: B018 - the attribute access does the import
