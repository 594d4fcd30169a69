/**
 * Search matches highlighted with DOM nodes only (text nodes and <mark>): user text is never parsed as
 * HTML. Matching follows the API's rule, foldCase = toLowerCase(), which can change a string's length
 * ('İ' folds to two code units), so matches are found in the folded text and mapped back, character by
 * character, to the original.
 */

/**
 * @param {string} text
 * @param {string} query
 * @returns {DocumentFragment}
 */
export function highlighted(text, query) {
  const fragment = document.createDocumentFragment();
  const ranges = matches(text, query);
  let at = 0;
  for (const [start, end] of ranges) {
    if (start > at) fragment.append(document.createTextNode(text.slice(at, start)));
    const mark = document.createElement('mark');
    mark.textContent = text.slice(start, end);
    fragment.append(mark);
    at = end;
  }
  if (at < text.length) fragment.append(document.createTextNode(text.slice(at)));
  return fragment;
}

/**
 * Non-overlapping [start, end) ranges of `text` whose folded form contains the folded query.
 * @param {string} text
 * @param {string} query
 * @returns {[number, number][]}
 */
export function matches(text, query) {
  const needle = query.toLowerCase();
  if (needle === '') return [];
  let folded = '';
  /** For each code unit of `folded`: the original character's [start, end). */
  const origin = [];
  for (let i = 0; i < text.length; ) {
    const char = String.fromCodePoint(/** @type {number} */ (text.codePointAt(i)));
    const lower = char.toLowerCase();
    for (let k = 0; k < lower.length; k++) origin.push([i, i + char.length]);
    folded += lower;
    i += char.length;
  }
  const ranges = [];
  for (
    let found = folded.indexOf(needle);
    found >= 0;
    found = folded.indexOf(needle, found + needle.length)
  ) {
    const start = origin[found][0];
    const end = origin[found + needle.length - 1][1];
    if (ranges.length > 0 && start < ranges[ranges.length - 1][1]) continue;
    ranges.push([start, end]);
  }
  return ranges;
}
