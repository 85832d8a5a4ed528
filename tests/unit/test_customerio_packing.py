from __future__ import annotations

import json

from audiences.customerio_client import MAX_REQUEST_BYTES, encode_op, pack_ops
from audiences.customerio_sync import check_limits, identify_op


def _op(i: int, size: int) -> bytes:
    return encode_op(identify_op({"id": f"cus_{i}", "attributes": {"blob": "x" * size}}))


def test_batches_stay_under_the_request_limit_and_keep_every_op_once() -> None:
    ops = [_op(i, 900 + (i * 37) % 20_000) for i in range(400)]
    batches = list(pack_ops(ops))
    assert sorted(i for b in batches for i in b) == list(range(400))
    for batch in batches:
        body = b'{"batch":[' + b",".join(ops[i] for i in batch) + b"]}"
        assert len(body) < MAX_REQUEST_BYTES
        assert len(json.loads(body)["batch"]) == len(batch)
    assert len(batches) > 1  # the data is ~4 MB: it cannot fit one request


def test_one_small_op_is_one_batch() -> None:
    assert list(pack_ops([_op(1, 10)])) == [[0]]
    assert list(pack_ops([])) == []


def test_limits_checked_before_sending() -> None:
    ok = {"id": "cus_1", "attributes": {"name": "x" * 1000}}
    assert check_limits("cus_1", encode_op(identify_op(ok)), ok) is None
    long_value = {"id": "cus_1", "attributes": {"name": "x" * 1001}}
    assert "longer than 1000 bytes" in check_limits("cus_1", encode_op(identify_op(long_value)), long_value)
    big = {"id": "cus_1", "attributes": {f"a{i}": "x" * 900 for i in range(40)}}
    assert "32000-byte limit" in check_limits("cus_1", encode_op(identify_op(big)), big)
    assert "identifier" in check_limits("c" * 151, b"{}", ok)
