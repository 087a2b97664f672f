#!/bin/sh
# One image, several roles: web | worker [queues] | beat | migrate
set -eu
role="${1:-web}"
case "$role" in
  web)
    exec gunicorn apps.wsgi --bind 0.0.0.0:8000 --workers "${WEB_CONCURRENCY:-4}" \
      --timeout 60 --access-logfile - ;;
  worker)
    exec celery -A apps worker -Q "${2:-${WORKER_QUEUES:-default,ingest,embed,drift,alerts}}" \
      --concurrency "${WORKER_CONCURRENCY:-2}" -l INFO ;;
  beat)
    exec celery -A apps beat -l INFO -s /tmp/celerybeat-schedule ;;
  migrate)
    exec python manage.py migrate --noinput ;;
  *)
    exec "$@" ;;
esac
