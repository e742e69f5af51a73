"""Plumbing that knows no domain: the Flask app class, database connections and the read
replica, health and metrics, logs, field encryption, languages and formatting, the mail
transport, links. Nothing here imports a domain module (``.importlinter`` checks it)."""
