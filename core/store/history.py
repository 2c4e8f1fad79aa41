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
    finish_reason TEXT NOT NULL,
    conversation INTEGER
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- A conversation: the exchanges of one session of the app, from its start (or a /clear) on; reopened
-- with /resume, `tfchat --resume` or from the history browser, it goes on in the same row.
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at REAL NOT NULL,
    model TEXT NOT NULL
);
"""
SELECT_EXCHANGE = ("SELECT id, created_at, kind, prompt, output, preset, params, stats, model, finish_reason, "
                   "conversation FROM exchanges")
COLUMNS = {
    "exchanges": {"id", "created_at", "kind", "prompt", "output", "preset", "params", "stats", "model",
                  "finish_reason"},
    "settings": {"key", "value"},
}
# A reopened conversation brings back at most its last this many exchanges (the rest stay in the history).
REOPENED_EXCHANGES = 500
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
    kind: str = "prompt"  # 'prompt', 'regenerate', 'continue', 'branch' or 'compare'
    created_at: float = field(default_factory=time.time)
    id: int | None = None
    conversation: int | None = None  # None: written before conversations were kept

    def as_dict(self) -> dict:
        return {"id": self.id, "created_at": self.created_at, "kind": self.kind, "prompt": self.prompt,
                "output": self.output, "preset": self.preset, "params": self.params, "stats": self.stats,
                "model": self.model, "finish_reason": self.finish_reason, "conversation": self.conversation}


@dataclass(frozen=True)
class Conversation:
    id: int
    title: str  # its first prompt
    exchanges: int
    last_at: float


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
            self._add_conversation_column()
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
            have = self._columns(table)
            if not wanted <= have:
                raise sqlite3.DatabaseError(f"its table {table!r} is not tfchat's (another program's database?)")
        # A database from before conversations, read-only, has none: its exchanges read as outside any.
        self._select = SELECT_EXCHANGE if "conversation" in self._columns("exchanges") else \
            SELECT_EXCHANGE.replace("conversation", "NULL")

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}

    def _add_conversation_column(self) -> None:
        """A history written before conversations were kept gets the column (once it is known to be tfchat's);
        its exchanges belong to none."""
        if "conversation" not in self._columns("exchanges"):
            self._db.execute("ALTER TABLE exchanges ADD COLUMN conversation INTEGER")
            self._select = SELECT_EXCHANGE
    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def add(self, exchange: Exchange) -> int:
        try:
            with self._transaction():
                cursor = self._db.execute(
                    "INSERT INTO exchanges (created_at, kind, prompt, output, preset, params, stats, model,"
                    " finish_reason, conversation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (exchange.created_at, exchange.kind, exchange.prompt, exchange.output, exchange.preset,
                     json.dumps(exchange.params), json.dumps(exchange.stats), exchange.model,
                     exchange.finish_reason, exchange.conversation),
                )
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: cannot write the exchange ({exc})") from None
        exchange.id = cursor.lastrowid
        return exchange.id

    def recent(self, limit: int = 0) -> list[Exchange]:
        """Newest last; limit 0 means all."""
        query = self._select + " ORDER BY id DESC"
        rows = self._read(query + (" LIMIT ?" if limit else ""), (limit,) if limit else ())
        return [self._exchange(r) for r in reversed(rows)]

    def each_oldest_first(self, limit: int = 0) -> Iterator[Exchange]:
        """The last `limit` exchanges (0: all), oldest first, read a few at a time: an export of a
        history of any size holds only the rows it is writing."""
        query = (f"SELECT * FROM ({self._select} ORDER BY id DESC LIMIT ?) ORDER BY id"
                 if limit else f"{self._select} ORDER BY id")
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
            self._select + " WHERE prompt LIKE ? ESCAPE '\\' OR output LIKE ? ESCAPE '\\' ORDER BY id DESC LIMIT ?",
            (pattern, pattern, limit))
        return [self._exchange(r) for r in rows]

    @staticmethod
    def _exchange(r: tuple) -> Exchange:
        try:
            return Exchange(id=r[0], created_at=r[1], kind=r[2], prompt=r[3], output=r[4], preset=r[5],
                            params=json.loads(r[6]), stats=json.loads(r[7]), model=r[8], finish_reason=r[9],
                            conversation=r[10])
        except (TypeError, ValueError) as exc:
            raise HistoryError(f"exchange {r[0]} is damaged ({exc})") from None

    # ----- conversations ------------------------------------------------------------------
    def new_conversation(self, model: str) -> int:
        try:
            with self._transaction():
                cursor = self._db.execute("INSERT INTO conversations (started_at, model) VALUES (?, ?)",
                                          (time.time(), model))
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: cannot begin a conversation ({exc})") from None
        return cursor.lastrowid

    def conversation(self, conversation: int) -> Conversation | None:
        """Its title (the first prompt typed in it), how many exchanges it has, when the last was written."""
        rows = self._read("SELECT COUNT(*), MAX(created_at), (SELECT prompt FROM exchanges WHERE conversation = ?1 "
                          "AND prompt != '' ORDER BY id LIMIT 1) FROM exchanges WHERE conversation = ?1",
                          (conversation,))
        count, last_at, title = rows[0] if rows else (0, None, None)
        return Conversation(conversation, title or "", count, last_at) if count else None

    def conversation_exchanges(self, conversation: int, limit: int = REOPENED_EXCHANGES) -> list[Exchange]:
        """Its last `limit` exchanges, oldest first."""
        rows = self._read(f"SELECT * FROM ({self._select} WHERE conversation = ? ORDER BY id DESC LIMIT ?) "
                          "ORDER BY id", (conversation, limit))
        return [self._exchange(r) for r in rows]

    def last_conversation(self, other_than: int | None = None) -> int | None:
        """The conversation of the newest exchange written, leaving out `other_than` (the one going on)."""
        rows = self._read("SELECT conversation FROM exchanges WHERE conversation IS NOT NULL AND conversation IS NOT ? "
                          "ORDER BY id DESC LIMIT 1", (other_than,))
        return rows[0][0] if rows else None

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

    def new_conversation(self, model: str) -> None:
        return None

    def conversation(self, conversation: int) -> None:
        return None

    def conversation_exchanges(self, conversation: int, limit: int = REOPENED_EXCHANGES) -> list[Exchange]:
        return []

    def last_conversation(self, other_than: int | None = None) -> None:
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
