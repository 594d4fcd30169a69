/** What every part of the console shares: element lookup, the error banner, the live indicator. */
import { ApiError } from './api.js';

export const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));

/** @param {unknown} error */
export function showError(error) {
  const text = error instanceof ApiError ? error.message : `Something went wrong: ${String(error)}`;
  $('error-text').textContent = text;
  $('error').hidden = false;
}

export function clearError() {
  $('error').hidden = true;
}

/** Runs an action, showing its failure instead of losing it in the console. @param {() => Promise<void>} action */
export async function attempt(action) {
  try {
    clearError();
    await action();
  } catch (error) {
    showError(error);
  }
}

/** @param {'idle' | 'live' | 'reconnecting' | 'offline'} kind @param {string} text */
export function setConnection(kind, text) {
  $('connection').dataset.state = kind;
  $('connection').textContent = text;
}
