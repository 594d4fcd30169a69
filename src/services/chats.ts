import { NotFoundError, UnavailableError } from '../domain/errors.ts';
import type { IdempotencyGuard, Sequencer, Store, WriteQueue } from '../domain/ports.ts';
import type { Chat, NumberPage, Page, WriteCommand } from '../domain/types.ts';
import type { ChatView } from '../domain/views.ts';
import type { ApplicationService } from './applications.ts';
import { type Created, idempotent } from './idempotent.ts';

export interface ChatServiceDeps {
  applications: ApplicationService;
  store: Store;
  sequencer: Sequencer;
  queue: WriteQueue;
  idempotency: IdempotencyGuard;
}

export class ChatService {
  readonly #deps: ChatServiceDeps;

  constructor(deps: ChatServiceDeps) {
    this.#deps = deps;
  }

  /** Numbers the chat, hands it to the writer, and answers once the hand-off is durable. */
  async create(token: string, idempotencyKey: string | undefined): Promise<Created<ChatView>> {
    const { applications, sequencer, queue, idempotency } = this.#deps;
    const applicationId = await applications.resolveId(token);
    return idempotent<ChatView>(idempotency, `chats:${applicationId}`, idempotencyKey, '', async (record) => {
      ensureAccepting(queue);
      const number = await sequencer.nextChatNumber(applicationId);
      const at = new Date().toISOString();
      const view: ChatView = { number, messages_count: 0, created_at: at, updated_at: at };
      const idempotencyRecord = record(view);
      await handOff(queue, {
        kind: 'chat.create',
        applicationId,
        number,
        at,
        ...(idempotencyRecord && { idempotency: idempotencyRecord }),
      });
      return view;
    });
  }

  async get(token: string, number: number): Promise<Chat> {
    const applicationId = await this.#deps.applications.resolveId(token);
    const chat = await this.#deps.store.findChat(applicationId, number);
    if (!chat) throw new NotFoundError('chat');
    return chat;
  }

  async list(token: string, page: NumberPage): Promise<Page<Chat, NumberPage>> {
    const applicationId = await this.#deps.applications.resolveId(token);
    return this.#deps.store.listChats(applicationId, page);
  }
}

/**
 * Hands a create to the queue. A queue that cannot take it (a broker restarting, a queue shutting down)
 * is the client's cue to retry, not a server bug: 503. The create may still have been stored (a confirm
 * lost in flight), which is what Idempotency-Key is for.
 */
export async function handOff(queue: WriteQueue, command: WriteCommand): Promise<void> {
  try {
    await queue.publish(command);
  } catch (error) {
    throw new UnavailableError(
      `the create could not be handed to the write queue (${error instanceof Error ? error.message : String(error)}); retry with the same Idempotency-Key`,
    );
  }
}

/** Backpressure: refuse before taking a number, so a refused create never leaves a gap. */
export function ensureAccepting(queue: WriteQueue): void {
  if (!queue.accepting())
    throw new UnavailableError('the write queue is full or shutting down; retry shortly');
}
