"""The Driftline server: a Django project whose apps live in this package."""

from apps.celery import app as celery_app

__all__ = ["celery_app"]
