/**
 * The search benchmark's data set: one application, CHATS chats of PER_CHAT messages each (1 000 000 in
 * all), written straight through the store adapter (the same `persistBatch` the writer uses, so the FTS5
 * index is maintained by the same triggers). Bodies are sentences drawn from a seeded, Zipf-weighted
 * English word list, so substring terms have realistic selectivity; one rare word is planted in ~0.1% of
 * messages and one common word in ~10%.
 *
 * The result is cached in bench/.cache/<SEED_VERSION>-<schema hash>-<shape>/ (chat.db, search.db and manifest.json):
 * a change to the migrations makes a new cache entry by itself; bump SEED_VERSION when anything here
 * changes.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MessageCreate } from '../src/domain/types.ts';
import { InlineIndexing } from '../src/search/sqlite/indexing.ts';
import { attachSearchDatabase, searchMigrations } from '../src/search/sqlite/schema.ts';
import { openDatabase } from '../src/store/sqlite/database.ts';
import { migrations } from '../src/store/sqlite/migrations.ts';
import { SqliteStore } from '../src/store/sqlite/store.ts';
import { mulberry32 } from '../test/helpers/prng.ts';

export const SEED_VERSION = 'seed-v1';
const CHATS = 10;
const PER_CHAT = 100_000;
const BATCH = 5000;
const SEED = 20240601;

/** The chat the search scenarios query (any of them holds PER_CHAT messages). */
export const SEARCH_CHAT = 7;
export const TOKEN = 'bench-search-app-v1';
export const RARE_WORD = 'quetzal';
export const COMMON_WORD = 'coffee';
/** A 2-character term that occurs naturally (words like "book", "token", "okay"). */
export const SHORT_WORD = 'ok';
/** A 2-character term that occurs nowhere: the short-pattern path scans the whole chat. */
export const ABSENT_SHORT_WORD = 'qx';

export interface SeedManifest {
  version: string;
  schemaHash: string;
  chats: number;
  perChat: number;
  total: number;
  token: string;
  searchChat: number;
  /** How many of the search chat's messages contain each term (case-insensitive substring). */
  matches: Record<string, number>;
  seedSeconds: number;
  dbBytes: number;
}

const WORDS = `the be to of and a in that have it for not on with he as you do at this but his by from they we
say her she or an will my one all would there their what so up out if about who get which go me when make can
like time no just him know take people into year your good some could them see other than then now look only
come its over think also back after use two how our work first well way even new want because any these give
day most us is was are were been being has had did said made went took seen known found told asked called
felt left kept held brought began thought looked seemed turned moved lived believed happened book books
booking broken token tokens okay joke jokes smoke cook cooking spoke poke woke stroke market meeting message
chat server client deploy release build test tests testing review merge branch commit issue ticket sprint
team manager office lunch dinner breakfast tea water juice pizza salad sandwich weekend monday tuesday
wednesday thursday friday saturday sunday morning evening night tomorrow yesterday today later soon early
late quick quickly slow slowly please thanks thank sorry hello hi hey bye sure maybe perhaps definitely
probably actually really very much many more less little big small large great nice bad happy sad tired busy
free ready done finished started waiting call phone email link file document report slide deck plan budget
price cost order delivery shipping package address city street home house room door window car bus train
flight hotel trip travel holiday vacation beach mountain river park garden dog cat bird music movie song game
match score goal player coach season ticket concert party birthday wedding friend family mother father
brother sister child children kid kids school class lesson homework exam teacher student question answer
idea problem solution reason result change update version feature bug fix error crash log logs metric
metrics alert dashboard database query index cache memory disk network latency throughput request response
customer user users account password login signup profile setting settings option notification`
  .split(/\s+/)
  .filter(Boolean);

/** Builds a sentence generator: Zipf-weighted words (s = 1.05) over a seeded shuffle of WORDS. */
function sentences(seed: number): () => string {
  for (const word of WORDS) {
    if (word.includes(RARE_WORD) || word.includes(COMMON_WORD) || word.includes(ABSENT_SHORT_WORD)) {
      throw new Error(`word list must not contain "${word}": it would skew the planted terms`);
    }
  }
  const random = mulberry32(seed);
  const words = [...WORDS];
  for (let i = words.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [words[i], words[j]] = [words[j]!, words[i]!];
  }
  const cumulative: number[] = [];
  let sum = 0;
  for (let i = 0; i < words.length; i++) {
    sum += 1 / (i + 1) ** 1.05;
    cumulative.push(sum);
  }
  const pick = (): string => {
    const x = random() * sum;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return words[lo]!;
  };
  const endings = ['.', '.', '.', '!', '?', '', ' :)', '...'];
  return () => {
    const n = 5 + Math.floor(random() * 12);
    const parts: string[] = [];
    for (let i = 0; i < n; i++) parts.push(pick());
    if (random() < 0.1) parts.splice(Math.floor(random() * n), 0, COMMON_WORD);
    if (random() < 0.001) parts.splice(Math.floor(random() * n), 0, RARE_WORD);
    if (random() < 0.15) parts.push(String(Math.floor(random() * 1000)));
    const text = parts.join(' ');
    return `${text[0]!.toUpperCase()}${text.slice(1)}${endings[Math.floor(random() * endings.length)]}`;
  };
}

/** The schema the data set was written with: a cached database from other migrations is not reused. */
const SCHEMA_HASH = createHash('sha256')
  .update([...migrations, ...searchMigrations].join('\n--\n'))
  .digest('hex')
  .slice(0, 12);

export function seedDir(cacheRoot: string): string {
  return join(cacheRoot, `${SEED_VERSION}-${SCHEMA_HASH}-${CHATS}x${PER_CHAT}`);
}

/** Returns the cached data set's manifest, seeding it first when it is missing or incomplete. */
export async function ensureSeeded(cacheRoot: string, log: (line: string) => void): Promise<SeedManifest> {
  const dir = seedDir(cacheRoot);
  const manifestPath = join(dir, 'manifest.json');
  if (existsSync(manifestPath)) {
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as SeedManifest;
    log(`seed: reusing ${dir} (${manifest.total.toLocaleString('en-US')} messages)`);
    return manifest;
  }
  // Data sets of other versions or schemas are dead weight (hundreds of MiB each): drop them.
  for (const entry of existsSync(cacheRoot) ? readdirSync(cacheRoot) : []) {
    if (entry.startsWith('seed-')) rmSync(join(cacheRoot, entry), { recursive: true, force: true });
  }
  mkdirSync(dir, { recursive: true });
  log(`seed: writing ${(CHATS * PER_CHAT).toLocaleString('en-US')} messages to ${dir} …`);
  const started = Date.now();
  // NORMAL is enough for a data set that is rebuilt when lost; the server later opens it with its default.
  const db = openDatabase({ dataDir: dir, synchronous: 'NORMAL' });
  attachSearchDatabase(db, { dataDir: dir, synchronous: 'NORMAL' });
  const store = new SqliteStore(db);
  const app = await store.createApplication({
    token: TOKEN,
    name: 'bench search',
    at: '2025-01-01T00:00:00.000Z',
  });
  const next = sentences(SEED);
  let at = Date.parse('2025-01-01T00:00:00.000Z');
  let written = 0;
  for (let chat = 1; chat <= CHATS; chat++) {
    for (let from = 1; from <= PER_CHAT; from += BATCH) {
      const batch: MessageCreate[] = [];
      for (let number = from; number < from + BATCH && number <= PER_CHAT; number++) {
        at += 997;
        batch.push({
          kind: 'message.create',
          applicationId: app.id,
          chatNumber: chat,
          number,
          body: next(),
          at: new Date(at).toISOString(),
        });
      }
      await store.persistBatch(batch);
      written += batch.length;
      if (written % 100_000 === 0) {
        log(
          `seed: ${written.toLocaleString('en-US')} messages, ${((Date.now() - started) / 1000).toFixed(0)} s`,
        );
      }
    }
  }

  // The search index (search.db) in one pass over the log, as the server's indexer would build it, and
  // the log trimmed as the server would.
  await new InlineIndexing(db).caughtUp();
  await store.searchLog.trim(store.searchLog.position());
  // Merged, as a server's indexer leaves it once idle: otherwise the server merges during the first run.
  db.exec(`INSERT INTO search.messages_fts (messages_fts) VALUES ('optimize')`);
  log(`seed: indexed for search, ${((Date.now() - started) / 1000).toFixed(0)} s`);

  // Selectivity of each search term in the search chat, as the API defines a match: folded substring
  // (openDatabase registers chat_fold, the server's one folding rule).
  const chatId = (
    db.prepare('SELECT id FROM chats WHERE application_id = ? AND number = ?').get(app.id, SEARCH_CHAT) as {
      id: number;
    }
  ).id;
  const count = db.prepare(
    `SELECT count(*) AS n FROM messages WHERE id BETWEEN ((?1 << 32) | 1) AND ((?1 << 32) | 4294967295)
       AND instr(chat_fold(body), ?2) > 0`,
  );
  const matches: Record<string, number> = {};
  for (const term of [RARE_WORD, COMMON_WORD, SHORT_WORD, ABSENT_SHORT_WORD]) {
    matches[term] = (count.get(chatId, term) as { n: number }).n;
  }
  db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  db.exec('PRAGMA search.wal_checkpoint(TRUNCATE)');
  const pages = (schema: string) =>
    (db.prepare(`PRAGMA ${schema}.page_count`).get() as { page_count: number }).page_count *
    (db.prepare(`PRAGMA ${schema}.page_size`).get() as { page_size: number }).page_size;
  const dbBytes = pages('main') + pages('search');
  await store.close();

  const manifest: SeedManifest = {
    version: SEED_VERSION,
    schemaHash: SCHEMA_HASH,
    chats: CHATS,
    perChat: PER_CHAT,
    total: written,
    token: TOKEN,
    searchChat: SEARCH_CHAT,
    matches,
    seedSeconds: Math.round((Date.now() - started) / 1000),
    dbBytes,
  };
  // Written last: its presence marks a complete data set.
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  log(`seed: done in ${manifest.seedSeconds} s, ${(manifest.dbBytes / 2 ** 20).toFixed(0)} MiB`);
  return manifest;
}
