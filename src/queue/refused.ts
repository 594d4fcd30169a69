/**
 * The fate of an item its handler refused (see BatchOutcome in domain/ports.ts): it is not retried. The
 * RabbitMQ queue dead-letters it; the memory queue rejects its `publish` with this error.
 */
export class QueueItemRefusedError extends Error {
  constructor(reason: string) {
    super(`refused by its handler: ${reason}`);
    this.name = 'QueueItemRefusedError';
  }
}
