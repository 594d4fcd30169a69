/**
 * The case folding every search adapter applies to bodies and queries, so that "match" means the same
 * thing everywhere: `foldCase(body).includes(foldCase(query))`.
 */
export function foldCase(text: string): string {
  return text.toLowerCase();
}
