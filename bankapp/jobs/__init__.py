"""Jobs a scheduler calls over HTTP (Vercel Cron), under ``/internal/cron/<job>``: each
periodic job of ``bankapp.schedule``, its run recorded like any other.

Authenticated by ``Authorization: Bearer $CRON_SECRET`` alone: no cookies, so exempt from
CSRF; the whole blueprint answers 404 while ``CRON_SECRET`` is unset.
"""
