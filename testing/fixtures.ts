/** What the shipped suites build their requests and servers from: a clock, a core, messages. */
import { formatTimestamp } from '../src/codec/timestamp'
import { Blake3Hasher } from '../src/crypto/blake3'
import type { NodeSigningKey } from '../src/crypto/node'
import { RandomNoncer } from '../src/crypto/nonce'
import { createBetterAuth, type BetterAuthOptions, type BetterAuthServer } from '../src/server/core'
import { MemoryStore } from '../src/stores/memory'

const hasher = new Blake3Hasher()
const noncer = new RandomNoncer()
export const hash = (text: string): string => hasher.sum(text)
export const nonce = (): string => noncer.generate128()

/** The session attributes of the contract's app (the conformance routes' roles). */
export interface Attributes {
  permissionsByRole: Record<string, string[]>
}

export const ATTRIBUTES: Attributes = { permissionsByRole: { admin: ['read', 'write'] } }

/** A controllable clock. */
export class Clock {
  constructor(public ms = Date.now()) {}
  now = (): number => this.ms
  advance(seconds: number): void {
    this.ms += seconds * 1000
  }
}

/** A core on a memory store and a controllable clock, logging nothing. */
export interface ContractServer {
  auth: BetterAuthServer<Attributes>
  store: MemoryStore
  clock: Clock
}

export function makeContractServer(options: BetterAuthOptions<Attributes> = {}): ContractServer {
  const clock = new Clock()
  const store = new MemoryStore({ now: clock.now, sweepIntervalMs: 0 })
  const silent = () => undefined
  const auth = createBetterAuth<Attributes>({
    store,
    now: clock.now,
    attributes: () => ATTRIBUTES,
    keys: { env: false },
    logger: { error: silent, warn: silent, info: silent, debug: silent },
    ...options,
  })
  return { auth, store, clock }
}

/** `{"payload":…,"signature":…}` signed over the exact payload text. */
export function signed(payload: unknown, key: NodeSigningKey): string {
  const text = JSON.stringify(payload)
  return `{"payload":${text},"signature":"${key.signSync(Buffer.from(text))}"}`
}

/** An access request body for `token`, signed by `key`. */
export function accessBody(
  token: string,
  key: NodeSigningKey,
  options: { at?: number; nonce?: string; request?: unknown; timestamp?: string } = {}
): string {
  return signed(
    {
      access: {
        nonce: options.nonce ?? nonce(),
        timestamp: options.timestamp ?? formatTimestamp(options.at ?? Date.now()),
        token,
      },
      request: options.request ?? { foo: 'bar', bar: 'foo' },
    },
    key
  )
}
