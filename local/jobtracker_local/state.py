"""What the local stack keeps across a stop or a crash (its state dir).

moto keeps everything in memory. The job table's stream tells every write, so each write's new
image (or its removal) is appended to a journal file, flushed to the OS as it is read (a killed
stack loses nothing the stream had told; only writes of the last poll, ~0.1 s, can be missed).
On start the journal is folded into the latest image per key, put back into the new table
before any function runs, and rewritten folded.

The stack's token and key pair are kept too, so clients and open consoles keep working, and so
are the schedules' states (paused or resumed through the API, in moto's Scheduler).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobtracker_local.sigv4 import Credentials

BATCH_WRITE_MAX = 25  # items in one BatchWriteItem call


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, whole (renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    partial.replace(path)


def identity(state_dir: Path, make_token: Callable[[], str]) -> tuple[str, Credentials]:
    """The stack's bearer token and key pair: the ones kept in the state dir, or new ones."""
    path = state_dir / "identity.json"
    if path.is_file():
        kept = json.loads(path.read_text())
        return kept["token"], Credentials(kept["access_key_id"], kept["secret_access_key"])
    token, credentials = make_token(), Credentials.generate()
    write_private(
        path,
        json.dumps(
            {
                "token": token,
                "access_key_id": credentials.access_key_id,
                "secret_access_key": credentials.secret_access_key,
            }
        ),
    )
    return token, credentials


SCHEDULE_STATES = "schedules.json"


def schedule_states(state_dir: Path | None) -> dict[str, str]:
    """Each schedule's state (ENABLED | DISABLED) as the stack last saw it, by name."""
    path = state_dir / SCHEDULE_STATES if state_dir is not None else None
    if path is None or not path.is_file():
        return {}
    return {str(k): str(v) for k, v in json.loads(path.read_text()).items()}


def keep_schedule_states(state_dir: Path | None, states: dict[str, str]) -> None:
    if state_dir is not None:
        write_private(state_dir / SCHEDULE_STATES, json.dumps(states, sort_keys=True))


def _key(keys: dict[str, Any]) -> str:
    return json.dumps(keys, sort_keys=True)


class Journal:
    """One table's writes, as its stream told them: one JSON line per record."""

    def __init__(self, path: Path, key_names: list[str]) -> None:
        self.path = path
        self.key_names = key_names  # the table's key schema
        self.lock = threading.Lock()
        self.out: Any = None

    def latest(self) -> dict[str, dict[str, Any]]:
        """The latest image of every key the journal holds (removed keys left out). A line cut
        short by a crash is the last one and is skipped."""
        images: dict[str, dict[str, Any] | None] = {}
        if not self.path.is_file():
            return {}
        with self.path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                images[_key(entry["keys"])] = entry.get("image")
        return {k: v for k, v in images.items() if v is not None}

    def restore(self, ddb: Any, table: str) -> int:
        """Put the journal's latest images into `table` (new and empty), then keep the journal
        folded to them. Returns how many items came back."""
        images = list(self.latest().values())
        for start in range(0, len(images), BATCH_WRITE_MAX):
            pending: dict[str, Any] = {
                table: [
                    {"PutRequest": {"Item": i}} for i in images[start : start + BATCH_WRITE_MAX]
                ]
            }
            while pending:
                pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        folded = "".join(
            json.dumps({"keys": {k: i[k] for k in self.key_names}, "image": i}) + "\n"
            for i in images
        )
        write_private(self.path, folded)
        return len(images)

    def append(self, records: list[dict[str, Any]]) -> None:
        """Stream records (DynamoDB Streams' shape) to the journal, flushed to the OS."""
        lines = []
        for record in records:
            change = record.get("dynamodb") or {}
            keys = change.get("Keys")
            if not keys:
                continue
            image = None if record.get("eventName") == "REMOVE" else change.get("NewImage")
            lines.append(json.dumps({"keys": keys, "image": image}) + "\n")
        if not lines:
            return
        with self.lock:
            if self.out is None:
                self.out = self.path.open("a", encoding="utf-8")
            self.out.write("".join(lines))
            self.out.flush()

    def close(self) -> None:
        with self.lock:
            if self.out is not None:
                self.out.close()
                self.out = None
