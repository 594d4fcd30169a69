/**
 * The API as the console uses it: JSON in and out, and every failure turned into an ApiError whose
 * message a person can act on (the server's own message for its errors; "cannot be reached" when the
 * request never got an answer).
 */
export class ApiError extends Error {
  /**
   * @param {number} status 0 when the server could not be reached
   * @param {string} code the API's stable error code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const FRIENDLY = {
  application_not_found: 'No application has this token. Check it, or create a new application.',
  chat_not_found: 'This chat does not exist in this application.',
  payload_too_large: 'That message is too large.',
};

/**
 * @param {string} method
 * @param {string} path
 * @param {{ body?: unknown, headers?: Record<string, string> }} [options]
 * @returns {Promise<{ data: any, next: string | undefined }>} the JSON answer and the Link rel="next" URL
 */
export async function call(method, path, options = {}) {
  const headers = { accept: 'application/json', ...options.headers };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
  } catch {
    throw new ApiError(
      0,
      'unreachable',
      'The server cannot be reached. Check that it is running, then try again.',
    );
  }
  const text = await response.text();
  let data;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!response.ok) {
    const code = data?.error?.code ?? 'http_error';
    const message = FRIENDLY[code] ?? data?.error?.message ?? `The server answered ${response.status}.`;
    throw new ApiError(response.status, code, message);
  }
  return { data, next: nextLink(response.headers.get('link')) };
}

/** @param {string | null} header */
function nextLink(header) {
  const match = header && /<([^>]+)>;\s*rel="next"/.exec(header);
  return match ? match[1] : undefined;
}

/** @param {string} token */
export const appPath = (token) => `/applications/${encodeURIComponent(token)}`;
/** @param {string} token @param {number} chat */
export const messagesPath = (token, chat) => `${appPath(token)}/chats/${chat}/messages`;
