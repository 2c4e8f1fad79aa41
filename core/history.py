"""Every exchange, kept in SQLite as soon as it completes or is stopped.

Each exchange is one committed transaction, and the database runs in WAL mode
with synchronous=FULL, so killing tfchat (SIGKILL, a dropped SSH link) loses
nothing that was already written.
"""
from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from core.errors import HistoryError
from core.paths import default_history_file

SCHEMA = """
CREATE TABLE IF NOT EXISTS exchanges (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    kind TEXT NOT NULL,
    prompt TEXT NOT NULL,
    output TEXT NOT NULL,
    preset TEXT NOT NULL,
    params TEXT NOT NULL,
    stats TEXT NOT NULL,
    model TEXT NOT NULL,
    finish_reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass
class Exchange:
    prompt: str
    output: str
    preset: str
    params: dict
    stats: dict
    model: str
    finish_reason: str
    kind: str = "prompt"  # 'prompt', 'regenerate' or 'continue'
    created_at: float = field(default_factory=time.time)
    id: int | None = None

    def as_dict(self) -> dict:
        return {"id": self.id, "created_at": self.created_at, "kind": self.kind, "prompt": self.prompt,
                "output": self.output, "preset": self.preset, "params": self.params, "stats": self.stats,
                "model": self.model, "finish_reason": self.finish_reason}


class History:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_history_file()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise HistoryError(f"{self.path}: cannot open the history database ({exc})") from None

    def close(self) -> None:
        self._db.close()

    def add(self, exchange: Exchange) -> int:
        try:
            with self._transaction():
                cursor = self._db.execute(
                    "INSERT INTO exchanges (created_at, kind, prompt, output, preset, params, stats, model,"
                    " finish_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (exchange.created_at, exchange.kind, exchange.prompt, exchange.output, exchange.preset,
                     json.dumps(exchange.params), json.dumps(exchange.stats), exchange.model,
                     exchange.finish_reason),
                )
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: cannot write the exchange ({exc})") from None
        exchange.id = cursor.lastrowid
        return exchange.id

    def recent(self, limit: int = 0) -> list[Exchange]:
        """Newest last; limit 0 means all."""
        query = "SELECT id, created_at, kind, prompt, output, preset, params, stats, model, finish_reason" \
                " FROM exchanges ORDER BY id DESC"
        rows = self._db.execute(query + (" LIMIT ?" if limit else ""), (limit,) if limit else ()).fetchall()
        return [
            Exchange(id=r[0], created_at=r[1], kind=r[2], prompt=r[3], output=r[4], preset=r[5],
                     params=json.loads(r[6]), stats=json.loads(r[7]), model=r[8], finish_reason=r[9])
            for r in reversed(rows)
        ]

    def recent_prompts(self, limit: int = 500) -> list[str]:
        """Distinct prompts the user typed, oldest first, for the input's recall."""
        rows = self._db.execute(
            "SELECT prompt FROM exchanges WHERE kind = 'prompt' GROUP BY prompt ORDER BY MAX(id) DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [r[0] for r in reversed(rows)]

    def get_setting(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_setting(self, key: str, value: str) -> None:
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))

    @contextmanager
    def _transaction(self):
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


def format_exchange_text(e: Exchange) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.created_at))
    stats = e.stats or {}
    head = (f"#{e.id}  {when}  {e.kind}  preset={e.preset}  {stats.get('new_tokens', 0)} tokens"
            f"  {stats.get('tokens_per_s', 0):.1f} tok/s  {e.finish_reason}")
    return f"{head}\n>>> {e.prompt}\n{e.output}\n"


def export_history(path: str | None, fmt: str, limit: int, out: TextIO) -> int:
    history_path = Path(path) if path else default_history_file()
    if not history_path.exists():
        raise HistoryError(f"{history_path}: no history yet (it is written as you use the app)")
    history = History(history_path)
    try:
        for exchange in history.recent(max(limit, 0)):
            if fmt == "jsonl":
                out.write(json.dumps(exchange.as_dict(), ensure_ascii=False) + "\n")
            else:
                out.write(format_exchange_text(exchange) + "\n")
    finally:
        history.close()
    return 0
