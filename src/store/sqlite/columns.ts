/** Column lists shared by the reading and the writing side, aliased to the domain's field names. */
export const APPLICATION = `id, token, name, chats_count AS chatsCount, created_at AS createdAt, updated_at AS updatedAt`;
export const CHAT = `id, application_id AS applicationId, number, messages_count AS messagesCount,
  created_at AS createdAt, updated_at AS updatedAt`;
export const MESSAGE = `number, body, created_at AS createdAt, updated_at AS updatedAt`;

/** A chat's last edit sequence number (0 before any edit): one read at the end of the edited-only index. */
export const LAST_EDIT_SEQ =
  'SELECT COALESCE(MAX(edit_seq), 0) AS seq FROM messages WHERE chat_id = ? AND edit_seq > 0';

/** The last search_log entry (0 when the log is empty): where the search index is complete. */
export const LAST_LOGGED = 'SELECT coalesce(max(seq), 0) AS seq FROM search_log';
