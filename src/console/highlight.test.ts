/** The console's match finder, which must agree with the API's folding rule (toLowerCase) on any text. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
// @ts-expect-error: a browser module in plain JavaScript, without type declarations
import { matches } from './highlight.js';

const marked = (text: string, query: string) =>
  (matches(text, query) as [number, number][]).map(([start, end]) => text.slice(start, end));

describe('console search highlights', () => {
  it('finds every case-insensitive occurrence, without overlaps', () => {
    assert.deepEqual(marked('The live Needle, a NEEDLE, needles', 'needle'), ['Needle', 'NEEDLE', 'needle']);
    assert.deepEqual(marked('aaaa', 'aa'), ['aa', 'aa']);
    assert.deepEqual(marked('nothing here', 'needle'), []);
  });

  it('maps matches back to the original when folding changes the length', () => {
    // 'İ' (U+0130) lowercases to 'i' + U+0307: two code units for one.
    assert.deepEqual(marked('İstanbul and istanbul', 'stanbul'), ['stanbul', 'stanbul']);
    assert.deepEqual(marked('xİy', 'i̇'), ['İ']);
    assert.deepEqual(marked('emoji 👋 Wave', 'wave'), ['Wave']);
    assert.deepEqual(marked('👋👋', '👋'), ['👋', '👋']);
  });
});
