import assert from 'node:assert/strict';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

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
