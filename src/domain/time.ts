/** The one form of time the core produces and stores: `Date.prototype.toISOString`, years 1000-9999. */
const CANONICAL = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export function isCanonicalTime(iso: string): boolean {
  return CANONICAL.test(iso) && iso >= '1000';
}
