"""GET /v1/recommendations answered in front of the router behaves as the route would:
same keys, same errors, same parameter reading, counted under the route's template."""

from __future__ import annotations

from fastapi.testclient import TestClient

from models.bundle import Bundle
from server.hot_route import PATH, route_path
from tests.conftest import PUBLIC, SECRET
from tests.helpers import recommend
from tests.test_observability import samples

ROUTE = (("method", "GET"), ("route", "/v1/recommendations"))


def test_answers_are_counted_under_the_route_template(client: TestClient, visitor_id: str) -> None:
    before = samples(client)
    ok = ("encore_requests_total", (*ROUTE, ("status", "200")))
    refused = ("encore_requests_total", (*ROUTE, ("status", "401")))
    recommend(client, visitor_id=visitor_id)
    recommend(client, visitor_id=visitor_id, placement="cart")
    client.get(f"/v1/recommendations?visitor_id={visitor_id}")
    after = samples(client)
    assert after[ok] == before.get(ok, 0.0) + 2
    assert after[refused] == before.get(refused, 0.0) + 1
    assert not any(visitor_id in str(labels) for _, labels in after)


def test_a_query_the_model_refuses_gets_the_routes_own_422(client: TestClient) -> None:
    response = client.get("/v1/recommendations?visitor_id=a&limit=0", headers=PUBLIC)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert [detail["field"] for detail in error["details"]] == ["query.limit"]


def test_keys_are_checked_as_on_every_route(client: TestClient, visitor_id: str) -> None:
    url = f"/v1/recommendations?visitor_id={visitor_id}"
    missing = client.get(url)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "unauthorized"
    assert client.get(url, headers={"X-API-Key": "pk_unknown"}).status_code == 401
    public_key = PUBLIC["X-API-Key"]
    assert client.get(f"{url}&api_key={public_key}").status_code == 200
    in_url = client.get(f"{url}&api_key={SECRET['X-API-Key']}")
    assert in_url.status_code == 401
    assert "public key" in in_url.json()["error"]["message"]
    assert client.get(url, headers=SECRET).status_code == 200


def test_repeated_parameters_read_as_the_framework_reads_them(
    client: TestClient, bundle: Bundle, visitor_id: str
) -> None:
    top = [item["item_id"] for item in recommend(client, visitor_id=visitor_id)["items"]]
    repeated = [("limit", "3"), ("limit", "5"), ("exclude", top[0]), ("exclude", top[1])]
    response = client.get(
        "/v1/recommendations",
        params=[("visitor_id", visitor_id), *repeated],
        headers={**PUBLIC, "X-Request-ID": "hot-path-1"},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "hot-path-1"
    shown = [item["item_id"] for item in response.json()["items"]]
    assert len(shown) == 5
    assert not {top[0], top[1]} & set(shown)
    assert shown[0] == top[2]


def test_an_error_raised_while_answering_is_the_contracts_json(client: TestClient) -> None:
    response = client.get("/v1/recommendations?visitor_id=a&placement=product", headers=PUBLIC)
    assert response.status_code == 422
    assert response.json() == {
        "error": {"code": "invalid_request", "message": "the product placement needs item_id"}
    }


def test_the_path_is_matched_below_the_apps_mount_point() -> None:
    assert route_path({"path": "/shop/v1/recommendations", "root_path": "/shop"}) == PATH
    assert route_path({"path": "/v1/recommendations", "root_path": ""}) == PATH
    assert route_path({"path": "/v1/recommendations"}) == PATH
    assert route_path({"path": "/other/v1/recommendations", "root_path": "/shop"}) != PATH
