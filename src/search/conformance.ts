/**
 * The SearchIndex port's conformance suite, run by every search adapter (SQLite FTS5, later OpenSearch).
 *
 * "Match" has one definition everywhere (src/search/fold.ts): a message matches a query when
 * `foldCase(body).includes(foldCase(query))`. The suite checks it on hand-picked cases (short queries,
 * scripts, characters that are operators in some query language) and differentially, against that very
 * expression, over a generated corpus.
 *
 * The factory must return an empty index with at least two chats (ideally: two in one application and
 * one in another with the same chat number as the first). `index` stores messages so that a search
 * right after it sees them; `edit` replaces a stored body the way the API's edit does.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { mulberry32 } from '../../test/helpers/prng.ts';
import type { SearchIndex, SearchPage } from '../domain/ports.ts';
import type { Chat, Message, MessageCreate } from '../domain/types.ts';
import { messageView } from '../domain/views.ts';
import { foldCase } from './fold.ts';

export interface IndexedMessage {
  number: number;
  body: string;
}

/** The writer's commands that store `messages` in `chat`: fixtures fill an index through the store. */
export function messageCreates(chat: Chat, messages: readonly IndexedMessage[], at: string): MessageCreate[] {
  return messages.map((m) => ({
    kind: 'message.create',
    applicationId: chat.applicationId,
    chatNumber: chat.number,
    number: m.number,
    body: m.body,
    at,
  }));
}

export interface SearchFixture {
  search: SearchIndex;
  /** At least two chats, none holding messages yet. */
  chats: Chat[];
  index(chat: Chat, messages: IndexedMessage[]): Promise<void>;
  edit(chat: Chat, number: number, body: string): Promise<void>;
  cleanup(): Promise<void>;
}

/** The definition of a match, and the expected answer: matching numbers, newest first. */
function reference(messages: IndexedMessage[], query: string): number[] {
  const q = foldCase(query);
  return messages
    .filter((m) => foldCase(m.body).includes(q))
    .map((m) => m.number)
    .sort((a, b) => b - a);
}

/** Follows `next` until the end; fails instead of looping forever. */
async function searchAll(
  search: SearchIndex,
  chat: Chat,
  query: string,
  limit: number,
): Promise<Message[][]> {
  const pages: Message[][] = [];
  let page: SearchPage | undefined = { limit };
  while (page) {
    const result: { items: Message[]; next?: SearchPage } = await search.search(chat, query, page);
    pages.push(result.items);
    assert.ok(pages.length <= 10_000, 'search paging did not terminate');
    page = result.next;
  }
  return pages;
}

/**
 * An adapter with searchRendered answers every search of the suite both ways, and the rendered page must
 * be exactly the JSON of the plain page's views, with the same next cursor.
 */
function checkingRendered(index: SearchIndex): SearchIndex {
  const { searchRendered } = index;
  if (!searchRendered) return index;
  return {
    name: index.name,
    ping: () => index.ping(),
    close: () => index.close(),
    async search(chat, query, page) {
      // Both at once: the rendered search runs beside the plain one, as concurrent requests do.
      const [plain, rendered] = await Promise.all([
        index.search(chat, query, page),
        searchRendered.call(index, chat, query, page),
      ]);
      assert.equal(rendered.json, JSON.stringify(plain.items.map(messageView)), `rendered page of ${query}`);
      assert.deepEqual(rendered.next, plain.next, `rendered next cursor of ${query}`);
      return plain;
    },
  };
}

export function searchConformance(name: string, factory: () => Promise<SearchFixture>): void {
  describe(`SearchIndex conformance: ${name}`, () => {
    let fixture: SearchFixture;
    let search: SearchIndex;
    let chat: Chat;
    let otherChat: Chat;

    beforeEach(async () => {
      fixture = await factory();
      search = checkingRendered(fixture.search);
      assert.ok(fixture.chats.length >= 2, 'the factory must provide at least two chats');
      chat = fixture.chats[0]!;
      otherChat = fixture.chats[1]!;
    });

    afterEach(async () => {
      await fixture.cleanup();
    });

    /** Indexes `bodies` as messages 1..n of `target` (default: the first chat). */
    async function indexBodies(bodies: string[], target = chat): Promise<IndexedMessage[]> {
      const messages = bodies.map((body, i) => ({ number: i + 1, body }));
      await fixture.index(target, messages);
      return messages;
    }

    /** Numbers found for `query` on one big page, newest first as the adapter returned them. */
    async function found(query: string, target = chat): Promise<number[]> {
      const page = await search.search(target, query, { limit: 1000 });
      assert.equal(page.next, undefined, 'everything fits one page of 1000');
      return page.items.map((m) => m.number);
    }

    it('ping resolves', async () => {
      await search.ping();
    });

    it('finds a case-insensitive substring, in either direction of case', async () => {
      await indexBodies(['Instabug is here', 'nothing to see', 'lowercase words']);
      assert.deepEqual(await found('stab'), [1]);
      assert.deepEqual(await found('INSTABUG'), [1]);
      assert.deepEqual(await found('iNsTaBuG iS'), [1]);
      assert.deepEqual(await found('LOWERCASE'), [3]);
      assert.deepEqual(await found('absent'), []);
    });

    it('returns the current body and the chat number with every result', async () => {
      const messages = await indexBodies(['Instabug one', 'Instabug two']);
      const page = await search.search(chat, 'instabug', { limit: 10 });
      assert.deepEqual(
        page.items.map((m) => ({ chatNumber: m.chatNumber, number: m.number, body: m.body })),
        [...messages].reverse().map((m) => ({ chatNumber: chat.number, ...m })),
      );
      for (const m of page.items) assert.equal(typeof m.createdAt, 'string');
    });

    it('answers 1- and 2-character queries (shorter than a trigram)', async () => {
      await indexBodies(['ab', 'xa', 'Ab cd', 'zzz', '中文', 'fun 🎉 time', 'b']);
      assert.deepEqual(await found('a'), [3, 2, 1]);
      assert.deepEqual(await found('A'), [3, 2, 1]);
      assert.deepEqual(await found('ab'), [3, 1]);
      assert.deepEqual(await found('AB'), [3, 1]);
      assert.deepEqual(await found('b'), [7, 3, 1]);
      assert.deepEqual(await found('中'), [5]);
      assert.deepEqual(await found('文'), [5]);
      assert.deepEqual(await found('🎉'), [6]);
      assert.deepEqual(await found(' 🎉'), [6]);
      assert.deepEqual(await found('q'), []);
      assert.deepEqual(await found(' '), [6, 3]);
    });

    it('finds CJK substrings', async () => {
      await indexBodies(['中文测试消息', '测验', '其他消息']);
      assert.deepEqual(await found('测试'), [1]);
      assert.deepEqual(await found('文测试'), [1]);
      assert.deepEqual(await found('消息'), [3, 1]);
      assert.deepEqual(await found('测'), [2, 1]);
    });

    it('folds case beyond ASCII: accented Latin and Greek', async () => {
      await indexBodies(['äöü straße', 'ΣΟΦΙΑ μου', 'ÉCOLE normale', 'plain aou']);
      assert.deepEqual(await found('ÄÖÜ'), [1]);
      assert.deepEqual(await found('Äö'), [1]);
      assert.deepEqual(await found('ö'), [1]);
      assert.deepEqual(await found('σοφ'), [2]);
      assert.deepEqual(await found('σο'), [2]);
      assert.deepEqual(await found('Σοφια'), [2]);
      assert.deepEqual(await found('école'), [3]);
      assert.deepEqual(await found('éc'), [3]);
      // Folding is of case, not of accents: 'a' is not 'ä'.
      assert.deepEqual(await found('aou'), [4]);
      assert.deepEqual(await found('äou'), []);
    });

    it('folds case exactly like foldCase, also where Unicode case mappings are irregular', async () => {
      // Cases where a search engine's own folding tends to differ from String.prototype.toLowerCase:
      // Greek final sigma (context-dependent in toLowerCase), compatibility variants that Unicode case
      // *folding* merges but lowercasing does not (long s, micro sign), dotted capital I, and letters
      // newer than an engine's built-in tables (Georgian Mtavruli: Unicode 11; Cyrillic Ԩ: Unicode 7).
      const messages = await indexBodies([
        'σοφός σοφοί', // 1: final and medial sigma
        'ΣΟΦΟΣ ΣΟΦΟΙ', // 2
        'ſtraſſe', // 3: long s
        'µ-metre', // 4: micro sign, not Greek mu
        'İstanbul', // 5
        'ქართული', // 6: Georgian Mkhedruli (lowercase)
        'ᲥᲐᲠᲗᲣᲚᲘ', // 7: Georgian Mtavruli (uppercase)
        'ԩԫԭ', // 8
        'ԨԪԬ', // 9
        'Aσ b', // 10: with 'aΣ ' below, toLowerCase folds the query's Σ to final ς
      ]);
      const queries = [
        'ός σ',
        'ΟΣ Σ',
        'Σ',
        'σ',
        'ς',
        'ΟΣ',
        'aΣ',
        'aΣ ',
        'aσ ',
        'os',
        'STRASSE',
        'ſtr',
        'str',
        'µ-m',
        'μ-m',
        'Μ-M',
      ];
      queries.push('İst', 'ist', 'i̇st', 'ᲥᲐᲠ', 'ქარ', 'ᲥᲐ', 'ქა', 'ԨԪԬ', 'ԩԫԭ', 'Ԩ', 'ԩ');
      const mismatches: string[] = [];
      for (const query of queries) {
        const expected = reference(messages, query);
        const actual = await found(query);
        if (JSON.stringify(actual) !== JSON.stringify(expected))
          mismatches.push(
            `${JSON.stringify(query)}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`,
          );
      }
      assert.deepEqual(mismatches, []);
    });

    it('finds Greek words whatever the form of their sigma, as a substring of any length', async () => {
      // toLowerCase alone lowers a word-final Σ to ς and any other to σ: 'ΚΟΣ' as a query ends in ς.
      await indexBodies(['ΚΟΣΜΟΣ', 'ΟΔΟΣ', 'σοφός', 'nothing Greek']);
      assert.deepEqual(await found('ΚΟΣ'), [1]);
      assert.deepEqual(await found('κοσμος'), [1]);
      assert.deepEqual(await found('οσ'), [2, 1]);
      assert.deepEqual(await found('ΟΣ'), [2, 1]);
      assert.deepEqual(await found('Σ'), [3, 2, 1]);
      assert.deepEqual(await found('ς'), [3, 2, 1]);
      assert.deepEqual(await found('ΣΟΦΌΣ'), [3]);
    });

    it('matches characters literally that are operators in SQL LIKE, FTS5 or Lucene', async () => {
      const bodies = [
        'plain text here', // 1
        'I am 100% sure', // 2
        'snake_case name', // 3
        'she said "hi" twice', // 4
        'back\\slash', // 5
        "it's mine", // 6
        'call(x) now', // 7
        'well-known fact', // 8
        'key:value pair', // 9
        'cats AND dogs', // 10
        'this OR that', // 11
        'NEAR the end', // 12
        'a* wildcard', // 13
        'ab cd', // 14
        'abc', // 15
        'caret ^ plus + brace {x} tilde ~ bang ! question ?', // 16
        'slash / pipe | amp & star * hash #', // 17
      ];
      const messages = await indexBodies(bodies);
      const cases: [string, number[]][] = [
        ['%', [2]],
        ['_', [3]],
        ['"', [4]],
        ['"hi"', [4]],
        ['said "hi', [4]],
        ['\\', [5]],
        ['k\\s', [5]],
        ["'", [6]],
        ["it'", [6]],
        ['(', [7]],
        ['l(x', [7]],
        ['(x)', [7]],
        ['-', [8]],
        ['-kn', [8]],
        ['NOT', []],
        [':', [9]],
        ['key:', [9]],
        ['AND', [10]],
        ['cats AND dogs', [10]],
        ['OR', [11]],
        ['this OR that', [11]],
        ['NEAR', [12]],
        ['NEAR(', []],
        ['a*', [13]],
        ['a* w', [13]],
        ['*', [17, 13]],
        ['ab*', []],
        ['%a%', []],
        ['_a', []],
        ['^', [16]],
        ['+ b', [16]],
        ['{x}', [16]],
        ['~ b', [16]],
        ['?', [16]],
        ['!', [16]],
        ['/ p', [17]],
        ['| a', [17]],
        ['&', [17]],
        ['#', [17]],
      ];
      const failures: string[] = [];
      for (const [query, expected] of cases) {
        // The hand-written expectation and the definition must agree, or the case itself is wrong.
        assert.deepEqual(reference(messages, query), expected, `case ${JSON.stringify(query)} is miswritten`);
        const actual = await found(query);
        if (JSON.stringify(actual) !== JSON.stringify(expected))
          failures.push(
            `${JSON.stringify(query)}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`,
          );
      }
      assert.deepEqual(failures, []);
    });

    it('returns bodies byte for byte: control characters, line separators, JSON and HTML look-alikes', async () => {
      const bodies = [
        'tab\there, new\nline, cr\r, nul-free \u0001\u001f\u007f',
        'separators \u2028 and \u2029 end',
        '{"number": 999, "body": "fake"}]',
        '</script><b>&amp;</b> \\"',
        'astral 😀 and combining é',
      ];
      await indexBodies(bodies);
      const page = await search.search(chat, ' ', { limit: 10 });
      assert.deepEqual(
        page.items.map((m) => m.body),
        [...bodies].reverse(),
      );
      assert.deepEqual(await found('\u2028 and'), [2]);
      assert.deepEqual(await found('\t'), [1]);
    });

    it('results are newest first (descending number), whatever the indexing order', async () => {
      const shuffled = [7, 2, 9, 1, 5, 3, 10, 4, 8, 6].map((number) => ({
        number,
        body: `common ${number}`,
      }));
      await fixture.index(chat, shuffled);
      assert.deepEqual(await found('common'), [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
      assert.deepEqual(await found('co'), [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
    });

    it("never returns another chat's messages", async () => {
      // Same numbers, same words, different chats (possibly also different applications).
      for (const [i, target] of fixture.chats.entries()) {
        await fixture.index(
          target,
          [1, 2, 3].map((number) => ({ number, body: `shared word, chat #${i} message ${number}` })),
        );
      }
      for (const [i, target] of fixture.chats.entries()) {
        for (const query of ['shared word', 'sh', `chat #${i}`]) {
          const page = await search.search(target, query, { limit: 100 });
          assert.deepEqual(
            page.items.map((m) => m.body),
            [3, 2, 1].map((n) => `shared word, chat #${i} message ${n}`),
            `chat #${i}, query ${JSON.stringify(query)}`,
          );
          assert.ok(page.items.every((m) => m.chatNumber === target.number));
        }
        // Another chat's distinctive text is not found here.
        const elsewhere = `chat #${(i + 1) % fixture.chats.length}`;
        assert.deepEqual(await found(elsewhere, target), [], `chat #${i} found ${elsewhere}`);
      }
    });

    it('finds nothing in a chat without messages', async () => {
      await indexBodies(['something'], chat);
      assert.deepEqual(await found('something', otherChat), []);
      assert.deepEqual(await found('s', otherChat), []);
    });

    it('paging with limit and before walks every match exactly once, newest first', async () => {
      // 40 messages; the even-numbered ones match, the odd ones do not, so pages straddle non-matches.
      const messages = Array.from({ length: 40 }, (_, i) => ({
        number: i + 1,
        body: (i + 1) % 2 === 0 ? `match me ${i + 1}` : `other ${i + 1}`,
      }));
      await fixture.index(chat, messages);
      const expected = reference(messages, 'match me');
      assert.equal(expected.length, 20);
      for (const query of ['match me', 'ma']) {
        for (const limit of [1, 3, 7, 20, 21]) {
          const pages = await searchAll(search, chat, query, limit);
          assert.deepEqual(
            pages.flat().map((m) => m.number),
            expected,
            `query ${JSON.stringify(query)} limit ${limit}`,
          );
          for (const page of pages) assert.ok(page.length <= limit);
          assert.ok(
            pages.slice(0, -1).every((page) => page.length === limit),
            'only the last page is short',
          );
        }
        const middle = await search.search(chat, query, { limit: 3, before: 17 });
        assert.deepEqual(
          middle.items.map((m) => m.number),
          [16, 14, 12],
        );
        assert.deepEqual({ ...middle.next }, { limit: 3, before: 12 });
        const bottom = await search.search(chat, query, { limit: 3, before: 4 });
        assert.deepEqual(
          bottom.items.map((m) => m.number),
          [2],
        );
        assert.equal(bottom.next, undefined);
        assert.deepEqual((await search.search(chat, query, { limit: 3, before: 1 })).items, []);
      }
    });

    it('after an edit the old text is no longer found and the new one is', async () => {
      await indexBodies(['quartz crystal', 'other text']);
      await fixture.edit(chat, 1, 'zebra stripes');
      assert.deepEqual(await found('quartz'), []);
      assert.deepEqual(await found('qu'), []);
      assert.deepEqual(await found('zebra'), [1]);
      assert.deepEqual(await found('ze'), [1]);
      assert.deepEqual(await found('other'), [2]);
      const page = await search.search(chat, 'zebra', { limit: 10 });
      assert.equal(page.items[0]?.body, 'zebra stripes');
    });

    it('a query longer than any body finds nothing; one equal to a body finds it', async () => {
      await indexBodies(['Instabug', 'Insta']);
      assert.deepEqual(await found('Instabug!'), []);
      assert.deepEqual(await found('InstabugInstabug'), []);
      assert.deepEqual(await found('x'.repeat(1024)), []);
      assert.deepEqual(await found('instabug'), [1]);
      assert.deepEqual(await found('insta'), [2, 1]);
    });

    it('agrees with foldCase(body).includes(foldCase(query)) on a random corpus (differential)', async () => {
      const seed = 20240601;
      const random = mulberry32(seed);
      // Small alphabet, so random queries often hit: upper and lower case, digits, space, a Latin
      // letter with diacritic, a Greek capital (final-sigma folding), CJK and an astral-plane emoji.
      const alphabet = ['a', 'b', 'A', 'B', '1', '2', ' ', 'ä', 'Σ', 'σ', '中', '😀'];
      const pick = () => alphabet[Math.floor(random() * alphabet.length)]!;
      const text = (min: number, max: number) =>
        Array.from({ length: min + Math.floor(random() * (max - min + 1)) }, pick).join('');
      const corpus = Array.from({ length: 300 }, (_, i) => ({ number: i + 1, body: text(1, 20) }));
      await fixture.index(chat, corpus);
      // The other chat holds similar text: a leak across chats would show up as extra results.
      await fixture.index(
        otherChat,
        Array.from({ length: 50 }, (_, i) => ({ number: i + 1, body: text(1, 20) })),
      );

      const queries = new Set<string>(alphabet);
      while (queries.size < 400) {
        if (random() < 0.5) {
          queries.add(text(1, 5));
        } else {
          // A piece of a stored body, so that longer queries hit too.
          const chars = [...corpus[Math.floor(random() * corpus.length)]!.body];
          const length = 1 + Math.floor(random() * 5);
          const start = Math.floor(random() * Math.max(1, chars.length - length + 1));
          const piece = chars.slice(start, start + length).join('');
          if (piece.length > 0) queries.add(piece);
        }
      }

      const mismatches: string[] = [];
      let hits = 0;
      for (const query of queries) {
        const expected = reference(corpus, query);
        hits += expected.length;
        const pages = await searchAll(search, chat, query, 100);
        const actual = pages.flat().map((m) => m.number);
        if (JSON.stringify(actual) !== JSON.stringify(expected)) {
          const missing = expected.filter((n) => !actual.includes(n));
          const extra = actual.filter((n) => !expected.includes(n));
          const show = (ns: number[]) =>
            ns
              .slice(0, 3)
              .map((n) => `#${n} ${JSON.stringify(corpus[n - 1]?.body)}`)
              .join(', ');
          mismatches.push(
            `${JSON.stringify(query)}: ${missing.length} missing [${show(missing)}], ` +
              `${extra.length} extra [${show(extra)}]${missing.length + extra.length === 0 ? ' (order differs)' : ''}`,
          );
        }
      }
      // Guard the guard: a corpus where nothing matches would make agreement meaningless.
      assert.ok(hits > queries.size, `the generated queries hit too rarely (${hits} hits)`);
      assert.deepEqual(
        mismatches.slice(0, 40),
        [],
        `${mismatches.length} of ${queries.size} queries disagree with the reference (seed ${seed})`,
      );
    });
  });
}
