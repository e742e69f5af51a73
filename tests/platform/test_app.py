"""The application factory and its configuration."""
from bankapp import create_app
from config import TestingConfig


def test_factory_builds_an_app_in_testing_mode(app):
    assert app.testing
    assert isinstance(create_app(TestingConfig).config["SECRET_KEY"], str)


def test_dashboard_requires_login(client):
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert "/accounts/login/" in response.headers["Location"]


def test_logged_in_customer_sees_dashboard(customer_client):
    response = customer_client.get("/dashboard/")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"


def test_static_files_are_served_from_public_static(client):
    # Vercel's CDN serves public/ ahead of the function; every other host gets them from Flask.
    response = client.get("/static/css/app.css")
    assert response.status_code == 200
    assert response.mimetype == "text/css"
    assert client.get("/static/favicon.svg").status_code == 200


def test_plain_functions_run_as_they_are(app):
    def view():
        return "plain"

    assert app.ensure_sync(view) is view
    assert app.ensure_sync(view) is view  # the remembered answer


def test_coroutine_functions_still_go_through_async_to_sync_every_time(app, monkeypatch):
    async def view():
        return "async"

    wrapped = []
    monkeypatch.setattr(app, "async_to_sync", lambda func: wrapped.append(func) or "wrapper")
    assert app.ensure_sync(view) == "wrapper"
    assert app.ensure_sync(view) == "wrapper"
    assert wrapped == [view, view]


def test_a_function_made_for_one_request_is_not_kept(app):
    import gc
    import weakref

    def after_this_one(response):
        return response

    app.ensure_sync(after_this_one)
    alive = weakref.ref(after_this_one)
    del after_this_one
    gc.collect()
    assert alive() is None
