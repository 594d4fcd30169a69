import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Lets a server's close end the connections that carry no request. Node's `server.close()` (and fastify's
 * close, which relies on it) destroys connections idle between two requests, but not one that was opened
 * and has sent nothing yet, or only part of a request's headers: such a client (a browser's preconnect, a
 * stalled probe) held every graceful shutdown until SHUTDOWN_TIMEOUT_MS, which then exited with 1 without
 * draining the write queue. A connection carries a request once Node has parsed its headers and attached
 * the response to the socket (`_httpMessage`, the property Node's own closeIdleConnections reads); those
 * are left to finish and close after their answer (`Connection: close` while closing).
 */
export class SilentConnections {
  readonly #sockets = new Set<Socket>();
  #closing = false;

  constructor(server: Server) {
    server.on('connection', (socket: Socket) => {
      if (this.#closing) {
        socket.destroy();
        return;
      }
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
  }

  /** Whether close() was called: the server is shutting down. */
  get closing(): boolean {
    return this.#closing;
  }

  /** Destroys every connection without a request in flight, and any that opens from now on. */
  close(): void {
    this.#closing = true;
    for (const socket of this.#sockets) {
      if (!(socket as Socket & { _httpMessage?: unknown })._httpMessage) socket.destroy();
    }
  }
}
