"""WSGI entry point: ``gunicorn wsgi:app`` on any host, and the Vercel Python runtime."""
from bankapp import create_app

app = create_app()
