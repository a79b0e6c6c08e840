/**
 * The principal of each request object, found by every helper whatever property name the app
 * configured (`requestProperty`). Kept on the object itself under a private symbol where that is
 * cheap, in a WeakMap otherwise.
 *
 * Written here rather than a plain WeakMap because a WeakMap whose keys are short-lived objects
 * costs V8's young-generation collector: its entries keep their values through scavenges, so each
 * request's principal was copied and promoted. On the standalone server, keeping the principal on
 * node's request instead took the survivors of a scavenge from 353 to 221 KB, and GC from 7.4 to
 * 4.5 µs per protected request (docs/performance.md, change 17).
 *
 * A property is cheap on an object its constructor built (node's IncomingMessage, a fetch
 * Request, Fastify's request): V8 shares its layout with every other such object. It is not on an
 * object whose prototype was swapped afterwards (Express sets its own on every request and
 * response, and each property then copies the object's layout, ~3 µs), nor on one made by
 * `Object.create` (Koa's context): those, and objects that cannot take a property, use the WeakMap.
 * Express's requests and responses are built with their own prototype when the server was made
 * with `expressServerOptions(app)` (adapters/shared/server-classes.ts): those take the property.
 */
import type { AccessPrincipal } from '../../src/server/core'
import { isBuiltPrototype } from './server-classes'

type Principal = AccessPrincipal<unknown, unknown>

const PRINCIPAL = Symbol('betterAuth.principal')
type Holder = { [PRINCIPAL]?: Principal }

const byObject = new WeakMap<object, Principal>()

/** Whether `key` is an extensible object built by its own constructor (see above). */
function ownLayout(key: object): boolean {
  const prototype: unknown = Object.getPrototypeOf(key)
  if (prototype === null || !Object.isExtensible(key)) return false
  const constructor: unknown = (prototype as { constructor?: unknown }).constructor
  if (typeof constructor === 'function' && constructor.prototype === prototype) return true
  return isBuiltPrototype(prototype as object)
}

export const principals = {
  get(key: object): Principal | undefined {
    return (key as Holder)[PRINCIPAL] ?? byObject.get(key)
  },
  set(key: object, principal: Principal): void {
    if (ownLayout(key)) (key as Holder)[PRINCIPAL] = principal
    else byObject.set(key, principal)
  },
}
