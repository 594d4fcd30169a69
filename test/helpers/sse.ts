/**
 * A Server-Sent Events client for tests and benchmarks: the wire format parsed by hand (as the spec
 * says: fields up to a blank line, comments start with a colon), so tests see exactly what was sent.
 */
import { request } from 'node:http';

export interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
}

export class SseParser {
  #buffer = '';
  #id: string | undefined;
  #event = 'message';
  #data: string[] = [];
  comments = 0;
  /** As a browser's EventSource keeps it: the last `id` field seen, with or without an event. */
  lastEventId: string | undefined;

  push(chunk: string): SseEvent[] {
    this.#buffer += chunk;
    const events: SseEvent[] = [];
    let newline = this.#buffer.indexOf('\n');
    while (newline >= 0) {
      const line = this.#buffer.slice(0, newline);
      this.#buffer = this.#buffer.slice(newline + 1);
      newline = this.#buffer.indexOf('\n');
      if (line === '') {
        if (this.#data.length > 0)
          events.push({ id: this.#id, event: this.#event, data: this.#data.join('\n') });
        this.#event = 'message';
        this.#data = [];
        this.#id = undefined;
      } else if (line.startsWith(':')) this.comments++;
      else {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') {
          this.#id = value;
          this.lastEventId = value;
        } else if (field === 'event') this.#event = value;
        else if (field === 'data') this.#data.push(value);
      }
    }
    return events;
  }
}

export interface SseClient {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The JSON error body when the answer was not a stream. */
  error: unknown;
  events: SseEvent[];
  parser: SseParser;
  /** Resolves when the server ended the stream (or it failed). */
  ended: Promise<void>;
  close(): void;
  /** Called for every event as it arrives (benchmarks timestamp them). */
  onEvent?: (event: SseEvent) => void;
}

/**
 * Opens a stream with node:http (no pooling limits, so a thousand of them is fine). `record: false` keeps
 * no list of events (a benchmark's thousand clients would otherwise measure the garbage collector).
 */
export function openStream(
  url: string,
  headers: Record<string, string> = {},
  options: { record?: boolean } = {},
): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      let endedResolve!: () => void;
      const client: SseClient = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        error: undefined,
        events: [],
        parser: new SseParser(),
        ended: new Promise((r) => {
          endedResolve = r;
        }),
        close: () => req.destroy(),
      };
      res.setEncoding('utf8');
      let text = '';
      const isStream = String(res.headers['content-type']).startsWith('text/event-stream');
      res.on('data', (chunk: string) => {
        if (!isStream) {
          text += chunk;
          return;
        }
        for (const event of client.parser.push(chunk)) {
          if (options.record !== false) client.events.push(event);
          client.onEvent?.(event);
        }
      });
      res.on('end', () => {
        if (!isStream) client.error = text ? JSON.parse(text) : undefined;
      });
      res.on('close', () => endedResolve());
      res.on('error', () => endedResolve());
      if (isStream) resolve(client);
      else res.on('end', () => resolve(client));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The `created` events' message numbers, in arrival order. */
export function createdNumbers(client: SseClient): number[] {
  return client.events.filter((e) => e.event === 'created').map((e) => JSON.parse(e.data).number as number);
}
