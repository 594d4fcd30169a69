/**
 * Hostile-input fuzzing against one real server: malformed, oversized and wrongly typed input at every
 * endpoint and method. Every request must get an answer (no hang), never a 5xx, and every 4xx must carry
 * the one error model `{"error":{"code","message"}}`. No answer may reveal an internal id. Afterwards the
 * server must still serve normally.
 *
 * Requests go over raw sockets, so that header values, methods, request lines and framing can be as broken
 * as an attacker likes. Inputs come from a seeded PRNG: a failure prints the seed, and FUZZ_SEED=<seed>
 * reproduces the run.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { mulberry32 } from './helpers/prng.ts';
import { api, startServer, type TestServer } from './helpers/server.ts';

const MESSAGE_MAX_BYTES = 1024;
const REQUEST_MAX_BYTES = 4096;
const CONCURRENCY = 16;
const REQUEST_TIMEOUT_MS = 5000;
/** Property names that would reveal an internal id. */
const INTERNAL_KEYS = new Set(['id', 'application_id', 'chat_id']);

// ---------------------------------------------------------------------------------------------- PRNG

class Rng {
  readonly #next: () => number;
  constructor(seed: number) {
    this.#next = mulberry32(seed);
  }
  float(): number {
    return this.#next();
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.#next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(0, 255);
    return out;
  }
  /** A string from a pool of awkward characters (all well-formed UTF-16, so it can be URL-encoded). */
  text(min: number, max: number): string {
    const pool = [
      'a',
      'b',
      'Z',
      '0',
      ' ',
      '"',
      "'",
      '\\',
      '*',
      '%',
      '_',
      '^',
      ':',
      '(',
      ')',
      '-',
      '+',
      '&',
      '=',
      '?',
      '#',
      '/',
      '\u0000',
      '\u0001',
      '\t',
      '\n',
      '\u202e',
      '\u200f',
      '\u0645',
      'ß',
      'İ',
      'é',
      'e\u0301',
      '\u{1f642}',
      '\u{1f468}\u200d\u{1f469}\u200d\u{1f467}',
      '\ufffd',
      '\ufeff',
      'NEAR',
      'AND',
      'OR',
      'NOT',
    ];
    let out = '';
    const n = this.int(min, max);
    for (let i = 0; i < n; i++) out += this.pick(pool);
    return out;
  }
}

// ------------------------------------------------------------------------------------ raw HTTP client

type Expect = 'valid' | 'invalid' | 'random';

interface Case {
  label: string;
  method: string;
  /** Request target exactly as sent (already percent-encoded, or deliberately not). */
  path: string;
  headers?: [string, string][];
  body?: string | Buffer;
  /** valid: 2xx; invalid: 4xx with the error model; random: < 500 and the error model when >= 400. */
  expect: Expect;
  /** Exact statuses required (in addition to `expect`). */
  status?: number[];
  /** Leave the framing to `headers` (no Content-Length added). */
  rawFraming?: boolean;
  /** Extra check on a response; returns a problem, or undefined. */
  check?: (response: RawResponse) => string | undefined;
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Parses a complete HTTP/1.1 response; undefined while incomplete. */
function parseResponse(data: Buffer, ended: boolean): RawResponse | undefined {
  const headEnd = data.indexOf('\r\n\r\n');
  if (headEnd < 0) return undefined;
  const lines = data.subarray(0, headEnd).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1]);
  if (!Number.isInteger(status)) return undefined;
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let rest = data.subarray(headEnd + 4);
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const chunks: Buffer[] = [];
    for (;;) {
      const lineEnd = rest.indexOf('\r\n');
      if (lineEnd < 0) return undefined;
      const size = Number.parseInt(rest.subarray(0, lineEnd).toString('latin1'), 16);
      if (!Number.isFinite(size)) return undefined;
      if (size === 0) return { status, headers, body: Buffer.concat(chunks) };
      if (rest.length < lineEnd + 2 + size + 2) return undefined;
      chunks.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
      rest = rest.subarray(lineEnd + 2 + size + 2);
    }
  }
  if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length']);
    if (rest.length < length) return undefined;
    return { status, headers, body: rest.subarray(0, length) };
  }
  return ended ? { status, headers, body: rest } : undefined;
}

/** Sends one request on a fresh connection (Connection: close) and reads the whole answer. */
function send(port: number, c: Case): Promise<RawResponse> {
  const body = c.body === undefined ? undefined : Buffer.from(c.body);
  let head = `${c.method} ${c.path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n`;
  for (const [name, value] of c.headers ?? []) head += `${name}: ${value}\r\n`;
  if (body !== undefined && !c.rawFraming) head += `Content-Length: ${body.length}\r\n`;
  head += '\r\n';
  const request = body === undefined ? Buffer.from(head) : Buffer.concat([Buffer.from(head), body]);

  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const socket = connect({ host: '127.0.0.1', port, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const finish = (ended: boolean, error?: Error) => {
      if (settled) return;
      const parsed = parseResponse(Buffer.concat(chunks), ended);
      // The server may close (or reset) right after answering, e.g. a 413 sent before the body was read.
      if (parsed) {
        settled = true;
        socket.destroy();
        resolve(parsed);
      } else if (error || ended) {
        settled = true;
        socket.destroy();
        reject(error ?? new Error('connection closed without a complete response'));
      }
    };
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      finish(false);
    });
    socket.on('end', () => finish(true));
    socket.on('error', (error) => finish(true, error));
    socket.on('close', () => finish(true));
    socket.on('connect', () => {
      // Errors writing (the server may stop reading an oversized body) surface through 'error'.
      socket.write(request);
    });
  });
}

// ------------------------------------------------------------------------------------ checks

function findInternalKeys(value: unknown, path = '$', found: string[] = []): string[] {
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) findInternalKeys(item, `${path}[${i}]`, found);
  } else if (value !== null && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      if (INTERNAL_KEYS.has(key)) found.push(`${path}.${key}`);
      findInternalKeys(child, `${path}.${key}`, found);
    }
  }
  return found;
}

function isErrorBody(value: unknown): boolean {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const error = (value as { error?: unknown }).error;
  if (error === null || typeof error !== 'object') return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  return typeof code === 'string' && code.length > 0 && typeof message === 'string';
}

/** Everything wrong with one answer (empty when it is acceptable). */
function problems(c: Case, response: RawResponse): string[] {
  const out: string[] = [];
  const { status } = response;
  const text = response.body.toString('utf8');
  let json: unknown;
  let isJson = false;
  try {
    json = JSON.parse(text);
    isJson = true;
  } catch {}

  if (status >= 500) out.push(`server error ${status}`);
  else if (c.expect === 'invalid' && (status < 400 || status >= 500)) out.push(`expected 4xx, got ${status}`);
  else if (c.expect === 'valid' && (status < 200 || status >= 300)) out.push(`expected 2xx, got ${status}`);
  if (c.status && !c.status.includes(status))
    out.push(`expected status ${c.status.join('|')}, got ${status}`);
  if (status >= 400 && !(isJson && isErrorBody(json))) {
    out.push(`error body is not {"error":{"code","message"}}`);
  }
  if (isJson) {
    const leaked = findInternalKeys(json);
    if (leaked.length > 0) out.push(`internal id key(s) in the answer: ${leaked.slice(0, 3).join(', ')}`);
  }
  if (text.includes('"devDependencies"')) out.push('answer reveals package.json (path traversal)');
  const extra = c.check?.(response);
  if (extra) out.push(extra);
  return out;
}

function preview(value: string | Buffer | undefined, max = 120): string {
  if (value === undefined) return '';
  const text = typeof value === 'string' ? value : value.toString('latin1');
  const shown = JSON.stringify(text.length > max ? `${text.slice(0, max)}…(${text.length})` : text);
  return ` body=${shown}`;
}

// ------------------------------------------------------------------------------------ case generation

interface Fixture {
  token: string;
  /** A well-formed token no application has. */
  unknownToken: string;
}

const JSON_CT: [string, string] = ['Content-Type', 'application/json'];

/** Routes taking a JSON body with one string field. */
function bodyRoutes(f: Fixture) {
  const chat = `/applications/${f.token}/chats/1/messages`;
  return [
    { method: 'POST', path: '/applications', field: 'name', maxLength: 255 },
    { method: 'PUT', path: `/applications/${f.token}`, field: 'name', maxLength: 255 },
    { method: 'PATCH', path: `/applications/${f.token}`, field: 'name', maxLength: 255 },
    { method: 'POST', path: chat, field: 'body', maxLength: undefined },
    { method: 'PUT', path: `${chat}/1`, field: 'body', maxLength: undefined },
    { method: 'PATCH', path: `${chat}/2`, field: 'body', maxLength: undefined },
  ] as const;
}

function bodyCases(f: Fixture, rng: Rng): Case[] {
  const cases: Case[] = [];
  for (const route of bodyRoutes(f)) {
    const F = route.field;
    const add = (label: string, body: string | Buffer, expect: Expect, status?: number[], ct = JSON_CT) =>
      cases.push({
        label: `${route.method} ${F}: ${label}`,
        method: route.method,
        path: route.path,
        headers: [ct],
        body,
        expect,
        ...(status && { status }),
      });
    const valid = JSON.stringify({ [F]: 'fuzz ok' });

    // Random bytes declared as JSON.
    for (let i = 0; i < 4; i++) add('random bytes', rng.bytes(rng.int(1, 300)), 'invalid');
    // Truncated JSON (an empty remainder is "no body": 422).
    for (let i = 0; i < 3; i++) {
      const full = JSON.stringify({ [F]: rng.text(1, 30) });
      add('truncated JSON', full.slice(0, rng.int(1, full.length - 1)), 'invalid', [400, 422]);
    }
    add('unterminated string', `{"${F}":"abc`, 'invalid', [400]);
    add('trailing garbage', `${valid}xyz`, 'invalid', [400]);
    add('single quotes', `{'${F}':'x'}`, 'invalid', [400]);
    add('trailing comma', `{"${F}":"x",}`, 'invalid', [400]);
    add('NaN literal', `{"${F}":NaN}`, 'invalid', [400]);
    add('whitespace only', '   ', 'invalid', [400, 422]);
    add('BOM then JSON', `\ufeff${valid}`, 'random');

    // Wrong types for the field.
    for (const raw of [
      '123',
      '-1',
      '0',
      '1.5',
      '1e400',
      '-1e400',
      '123456789012345678901234567890',
      'true',
      'false',
      'null',
      '[]',
      '["x"]',
      '{}',
      '{"a":{"b":{"c":[1,2,{"d":null}]}}}',
      `${'['.repeat(500)}${']'.repeat(500)}`,
      '""',
    ]) {
      add(`field = ${raw.slice(0, 40)}`, `{"${F}":${raw}}`, 'invalid', [422]);
    }
    // Wrong top-level types.
    for (const raw of [
      '[]',
      'null',
      '"x"',
      '42',
      'true',
      '{}',
      `[${valid}]`,
      `${'['.repeat(1500)}${']'.repeat(1500)}`,
    ]) {
      add(`top level ${raw.slice(0, 30)}`, raw, 'invalid', [422]);
    }
    // Extra fields.
    add('extra field', JSON.stringify({ [F]: 'x', extra: 1 }), 'invalid', [422]);
    add('extra id', JSON.stringify({ [F]: 'x', id: 5 }), 'invalid', [422]);
    add('extra token', JSON.stringify({ [F]: 'x', token: f.token, number: 7 }), 'invalid', [422]);
    add('duplicate key, last wrong', `{"${F}":"a","${F}":1}`, 'invalid', [422]);
    add('duplicate key, last right', `{"${F}":1,"${F}":"a"}`, 'random');
    // Prototype pollution.
    add('__proto__', `{"__proto__":{"polluted":true},"${F}":"x"}`, 'invalid', [400]);
    add('escaped __proto__', `{"\\u005f_proto__":{"polluted":true},"${F}":"x"}`, 'invalid', [400]);
    add('nested __proto__', `{"${F}":"x","a":{"__proto__":null}}`, 'invalid', [400]);
    add(
      'constructor.prototype',
      `{"constructor":{"prototype":{"polluted":true}},"${F}":"x"}`,
      'invalid',
      [400],
    );
    add('constructor (plain)', `{"constructor":1,"${F}":"x"}`, 'invalid', [422]);
    // Awkward but legitimate strings.
    // Unpaired surrogates cannot be stored as UTF-8: refused rather than silently replaced.
    for (const value of ['\ud800', '\udfff\ud800x']) {
      add(`string ${JSON.stringify(value)}`, JSON.stringify({ [F]: value }), 'invalid', [422]);
    }
    for (const value of [
      'a\u0000b',
      '\u202eevil\u202c',
      '\u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd',
      'Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319',
      '\u{1f642}'.repeat(200),
      '  ',
      '<script>alert(1)</script>',
      "'; DROP TABLE messages; --",
      '%s%n%x',
      '\\"',
      rng.text(1, 60),
    ]) {
      add(`string ${JSON.stringify(value.slice(0, 20))}`, JSON.stringify({ [F]: value }), 'valid');
    }
    add('empty string', JSON.stringify({ [F]: '' }), 'invalid', [422]);
    // Sizes.
    if (route.maxLength !== undefined) {
      add('name 255 chars', JSON.stringify({ [F]: 'n'.repeat(255) }), 'valid');
      add('name 256 chars', JSON.stringify({ [F]: 'n'.repeat(256) }), 'invalid', [422]);
      add('name 1000 chars', JSON.stringify({ [F]: 'n'.repeat(1000) }), 'invalid', [422]);
      add('name 300 emoji', JSON.stringify({ [F]: '\u{1f642}'.repeat(300) }), 'invalid', [422]);
      add('name 255 emoji', JSON.stringify({ [F]: '\u{1f642}'.repeat(255) }), 'random');
    } else {
      add('body 1024 bytes', JSON.stringify({ [F]: 'b'.repeat(MESSAGE_MAX_BYTES) }), 'valid');
      add('body 1025 bytes', JSON.stringify({ [F]: 'b'.repeat(MESSAGE_MAX_BYTES + 1) }), 'invalid', [422]);
      add('body 512 x é (1024 bytes)', JSON.stringify({ [F]: 'é'.repeat(512) }), 'valid');
      add('body 513 x é (1026 bytes)', JSON.stringify({ [F]: 'é'.repeat(513) }), 'invalid', [422]);
      add('body 257 emoji (1028 bytes)', JSON.stringify({ [F]: '\u{1f642}'.repeat(257) }), 'invalid', [422]);
    }
    add(
      '10k emoji (request too large)',
      JSON.stringify({ [F]: '\u{1f642}'.repeat(10_000) }),
      'invalid',
      [413],
    );
    add('request over limit', JSON.stringify({ [F]: 'x'.repeat(REQUEST_MAX_BYTES + 100) }), 'invalid', [413]);
    // Content types (the body itself is fine).
    add('text/plain', valid, 'invalid', [415], ['Content-Type', 'text/plain']);
    add(
      'multipart',
      `--xyz\r\nContent-Disposition: form-data; name="${F}"\r\n\r\nx\r\n--xyz--\r\n`,
      'invalid',
      [415],
      ['Content-Type', 'multipart/form-data; boundary=xyz'],
    );
    add('urlencoded', `${F}=x`, 'invalid', [415], ['Content-Type', 'application/x-www-form-urlencoded']);
    add('no content type', valid, 'invalid', [415], ['X-No-Content-Type', '1']);
    for (const garbage of [
      ';;;',
      '*/*',
      'application/',
      'json',
      '\u00ff\u00fe',
      'application/json-patch+json',
    ]) {
      add(`content type ${JSON.stringify(garbage)}`, valid, 'invalid', [415], ['Content-Type', garbage]);
    }
    for (const odd of [
      'application/json; charset=utf-99',
      'APPLICATION/JSON',
      'application/json, text/plain',
    ]) {
      add(`content type ${JSON.stringify(odd)}`, valid, 'random', undefined, ['Content-Type', odd]);
    }
  }
  return cases;
}

/** POST .../chats takes no body: anything the JSON parser rejects is still an error. */
function chatCreateCases(f: Fixture, rng: Rng): Case[] {
  const path = `/applications/${f.token}/chats`;
  const c = (label: string, rest: Partial<Case> & { expect: Expect }): Case => ({
    label: `POST chats: ${label}`,
    method: 'POST',
    path,
    ...rest,
  });
  return [
    c('no body', { expect: 'valid', status: [201] }),
    c('empty JSON object', { headers: [JSON_CT], body: '{}', expect: 'random' }),
    c('JSON with fields', { headers: [JSON_CT], body: '{"number":5,"id":1}', expect: 'random' }),
    c('malformed JSON', { headers: [JSON_CT], body: '{"a":', expect: 'invalid', status: [400] }),
    c('random bytes', { headers: [JSON_CT], body: rng.bytes(100), expect: 'random' }),
    c('__proto__', { headers: [JSON_CT], body: '{"__proto__":{"x":1}}', expect: 'invalid', status: [400] }),
    c('text/plain body', { headers: [['Content-Type', 'text/plain']], body: 'hi', expect: 'invalid' }),
    c('oversize body', {
      headers: [JSON_CT],
      body: JSON.stringify({ x: 'y'.repeat(REQUEST_MAX_BYTES) }),
      expect: 'invalid',
      status: [413],
    }),
  ];
}

/** Malformed path parameters, with an otherwise valid request. */
function pathCases(f: Fixture): Case[] {
  const cases: Case[] = [];
  const msg = JSON.stringify({ body: 'path fuzz' });
  const numberRoutes = (n: string) =>
    [
      ['GET', `/applications/${f.token}/chats/${n}`],
      ['GET', `/applications/${f.token}/chats/${n}/messages`],
      ['POST', `/applications/${f.token}/chats/${n}/messages`, msg],
      ['GET', `/applications/${f.token}/chats/${n}/messages/search?q=hello`],
      ['GET', `/applications/${f.token}/chats/1/messages/${n}`],
      ['PUT', `/applications/${f.token}/chats/1/messages/${n}`, msg],
      ['PATCH', `/applications/${f.token}/chats/${n}/messages/1`, msg],
    ] as const;
  for (const n of [
    'abc',
    '0',
    '-1',
    '1.5',
    '1e3',
    '99999999999999999999',
    '4294967296',
    '%00',
    '1%00',
    '%2e%2e%2f',
    'NaN',
    'Infinity',
    'true',
    '%20',
  ]) {
    for (const [method, path, body] of numberRoutes(n)) {
      cases.push({
        label: `${method} number ${n}`,
        method,
        path,
        ...(body && { body, headers: [JSON_CT] }),
        expect: 'invalid',
      });
    }
  }
  // Chat 1 exists, but a number is written one way only: these are not other spellings of 1.
  for (const n of ['0x1', '%201', '01', '1e0', '1.0', '%2B1']) {
    for (const [method, path, body] of numberRoutes(n)) {
      cases.push({
        label: `${method} number ${n}`,
        method,
        path,
        ...(body && { body, headers: [JSON_CT] }),
        expect: 'invalid',
        status: [422],
      });
    }
  }

  const name = JSON.stringify({ name: 'path fuzz' });
  const tokenRoutes = (t: string) =>
    [
      ['GET', `/applications/${t}`],
      ['PATCH', `/applications/${t}`, name],
      ['POST', `/applications/${t}/chats`],
      ['GET', `/applications/${t}/chats`],
      ['GET', `/applications/${t}/chats/1`],
      ['POST', `/applications/${t}/chats/1/messages`, msg],
      ['GET', `/applications/${t}/chats/1/messages/1`],
      ['GET', `/applications/${t}/chats/1/messages/search?q=abc`],
    ] as const;
  for (const t of [
    f.unknownToken,
    'a'.repeat(1000),
    'a'.repeat(150),
    encodeURIComponent('тест\u{1f642}\u202e'),
    '%00',
    '%2e%2e%2f',
    '..',
    '%25',
    '%E0%A4%A',
    '%ZZ',
    'тест', // raw UTF-8 in the request line
    `${f.token}%00`,
  ]) {
    for (const [method, path, body] of tokenRoutes(t)) {
      cases.push({
        label: `${method} token ${t.slice(0, 30)}${t.length > 30 ? `…(${t.length})` : ''}`,
        method,
        path,
        ...(body && { body, headers: [JSON_CT] }),
        expect: 'invalid',
      });
    }
  }
  return cases;
}

function queryCases(f: Fixture, rng: Rng): Case[] {
  const cases: Case[] = [];
  const q = (path: string, expect: Expect, status?: number[], check?: Case['check']): void => {
    cases.push({
      label: `GET ${path.replace(f.token, ':token').slice(0, 90)}`,
      method: 'GET',
      path,
      expect,
      ...(status && { status }),
      ...(check && { check }),
    });
  };
  const emptyList: Case['check'] = (r) =>
    r.status === 200 && r.body.toString() !== '[]'
      ? `expected an empty page, got ${r.body.toString().slice(0, 80)}`
      : undefined;

  for (const list of [`/applications/${f.token}/chats`, `/applications/${f.token}/chats/1/messages`]) {
    for (const bad of [
      'limit=0',
      'limit=-1',
      'limit=abc',
      'limit=1.5',
      'after=-5',
      'after=abc',
      'before=0',
      'before=-1',
      'before=4294967297',
      'after=4294967296',
    ]) {
      q(`${list}?${bad}`, 'invalid', [422]);
    }
    // Integers are written in decimal digits; a huge limit is capped, not refused.
    for (const spelling of ['limit=1e9', 'limit=010', 'after=0x10', 'before=%2B5']) {
      q(`${list}?${spelling}`, 'invalid', [422]);
    }
    q(`${list}?limit=1000000000`, 'valid', [200]);
    q(`${list}?after=1&before=3`, 'valid', [200]);
    q(`${list}?unknown=%00&x[y]=1`, 'valid', [200]);
    q(`${list}?after=4294967295`, 'valid', [200], emptyList);
    q(`${list}?limit=1&limit=2`, 'random');
    q(`${list}?limit=`, 'random');
    q(`${list}?limit=%00`, 'invalid', [422]);
  }
  const apps = '/applications';
  for (const bad of ['limit=0', 'limit=-1', 'limit=abc', 'cursor=garbage!', 'cursor=', 'cursor=%00']) {
    q(`${apps}?${bad}`, 'invalid', [422]);
  }
  q(`${apps}?cursor=${Buffer.from('[1,2]').toString('base64url')}`, 'invalid', [422]);
  q(`${apps}?cursor=${Buffer.from('{"__proto__":{"x":1}}').toString('base64url')}`, 'invalid', [422]);
  q(`${apps}?cursor=${'A'.repeat(600)}`, 'invalid', [422]);
  q(`${apps}?cursor=${rng.bytes(60).toString('base64url')}`, 'invalid', [422]);
  q(
    `${apps}?cursor=${Buffer.from('["2000-01-01T00:00:00.000Z","x"]').toString('base64url')}`,
    'valid',
    [200],
  );
  q(`${apps}?limit=1e9`, 'invalid', [422]);
  q(`${apps}?limit=1000000000`, 'valid', [200]);
  q(`${apps}?after=-5&before=0`, 'valid', [200]);
  q(`${apps}?limit=1&limit=2`, 'random');
  q(`${apps}?cursor=a&cursor=b`, 'random');

  const search = `/applications/${f.token}/chats/1/messages/search`;
  q(search, 'invalid', [422]);
  q(`${search}?q=`, 'invalid', [422]);
  q(`${search}?query=`, 'invalid', [422]);
  q(`${search}?q=${'x'.repeat(2000)}`, 'invalid', [422]);
  q(`${search}?q=${'x'.repeat(1024)}`, 'valid', [200]);
  q(`${search}?q=hello&limit=0`, 'invalid', [422]);
  q(`${search}?q=hello&limit=abc`, 'invalid', [422]);
  q(`${search}?q=hello&before=0`, 'invalid', [422]);
  q(`${search}?q=hello&limit=1e9`, 'invalid', [422]);
  q(`${search}?q=hello&limit=1000000000`, 'valid', [200]);
  q(`${search}?query=hello`, 'valid', [200]);
  q(`${search}?q=a&q=b`, 'random');
  // A NUL cannot be part of an FTS5 query string: refused with 422 rather than half-searched.
  for (const term of ['%00', 'a%00', '%00abc', 'ab%00cd']) q(`${search}?q=${term}`, 'invalid', [422]);
  for (const term of ['%22', '%22%22%22', 'a*', '%2A', 'NEAR(a%20b)', '%25_%25', '%5E', 'x:y']) {
    q(`${search}?q=${term}`, 'valid', [200]);
  }
  for (const term of ['%ED%A0%80', '%ED%A0%80abc', '%E0%A4%A', '%', '%FF%FE']) {
    q(`${search}?q=${term}`, 'random');
  }
  for (let i = 0; i < 16; i++) {
    const term = rng.text(1, 12);
    const nul = term.includes('\u0000');
    q(`${search}?q=${encodeURIComponent(term)}`, nul ? 'invalid' : 'valid', nul ? [422] : [200]);
  }
  return cases;
}

/** Methods a path does not have: 405 with the methods it has in `Allow`; a path that does not exist: 404. */
function methodCases(f: Fixture): Case[] {
  const chat = `/applications/${f.token}/chats/1`;
  const table: [string, string[], string][] = [
    ['/applications', ['DELETE', 'PUT', 'PATCH'], 'GET, HEAD, POST'],
    [`/applications/${f.token}`, ['DELETE', 'POST'], 'GET, HEAD, PUT, PATCH'],
    [`/applications/${f.token}/chats`, ['DELETE', 'PUT', 'PATCH'], 'GET, HEAD, POST'],
    [`/applications/${f.token}/chats/`, ['DELETE'], 'GET, HEAD, POST'],
    [chat, ['DELETE', 'PUT', 'PATCH', 'POST'], 'GET, HEAD'],
    [`${chat}/messages`, ['DELETE', 'PUT', 'PATCH'], 'GET, HEAD, POST'],
    [`${chat}/messages/1`, ['DELETE', 'POST'], 'GET, HEAD, PUT, PATCH'],
    // Not …/messages/{number}: those PUT and PATCH are not theirs.
    [`${chat}/messages/search?q=abc`, ['POST', 'DELETE'], 'GET, HEAD'],
    [`${chat}/messages/stream`, ['POST', 'DELETE'], 'GET, HEAD'],
    ['/healthz', ['POST', 'DELETE', 'TRACE', 'PROPFIND'], 'GET, HEAD'],
    ['/readyz', ['PUT'], 'GET, HEAD'],
    ['/metrics', ['POST'], 'GET, HEAD'],
    ['/openapi.json', ['DELETE', 'POST'], 'GET, HEAD'],
    ['/docs', ['DELETE', 'POST'], 'GET, HEAD'],
  ];
  const cases: Case[] = [];
  for (const [path, methods, allow] of table) {
    const check = (response: RawResponse) =>
      response.headers.allow === `${allow}, OPTIONS`
        ? undefined
        : `Allow is ${response.headers.allow}, expected ${allow}, OPTIONS`;
    for (const method of methods) {
      cases.push({
        label: `${method} (not this path's)`,
        method,
        path,
        expect: 'invalid',
        status: [405],
        check,
      });
    }
    cases.push({ label: 'OPTIONS', method: 'OPTIONS', path, expect: 'valid', status: [204], check });
  }
  for (const method of ['GET', 'POST', 'OPTIONS', 'TRACE', 'PROPFIND']) {
    cases.push({
      label: `${method} (no such path)`,
      method,
      path: '/nope',
      expect: 'invalid',
      status: [404],
    });
  }
  cases.push({ label: 'unknown method FOO', method: 'FOO', path: '/applications', expect: 'invalid' });
  return cases;
}

function idempotencyCases(f: Fixture): Case[] {
  const cases: Case[] = [];
  const targets = [
    ['POST chats', `/applications/${f.token}/chats`, undefined],
    ['POST messages', `/applications/${f.token}/chats/1/messages`, JSON.stringify({ body: 'idem fuzz' })],
  ] as const;
  for (const [label, path, body] of targets) {
    const c = (what: string, headers: [string, string][], expect: Expect, status?: number[]) =>
      cases.push({
        label: `${label}: Idempotency-Key ${what}`,
        method: 'POST',
        path,
        headers: body ? [JSON_CT, ...headers] : headers,
        ...(body && { body }),
        expect,
        ...(status && { status }),
      });
    c('empty', [['Idempotency-Key', '']], 'invalid', [422]);
    c('300 chars', [['Idempotency-Key', 'k'.repeat(300)]], 'invalid', [422]);
    c('255 chars', [['Idempotency-Key', `${label.at(-1)}${'k'.repeat(254)}`]], 'valid', [201]);
    c('control char \\x01', [['Idempotency-Key', 'a\u0001b']], 'invalid');
    c('DEL \\x7f', [['Idempotency-Key', 'a\u007fb']], 'invalid');
    c('tab inside', [['Idempotency-Key', 'a\tb']], 'invalid', [422]);
    c('space inside', [['Idempotency-Key', 'a b']], 'invalid', [422]);
    c('non-ASCII é', [['Idempotency-Key', 'clé']], 'invalid', [422]);
    c('emoji', [['Idempotency-Key', '\u{1f642}']], 'invalid', [422]);
    c(
      'sent twice',
      [
        ['Idempotency-Key', 'one'],
        ['Idempotency-Key', 'two'],
      ],
      'invalid',
      [422],
    );
  }
  return cases;
}

function operationCases(): Case[] {
  return [
    {
      label: 'healthz with junk query',
      method: 'GET',
      path: '/healthz?x=%00&y=%E0',
      expect: 'valid',
      status: [200],
    },
    { label: 'readyz', method: 'GET', path: '/readyz?verbose=1', expect: 'valid', status: [200] },
    {
      label: 'metrics with junk query',
      method: 'GET',
      path: '/metrics?name[]=x',
      expect: 'valid',
      status: [200],
    },
    { label: 'openapi', method: 'GET', path: '/openapi.json?x=1', expect: 'valid', status: [200] },
    { label: 'docs', method: 'GET', path: '/docs?url=http://evil', expect: 'random' },
    {
      label: 'docs traversal (encoded)',
      method: 'GET',
      path: '/docs/static/..%2f..%2fpackage.json',
      expect: 'invalid',
    },
    {
      label: 'docs traversal (dots)',
      method: 'GET',
      path: '/docs/static/../../package.json',
      expect: 'random',
    },
    {
      label: 'docs traversal (%2e)',
      method: 'GET',
      path: '/docs/static/%2e%2e/%2e%2e/package.json',
      expect: 'random',
    },
    {
      label: 'healthz with a body',
      method: 'GET',
      path: '/healthz',
      headers: [JSON_CT],
      body: '{',
      expect: 'random',
    },
  ];
}

/** Broken framing and request lines, handled below the router. */
function protocolCases(): Case[] {
  const valid = JSON.stringify({ name: 'chunked' });
  return [
    {
      label: 'chunked JSON body',
      method: 'POST',
      path: '/applications',
      headers: [JSON_CT, ['Transfer-Encoding', 'chunked']],
      body: `${valid.length.toString(16)}\r\n${valid}\r\n0\r\n\r\n`,
      rawFraming: true,
      expect: 'valid',
      status: [201],
    },
    {
      label: 'chunked body over the request limit',
      method: 'POST',
      path: '/applications',
      headers: [JSON_CT, ['Transfer-Encoding', 'chunked']],
      body: `${(REQUEST_MAX_BYTES + 10).toString(16)}\r\n${'x'.repeat(REQUEST_MAX_BYTES + 10)}\r\n0\r\n\r\n`,
      rawFraming: true,
      expect: 'invalid',
      status: [413],
    },
    {
      label: 'Transfer-Encoding and Content-Length together',
      method: 'POST',
      path: '/applications',
      headers: [JSON_CT, ['Content-Length', '5'], ['Transfer-Encoding', 'chunked']],
      body: '0\r\n\r\n',
      rawFraming: true,
      expect: 'invalid',
    },
    {
      label: 'Content-Length not a number',
      method: 'POST',
      path: '/applications',
      headers: [JSON_CT, ['Content-Length', 'abc']],
      body: valid,
      rawFraming: true,
      expect: 'invalid',
    },
  ];
}

// ------------------------------------------------------------------------------------ the test

interface Violation {
  c: Case;
  status: number | string;
  body: string;
  reasons: string[];
}

async function runAll(port: number, cases: Case[]): Promise<Violation[]> {
  const violations: Violation[] = [];
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const c = cases[next++]!;
      try {
        const response = await send(port, c);
        const reasons = problems(c, response);
        if (reasons.length > 0) {
          violations.push({
            c,
            status: response.status,
            body: response.body.toString('utf8').slice(0, 160),
            reasons,
          });
        }
      } catch (error) {
        const e = error as Error & { code?: string };
        const hang = e.name === 'AbortError' || e.name === 'TimeoutError';
        violations.push({
          c,
          status: hang ? 'timeout' : 'no answer',
          body: '',
          reasons: [
            hang ? `no answer within ${REQUEST_TIMEOUT_MS} ms` : `connection failed: ${e.code ?? e.message}`,
          ],
        });
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return violations;
}

function report(seed: number, total: number, violations: Violation[], serverErrors: string[]): string {
  const lines = [
    `fuzz seed ${seed} (rerun with FUZZ_SEED=${seed}): ${violations.length} of ${total} requests misbehaved`,
  ];
  const byReason = new Map<string, Violation[]>();
  for (const v of violations) {
    for (const reason of v.reasons) {
      const key = reason.replace(/got \d+/, 'got N');
      byReason.set(key, [...(byReason.get(key) ?? []), v]);
    }
  }
  for (const [reason, list] of byReason) {
    lines.push(`\n== ${reason} (${list.length})`);
    for (const v of list.slice(0, 12)) {
      const path = v.c.path.length > 110 ? `${v.c.path.slice(0, 110)}…(${v.c.path.length})` : v.c.path;
      const headers = (v.c.headers ?? [])
        .map(([n, value]) => `${n}: ${JSON.stringify(value.slice(0, 40))}`)
        .join('; ');
      lines.push(
        `  [${v.c.label}] ${v.c.method} ${path}${headers ? ` {${headers}}` : ''}${preview(v.c.body, 60)}`,
      );
      lines.push(`      → ${v.status} ${v.body}`);
    }
    if (list.length > 12) lines.push(`  … and ${list.length - 12} more`);
  }
  if (serverErrors.length > 0)
    lines.push(`\nserver logged errors:\n  ${serverErrors.slice(0, 10).join('\n  ')}`);
  return lines.join('\n');
}

/** Error-level lines (pino level >= 50) from the server's output, shortened. */
function loggedErrors(output: string): string[] {
  const found = new Set<string>();
  for (const line of output.split('\n')) {
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } };
      if ((entry.level ?? 0) >= 50) found.add(`${entry.msg}: ${entry.err?.message ?? ''}`);
    } catch {}
  }
  return [...found];
}

describe('fuzz: hostile input at every endpoint', () => {
  const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
  let server: TestServer;
  let port: number;
  let fixture: Fixture;

  before(async () => {
    server = await startServer({
      env: {
        MESSAGE_MAX_BYTES: String(MESSAGE_MAX_BYTES),
        REQUEST_MAX_BYTES: String(REQUEST_MAX_BYTES),
        LOG_LEVEL: 'warn',
      },
    });
    port = Number(new URL(server.url).port);
    const app = await api(server.url, 'POST', '/applications', { name: 'fuzz' });
    assert.equal(app.status, 201);
    const token = app.body.token as string;
    for (let i = 0; i < 2; i++)
      assert.equal((await api(server.url, 'POST', `/applications/${token}/chats`)).status, 201);
    for (const body of ['hello world', 'second hello', 'third']) {
      const r = await api(server.url, 'POST', `/applications/${token}/chats/1/messages`, { body });
      assert.equal(r.status, 201);
    }
    // Same alphabet and length as real tokens, but no application has it.
    fixture = { token, unknownToken: `${token.slice(0, -4)}${token.endsWith('zzzz') ? 'yyyy' : 'zzzz'}` };
  });

  after(async () => {
    await server?.stop();
  });

  it('answers every hostile request with a 4xx in the error model (never 5xx, never a hang)', async (t) => {
    t.diagnostic(`seed ${seed} (FUZZ_SEED=${seed} to reproduce)`);
    const rng = new Rng(seed);
    const cases = [
      ...bodyCases(fixture, rng),
      ...chatCreateCases(fixture, rng),
      ...pathCases(fixture),
      ...queryCases(fixture, rng),
      ...methodCases(fixture),
      ...idempotencyCases(fixture),
      ...operationCases(),
      ...protocolCases(),
    ];
    // Shuffle (seeded), so that concurrent requests mix routes and kinds of input.
    for (let i = cases.length - 1; i > 0; i--) {
      const j = rng.int(0, i);
      [cases[i], cases[j]] = [cases[j]!, cases[i]!];
    }
    const started = Date.now();
    const violations = await runAll(port, cases);
    t.diagnostic(`${cases.length} requests in ${Date.now() - started} ms, ${violations.length} violations`);

    assert.equal(server.process.exitCode, null, `server exited during the barrage (seed ${seed})`);
    assert.equal(server.process.signalCode, null, `server was killed during the barrage (seed ${seed})`);
    assert.ok(violations.length === 0, report(seed, cases.length, violations, loggedErrors(server.output())));
  });

  it('still serves normally after the barrage', async () => {
    assert.equal(server.process.exitCode, null, 'server is not running');
    assert.equal((await api(server.url, 'GET', '/healthz')).status, 200);
    assert.equal((await api(server.url, 'GET', '/readyz')).status, 200);
    const app = await api(server.url, 'POST', '/applications', { name: 'after the storm' });
    assert.equal(app.status, 201);
    const token = app.body.token as string;
    assert.deepEqual((await api(server.url, 'GET', `/applications/${token}`)).body.name, 'after the storm');
    const chat = await api(server.url, 'POST', `/applications/${token}/chats`);
    assert.equal(chat.status, 201);
    const path = `/applications/${token}/chats/${chat.body.number}/messages`;
    const posted = await api(server.url, 'POST', path, { body: 'still here' });
    assert.equal(posted.status, 201);
    const read = await api(server.url, 'GET', `${path}/${posted.body.number}`);
    assert.equal(read.status, 200);
    assert.equal(read.body.body, 'still here');
    const found = await api(server.url, 'GET', `${path}/search?q=still`);
    assert.equal(found.status, 200);
    assert.equal(found.body.length, 1);
  });

  it('stores exactly the hostile strings it acknowledged', async () => {
    const path = `/applications/${fixture.token}/chats/2/messages`;
    const mismatches: string[] = [];
    for (const body of [
      'a\u0000b',
      '\ud800',
      'x\udfff\ud800y',
      '\u202eevil\u202c',
      '\u{1f642}'.repeat(50),
      'e\u0301',
    ]) {
      const posted = await api(server.url, 'POST', path, { body });
      if (posted.status !== 201) continue; // refusing a string is acceptable; storing a different one is not
      const read = await api(server.url, 'GET', `${path}/${posted.body.number}`);
      if (posted.body.body !== body || read.body.body !== posted.body.body) {
        mismatches.push(
          `${JSON.stringify(body)}: 201 said ${JSON.stringify(posted.body.body)}, GET says ${JSON.stringify(read.body.body)}`,
        );
      }
    }
    assert.deepEqual(
      mismatches,
      [],
      `acknowledged bodies differ from stored ones:\n  ${mismatches.join('\n  ')}`,
    );
  });
});
