import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isWriteCommand, numbered } from './commands.ts';
import type { ChatCreate, MessageCreate } from './types.ts';

describe('numbering a kept intent', () => {
  const at = '2026-01-01T00:00:00.000Z';

  it('sets the command number, and the number in its idempotency answer', () => {
    const intent: MessageCreate = {
      kind: 'message.create',
      applicationId: 1,
      chatNumber: 2,
      number: 0,
      body: '{"number": 0} is text, not the answer',
      at,
      idempotency: {
        scope: 'messages:1:2',
        key: 'k',
        fingerprint: 'f',
        response: JSON.stringify({ number: 0, chat_number: 2, body: 'b', created_at: at, updated_at: at }),
      },
    };
    const command = numbered(intent, 41);
    assert.equal(command.number, 41);
    assert.equal(command.body, intent.body, 'the body is left alone');
    assert.deepEqual(JSON.parse(command.idempotency!.response), {
      number: 41,
      chat_number: 2,
      body: 'b',
      created_at: at,
      updated_at: at,
    });
    assert.equal(intent.number, 0, 'the intent itself is not changed');
  });

  it('numbers a command without an idempotency answer', () => {
    const intent: ChatCreate = { kind: 'chat.create', applicationId: 1, number: 0, at };
    assert.deepEqual(numbered(intent, 3), { ...intent, number: 3 });
  });

  it('recognises write commands and nothing else', () => {
    assert.equal(isWriteCommand({ kind: 'chat.create' }), true);
    assert.equal(isWriteCommand({ kind: 'message.create' }), true);
    for (const other of [null, 'chat.create', { kind: 'message.index' }, Buffer.from('{}'), {}]) {
      assert.equal(isWriteCommand(other), false);
    }
  });
});
