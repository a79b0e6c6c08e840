/**
 * `res.json(data)` of one Express response sent another way (a signed reply), without a property
 * set on the response.
 *
 * Express gives every response its own prototype (`Object.setPrototypeOf`), after which each
 * property added to the object makes V8 copy its whole layout (~2.5 µs per property in a CPU
 * profile of Express's protected route). So instead of `res.json = …` on each response, Express's
 * own `json` (on the object lib/response.js makes, whose prototype is ServerResponse.prototype)
 * is replaced once per process by a hook that looks the response up in a WeakMap and calls the
 * original for every response not routed here. There is no library for this: it is a detail of
 * how Express builds its responses.
 */
import { ServerResponse } from 'node:http'

/** Express's `res.json`, as the hook found it. */
export type JsonMethod = (this: ServerResponse, ...args: unknown[]) => ServerResponse

/**
 * Where a routed response's `res.json(...args)` goes (Express 4 also takes `json(status, data)`);
 * `json` is Express's own, for what the route does not send itself.
 */
export type JsonRoute = (res: ServerResponse, args: unknown[], json: JsonMethod) => ServerResponse

const routes = new WeakMap<ServerResponse, JsonRoute>()
const hooked = new WeakSet<object>()

/**
 * Sends `res.json(data)` (and so `res.send(object)`, which calls it) of this response to `route`.
 * False, and nothing changed, when `json` on this response is not Express's own: one set on the
 * response itself (a middleware's wrapper) or on an application's `app.response`, or no Express
 * at all (then the caller falls back to its own way).
 */
export function routeJson(res: ServerResponse, route: JsonRoute): boolean {
  if (Object.hasOwn(res, 'json')) return false
  let owner: object | null = Object.getPrototypeOf(res) as object | null
  while (owner !== null && !Object.hasOwn(owner, 'json'))
    owner = Object.getPrototypeOf(owner) as object | null
  if (owner === null || Object.getPrototypeOf(owner) !== ServerResponse.prototype) return false
  if (!hooked.has(owner)) {
    if (typeof (owner as { json: unknown }).json !== 'function') return false
    hook(owner as { json: JsonMethod })
  }
  routes.set(res, route)
  return true
}

/**
 * Forgets the route of a response whose reply went out. A WeakMap entry whose key is young keeps
 * that key, and all it reaches, through V8's young-generation collections until a full one (see
 * adapters/shared/principals.ts), so each response would be copied and promoted with its request;
 * once forgotten, `res.json` is Express's own again, as on any response.
 */
export function forgetJsonRoute(res: ServerResponse): void {
  routes.delete(res)
}

/** Whether `res.json` of this response is routed (for tests). */
export const hasJsonRoute = (res: ServerResponse): boolean => routes.has(res)

function hook(owner: { json: JsonMethod }): void {
  const json = owner.json
  hooked.add(owner)
  owner.json = function json_(this: ServerResponse, ...args: unknown[]): ServerResponse {
    const route = routes.get(this)
    return route === undefined ? json.apply(this, args) : route(this, args, json)
  }
}
