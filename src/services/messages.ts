import { checkUnicode, NotFoundError, UnavailableError, ValidationError } from '../domain/errors.ts';
import type {
  IdempotencyGuard,
  IndexQueue,
  RenderedPage,
  SearchIndex,
  SearchPage,
  Sequencer,
  Store,
  WriteQueue,
} from '../domain/ports.ts';
import type { Message, MessageCreate, NumberPage, Page } from '../domain/types.ts';
import type { MessageView } from '../domain/views.ts';
import type { ApplicationService } from './applications.ts';
import type { ChatService } from './chats.ts';
import { type Created, idempotent } from './idempotent.ts';
import type { Announce } from './live/announce.ts';
import { untilStored } from './until-stored.ts';
import { numberAndHandOff } from './writes.ts';

export interface MessageServiceDeps {
  applications: ApplicationService;
  chats: ChatService;
  store: Store;
  sequencer: Sequencer;
  queue: WriteQueue;
  search: SearchIndex;
  idempotency: IdempotencyGuard;
  messageMaxBytes: number;
  /** Distributed mode: where edits are announced for the search index (creates are announced by the writer). */
  indexEvents?: IndexQueue;
  /** Live subscribers hear of an edit once it is stored. */
  announce?: Announce;
}

export class MessageService {
  readonly #deps: MessageServiceDeps;

  constructor(deps: MessageServiceDeps) {
    this.#deps = deps;
  }

  async create(
    token: string,
    chatNumber: number,
    body: string,
    idempotencyKey: string | undefined,
  ): Promise<Created<MessageView>> {
    const { applications, sequencer, queue, idempotency } = this.#deps;
    this.#checkBody(body);
    const applicationId = await applications.resolveId(token);
    // The sequencer, not the store, knows every chat handed out: the chat's row may still be in the queue.
    if (!(await sequencer.chatExists(applicationId, chatNumber))) throw new NotFoundError('chat');
    const scope = `messages:${applicationId}:${chatNumber}`;
    return idempotent<MessageView>(idempotency, scope, idempotencyKey, body, (record) => {
      const at = new Date().toISOString();
      return numberAndHandOff(
        { sequencer, queue },
        (intent: MessageCreate) => sequencer.nextMessageNumber(applicationId, chatNumber, intent),
        (number) => {
          const view: MessageView = { number, chat_number: chatNumber, body, created_at: at, updated_at: at };
          const command: MessageCreate = {
            kind: 'message.create',
            applicationId,
            chatNumber,
            number,
            body,
            at,
          };
          return { view, command };
        },
        record,
      );
    });
  }

  async get(token: string, chatNumber: number, number: number): Promise<Message> {
    const { chats, store, sequencer } = this.#deps;
    const chat = await chats.which(token, chatNumber);
    // Answered 201 means readable: a create still on its way to the store (distributed mode) is waited for.
    return untilStored(
      'message',
      () => store.findMessage(chat, number),
      () => sequencer.messageExists(chat.applicationId, chatNumber, number),
      `${chat.applicationId}:${chatNumber}:${number}`,
    );
  }

  async list(
    token: string,
    chatNumber: number,
    page: NumberPage,
  ): Promise<Page<Message, NumberPage> | RenderedPage<NumberPage>> {
    const chat = await this.#deps.chats.which(token, chatNumber);
    const { store } = this.#deps;
    return store.listMessagesRendered
      ? store.listMessagesRendered(chat, page)
      : store.listMessages(chat, page);
  }

  async edit(token: string, chatNumber: number, number: number, body: string): Promise<Message> {
    this.#checkBody(body);
    const { applications, chats, store, sequencer } = this.#deps;
    const applicationId = await applications.resolveId(token);
    // A create answered 201 may still be on its way to the store (distributed mode): its client may edit
    // it at once, so wait for it rather than answer 404.
    const chat = await chats.stored(applicationId, chatNumber);
    const message = await untilStored(
      'message',
      () => store.editMessage(chat, number, body, new Date().toISOString()),
      () => sequencer.messageExists(applicationId, chatNumber, number),
    );
    this.#deps.announce?.([{ kind: 'edited', applicationId: chat.applicationId, message }]);
    if (this.#deps.indexEvents) {
      const { createdAt, updatedAt } = message;
      // The edit is stored; without its index event search would keep the old text. A 503 makes the
      // client repeat the edit (same body: harmless), which announces it again.
      await this.#deps.indexEvents
        .publish({
          kind: 'message.index',
          applicationId: chat.applicationId,
          chatNumber,
          number,
          body: message.body,
          createdAt,
          updatedAt,
        })
        .catch(() => {
          throw new UnavailableError(
            'the edit is stored but could not be announced to the search index; repeat it',
          );
        });
    }
    return message;
  }

  async search(
    token: string,
    chatNumber: number,
    query: string,
    page: SearchPage,
  ): Promise<Page<Message, SearchPage> | RenderedPage<SearchPage>> {
    if (query.length === 0) throw new ValidationError('q must not be empty');
    checkUnicode('q', query);
    // FTS5 strings end at NUL; a body cannot usefully be searched for one either.
    if (query.includes('\0')) throw new ValidationError('q must not contain NUL characters');
    const chat = await this.#deps.chats.which(token, chatNumber);
    const { search } = this.#deps;
    return search.searchRendered
      ? search.searchRendered(chat, query, page)
      : search.search(chat, query, page);
  }

  #checkBody(body: string): void {
    if (body.length === 0) throw new ValidationError('body must not be empty');
    checkUnicode('body', body);
    const bytes = Buffer.byteLength(body, 'utf8');
    if (bytes > this.#deps.messageMaxBytes) {
      throw new ValidationError(
        `body is ${bytes} bytes of UTF-8; the maximum is ${this.#deps.messageMaxBytes}`,
      );
    }
  }
}
