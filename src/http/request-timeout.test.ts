import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { api, startServer, type TestServer } from '../../test/helpers/server.ts';

/** Sends `head` (and no more), then reads until the server answers and closes; undefined past `ms`. */
function stall(url: string, head: string, ms: number): Promise<string | undefined> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(head));
    let answer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(undefined);
    }, ms);
    socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(answer);
    });
    socket.on('error', reject);
  });
}

describe('requests that stall on the way in', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { REQUEST_TIMEOUT_MS: '1000', STREAM_HEARTBEAT_MS: '300' } });
  });
  after(() => server.stop());

  it('answers a body that stops arriving with 408 in the error model, and closes the connection', async () => {
    const token = (await api(server.url, 'POST', '/applications', { name: 'slow' })).body.token as string;
    const started = Date.now();
    const answer = await stall(
      server.url,
      `POST /applications/${token}/chats HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
        'Content-Length: 20\r\n\r\n{"na',
      10_000,
    );
    assert.ok(answer !== undefined, 'answered and closed within 10 s');
    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.match(answer, /"code":"request_timeout"/);
    assert.match(answer, /\r\nX-Request-Id: [0-9a-f]{8}-[0-9a-z]+\r\n/);
    assert.ok(Date.now() - started >= 1000, 'not before REQUEST_TIMEOUT_MS');
  });

  it('answers headers that stop arriving with 408 too', async () => {
    const answer = await stall(server.url, 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a', 10_000);
    assert.ok(answer !== undefined, 'answered and closed within 10 s');
    assert.match(answer, /^HTTP\/1\.1 408 /);
  });

  it('keeps serving, and does not limit how long an answer may last (a live stream)', async () => {
    const token = (await api(server.url, 'POST', '/applications', { name: 'long' })).body.token as string;
    await api(server.url, 'POST', `/applications/${token}/chats`);
    const stream = await fetch(`${server.url}/applications/${token}/chats/1/messages/stream`);
    assert.equal(stream.status, 200);
    const reader = stream.body!.getReader();
    const started = Date.now();
    // Heartbeats keep coming well past the request timeout: the stream is not cut.
    let late = '';
    while (Date.now() - started < 2500) {
      const { done, value } = await reader.read();
      assert.equal(done, false, `the stream ended after ${Date.now() - started} ms`);
      if (Date.now() - started > 2000) late += new TextDecoder().decode(value);
    }
    assert.match(late, /: heartbeat/);
    await reader.cancel();
    assert.equal((await api(server.url, 'GET', '/healthz')).status, 200);
  });
});
