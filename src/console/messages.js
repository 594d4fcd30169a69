import { highlighted } from './highlight.js';

/**
 * One message as a list item: number, time, an "edited" mark, the body (as text, never HTML) and, when
 * `onEdit` is given, an Edit button.
 * @param {{ number: number, body: string, created_at: string, updated_at: string }} message
 * @param {{ query?: string, onEdit?: (message: any, item: HTMLLIElement) => void }} [options]
 */
export function messageItem(message, options = {}) {
  const item = document.createElement('li');
  item.className = 'message';
  item.dataset.number = String(message.number);
  fillMessage(item, message, options);
  return item;
}

/**
 * @param {HTMLLIElement} item
 * @param {{ number: number, body: string, created_at: string, updated_at: string }} message
 * @param {{ query?: string, onEdit?: (message: any, item: HTMLLIElement) => void }} [options]
 */
export function fillMessage(item, message, options = {}) {
  const meta = document.createElement('div');
  meta.className = 'meta';
  const number = document.createElement('span');
  number.textContent = `#${message.number}`;
  const time = document.createElement('time');
  time.dateTime = message.created_at;
  time.textContent = new Date(message.created_at).toLocaleString();
  meta.append(number, time);
  if (message.updated_at !== message.created_at) {
    const edited = document.createElement('span');
    edited.textContent = 'edited';
    meta.append(edited);
  }
  const body = document.createElement('p');
  body.className = 'body';
  if (options.query) body.append(highlighted(message.body, options.query));
  else body.textContent = message.body;
  item.replaceChildren(meta, body);
  if (options.onEdit) {
    const edit = document.createElement('button');
    edit.type = 'button';
    edit.textContent = 'Edit';
    edit.setAttribute('aria-label', `Edit message ${message.number}`);
    edit.addEventListener('click', () => options.onEdit?.(message, item));
    meta.append(edit);
  }
}

/**
 * Replaces a message's body with an edit form; resolves with the new text, or undefined when cancelled.
 * @param {HTMLLIElement} item
 * @param {{ number: number, body: string }} message
 * @returns {Promise<string | undefined>}
 */
export function editForm(item, message) {
  return new Promise((resolve) => {
    const form = document.createElement('form');
    const id = `edit-${message.number}`;
    const label = document.createElement('label');
    label.htmlFor = id;
    label.textContent = `New text of message ${message.number}`;
    const text = document.createElement('textarea');
    text.id = id;
    text.required = true;
    text.value = message.body;
    const save = document.createElement('button');
    save.type = 'submit';
    save.textContent = 'Save';
    const cancel = document.createElement('button');
    cancel.type = 'button';
    cancel.className = 'secondary';
    cancel.textContent = 'Cancel';
    form.append(label, text, save, cancel);
    item.querySelector('.body')?.replaceWith(form);
    text.focus();
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      resolve(text.value);
    });
    cancel.addEventListener('click', () => resolve(undefined));
    text.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') resolve(undefined);
    });
  });
}
