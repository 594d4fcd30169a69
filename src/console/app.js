/**
 * The console's page: applications, chats, messages (infinite scroll backwards, send, edit), with live
 * arrivals (live.js) and search (search.js). State lives in the URL hash (#/app/<token>/chat/<n>), so a
 * chat can be opened in a second tab by its address.
 */
import { appPath, call, messagesPath } from './api.js';
import { follow, unfollow } from './live.js';
import { editForm, fillMessage, messageItem } from './messages.js';
import { clearSearch, moreMatches, search } from './search.js';
import { $, attempt, clearError } from './ui.js';

const PAGE = 50;

const state = {
  /** @type {string | undefined} */ token: undefined,
  /** @type {number | undefined} */ chat: undefined,
  /** Messages shown, by number. @type {Map<number, any>} */ messages: new Map(),
  first: 0,
  last: 0,
  count: 0,
  /** @type {EventSource | undefined} */ stream: undefined,
  loadingOlder: false,
};

// ------------------------------------------------------------------------------------------ applications

/** @param {string} token */
async function openApp(token) {
  const { data } = await call('GET', appPath(token));
  state.token = token;
  localStorage.setItem('chat-console-token', token);
  $('app').hidden = false;
  $('app-title').textContent = data.name;
  $('app-token-value').textContent = data.token;
  $('app-token').value = data.token;
  $('chats-panel').hidden = false;
  renderChatsCount(data.chats_count);
  await loadChats();
}

/** @param {number} count */
function renderChatsCount(count) {
  $('app-chats-count').textContent = `${count} ${count === 1 ? 'chat' : 'chats'}`;
}

async function loadChats() {
  const chats = [];
  let path = `${appPath(/** @type {string} */ (state.token))}/chats?limit=1000`;
  for (;;) {
    const { data, next } = await call('GET', path);
    chats.push(...data);
    if (!next) break;
    path = next;
  }
  renderChatsCount(chats.length);
  $('chats').replaceChildren(
    ...chats.map((chat) => {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.dataset.chat = String(chat.number);
      button.textContent = `Chat ${chat.number} · ${chat.messages_count} messages`;
      if (chat.number === state.chat) button.setAttribute('aria-current', 'true');
      button.addEventListener('click', () => {
        location.hash = `#/app/${encodeURIComponent(/** @type {string} */ (state.token))}/chat/${chat.number}`;
      });
      item.append(button);
      return item;
    }),
  );
}

// ------------------------------------------------------------------------------------------------ chats

/** @param {number} number */
async function openChat(number) {
  closeStream();
  clearSearch();
  const token = /** @type {string} */ (state.token);
  const { data: chat } = await call('GET', `${appPath(token)}/chats/${number}`);
  Object.assign(state, { chat: number, messages: new Map(), first: 0, last: 0, count: chat.messages_count });
  $('chat-panel').hidden = false;
  $('chat-heading').textContent = `Chat ${number}`;
  $('messages').replaceChildren();
  renderCount();
  for (const button of $('chats').querySelectorAll('button')) {
    button.setAttribute('aria-current', String(Number(button.dataset.chat) === number));
  }
  if (chat.messages_count > 0) {
    const { data } = await call(
      'GET',
      `${messagesPath(token, number)}?limit=${PAGE}&before=${chat.messages_count + 1}`,
    );
    for (const message of data) addMessage(message, false);
  }
  $('older').hidden = state.first <= 1;
  scrollToEnd();
  state.stream = follow(messagesPath(token, number), state.last || chat.messages_count, {
    created: (message) => {
      const stick = nearEnd();
      addMessage(message, true);
      if (stick) scrollToEnd();
    },
    edited: updateMessage,
  });
}

function closeStream() {
  unfollow(state.stream);
  state.stream = undefined;
}

function renderCount() {
  $('chat-count').textContent = `${state.count} ${state.count === 1 ? 'message' : 'messages'}`;
  const button = $('chats').querySelector(`button[data-chat="${state.chat}"]`);
  if (button) button.textContent = `Chat ${state.chat} · ${state.count} messages`;
}

/** @param {any} message @param {boolean} live */
function addMessage(message, live) {
  const existing = state.messages.get(message.number);
  if (existing) {
    if (message.updated_at > existing.updated_at) updateMessage(message);
    return;
  }
  state.messages.set(message.number, message);
  const item = messageItem(message, { onEdit: edit });
  const list = $('messages');
  // Keep number order whatever the arrival order (a 201 may overtake its own event, or the reverse).
  const after = [...list.children].find((li) => Number(li.dataset.number) > message.number);
  list.insertBefore(item, after ?? null);
  if (state.first === 0 || message.number < state.first) state.first = message.number;
  if (message.number > state.last) state.last = message.number;
  if (message.number > state.count) {
    state.count = message.number;
    renderCount();
  }
  if (live) item.classList.add('new');
}

/** @param {any} message */
function updateMessage(message) {
  // A message not shown yet is fetched with its current body when it is (scrolling up).
  if (!state.messages.has(message.number)) return;
  state.messages.set(message.number, message);
  const item = $('messages').querySelector(`li[data-number="${message.number}"]`);
  if (item) fillMessage(item, message, { onEdit: edit });
}

async function loadOlder() {
  if (state.loadingOlder || state.first <= 1 || !state.token || !state.chat) return;
  state.loadingOlder = true;
  const scroller = $('scroller');
  const before = scroller.scrollHeight;
  try {
    const { data } = await call(
      'GET',
      `${messagesPath(state.token, state.chat)}?limit=${PAGE}&before=${state.first}`,
    );
    for (const message of data) addMessage(message, false);
    // Keep what the reader was looking at in place while older messages appear above it.
    scroller.scrollTop += scroller.scrollHeight - before;
    $('older').hidden = state.first <= 1;
  } finally {
    state.loadingOlder = false;
  }
}

function nearEnd() {
  const scroller = $('scroller');
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
}

function scrollToEnd() {
  const scroller = $('scroller');
  scroller.scrollTop = scroller.scrollHeight;
}

/** @param {any} message @param {HTMLLIElement} item */
async function edit(message, item) {
  const body = await editForm(item, message);
  if (body !== undefined && body !== message.body) {
    await attempt(async () => {
      const path = `${messagesPath(/** @type {string} */ (state.token), /** @type {number} */ (state.chat))}/${message.number}`;
      const { data } = await call('PUT', path, { body: { body } });
      state.messages.set(data.number, data);
    });
  }
  // The saved text, or the text before the edit when it was cancelled or refused.
  fillMessage(item, state.messages.get(message.number), { onEdit: edit });
}

// ---------------------------------------------------------------------------------------------- sending

function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

async function send() {
  const text = $('body');
  const body = text.value;
  if (!body || !state.token || !state.chat) return;
  const stick = nearEnd();
  // One key per message: a retry after a lost answer cannot post it twice.
  const key = text.dataset.key ?? idempotencyKey();
  text.dataset.key = key;
  const { data } = await call('POST', messagesPath(state.token, state.chat), {
    body: { body },
    headers: { 'idempotency-key': key },
  });
  text.value = '';
  delete text.dataset.key;
  addMessage(data, true);
  if (stick) scrollToEnd();
}

// ------------------------------------------------------------------------------------------------ wiring

async function route() {
  const match = /^#\/app\/([^/]+)(?:\/chat\/(\d+))?$/.exec(location.hash);
  if (!match) return;
  const token = decodeURIComponent(match[1]);
  if (token !== state.token) await openApp(token);
  if (match[2]) await openChat(Number(match[2]));
  else {
    closeStream();
    state.chat = undefined;
    $('chat-panel').hidden = true;
  }
}

/** @param {string} id @param {(form: HTMLFormElement) => Promise<void>} action */
function onSubmit(id, action) {
  $(id).addEventListener('submit', (/** @type {SubmitEvent} */ event) => {
    event.preventDefault();
    void attempt(() => action(/** @type {HTMLFormElement} */ (event.target)));
  });
}

onSubmit('create-app', async () => {
  const { data } = await call('POST', '/applications', { body: { name: $('app-name').value } });
  $('app-name').value = '';
  location.hash = `#/app/${encodeURIComponent(data.token)}`;
});
onSubmit('open-app', async () => {
  const token = $('app-token').value.trim();
  await openApp(token);
  location.hash = `#/app/${encodeURIComponent(token)}`;
});
onSubmit('send', send);
onSubmit('search', () =>
  search(
    messagesPath(/** @type {string} */ (state.token), /** @type {number} */ (state.chat)),
    $('search-q').value,
  ),
);
$('new-chat').addEventListener('click', () =>
  attempt(async () => {
    const { data } = await call('POST', `${appPath(/** @type {string} */ (state.token))}/chats`);
    await loadChats();
    location.hash = `#/app/${encodeURIComponent(/** @type {string} */ (state.token))}/chat/${data.number}`;
  }),
);
$('older').addEventListener('click', () => attempt(loadOlder));
$('search-more').addEventListener('click', () => attempt(moreMatches));
$('search-clear').addEventListener('click', clearSearch);
$('error-close').addEventListener('click', clearError);
$('body').addEventListener('keydown', (/** @type {KeyboardEvent} */ event) => {
  if (event.key === 'Enter' && !event.shiftKey) {
    event.preventDefault();
    $('send').requestSubmit();
  }
});
// Infinite scroll backwards: coming near the top loads the page before the first message shown (the
// "Load older messages" button does the same for keyboards and screen readers).
$('scroller').addEventListener(
  'scroll',
  () => {
    if ($('scroller').scrollTop < 120) void attempt(loadOlder);
  },
  { passive: true },
);

window.addEventListener('hashchange', () => attempt(route));
const remembered = localStorage.getItem('chat-console-token');
if (!location.hash && remembered) location.hash = `#/app/${encodeURIComponent(remembered)}`;
else void attempt(route);
