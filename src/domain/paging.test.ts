import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_NUMBER, numberPage, numberRange } from './paging.ts';

const rows = (...numbers: number[]) => numbers.map((number) => ({ number }));

describe('keyset paging over numbers', () => {
  it('reads forward from after+1, or from 1 on the first page', () => {
    assert.deepEqual(numberRange({ limit: 10 }), { from: 1, to: MAX_NUMBER, descending: false });
    assert.deepEqual(numberRange({ limit: 10, after: 7 }), { from: 8, to: MAX_NUMBER, descending: false });
  });

  it('reads backward below before', () => {
    assert.deepEqual(numberRange({ limit: 10, before: 7 }), { from: 1, to: 6, descending: true });
  });

  it('reads backward between after and before when both are given', () => {
    assert.deepEqual(numberRange({ limit: 10, after: 2, before: 7 }), { from: 3, to: 6, descending: true });
    assert.deepEqual(numberPage(rows(6, 5, 4), { limit: 2, after: 2, before: 7 }), {
      items: rows(5, 6),
      next: { limit: 2, after: 2, before: 5 },
    });
  });

  it('cuts the extra row and points the next cursor past the last row', () => {
    assert.deepEqual(numberPage(rows(4, 5, 6), { limit: 2, after: 3 }), {
      items: rows(4, 5),
      next: { limit: 2, after: 5 },
    });
    assert.deepEqual(numberPage(rows(4, 5), { limit: 2, after: 3 }), { items: rows(4, 5) });
  });

  it('returns a backward page in ascending order with the next cursor below its first row', () => {
    assert.deepEqual(numberPage(rows(9, 8, 7), { limit: 2, before: 10 }), {
      items: rows(8, 9),
      next: { limit: 2, before: 8 },
    });
    assert.deepEqual(numberPage(rows(2, 1), { limit: 2, before: 3 }), { items: rows(1, 2) });
  });
});
