/**
 * Versioned schema, applied in order inside one transaction each; `PRAGMA user_version` records the last
 * one applied. Append new migrations; never edit a released one.
 */
export const migrations: readonly string[] = [
  `
  CREATE TABLE applications (
    id          INTEGER PRIMARY KEY,
    token       TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    chats_count INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
  );
  -- GET /applications pages by (created_at, token): a keyset that reveals no internal id.
  CREATE INDEX applications_by_creation ON applications (created_at, token);

  CREATE TABLE chats (
    id             INTEGER PRIMARY KEY,
    application_id INTEGER NOT NULL REFERENCES applications (id),
    number         INTEGER NOT NULL CHECK (number BETWEEN 1 AND 4294967295),
    messages_count INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL,
    UNIQUE (application_id, number)
  );

  -- The rowid is (chat_id << 32) | number. It makes the rowid itself the unique (chat, number) key, keeps
  -- one chat's messages contiguous on disk in number order (list pages are one range scan, no secondary
  -- index), and lets the FTS5 index below be restricted to one chat by a rowid range.
  CREATE TABLE messages (
    id         INTEGER PRIMARY KEY,
    chat_id    INTEGER NOT NULL REFERENCES chats (id),
    number     INTEGER NOT NULL CHECK (number BETWEEN 1 AND 4294967295),
    body       TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL,
    CHECK (id = ((chat_id << 32) | number))
  );

  -- Substring search: every 3-character sequence of each body, indexed after foldCase() and matched
  -- case-sensitively, so a match is exactly foldCase(body).includes(foldCase(q)): the same rule as the
  -- short-query path and every other search adapter (FTS5's own case folding differs from it on irregular
  -- Unicode mappings). Contentless: the bodies are stored once, in messages. The writer keeps the index in
  -- step in the same transaction as each insert or edit; not triggers: FTS5 flushes its pending terms at
  -- every trigger's statement savepoint, which made each insert about four times as expensive.
  CREATE VIRTUAL TABLE messages_fts USING fts5 (
    body, content = '', contentless_delete = 1, tokenize = 'trigram case_sensitive 1'
  );

  CREATE TABLE idempotency_keys (
    scope       TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    response    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (scope, key)
  ) WITHOUT ROWID;
  CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
  `,
  // FTS5 merges a level's segments inside the commit that makes their count reach 'automerge' (default
  // 4), so under a steady stream of small group commits one commit in a few pays for a merge: those were
  // the slowest creates (p99 27-29 ms at 100 connections). At 16 a merge comes a quarter as often and each
  // byte is merged fewer times (p99 13-18 ms, 15 % more creates per second). Searches probe more segments
  // meanwhile; the writer merges the index fully whenever it is idle (write-thread.ts).
  `
  INSERT INTO messages_fts (messages_fts, rank) VALUES ('automerge', 16);
  `,
  // Edits are numbered per chat (the message keeps the number of its latest edit; the chat's last one is
  // the index's maximum), so a live stream can resume the edits a client missed. The index holds edited
  // messages only: creates do not pay for it.
  `
  ALTER TABLE messages ADD COLUMN edit_seq INTEGER NOT NULL DEFAULT 0;
  CREATE INDEX messages_by_edit ON messages (chat_id, edit_seq) WHERE edit_seq > 0;
  `,
  // The search index moves to its own database file (search.db, see search/sqlite/schema.ts), kept by its
  // own thread: FTS5 upkeep was most of each group commit's time, and every create waited for it. The
  // writer now appends each stored or edited message to search_log in the same transaction; the indexer
  // follows the log. `instance` names this database, so that a search.db built from another one (or none)
  // is recognised and rebuilt from scratch.
  `
  CREATE TABLE instance (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    source TEXT    NOT NULL
  );
  INSERT INTO instance (id, source) VALUES (1, lower(hex(randomblob(16))));
  CREATE TABLE search_log (
    seq        INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL,
    edit       INTEGER NOT NULL DEFAULT 0
  );
  DROP TABLE messages_fts;
  `,
];
