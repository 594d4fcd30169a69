import FindMyWay from 'find-my-way';
import { isDecimal } from './decimal-integers.ts';

/** Methods a 405 may list: those our routes use; anything else stays a 404. */
type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
const METHODS: readonly Method[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];

/**
 * Which methods a concrete path has, for the `Allow` header of a 405 (and of an OPTIONS answer). Fastify
 * routes a method a path lacks to its not-found handler and offers no lookup of a concrete URL across
 * methods (`findRoute` matches route patterns), so this keeps a second find-my-way router, fastify's own,
 * configured as fastify's, fed with every route fastify registers. A match counts only when its integer
 * parameters are numbers: `…/messages/search` is not `…/messages/{number}`, so it has no PUT.
 */
export class AllowedMethods {
  readonly #router: FindMyWay.Instance<FindMyWay.HTTPVersion.V1>;
  readonly #methods = new Set<Method>();

  constructor(options: { maxParamLength: number; ignoreTrailingSlash: boolean }) {
    // A match with no store marks a path segment over maxParamLength, as fastify's router answers 414.
    this.#router = FindMyWay({ ...options, onMaxParamLength: () => {} });
  }

  /** `integers`: the route's path parameters that are integers (from its params schema). */
  add(methods: string | string[], url: string, integers: readonly string[]): void {
    for (const method of [methods].flat()) {
      if (!(METHODS as readonly string[]).includes(method)) continue;
      // Fastify registers a route once per method; a repeat (a plugin's own alias) is not an error here.
      if (!this.#router.hasRoute(method as Method, url))
        this.#router.on(method as Method, url, () => {}, { integers });
      this.#methods.add(method as Method);
    }
  }

  /** The methods some path has, in a stable order: the server's answer to `OPTIONS *`. */
  all(): Method[] {
    return METHODS.filter((method) => this.#methods.has(method));
  }

  /**
   * The methods `path` (without its query string) has, in a stable order (none for an unknown path), and
   * whether a route of some method would take it but for a segment over maxParamLength: then the path is
   * too long for every method, not unknown to those that lack the route.
   */
  of(path: string): { methods: Method[]; tooLong: boolean } {
    let tooLong = false;
    try {
      const methods = METHODS.filter((method) => {
        const match = this.#router.find(method, path);
        if (match === null) return false;
        if (match.store === null) {
          tooLong = true;
          return false;
        }
        const { integers } = match.store as { integers: readonly string[] };
        return integers.every((name) => isDecimal(match.params[name]));
      });
      return { methods, tooLong };
    } catch {
      // A path the router cannot decode has no methods; the not-found answer stands.
      return { methods: [], tooLong: false };
    }
  }
}
