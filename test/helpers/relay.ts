import assert from 'node:assert/strict';
import { type AddressInfo, createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

/** A TCP relay in front of a service (Redis) that a test can cut and restore, to make it unreachable. */
export class Relay {
  readonly #target: { host: string; port: number };
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  port = 0;

  constructor(target: string) {
    const url = new URL(target);
    this.#target = { host: url.hostname, port: Number(url.port || 6379) };
  }

  async open(): Promise<void> {
    const server = createServer((socket) => {
      const upstream = tcpConnect(this.#target);
      for (const end of [socket, upstream]) {
        this.#sockets.add(end);
        end.on('close', () => this.#sockets.delete(end));
        end.on('error', () => {});
      }
      socket.on('close', () => upstream.destroy());
      upstream.on('close', () => socket.destroy());
      socket.pipe(upstream).pipe(socket);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.#server = server;
    const address = server.address();
    assert.ok(address && typeof address === 'object');
    this.port = address.port;
  }

  /** Closes the port and every connection through it: new connections are refused. */
  async cut(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    const closed = new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }
}

/**
 * A TCP relay in front of the service at `target` that holds back what flows through it while hung (both
 * ways, or only the replies), as a stalled server or a lost answer would, and delivers it on `release`.
 */
export async function openStallingRelay(target: string, hold: 'both' | 'replies') {
  const to = new URL(target);
  const sockets = new Set<Socket>();
  let hung = false;
  const held: (() => void)[] = [];
  const server = createServer((client) => {
    const upstream = tcpConnect(Number(to.port), to.hostname);
    const pipe = (from: Socket, into: Socket, holdable: boolean) =>
      from.on('data', (chunk) => (hung && holdable ? held.push(() => into.write(chunk)) : into.write(chunk)));
    pipe(client, upstream, hold === 'both');
    pipe(upstream, client, true);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
    }
    // One side gone ends the other: an upstream connection left open would keep the test process alive.
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(target);
  url.port = String((server.address() as AddressInfo).port);
  return {
    url: url.toString(),
    hang(): void {
      hung = true;
    },
    release(): void {
      hung = false;
      for (const deliver of held.splice(0)) deliver();
    },
    /** Stops listening and drops every connection still open. */
    close(): void {
      server.close();
      for (const socket of sockets) socket.destroy();
    },
  };
}
