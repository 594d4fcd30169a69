/**
 * A chat's live stream. EventSource reconnects by itself and sends Last-Event-ID, which the server answers
 * with what was missed first: nothing here has to track positions.
 */
import { ApiError } from './api.js';
import { setConnection, showError } from './ui.js';

/**
 * @param {string} path the chat's messages path
 * @param {number} after the last message number already shown
 * @param {{ created: (message: any) => void, edited: (message: any) => void }} on
 * @returns {EventSource}
 */
export function follow(path, after, on) {
  const source = new EventSource(`${path}/stream?after=${after}`);
  setConnection('reconnecting', 'Connecting…');
  source.addEventListener('open', () => setConnection('live', 'Live'));
  source.addEventListener('created', (event) => on.created(JSON.parse(event.data)));
  source.addEventListener('edited', (event) => on.edited(JSON.parse(event.data)));
  source.addEventListener('reconnect', () => setConnection('reconnecting', 'Reconnecting…'));
  source.addEventListener('error', () => {
    // The browser retries by itself unless the server refused the stream outright.
    if (source.readyState === EventSource.CLOSED) {
      setConnection('offline', 'Offline');
      showError(new ApiError(0, 'stream_closed', 'Live updates stopped. Reload the page to try again.'));
    } else setConnection('reconnecting', 'Server unreachable, reconnecting…');
  });
  return source;
}

/** @param {EventSource | undefined} source */
export function unfollow(source) {
  source?.close();
  setConnection('idle', 'Idle');
}
