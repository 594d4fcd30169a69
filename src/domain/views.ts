import type { RenderedPage } from './ports.ts';
import type { Application, Chat, Message, Page } from './types.ts';

/** The public representations: tokens and numbers only, never an internal id. */
export interface ApplicationView {
  token: string;
  name: string;
  chats_count: number;
  created_at: string;
  updated_at: string;
}

export interface ChatView {
  number: number;
  messages_count: number;
  created_at: string;
  updated_at: string;
}

export interface MessageView {
  number: number;
  chat_number: number;
  body: string;
  created_at: string;
  updated_at: string;
}

export const applicationView = (a: Application): ApplicationView => ({
  token: a.token,
  name: a.name,
  chats_count: a.chatsCount,
  created_at: a.createdAt,
  updated_at: a.updatedAt,
});

export const chatView = (c: Chat): ChatView => ({
  number: c.number,
  messages_count: c.messagesCount,
  created_at: c.createdAt,
  updated_at: c.updatedAt,
});

export const messageView = (m: Message): MessageView => ({
  number: m.number,
  chat_number: m.chatNumber,
  body: m.body,
  created_at: m.createdAt,
  updated_at: m.updatedAt,
});

/** A page of messages as the API answers it (RenderedPage): the JSON of its views and its next cursor. */
export function renderedPage<C>({ items, next }: Page<Message, C>): RenderedPage<C> {
  const json = JSON.stringify(items.map(messageView));
  return next ? { json, next } : { json };
}
