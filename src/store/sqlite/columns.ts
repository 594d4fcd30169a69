/** Column lists shared by the reading and the writing side, aliased to the domain's field names. */
export const APPLICATION = `id, token, name, chats_count AS chatsCount, created_at AS createdAt, updated_at AS updatedAt`;
export const CHAT = `id, application_id AS applicationId, number, messages_count AS messagesCount,
  created_at AS createdAt, updated_at AS updatedAt`;
export const MESSAGE = `number, body, created_at AS createdAt, updated_at AS updatedAt`;
