"""The API's description (OpenAPI, docs page) and its error shape on any path."""
import pytest

from support.api import assert_problem, send


def test_openapi_document_describes_every_route(client, app):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0"
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    routed = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = (rule.rule.replace("<path:key>", "{key}").replace("<number>", "{number}")
                    .replace("<int:loan_id>", "{loan_id}"))
            routed |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == routed


def test_docs_page_lists_paths_schemas_and_problem_types(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "POST /api/v1/transfers" in html
    assert 'id="schema-TransferRequest"' in html
    assert 'id="problem-insufficient-funds"' in html
    assert "<script" not in html


@pytest.mark.parametrize("method, url, status", [
    ("GET", "/api/v1/nowhere", 404),
    ("DELETE", "/api/v1/accounts", 405),
    ("PUT", "/api/v1/transfers", 405),
])
def test_api_errors_are_problem_json_never_html(client, customer, method, url, status):
    response = send(client, method, url, customer)
    assert_problem(response, status)
    if status == 405:
        assert "POST" in response.headers["Allow"]
