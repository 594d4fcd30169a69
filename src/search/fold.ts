/**
 * The case folding every search adapter applies to bodies and queries, so that "match" means the same
 * thing everywhere: `foldCase(body).includes(foldCase(query))`.
 *
 * Lowercasing, with Greek final sigma folded to σ: toLowerCase turns Σ into ς at the end of a word and
 * into σ elsewhere, so on its own it would not find 'ΚΟΣ' (query: Σ ends the word) in 'ΚΟΣΜΟΣ' (σ), nor
 * 'οσ' in 'ΟΔΟΣ' (ς). Changing this rule changes what the indexes hold: the embedded index then rebuilds
 * (a search.db migration) and the OpenSearch one needs `reindex` (a new INDEX_VERSION).
 */
export function foldCase(text: string): string {
  const lower = text.toLowerCase();
  return lower.includes('ς') ? lower.replaceAll('ς', 'σ') : lower;
}
