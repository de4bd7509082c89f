"""Data-subject access and erasure: everything sent comes back, then nothing is left."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import redis
from fastapi.testclient import TestClient

from settings import Settings
from state import keys
from tests.conftest import PUBLIC, SECRET
from tests.helpers import recommend, send
from training.backfill import export_history
from training.datafiles import read_events


def everything_mentioning(client: redis.Redis, needles: list[str]) -> list[str]:
    """Every key, member, field and stream entry in Redis that names one of the ids."""
    connection: Any = client  # a decoding client: every reply is str
    found: list[str] = []
    for key in connection.scan_iter(count=1000):
        name = str(key)
        if any(needle in name for needle in needles):
            found.append(f"key {name}")
        kind = connection.type(name)
        if kind == "set":
            found += [f"{name} holds {m}" for m in connection.smembers(name)
                      if any(n in str(m) for n in needles)]  # fmt: skip
        elif kind == "stream":
            for entry_id, fields in connection.xrange(name):
                if any(needle in str(fields) for needle in needles):
                    found.append(f"{name} entry {entry_id}")
        elif kind == "hash":
            found += [f"{name} field {f}" for f, v in connection.hgetall(name).items()
                      if any(n in f or n in v for n in needles)]  # fmt: skip
        elif kind == "list":
            found += [f"{name} holds {m}" for m in connection.lrange(name, 0, -1)
                      if any(n in str(m) for n in needles)]  # fmt: skip
        elif kind == "zset":
            found += [f"{name} holds {m}" for m in connection.zrange(name, 0, -1)
                      if any(n in str(m) for n in needles)]  # fmt: skip
    return found


def test_a_visitor_can_see_everything_held_and_then_be_erased(
    client: TestClient, redis_client: redis.Redis, settings: Settings, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:10]
    phone, laptop, customer = f"phone-{run}", f"laptop-{run}", f"cust-{run}"
    referrer = f"ref-{run}"
    sent: list[dict[str, Any]] = [
        {"event_id": f"e1-{run}", "type": "view", "visitor_id": phone, "item_id": "i000001"},
        {"event_id": f"e2-{run}", "type": "add_to_cart", "visitor_id": phone, "item_id": "i000002"},
        {"event_id": f"e3-{run}", "type": "signup", "visitor_id": phone, "customer_id": customer,
         "properties": {"email_opt_in": True, "birthday": "1990-04-01", "referred_by": referrer}},
        {"event_id": f"e4-{run}", "type": "purchase", "visitor_id": laptop, "customer_id": customer,
         "order_id": f"o-{run}", "items": [{"item_id": "i000003", "price": 30.0}]},
        {"event_id": f"e5-{run}", "type": "view", "visitor_id": laptop, "item_id": "i000004"},
    ]  # fmt: skip
    send(client, *sent)
    answer = recommend(client, visitor_id=phone, send_id=f"send-{run}", placement="email")
    # A webhook delivery waiting to be retried, addressed to the customer.
    retry = {"message": {"recipient": keys.customer_person(customer), "journey": "win_back"},
             "attempt": 1}  # fmt: skip
    redis_client.zadd(keys.DELIVERY_RETRY, {orjson.dumps(retry).decode(): time.time() + 60})
    send(client, {"event_id": f"e6-{run}", "type": "rec_click", "visitor_id": phone,
                  "item_id": answer["items"][0]["item_id"],
                  "recommendation_id": answer["recommendation_id"]})  # fmt: skip
    assert client.get(f"/v1/visitors/{laptop}", headers=SECRET).status_code == 200

    exported = client.get(f"/v1/visitors/{phone}/export", headers=SECRET)
    assert exported.status_code == 200, exported.text
    held = exported.json()
    assert held["visitors"] == sorted([phone, laptop]) and held["customers"] == [customer]
    assert {e["event_id"] for e in held["events"]} == {f"e{n}-{run}" for n in range(1, 7)}
    person = held["persons"][keys.customer_person(customer)]
    assert person["profile"]["birthday"] == "1990-04-01"
    assert list(person["orders"]) == [f"o-{run}"]
    assert set(person["visitors"]) == {phone, laptop}
    assert set(person["purchased"]) == {"i000003"}
    assert ("i000004", "view") in {(i["item_id"], i["event_type"]) for i in person["recent"]}
    assert held["persons"][keys.visitor_person(phone)] == {}  # merged into the customer

    # A store upgraded from a version that kept a set of everyone still holds it.
    legacy = [keys.customer_person(customer), keys.visitor_person(phone)]
    redis_client.sadd(keys.LEGACY_PEOPLE, *legacy)
    needles = [phone, laptop, customer]
    assert everything_mentioning(redis_client, needles)  # the scan does see them
    assert client.delete(f"/v1/visitors/{phone}", headers=PUBLIC).status_code == 403
    erased = client.delete(f"/v1/visitors/{laptop}", headers=SECRET)
    assert erased.status_code == 200, erased.text
    assert erased.json()["stream_entries"] == 6
    assert everything_mentioning(redis_client, needles) == []
    assert not redis_client.exists(keys.person_key("profile", keys.customer_person(customer)))
    for visitor in (phone, laptop):
        assert client.get(f"/v1/visitors/{visitor}", headers=SECRET).status_code == 404
        assert client.get(f"/v1/visitors/{visitor}/export", headers=SECRET).status_code == 404
        assert client.delete(f"/v1/visitors/{visitor}", headers=SECRET).status_code == 404

    # Training exports skip the erased from then on, even if their ids turn up again.
    send(client, {"type": "view", "visitor_id": phone, "item_id": "i000005"})
    send(client, {"type": "view", "visitor_id": f"other-{run}", "item_id": "i000005"})
    out = tmp_path / "export.jsonl"
    export_history(settings, out)
    visitors = {row["visitor_id"] for row in read_events(out)}
    assert f"other-{run}" in visitors and phone not in visitors and laptop not in visitors


def test_erasure_never_touches_another_visitor(
    client: TestClient, redis_client: redis.Redis
) -> None:
    run = uuid.uuid4().hex[:10]
    gone, kept = f"gone-{run}", f"kept-{run}"
    for visitor in (gone, kept):
        send(client, {"type": "view", "visitor_id": visitor, "item_id": "i000001"},
             {"type": "purchase", "visitor_id": visitor, "order_id": f"{visitor}-o",
              "item_id": "i000002", "value": 12.0})  # fmt: skip
    before = client.get(f"/v1/visitors/{kept}/export", headers=SECRET).json()
    erased = client.delete(f"/v1/visitors/{gone}", headers=SECRET)
    assert erased.status_code == 200
    assert erased.json()["stream_entries"] == 2  # stored under the visitor's own person
    after = client.get(f"/v1/visitors/{kept}/export", headers=SECRET).json()
    assert orjson.dumps(after, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
        before, option=orjson.OPT_SORT_KEYS
    )


def test_a_visitor_who_signed_in_as_someone_else_is_not_erased_with_the_first(
    client: TestClient, redis_client: redis.Redis
) -> None:
    """Shared device: it signed in as A, later as B. Erasing A leaves B whole."""
    run = uuid.uuid4().hex[:8]
    shared, own, first, second = f"shared-{run}", f"own-{run}", f"a-{run}", f"b-{run}"
    send(client, {"type": "signup", "visitor_id": own, "customer_id": first},
         {"type": "signup", "visitor_id": shared, "customer_id": first},
         {"type": "view", "visitor_id": shared, "customer_id": second, "item_id": "i000001"},
         {"type": "view", "visitor_id": shared, "item_id": "i000002"})  # fmt: skip
    before = client.get(f"/v1/visitors/{shared}/export", headers=SECRET).json()
    assert before["customers"] == [second]
    assert client.delete(f"/v1/visitors/{own}", headers=SECRET).status_code == 200
    after = client.get(f"/v1/visitors/{shared}/export", headers=SECRET)
    assert after.status_code == 200
    assert after.json() == before
    assert redis_client.get(keys.link_key(shared)) == second


def test_erasing_a_visitor_keeps_the_pinned_emails_of_look_alike_ids(
    client: TestClient, redis_client: redis.Redis
) -> None:
    run = uuid.uuid4().hex[:8]
    plain, prefixed = f"p-{run}", f"q:p-{run}"
    for visitor in (plain, prefixed):
        send(client, {"type": "view", "visitor_id": visitor, "item_id": "i000001"})
        recommend(client, visitor_id=visitor, send_id=f"s-{run}", placement="email")
    assert client.delete(f"/v1/visitors/{plain}", headers=SECRET).status_code == 200
    assert redis_client.exists(keys.send_key(f"s-{run}", "email", prefixed)) == 1
    assert redis_client.exists(keys.send_key(f"s-{run}", "email", plain)) == 0


def test_visitor_ids_with_slashes_can_be_read_exported_and_erased(client: TestClient) -> None:
    visitor = f"shop/eu/{uuid.uuid4().hex[:8]}"
    send(client, {"type": "view", "visitor_id": visitor, "item_id": "i000001"})
    assert client.get(f"/v1/visitors/{visitor}", headers=SECRET).json()["visitor_id"] == visitor
    exported = client.get(f"/v1/visitors/{visitor}/export", headers=SECRET)
    assert exported.status_code == 200 and exported.json()["visitors"] == [visitor]
    assert client.delete(f"/v1/visitors/{visitor}", headers=SECRET).status_code == 200
    assert client.get(f"/v1/visitors/{visitor}", headers=SECRET).status_code == 404
