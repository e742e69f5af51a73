"""Jobs a scheduler calls over HTTP (Vercel Cron), under ``/internal/cron/``.

Authenticated by ``Authorization: Bearer $CRON_SECRET`` alone: no cookies, so exempt from
CSRF; the whole blueprint answers 404 while ``CRON_SECRET`` is unset.
"""
