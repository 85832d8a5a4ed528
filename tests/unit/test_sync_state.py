from __future__ import annotations

import duckdb
import pytest

from audiences.sync_state import (
    PARTS,
    Rejection,
    hash_parts,
    payload_hash,
    plan_changes,
    plan_parts,
    record_accepted,
    record_planned,
    record_rejections,
)


@pytest.fixture
def con():
    c = duckdb.connect(":memory:")
    yield c
    c.close()


def test_hash_ignores_key_order_but_not_values() -> None:
    assert payload_hash({"a": 1, "b": [1, 2]}) == payload_hash({"b": [1, 2], "a": 1})
    assert payload_hash({"a": 1}) != payload_hash({"a": 2})
    assert payload_hash({"tags": ["x", "y"]}) != payload_hash({"tags": ["y", "x"]})


def test_plan_sends_new_and_changed_only(con: duckdb.DuckDBPyConnection) -> None:
    first = {"k1": {"v": 1}, "k2": {"v": 2}}
    plan = plan_changes(con, "dest", first)
    assert set(plan.to_send) == {"k1", "k2"} and plan.unchanged == 0
    record_accepted(con, "dest", [(k, plan.hashes[k], p) for k, p in plan.to_send.items()])

    plan = plan_changes(con, "dest", {"k1": {"v": 1}, "k2": {"v": 3}, "k3": {"v": 0}})
    assert set(plan.to_send) == {"k2", "k3"}
    assert plan.unchanged == 1
    assert plan.previous["k2"] == {"v": 2}  # the last accepted payload, to compute tag removals
    assert "k3" not in plan.previous


def test_destinations_do_not_share_state(con: duckdb.DuckDBPyConnection) -> None:
    plan = plan_changes(con, "a", {"k": {"v": 1}})
    record_accepted(con, "a", [("k", plan.hashes["k"], {"v": 1})])
    assert set(plan_changes(con, "b", {"k": {"v": 1}}).to_send) == {"k"}


def test_permanent_rejection_is_not_retried_until_the_payload_changes(con: duckdb.DuckDBPyConnection) -> None:
    payload = {"email": "fake@example.com"}
    digest = payload_hash(payload)
    record_rejections(con, "dest", [Rejection("k", "400 Invalid Resource", True, digest)], run_id="r1")
    plan = plan_changes(con, "dest", {"k": payload})
    assert plan.to_send == {} and plan.still_rejected == 1
    plan = plan_changes(con, "dest", {"k": {"email": "real@gmail.com"}})
    assert set(plan.to_send) == {"k"}


def test_transient_failure_is_retried_next_run(con: duckdb.DuckDBPyConnection) -> None:
    payload = {"v": 1}
    record_rejections(con, "dest", [Rejection("k", "transient: timeout", False, payload_hash(payload))], "r1")
    assert set(plan_changes(con, "dest", {"k": payload}).to_send) == {"k"}


def test_full_resync_ignores_stored_hashes(con: duckdb.DuckDBPyConnection) -> None:
    plan = plan_changes(con, "dest", {"k": {"v": 1}})
    record_accepted(con, "dest", [("k", plan.hashes["k"], {"v": 1})])
    assert plan_changes(con, "dest", {"k": {"v": 1}}).to_send == {}
    assert set(plan_changes(con, "dest", {"k": {"v": 1}}, full_resync=True).to_send) == {"k"}


def test_departed_records_are_withdrawn_once(con: duckdb.DuckDBPyConnection) -> None:
    def withdraw(key: str, last: dict) -> dict:
        return {"email": last["email"], "tags": []}

    plan = plan_changes(con, "dest", {"k1": {"email": "a", "tags": ["x"]}, "k2": {"email": "b", "tags": ["y"]}})
    record_accepted(con, "dest", [(k, plan.hashes[k], p) for k, p in plan.to_send.items()])

    plan = plan_changes(con, "dest", {"k1": {"email": "a", "tags": ["x"]}}, departed=withdraw)
    assert plan.to_send == {"k2": {"email": "b", "tags": []}} and plan.departed == 1
    assert plan.previous["k2"] == {"email": "b", "tags": ["y"]}  # to know which tags to remove
    record_accepted(con, "dest", [(k, plan.hashes[k], p) for k, p in plan.to_send.items()])

    again = plan_changes(con, "dest", {"k1": {"email": "a", "tags": ["x"]}}, departed=withdraw)
    assert again.to_send == {} and again.departed == 0 and again.unchanged == 2
    assert plan_changes(con, "dest", {"k1": {"email": "a", "tags": ["x"]}}).unchanged == 1  # off: left alone


def test_a_plan_made_in_parts_is_the_plan_made_at_once(con: duckdb.DuckDBPyConnection) -> None:
    """Each part reaches ``on_part`` as soon as it is planned, the departed records last; together they are
    exactly what one query plans, with the same counts."""

    def withdraw(key: str, last: dict) -> dict:
        return {"v": -1}

    before = {f"k{i}": {"v": i} for i in range(200)}
    plan = plan_changes(con, "dest", before)
    record_accepted(con, "dest", [(k, plan.hashes[k], p) for k, p in plan.to_send.items()])
    refused = Rejection("k12", "fake email", True, payload_hash({"v": 1012}))  # its change is still refused
    record_rejections(con, "dest", [refused], None)
    now = {f"k{i}": {"v": i + 1000 * (i % 3 == 0)} for i in range(10, 300)}  # k0-k9 departed, a third changed

    whole = plan_changes(con, "dest", now, departed=withdraw)
    seen: list[list[str]] = []
    parts = hash_parts(4, first="record_key < 'k2'")
    assert len(parts) == 5
    parted = plan_changes(con, "dest", now, departed=withdraw, parts=parts, on_part=lambda p, keys: seen.append(keys))

    assert parted.texts == whole.texts and parted.previous == whole.previous and parted.gone == whole.gone
    counts = (whole.unchanged, whole.departed, whole.still_rejected)
    assert (parted.unchanged, parted.departed, parted.still_rejected) == counts == (190 - 63, 10, 1)
    assert len(whole.texts) == 62 + 100 + 10  # changed (k12 still refused), new, departed
    assert [k for keys in seen for k in keys] == list(parted.texts)  # every key once, in the order planned
    assert set(seen[-1]) == whole.gone and all(set(keys).isdisjoint(whole.gone) for keys in seen[:-1])
    assert all(k < "k2" for k in seen[0]) and all(k >= "k2" for keys in seen[1:-1] for k in keys)
    assert len(seen) == 6  # the first part, 4 by hash (none empty here), the departed


def test_new_records_are_inserted_and_one_stored_after_all_is_replaced(con: duckdb.DuckDBPyConnection) -> None:
    plan = plan_changes(con, "dest", {"k1": {"v": 1}, "k2": {"v": 2}, "k3": {"v": 3}})
    assert plan.previous == {}
    record_planned(con, "dest", plan, ["k1"])
    # k1 now has a row although the plan found none (a run that planned before it was stored): replaced, and the
    # others of the same call inserted
    changed = plan_changes(con, "other", {"k1": {"v": 9}})
    plan.send("k1", changed.texts["k1"], changed.hashes["k1"])
    record_planned(con, "dest", plan, ["k1", "k2", "k3"])

    stored = con.execute("select record_key, payload::varchar from sync.pushed_records order by 1").fetchall()
    assert stored == [("k1", '{"v":9}'), ("k2", '{"v":2}'), ("k3", '{"v":3}')]
    assert plan_changes(con, "dest", {"k1": {"v": 9}, "k2": {"v": 2}, "k3": {"v": 3}}).to_send == {}


def test_combining_hands_every_outcome_once_and_never_two_at_a_time() -> None:
    import threading
    import time

    from audiences.combining import Combining

    handled: list[int] = []
    calls: list[int] = []
    busy = threading.Lock()

    def handle(outcomes: list[int]) -> None:
        assert busy.acquire(blocking=False), "two threads handling at once"
        try:
            time.sleep(0.002)  # a warehouse insert: the others hand theirs in meanwhile
            handled.extend(outcomes)
            calls.append(len(outcomes))
        finally:
            busy.release()

    combining: Combining[int] = Combining(handle)

    def sender(first: int) -> None:
        for i in range(first, first + 50):
            combining.put(i)

    threads = [threading.Thread(target=sender, args=(n * 50,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    combining.close()
    assert sorted(handled) == list(range(400))
    assert len(calls) < 400  # outcomes handed in while one was handled went together


def test_combining_never_holds_up_the_thread_that_hands_in_and_raises_a_failure_where_checked() -> None:
    import threading

    from audiences.combining import Combining

    release, entered = threading.Event(), threading.Event()
    handled: list[list[str]] = []

    def handle(outcomes: list[str]) -> None:
        entered.set()
        release.wait(10)  # a slow warehouse
        handled.append(outcomes)
        if "bad" in outcomes:
            raise RuntimeError("the warehouse refused the insert")

    combining: Combining[str] = Combining(handle)
    combining.put("a")  # returns while "a" is being handled
    assert entered.wait(10)
    combining.put("b")
    combining.put("c")
    assert handled == []
    combining.check()  # nothing failed yet
    release.set()
    combining.close()
    assert handled == [["a"], ["b", "c"]]  # handed in while "a" was handled: together

    failing: Combining[str] = Combining(handle)
    failing.put("bad")
    with pytest.raises(RuntimeError, match="refused the insert"):
        failing.close()
    with pytest.raises(RuntimeError, match="refused the insert"):
        failing.check()


def test_a_push_that_sends_most_records_is_planned_in_parts(con: duckdb.DuckDBPyConnection) -> None:
    assert plan_parts(con, "dest", 100, full_resync=False) == PARTS > 1  # a first push
    record_accepted(con, "dest", [(f"k{i}", "h", {"v": i}) for i in range(49)])
    assert plan_parts(con, "dest", 100, full_resync=False) == PARTS  # the destination holds less than half
    record_accepted(con, "dest", [(f"k{i}", "h", {"v": i}) for i in range(49, 90)])
    assert plan_parts(con, "dest", 100, full_resync=False) == 1  # a nightly run
    assert plan_parts(con, "dest", 100, full_resync=True) == PARTS
    assert plan_parts(con, "other", 100, full_resync=False) == PARTS
