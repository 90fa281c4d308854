"""The local stack's journal of table writes (jobtracker_local.state)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from jobtracker_local.state import Journal, identity


def record(pk: str, image: dict[str, Any] | None, event: str = "MODIFY") -> dict[str, Any]:
    change: dict[str, Any] = {"Keys": {"pk": {"S": pk}}}
    if image is not None:
        change["NewImage"] = {"pk": {"S": pk}, **image}
    return {"eventName": event, "dynamodb": change}


def test_the_latest_image_of_each_key_wins(tmp_path: Path) -> None:
    # GIVEN a journal told two writes of one item and one of another
    journal = Journal(tmp_path / "t.jsonl", ["pk"])
    journal.append([record("a", {"v": {"N": "1"}}), record("b", {"v": {"N": "7"}})])
    journal.append([record("a", {"v": {"N": "2"}})])
    journal.close()
    # WHEN it is folded
    latest = journal.latest()
    # THEN each key has its last image
    assert {k: v["v"]["N"] for k, v in latest.items()} == {
        json.dumps({"pk": {"S": "a"}}): "2",
        json.dumps({"pk": {"S": "b"}}): "7",
    }


def test_a_removed_item_does_not_come_back(tmp_path: Path) -> None:
    # GIVEN an item written then removed (a TTL expiry or a delete)
    journal = Journal(tmp_path / "t.jsonl", ["pk"])
    journal.append([record("a", {"v": {"N": "1"}}), record("a", None, "REMOVE")])
    journal.close()
    # WHEN / THEN
    assert journal.latest() == {}, "a removed item is left out"


def test_a_line_cut_short_by_a_crash_is_skipped(tmp_path: Path) -> None:
    # GIVEN a journal whose last line was cut by a crash
    path = tmp_path / "t.jsonl"
    journal = Journal(path, ["pk"])
    journal.append([record("a", {"v": {"N": "1"}})])
    journal.close()
    with path.open("a") as out:
        out.write('{"keys": {"pk": {"S": "b"}}, "ima')
    # WHEN / THEN the whole lines still count
    assert list(journal.latest()) == [json.dumps({"pk": {"S": "a"}})]


def test_restore_puts_the_items_back_and_folds_the_file(tmp_path: Path) -> None:
    # GIVEN a journal of three writes of two items, and a table that takes batches
    path = tmp_path / "t.jsonl"
    journal = Journal(path, ["pk"])
    journal.append([record("a", {"v": {"N": "1"}}), record("a", {"v": {"N": "2"}})])
    journal.append([record("b", {"v": {"N": "3"}})])
    journal.close()
    put: list[dict[str, Any]] = []

    class Table:
        def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
            put.extend(r["PutRequest"]["Item"] for r in RequestItems["jobs"])
            return {}

    # WHEN it is restored
    count = Journal(path, ["pk"]).restore(Table(), "jobs")
    # THEN each item is put once, as last written, and the file holds just those
    assert count == 2 and sorted(i["v"]["N"] for i in put) == ["2", "3"], put
    assert len(path.read_text().splitlines()) == 2, "the journal is rewritten folded"


def test_the_identity_is_kept_owner_only_and_reused(tmp_path: Path) -> None:
    # GIVEN a state dir where a first start made the stack's token and keys
    token, credentials = identity(tmp_path, lambda: "tok-1")
    # WHEN a second start reads them
    again, kept = identity(tmp_path, lambda: "tok-2")
    # THEN they are the same, in a file only the owner reads
    assert (again, kept) == (token, credentials) and token == "tok-1"
    mode = stat.S_IMODE((tmp_path / "identity.json").stat().st_mode)
    assert mode == 0o600, f"identity.json is {oct(mode)}"
