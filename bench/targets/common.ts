/**
 * What every benchmark target shares: the core built from the keys the runner passes in the
 * environment, the protected handler, and the bare handler's reply of the same size.
 */
import { createServer, type RequestListener, type ServerOptions } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  createBetterAuth,
  createMetrics,
  MemoryStore,
  type BetterAuthServer,
  type EcdsaPlacement,
} from '../../src'

export const BARE_PATH = '/bare'
export const PROTECTED_PATH = '/foo/bar'

export interface Attributes {
  permissionsByRole: Record<string, string[]>
}

export interface FooBar {
  foo?: unknown
  bar?: unknown
}

/** What a running target offers the runner. */
export interface Running {
  /** The port it listens on (the runner may ask for port 0). */
  port: number
  close(): Promise<void>
  /** Extra numbers for the memory report (e.g. live nonces in the store). */
  stats?(): Record<string, number>
  /**
   * Other servers in the same process, by name, with their ports (the standalone server's twin
   * with metrics on): compared in alternating slices, their CPU is read from the same process.
   */
  twins?: Record<string, number>
  /** Closes the twins (their stores are freed before the phases that do not use them). */
  closeTwins?(): Promise<void>
}

export type Start = (port: number) => Promise<Running>

const silent = {
  error: (object: object, message?: string) => console.error(message, object),
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
}

/**
 * Where the servers' ECDSA runs (`crypto.ecdsa`): BENCH_ECDSA, by default the server's default,
 * `auto` (under the benchmark's load: the threadpool). The node group also measures the
 * standalone server with `inline` in the same process (a twin).
 */
export const BENCH_ECDSA = (process.env.BENCH_ECDSA ?? 'auto') as EcdsaPlacement

/**
 * The core as every target builds it: keys from BETTER_AUTH_RESPONSE_KEY / BETTER_AUTH_ACCESS_KEY
 * (set by the runner, so a token minted by one target verifies on all), the default memory store;
 * with `metrics`, prom-client metrics (`createMetrics()`) recorded as in production; ECDSA
 * placed by `ecdsa`, else BENCH_ECDSA.
 */
export function benchAuth(options: { metrics?: boolean; ecdsa?: EcdsaPlacement } = {}): {
  auth: BetterAuthServer<Attributes>
  store: MemoryStore
} {
  const store = new MemoryStore()
  const auth = createBetterAuth<Attributes>({
    store,
    logger: silent,
    // One address sends everything; the default per-IP limits would answer most of it with 429.
    rateLimit: false,
    crypto: { ecdsa: options.ecdsa ?? BENCH_ECDSA },
    attributes: () => ({ permissionsByRole: { admin: ['read', 'write'] } }),
    // bench/instructions.ts runs the server under valgrind, tens of times slower: its requests,
    // signed before they are sent, need a longer window than the default 30 s.
    ...(process.env.BENCH_ACCESS_WINDOW === undefined
      ? {}
      : { lifetimes: { accessWindow: Number(process.env.BENCH_ACCESS_WINDOW) } }),
    ...(options.metrics === true ? { metrics: createMetrics() } : {}),
  })
  return { auth, store }
}

export function storeStats(store: MemoryStore): Record<string, number> {
  return {
    accessNonces: store.accessNonces.map.size,
    challenges: store.challenges.map.size,
    refreshKeys: store.refreshKeys.map.size,
  }
}

/** The protected route's answer. */
export function fooBar(request: FooBar): { wasFoo: unknown; wasBar: unknown } {
  return { wasFoo: request.foo, wasBar: request.bar }
}

// A placeholder server identity and signature of the real lengths (48 and 88 characters).
const IDENTITY = '1AAI' + 'B'.repeat(44)
const SIGNATURE = '0I' + 'C'.repeat(86)

interface Parsed {
  payload?: { access?: { nonce?: unknown }; request?: FooBar }
}

/**
 * The bare route's answer to a parsed access-request body: an unsigned envelope of exactly the
 * shape and size of the protected route's signed one.
 */
export function bareEnvelope(body: unknown): object {
  const payload = (body as Parsed).payload
  return {
    payload: {
      access: { nonce: payload?.access?.nonce, serverIdentity: IDENTITY },
      response: fooBar(payload?.request ?? {}),
    },
    signature: SIGNATURE,
  }
}

/**
 * The header form's three reply fields with placeholder values of the real lengths (a response
 * `Signature-Input` with a `keyid`, a 64-byte signature, a SHA-256 `Content-Digest`), for the
 * bare server: what node:http itself charges for sending them, with no signing or digest.
 */
export const BARE_SIGNATURE_FIELDS: Readonly<Record<string, string>> = {
  'content-digest': `sha-256=:${'D'.repeat(43)}=:`,
  'signature-input':
    'ba=("@status" "content-digest" "signature";req;key="ba");created=1796288404;' +
    `keyid="${IDENTITY}";alg="ecdsa-p256-sha256";tag="better-auth-response"`,
  signature: `ba=:${'S'.repeat(86)}==:`,
}

/**
 * Serves a framework's request handler (an Express app, Koa's `app.callback()`) on node:http at
 * 127.0.0.1:`port`; closing stops the server, then the core.
 */
export async function serve(
  handler: RequestListener,
  port: number,
  { auth, store }: { auth: BetterAuthServer<Attributes>; store: MemoryStore },
  options: ServerOptions = {}
): Promise<Running> {
  const server = createServer(options, handler)
  await new Promise<void>(resolve => server.listen(port, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      await new Promise(resolve => server.close(resolve))
      await auth.close()
    },
    stats: () => storeStats(store),
  }
}
