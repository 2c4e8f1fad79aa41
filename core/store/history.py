"""Every exchange, kept in SQLite as soon as it completes or is stopped.

Each exchange is one committed transaction, and the database runs in WAL mode
with synchronous=FULL, so killing tfchat (SIGKILL, a dropped SSH link) loses
nothing that was already written.

Every SQLite failure (locked, read-only, full, corrupt, another program's
schema) is a HistoryError with one line; the app runs on without history.
"""
from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, TextIO

from tfchat.core.engine.stats import GenerationStats
from tfchat.core.errors import HistoryError
from tfchat.core.system.paths import default_history_file

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
COLUMNS = {
    "exchanges": {"id", "created_at", "kind", "prompt", "output", "preset", "params", "stats", "model",
                  "finish_reason"},
    "settings": {"key", "value"},
}
# How long a write waits for another process's lock before giving up (the UI waits with it).
LOCK_TIMEOUT_S = 1.0


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
    def __init__(self, path: str | Path | None = None, read_only: bool = False):
        self.path = Path(path) if path else default_history_file()
        self._db = None
        if read_only:
            self._open_read_only()
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=LOCK_TIMEOUT_S, check_same_thread=False,
                                       isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            self._check_schema()
        except (sqlite3.Error, OSError) as exc:
            self.close()
            raise HistoryError(f"{self.path}: cannot open the history database ({exc})") from None

    def _open_read_only(self) -> None:
        """For listing and export: nothing is written, not even the journal's files beside the database, so a
        database in a read-only directory (or on read-only media) is read as it is."""
        uri = self.path.resolve().as_uri()
        try:
            try:
                self._db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=LOCK_TIMEOUT_S,
                                           check_same_thread=False, isolation_level=None)
                self._check_schema()
            except sqlite3.OperationalError:
                # A WAL database needs its shared-memory file, which a read-only directory cannot hold: nobody
                # can be writing it there, so it is read as an immutable file.
                self.close()
                self._db = sqlite3.connect(f"{uri}?immutable=1", uri=True, check_same_thread=False,
                                           isolation_level=None)
                self._check_schema()
        except (sqlite3.Error, OSError) as exc:
            self.close()
            raise HistoryError(f"{self.path}: cannot read the history database ({exc})") from None

    def _check_schema(self) -> None:
        for table, wanted in COLUMNS.items():
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if not wanted <= have:
                raise sqlite3.DatabaseError(f"its table {table!r} is not tfchat's (another program's database?)")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

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
        rows = self._read(query + (" LIMIT ?" if limit else ""), (limit,) if limit else ())
        return [self._exchange(r) for r in reversed(rows)]

    def each_oldest_first(self, limit: int = 0) -> Iterator[Exchange]:
        """The last `limit` exchanges (0: all), oldest first, read a few at a time: an export of a
        history of any size holds only the rows it is writing."""
        columns = "id, created_at, kind, prompt, output, preset, params, stats, model, finish_reason"
        query = (f"SELECT {columns} FROM (SELECT {columns} FROM exchanges ORDER BY id DESC LIMIT ?) ORDER BY id"
                 if limit else f"SELECT {columns} FROM exchanges ORDER BY id")
        try:
            cursor = self._db.execute(query, (limit,) if limit else ())
            while rows := cursor.fetchmany(64):
                for row in rows:
                    yield self._exchange(row)
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: cannot read the history ({exc})") from None

    def search(self, words: str, limit: int = 200) -> list[Exchange]:
        """Exchanges whose prompt or output holds `words` (case-insensitive), newest first."""
        pattern = "%" + words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._read(
            "SELECT id, created_at, kind, prompt, output, preset, params, stats, model, finish_reason FROM exchanges"
            " WHERE prompt LIKE ? ESCAPE '\\' OR output LIKE ? ESCAPE '\\' ORDER BY id DESC LIMIT ?",
            (pattern, pattern, limit))
        return [self._exchange(r) for r in rows]

    @staticmethod
    def _exchange(r: tuple) -> Exchange:
        try:
            return Exchange(id=r[0], created_at=r[1], kind=r[2], prompt=r[3], output=r[4], preset=r[5],
                            params=json.loads(r[6]), stats=json.loads(r[7]), model=r[8], finish_reason=r[9])
        except (TypeError, ValueError) as exc:
            raise HistoryError(f"exchange {r[0]} is damaged ({exc})") from None

    def recent_prompts(self, limit: int = 500) -> list[str]:
        """Distinct prompts the user typed, oldest first, for the input's recall."""
        rows = self._read(
            "SELECT prompt FROM exchanges WHERE kind = 'prompt' GROUP BY prompt ORDER BY MAX(id) DESC LIMIT ?",
            (limit,),
        )
        return [r[0] for r in reversed(rows) if isinstance(r[0], str)]

    def get_setting(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM settings WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_setting(self, key: str, value: str) -> None:
        try:
            with self._transaction():
                self._db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: cannot write a setting ({exc})") from None

    def _read(self, query: str, args: tuple) -> list[tuple]:
        try:
            return self._db.execute(query, args).fetchall()
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: cannot read the history ({exc})") from None

    @contextmanager
    def _transaction(self):
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise


class NoHistory:
    """Stands in for History when the database cannot be used: nothing is kept, `problem` says why."""

    def __init__(self, problem: str):
        self.problem = problem

    def add(self, exchange: Exchange) -> None:
        return None

    def recent(self, limit: int = 0) -> list[Exchange]:
        return []

    def search(self, words: str, limit: int = 200) -> list[Exchange]:
        return []

    def recent_prompts(self, limit: int = 500) -> list[str]:
        return []

    def get_setting(self, key: str) -> str | None:
        return None

    def set_setting(self, key: str, value: str) -> None:
        return None

    def close(self) -> None:
        return None


def open_history(path: str | Path | None) -> History | NoHistory:
    """The history database, or a NoHistory saying why it cannot be used."""
    try:
        return History(path)
    except HistoryError as exc:
        return NoHistory(str(exc))


def format_exchange_text(e: Exchange) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.created_at))
    stats = GenerationStats.from_dict(e.stats or {})
    figures = "  ".join(stats.figures()) if stats is not None else "no stats"
    head = f"#{e.id}  {when}  {e.kind}  preset={e.preset}  {figures}  {e.finish_reason}"
    return f"{head}\n>>> {e.prompt}\n{e.output}\n"


def export_history(path: str | None, fmt: str, limit: int, out: TextIO, err: TextIO) -> int:
    history_path = Path(path) if path else default_history_file()
    if limit < 0:
        raise HistoryError(f"--limit must be 0 (all) or more, got {limit}")
    if not history_path.exists():
        err.write(f"tfchat: no history yet at {history_path} (it is written as you use the app)\n")
        return 0
    history = History(history_path, read_only=True)
    try:
        for exchange in history.each_oldest_first(limit):
            if fmt == "jsonl":
                out.write(json.dumps(exchange.as_dict(), ensure_ascii=False) + "\n")
            else:
                out.write(format_exchange_text(exchange) + "\n")
    finally:
        history.close()
    return 0
