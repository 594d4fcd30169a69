import { LRUCache } from 'lru-cache';
import { checkUnicode, NotFoundError } from '../domain/errors.ts';
import type { ApplicationCursor, Store } from '../domain/ports.ts';
import { newToken } from '../domain/token.ts';
import type { Application, Page } from '../domain/types.ts';

export class ApplicationService {
  readonly #store: Store;
  /** token → internal id. Applications are never deleted and tokens never change, so entries never go stale. */
  readonly #ids = new LRUCache<string, number>({ max: 100_000 });

  constructor(store: Store) {
    this.#store = store;
  }

  create(name: string): Promise<Application> {
    checkUnicode('name', name);
    return this.#store.createApplication({ token: newToken(), name, at: new Date().toISOString() });
  }

  async get(token: string): Promise<Application> {
    const app = await this.#store.findApplication(token);
    if (!app) throw new NotFoundError('application');
    this.#ids.set(token, app.id);
    return app;
  }

  async rename(token: string, name: string): Promise<Application> {
    checkUnicode('name', name);
    const id = await this.resolveId(token);
    const app = await this.#store.renameApplication(id, name, new Date().toISOString());
    if (!app) throw new NotFoundError('application');
    return app;
  }

  list(limit: number, after: ApplicationCursor | undefined): Promise<Page<Application, ApplicationCursor>> {
    return this.#store.listApplications(after ? { limit, after } : { limit });
  }

  /** The internal id behind a token, for the chat and message paths (404 when unknown). */
  async resolveId(token: string): Promise<number> {
    const cached = this.#ids.get(token);
    if (cached !== undefined) return cached;
    return (await this.get(token)).id;
  }
}
