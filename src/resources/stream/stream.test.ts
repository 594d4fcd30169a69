/**
 * GET …/messages/stream against the real embedded server: ordering under concurrent creates, resume
 * without gap or duplicate, edits, heartbeats, errors, shutdown, and a stalled client's bounded buffer.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { api, eventually, startServer, type TestServer } from '../../../test/helpers/server.ts';
import { createdNumbers, openStream, SseParser } from '../../../test/helpers/sse.ts';

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function newChat(server: TestServer): Promise<{ token: string; path: string }> {
  const token = (await api(server.url, 'POST', '/applications', { name: 'live' })).body.token as string;
  assert.equal((await api(server.url, 'POST', `/applications/${token}/chats`)).status, 201);
  return { token, path: `/applications/${token}/chats/1/messages` };
}

async function post(server: TestServer, path: string, bodies: string[]) {
  const responses = await Promise.all(bodies.map((body) => api(server.url, 'POST', path, { body })));
  assert.ok(responses.every((r) => r.status === 201));
  return responses.map((r) => r.body as { number: number; body: string });
}

describe('live stream (embedded)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { STREAM_HEARTBEAT_MS: '200' } });
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  it('answers HEAD with the stream headers at once, without opening a stream; 404 for an unknown chat', async () => {
    const { token, path } = await newChat(server);
    const head = await fetch(`${server.url}${path}/stream`, {
      method: 'HEAD',
      signal: AbortSignal.timeout(5_000),
    });
    assert.equal(head.status, 200);
    assert.match(String(head.headers.get('content-type')), /^text\/event-stream/);
    // The same headers as the stream itself (RFC 9110: HEAD answers GET's headers).
    assert.equal(head.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    assert.equal(head.headers.get('x-accel-buffering'), 'no');
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /^live_streams_open 0$/m);
    const unknown = await fetch(`${server.url}/applications/${token}/chats/99/messages/stream`, {
      method: 'HEAD',
      signal: AbortSignal.timeout(5_000),
    });
    assert.equal(unknown.status, 404);
  });

  it('delivers 300 concurrent creates in number order, each once, with id = number', async () => {
    const { path } = await newChat(server);
    const stream = await openStream(`${server.url}${path}/stream`);
    try {
      assert.equal(stream.status, 200);
      assert.match(String(stream.headers['content-type']), /^text\/event-stream/);
      assert.equal(stream.headers['x-accel-buffering'], 'no');
      const created = await post(
        server,
        path,
        range(1, 300).map((i) => `m${i}`),
      );
      await eventually(async () => createdNumbers(stream).length >= 300, 10_000, '300 events');
      assert.deepEqual(createdNumbers(stream), range(1, 300));
      assert.deepEqual(
        stream.events.map((e) => e.id),
        range(1, 300).map(String),
      );
      const bodies = new Map(created.map((m) => [m.number, m.body]));
      for (const e of stream.events) {
        const message = JSON.parse(e.data);
        assert.equal(message.body, bodies.get(message.number));
        assert.equal(message.chat_number, 1);
      }
    } finally {
      stream.close();
    }
  });

  it('resumes with Last-Event-ID (or ?after) under load: what was missed, then live, no gap, no duplicate', async () => {
    const { path } = await newChat(server);
    await post(
      server,
      path,
      range(1, 20).map((i) => `early ${i}`),
    );
    // Without a position the stream starts after what is stored.
    const first = await openStream(`${server.url}${path}/stream`);
    await post(server, path, ['twenty-one']);
    await eventually(async () => createdNumbers(first).length === 1, 5000, 'event 21');
    assert.deepEqual(createdNumbers(first), [21]);

    // Load runs through the disconnect and the reconnection.
    let stop = false;
    let sent = 21;
    const load = (async () => {
      while (!stop) {
        await post(server, path, [`a${sent}`, `b${sent}`, `c${sent}`]);
        sent += 3;
      }
    })();
    await eventually(async () => createdNumbers(first).length >= 30, 10_000, 'live events under load');
    first.close();
    await first.ended;
    const seen = createdNumbers(first);
    const last = first.events.at(-1)!.id!;
    assert.equal(Number(last), seen.at(-1));
    await eventually(async () => sent > seen.at(-1)! + 30, 10_000, 'creates while disconnected');

    // Last-Event-ID wins over ?after (a browser reconnects to the URL it started with).
    const second = await openStream(`${server.url}${path}/stream?after=3`, { 'last-event-id': last });
    await eventually(async () => createdNumbers(second).length >= 60, 10_000, 'replay then live');
    stop = true;
    await load;
    await eventually(async () => createdNumbers(second).at(-1) === sent, 10_000, 'every create arrived');
    second.close();
    assert.deepEqual([...seen, ...createdNumbers(second)], range(21, sent));

    // ?after alone replays from there.
    const third = await openStream(`${server.url}${path}/stream?after=15`);
    await eventually(async () => createdNumbers(third).length === sent - 15, 10_000, 'replay after 15');
    third.close();
    assert.deepEqual(createdNumbers(third), range(16, sent));
  });

  it('sends an edit of a delivered message with the current position as id; a replay carries current bodies', async () => {
    const { path } = await newChat(server);
    await post(server, path, ['one', 'two', 'three']);
    const stream = await openStream(`${server.url}${path}/stream?after=0`);
    await eventually(async () => createdNumbers(stream).length === 3, 5000, 'replay of 3');
    assert.equal((await api(server.url, 'PUT', `${path}/1`, { body: 'one, edited' })).status, 200);
    await eventually(async () => stream.events.length === 4, 5000, 'the edit event');
    stream.close();
    const edit = stream.events[3]!;
    assert.equal(edit.event, 'edited');
    assert.equal(edit.id, '3:1', "the position: every message up to 3, the chat's first edit");
    assert.equal(JSON.parse(edit.data).body, 'one, edited');
    assert.equal(JSON.parse(edit.data).number, 1);

    const replay = await openStream(`${server.url}${path}/stream?after=0`);
    await eventually(async () => createdNumbers(replay).length === 3, 5000, 'replay');
    replay.close();
    assert.equal(JSON.parse(replay.events[0]!.data).body, 'one, edited');
  });

  it('replays on resume the edits a client missed while away, each once, then live', async () => {
    const { path } = await newChat(server);
    await post(server, path, ['one', 'two', 'three']);
    const first = await openStream(`${server.url}${path}/stream?after=0`);
    await eventually(async () => createdNumbers(first).length === 3, 5000, 'replay of 3');
    assert.equal((await api(server.url, 'PUT', `${path}/2`, { body: 'two, seen live' })).status, 200);
    await eventually(async () => first.events.length === 4, 5000, 'the live edit');
    first.close();
    const lastId = first.events.at(-1)!.id!;
    assert.equal(lastId, '3:1');
    // While away: two edits of messages it has, one of them twice, and a new message.
    for (const [number, body] of [
      [1, 'one, missed'],
      [3, 'three, missed'],
      [1, 'one, missed twice'],
    ] as const) {
      assert.equal((await api(server.url, 'PUT', `${path}/${number}`, { body })).status, 200);
    }
    await post(server, path, ['four']);
    const resumed = await openStream(`${server.url}${path}/stream`, { 'last-event-id': lastId });
    await eventually(async () => resumed.events.length >= 3, 5000, 'the missed events');
    assert.equal((await api(server.url, 'PUT', `${path}/4`, { body: 'four, live' })).status, 200);
    await eventually(async () => resumed.events.length === 4, 5000, 'then live');
    resumed.close();
    assert.deepEqual(
      resumed.events.map((e) => [e.event, JSON.parse(e.data).number, JSON.parse(e.data).body, e.id]),
      [
        ['edited', 3, 'three, missed', '3:3'],
        ['edited', 1, 'one, missed twice', '3:4'],
        ['created', 4, 'four', '4:4'],
        ['edited', 4, 'four, live', '4:5'],
      ],
    );
  });

  it('keeps an idle stream alive with heartbeat comments', async () => {
    const { path } = await newChat(server);
    const stream = await openStream(`${server.url}${path}/stream`);
    await eventually(async () => stream.parser.comments >= 2, 5000, 'two heartbeats');
    stream.close();
    assert.equal(stream.events.length, 0);
  });

  it('answers JSON errors before streaming: unknown token or chat 404, bad Last-Event-ID 422', async () => {
    const { token } = await newChat(server);
    const cases: [string, Record<string, string>, number, string][] = [
      ['/applications/nope/chats/1/messages/stream', {}, 404, 'application_not_found'],
      [`/applications/${token}/chats/2/messages/stream`, {}, 404, 'chat_not_found'],
      [`/applications/${token}/chats/1/messages/stream`, { 'last-event-id': 'x1' }, 422, 'validation_failed'],
      [`/applications/${token}/chats/1/messages/stream`, { 'last-event-id': '1:' }, 422, 'validation_failed'],
      [`/applications/${token}/chats/1/messages/stream?after=-1`, {}, 422, 'validation_failed'],
    ];
    for (const [path, headers, status, code] of cases) {
      const answer = await openStream(`${server.url}${path}`, headers);
      assert.equal(answer.status, status, path);
      assert.equal((answer.error as { error: { code: string } }).error.code, code, path);
    }
  });

  it('is in the OpenAPI document as text/event-stream, beside the console at / and the other routes', async () => {
    const doc = await api(server.url, 'GET', '/openapi.json');
    const route = doc.body.paths['/applications/{token}/chats/{chat}/messages/stream'].get;
    assert.ok(route.responses['200'].content['text/event-stream']);
    assert.ok(
      route.parameters.some(
        (p: { name: string; in: string }) => p.name === 'last-event-id' && p.in === 'header',
      ),
    );
    const page = await fetch(`${server.url}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<title>Chat console<\/title>/);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    for (const path of ['/docs', '/healthz', '/readyz', '/metrics', '/app.js', '/style.css']) {
      const answer = await fetch(`${server.url}${path}`);
      await answer.body?.cancel();
      assert.equal(answer.status, 200, path);
    }
    const unknown = await api(server.url, 'GET', '/no-such-page');
    assert.equal(unknown.body.error.code, 'route_not_found');
    // The console's folder also holds its tests: those are not served.
    assert.equal((await fetch(`${server.url}/highlight.js`)).status, 200);
    const test = await api(server.url, 'GET', '/highlight.test.ts');
    assert.equal(test.status, 404);
    assert.equal(test.body.error.code, 'route_not_found');
  });

  it('counts open streams in /metrics', async () => {
    const { path } = await newChat(server);
    const gauge = async () =>
      /\nlive_streams_open (\d+)/.exec(await (await fetch(`${server.url}/metrics`)).text())?.[1];
    const before = Number(await gauge());
    const streams = await Promise.all([1, 2, 3].map(() => openStream(`${server.url}${path}/stream`)));
    await eventually(async () => Number(await gauge()) === before + 3, 5000, 'three more open');
    for (const s of streams) s.close();
    await eventually(async () => Number(await gauge()) === before, 5000, 'back to where it was');
  });
});

describe('live stream: a stalled client', () => {
  const CAP = 65_536;
  let server: TestServer;
  before(async () => {
    server = await startServer({
      env: { STREAM_MAX_BUFFERED_BYTES: String(CAP), MESSAGE_MAX_BYTES: String(CAP / 4) },
    });
  });
  after(async () => {
    await server.stop();
  });

  it('is cut off once its buffer passes the cap, told where to resume, and resumes without a gap', async () => {
    const { path } = await newChat(server);
    const url = new URL(`${server.url}${path}/stream`);
    const socket = connect(Number(url.port), url.hostname);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(`GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\n\r\n`);
    // Never read: what the server writes piles up in the kernel's buffers, then in the server's.
    socket.pause();
    const slowConsumers = async () =>
      Number(
        /live_streams_closed_total\{reason="slow_consumer"\} (\d+)/.exec(
          await (await fetch(`${server.url}/metrics`)).text(),
        )?.[1] ?? 0,
      );
    assert.equal(await slowConsumers(), 0);
    const total = 1600;
    const body = 'x'.repeat(CAP / 4 - 100);
    for (let i = 0; i < total; i += 100) await post(server, path, Array(100).fill(body));
    await eventually(async () => (await slowConsumers()) === 1, 10_000, 'the stalled client cut off');

    // Reading again (within the server's grace period): the stream ends with the reconnect event.
    const parser = new SseParser();
    const events: ReturnType<SseParser['push']> = [];
    let bytes = 0;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      bytes += Buffer.byteLength(chunk);
      events.push(...parser.push(chunk.replace(/\r\n/g, '\n')));
    });
    socket.resume();
    await new Promise((resolve) => socket.once('close', resolve));
    const final = events.at(-1)!;
    assert.equal(final.event, 'reconnect');
    const reason = JSON.parse(final.data);
    assert.equal(reason.code, 'slow_consumer');
    const created = events.filter((e) => e.event === 'created').map((e) => JSON.parse(e.data).number);
    // The server stopped writing instead of buffering all 24 MB for this client.
    assert.ok(created.length < total, `${created.length} of ${total} events were sent`);
    assert.ok(bytes < total * body.length, `${bytes} bytes`);
    assert.deepEqual(created, range(1, created.length));
    assert.equal(reason.last_event_id, String(created.length));

    const resumed = await openStream(`${server.url}${path}/stream`, {
      'last-event-id': String(reason.last_event_id),
    });
    await eventually(async () => createdNumbers(resumed).at(-1) === total, 10_000, 'the rest');
    resumed.close();
    assert.deepEqual(createdNumbers(resumed), range(created.length + 1, total));
  });

  it('starts with its position as an id; a position from the future starts from now', async () => {
    const { path } = await newChat(server);
    await post(server, path, ['one', 'two', 'three']);
    const first = await openStream(`${server.url}${path}/stream`);
    await eventually(async () => first.parser.lastEventId === '3', 5000, 'the starting position, 3');
    first.close();
    // Cut off before any event: resuming from that id misses nothing posted in between.
    await post(server, path, ['four']);
    const resumed = await openStream(`${server.url}${path}/stream`, { 'last-event-id': '3' });
    await eventually(async () => createdNumbers(resumed).join() === '4', 5000, 'message 4');
    resumed.close();
    // Another chat's id, or one from before a restore: past every number, so the stream starts from now.
    const future = await openStream(`${server.url}${path}/stream`, { 'last-event-id': '100:50' });
    await eventually(async () => future.parser.lastEventId === '4', 5000, 'clamped to 4');
    await post(server, path, ['five']);
    await api(server.url, 'PUT', `${path}/1`, { body: 'one, edited' });
    await eventually(async () => future.events.length === 2, 5000, 'message 5 and the edit');
    future.close();
    assert.deepEqual(
      future.events.map((e) => `${e.event} ${e.id}`),
      ['created 5', 'edited 5:1'],
    );
    // The same in the form without an edit part: now for the edits too, not every edit the chat had.
    const bare = await openStream(`${server.url}${path}/stream`, { 'last-event-id': '100' });
    await eventually(async () => bare.parser.lastEventId === '5:1', 5000, 'clamped to 5:1');
    await api(server.url, 'PUT', `${path}/2`, { body: 'two, edited' });
    await eventually(async () => bare.events.length >= 1, 5000, 'the new edit');
    bare.close();
    assert.deepEqual(
      bare.events.map((e) => `${e.event} ${e.id}`),
      ['edited 5:2'],
    );
  });

  it('ends open streams with a reconnect event on shutdown, and exits cleanly', async () => {
    const other = await startServer();
    const { path } = await newChat(other);
    // A stream that has sent no event yet is still told where to resume: where it started.
    const { path: quietPath } = await newChat(other);
    const quiet = await openStream(`${other.url}${quietPath}/stream`);
    await eventually(async () => quiet.parser.lastEventId === '0', 5000, 'the quiet stream started');
    const stream = await openStream(`${other.url}${path}/stream`);
    await post(other, path, ['before shutdown']);
    await eventually(async () => stream.events.length === 1, 5000, 'one event');
    assert.equal(await other.stop(), 0);
    await stream.ended;
    const final = stream.events.at(-1)!;
    assert.equal(final.event, 'reconnect');
    assert.deepEqual(JSON.parse(final.data).code, 'shutting_down');
    assert.equal(JSON.parse(final.data).last_event_id, '1');
    await quiet.ended;
    assert.equal(JSON.parse(quiet.events.at(-1)!.data).last_event_id, '0');
  });
});
