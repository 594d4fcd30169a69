import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { linkNext } from './pagination.ts';

function link(url: string, next: Parameters<typeof linkNext>[2]): string | undefined {
  const headers: Record<string, string> = {};
  const reply = {
    header: (name: string, value: string) => (headers[name] = value),
  } as unknown as FastifyReply;
  linkNext({ url } as FastifyRequest, reply, next);
  return headers.link;
}

describe('linkNext', () => {
  it("keeps the page size and the query, and replaces the request's cursor with the next one", () => {
    assert.equal(
      link('/a/chats/1/messages/search?q=caf%C3%A9&limit=2&before=90', { before: 40 }),
      '</a/chats/1/messages/search?q=caf%C3%A9&limit=2&before=40>; rel="next"',
    );
    assert.equal(link('/a/chats?after=3', { after: 6 }), '</a/chats?after=6>; rel="next"');
    assert.equal(link('/a/chats', { after: 50 }), '</a/chats?after=50>; rel="next"');
    assert.equal(link('/a/chats', undefined), undefined);
  });

  it('keeps the query under the name the search used: q when given, else its alias', () => {
    assert.equal(link('/s?q=a&query=b', { before: 3 }), '</s?q=a&before=3>; rel="next"');
    assert.equal(link('/s?query=b', { before: 3 }), '</s?query=b&before=3>; rel="next"');
  });

  it('drops parameters no route reads, so a client cannot grow the header', () => {
    const padded = `/a/chats/1/messages?limit=1&x=${'a'.repeat(5000)}&after=0&y[z]=1`;
    assert.equal(link(padded, { after: 1 }), '</a/chats/1/messages?limit=1&after=1>; rel="next"');
  });
});
