#!/bin/sh
# One image, several roles: web | worker [queues] | beat | migrate
set -eu
role="${1:-web}"
case "$role" in
  web)
    # As `make run` (devtools/devstack.py gunicorn_command): gthread workers keep the SDK's and
    # OTLP exporters' connections alive and overlap database waits.
    exec gunicorn apps.wsgi --bind 0.0.0.0:8000 --workers "${WEB_CONCURRENCY:-4}" \
      --worker-class gthread --threads "${WEB_THREADS:-2}" --keep-alive 5 \
      --max-requests 20000 --max-requests-jitter 2000 \
      --timeout 60 --access-logfile - ;;
  worker)
    # Broker outages: the worker reconnects for ever (apps/settings.py, CELERY_BROKER_*); the
    # orchestrator restarts it if it exits anyway (compose: restart, k8s: the Deployment).
    exec celery -A apps worker -Q "${2:-${WORKER_QUEUES:-default,ingest,embed,drift,alerts}}" \
      --concurrency "${WORKER_CONCURRENCY:-2}" -l INFO ;;
  beat)
    exec celery -A apps beat -l INFO -s /tmp/celerybeat-schedule ;;
  migrate)
    exec python manage.py migrate --noinput ;;
  *)
    exec "$@" ;;
esac
