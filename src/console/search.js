/** Search within the open chat: newest first, page by page, every match highlighted. */
import { call } from './api.js';
import { messageItem } from './messages.js';
import { $ } from './ui.js';

const found = {
  query: '',
  count: 0,
  /** @type {string | undefined} */ next: undefined,
};

/** @param {string} path the chat's messages path @param {string} query */
export async function search(path, query) {
  Object.assign(found, { query, count: 0, next: undefined });
  $('search-list').replaceChildren();
  $('search-results').hidden = false;
  $('search-clear').hidden = false;
  await page(`${path}/search?q=${encodeURIComponent(query)}&limit=50`);
}

export async function moreMatches() {
  if (found.next) await page(found.next);
}

/** @param {string} path */
async function page(path) {
  const { data, next } = await call('GET', path);
  for (const message of data) $('search-list').append(messageItem(message, { query: found.query }));
  found.count += data.length;
  found.next = next;
  $('search-more').hidden = !next;
  $('search-summary').textContent =
    `${found.count} ${found.count === 1 ? 'match' : 'matches'} for “${found.query}”${next ? ' so far' : ''}`;
}

export function clearSearch() {
  $('search-results').hidden = true;
  $('search-clear').hidden = true;
  $('search-list').replaceChildren();
  $('search-q').value = '';
}
