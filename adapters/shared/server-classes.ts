/**
 * Request and response classes for `http.createServer` (or `https.createServer`) that build each
 * request and response with an Express application's own prototypes (`app.request`,
 * `app.response`) from the start.
 *
 * Express gives every request and response its application's prototype as it enters the app
 * (`Object.setPrototypeOf` in `app.handle`, or in Express 4's `init` middleware). Changing an
 * object's prototype after it was built gives it a layout of its own in V8: every property read
 * or added afterwards on that request or response misses V8's inline caches, and the young
 * generation keeps far more of each request alive (docs/performance.md, "Deployment advice").
 * When the server already built the object with that prototype, Express's call changes nothing.
 * The idea is expressjs/express#5998's; Express itself offers no option for it and no package
 * does, hence this file.
 *
 * A request that enters a mounted sub-application still gets that sub-application's prototype
 * from Express, as before: only the top application's is given from the start.
 */
import { IncomingMessage, ServerResponse, type ServerOptions } from 'node:http'

/** The prototypes built here: the requests and responses whose layout their server gave them. */
const built = new WeakSet<object>()

/** Whether `prototype` is one this module's classes build their objects with. */
export const isBuiltPrototype = (prototype: object): boolean => built.has(prototype)

/**
 * A constructor that builds what `base` builds, with `prototype` as the new object's prototype.
 * `prototype` must inherit from `base.prototype` (as `app.request` does from IncomingMessage's).
 */
export function withPrototype<C extends abstract new (...args: never[]) => object>(
  base: C,
  prototype: object,
  what: string
): C {
  if (!Object.prototype.isPrototypeOf.call(base.prototype, prototype)) {
    throw new TypeError(`${what} does not inherit from ${base.name}.prototype`)
  }
  // Node's constructors are plain functions, called on the new object as a subclass would. Were
  // one a class, `Reflect.construct` with this function as the new target does the same; it is
  // not the usual path: Express's protected route cost 690 µs of CPU per request with it against
  // 362 with this call (two servers side by side, alternating rounds, this machine).
  const isClass = /^class\b/.test(Function.prototype.toString.call(base))
  const construct = base as unknown as (this: unknown, a: unknown, b: unknown) => void
  function Built(this: unknown, a: unknown, b: unknown): unknown {
    if (isClass) return Reflect.construct(base, [a, b], new.target)
    construct.call(this, a, b)
    return this
  }
  Built.prototype = prototype
  built.add(prototype)
  return Built as unknown as C
}

/** What `app.request` and `app.response` are on an Express application (4 or 5). */
export interface ExpressPrototypes {
  request: object
  response: object
}

/**
 * `{ IncomingMessage, ServerResponse }` for `http.createServer(options, app)`: see the file's
 * comment. Throws TypeError when `app.request` or `app.response` is not an Express application's.
 */
export function expressServerOptions(
  app: ExpressPrototypes
): Required<Pick<ServerOptions, 'IncomingMessage' | 'ServerResponse'>> {
  const request = (app as { request?: unknown }).request
  const response = (app as { response?: unknown }).response
  if (
    typeof request !== 'object' ||
    request === null ||
    typeof response !== 'object' ||
    response === null
  ) {
    throw new TypeError(
      'expressServerOptions needs an Express application (app.request, app.response)'
    )
  }
  return {
    IncomingMessage: withPrototype(IncomingMessage, request, 'app.request'),
    ServerResponse: withPrototype(ServerResponse, response, 'app.response'),
  }
}
