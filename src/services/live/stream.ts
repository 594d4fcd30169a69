import { NotFoundError } from '../../domain/errors.ts';
import type { MessageFeed, Sequencer, Store } from '../../domain/ports.ts';
import type { Chat, FeedEvent, Message } from '../../domain/types.ts';
import type { ApplicationService } from '../applications.ts';
import { OrderedDelivery } from './ordered.ts';
import type { StreamSink } from './sink.ts';

export interface StreamServiceDeps {
  applications: ApplicationService;
  sequencer: Sequencer;
  store: Store;
  feed: MessageFeed;
  gapWaitMs: number;
  onGapSkipped?(chat: string, from: number, to: number): void;
  onError?(error: unknown): void;
}

/** A chat the stream may follow, resolved before the response starts (so errors are plain 404s). */
export interface StreamTarget {
  applicationId: number;
  chatNumber: number;
  /** The stored chat, once there is one (distributed mode: a fresh chat may not be stored yet). */
  chat: Chat | undefined;
}

export interface OpenStream {
  close(): Promise<void>;
}

/**
 * Where a client resumes: after message `number` and, when given, after edit `edit` of the chat's edit
 * sequence. Without `edit` (a client that read the chat itself, `?after=N`) edits count from now.
 */
export interface StreamStart {
  number: number;
  edit?: number;
}

/** Live messages of one chat: replay from the store after a position, then live events, in order. */
export class StreamService {
  readonly #deps: StreamServiceDeps;

  constructor(deps: StreamServiceDeps) {
    this.#deps = deps;
  }

  async target(token: string, chatNumber: number): Promise<StreamTarget> {
    const applicationId = await this.#deps.applications.resolveId(token);
    // Like posting a message: a chat handed out is there, stored or not yet.
    if (!(await this.#deps.sequencer.chatExists(applicationId, chatNumber))) throw new NotFoundError('chat');
    return { applicationId, chatNumber, chat: await this.#deps.store.findChat(applicationId, chatNumber) };
  }

  /**
   * Subscribes first, then settles the starting position and replays: an event published in between is
   * either replayed or live, and the ordering drops whichever copy comes second. Without `after`, the
   * stream starts after the messages stored now, and the edits made by now.
   */
  async open(target: StreamTarget, after: StreamStart | undefined, sink: StreamSink): Promise<OpenStream> {
    const { feed } = this.#deps;
    let delivery: OrderedDelivery | undefined;
    const early: FeedEvent[] = [];
    const subscription = await feed.subscribe(target.applicationId, target.chatNumber, {
      event: (event) => (delivery ? delivery.event(event) : early.push(event)),
      resync: () => delivery?.resync(),
    });
    try {
      const chat = await this.#chat(target);
      const stored = chat?.messagesCount ?? 0;
      const lastEdit = chat ? await this.#deps.store.lastEditSeq(chat) : 0;
      // A position past every number handed out (another chat's id, or a chat restored from an older copy)
      // would wait for numbers that do not exist yet and pass over every message before them: now, instead.
      const { applicationId, chatNumber } = target;
      const beyond =
        after !== undefined &&
        after.number > stored &&
        !(await this.#deps.sequencer.messageExists(applicationId, chatNumber, after.number));
      const start = after === undefined || beyond ? stored : after.number;
      const afterEdit = after?.edit === undefined || beyond ? lastEdit : Math.min(after.edit, lastEdit);
      delivery = new OrderedDelivery({
        after: start,
        afterEdit,
        sink,
        backfill: (from, limit) => this.#backfill(target, from, limit),
        backfillEdits: async (from, limit) => {
          const stored = await this.#chat(target);
          return stored ? this.#deps.store.listEdits(stored, from, limit) : [];
        },
        gapWaitMs: this.#deps.gapWaitMs,
        onGapSkipped: (from, to) => this.#deps.onGapSkipped?.(`${applicationId}:${chatNumber}`, from, to),
        ...(this.#deps.onError && { onError: this.#deps.onError }),
      });
      sink.start(delivery.id);
      for (const event of early.splice(0)) delivery.event(event);
      void delivery.start();
    } catch (error) {
      await subscription.unsubscribe();
      throw error;
    }
    return {
      close: async () => {
        delivery?.close();
        await subscription.unsubscribe();
      },
    };
  }

  async #chat(target: StreamTarget): Promise<Chat | undefined> {
    target.chat ??= await this.#deps.store.findChat(target.applicationId, target.chatNumber);
    return target.chat;
  }

  async #backfill(target: StreamTarget, after: number, limit: number): Promise<Message[]> {
    const chat = await this.#chat(target);
    if (!chat) return [];
    return (await this.#deps.store.listMessages(chat, { after, limit })).items;
  }
}
