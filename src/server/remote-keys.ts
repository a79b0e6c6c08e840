/**
 * The access verification keys an auth server publishes (`/key/access`), for a resource server
 * that verifies access requests without holding the access key: like a JWKS client.
 *
 * The key list comes in a response envelope signed by the auth server's response key, which
 * the resource server pins, in a signing context of its own (`ACCESS_KEYS_SIGNING_CONTEXT`) that
 * no application reply uses; each fetch sends a fresh nonce the reply must echo. Known keys are
 * answered synchronously from the cache (no await on the hot path). A token naming an unknown
 * key triggers a fetch (at most one per `cooldownMs`); a list older than `maxAgeMs` is fetched
 * again in the background. When a fetch fails, the keys already known stay in use until their
 * published retirement.
 *
 *   const auth = createBetterAuth({
 *     keys: {
 *       response: process.env.RESOURCE_RESPONSE_KEY,
 *       accessKeySource: new RemoteAccessKeys({
 *         url: 'https://auth.example.com/key/access',
 *         responseKey: '1AAI…', // the auth server's response key, pinned
 *       }),
 *     },
 *   })
 */
import { isPublicKeyText } from '../codec/cesr'
import { parseTimestamp } from '../codec/timestamp'
import { NodeP256Verifier } from '../crypto/node'
import { RandomNoncer } from '../crypto/nonce'
import type { Noncer, Verifier } from '../crypto/types'
import { IncorrectNonceError, InvalidResponseError, InvalidSignatureError } from '../errors'
import { accessKeysSigningInput, parseEnvelope, type Envelope } from '../messages/envelope'
import { isObject } from '../messages/fields'
import type { AccessKeySource } from './keys'

export interface RemoteAccessKeysOptions {
  /** The auth server's access-keys endpoint, e.g. `https://auth.example.com/key/access`. */
  url: string
  /** The auth server's response public key (`1AAI…`), pinned: it must sign the key list. */
  responseKey: string
  /** How long a fetched list is used before it is fetched again in the background, ms. @default 300000 */
  maxAgeMs?: number
  /** Least time between two fetches, ms: unknown keys cannot make it fetch more often. @default 5000 */
  cooldownMs?: number
  /** Time limit of one fetch, ms. @default 5000 */
  timeoutMs?: number
  /** @default globalThis.fetch */
  fetch?: typeof fetch
  verifier?: Verifier
  noncer?: Noncer
  /** Receives fetch failures (the cached keys stay in use). @default ignore */
  onError?: (error: unknown) => void
  /** Clock, for tests. @default Date.now */
  now?: () => number
}

interface Published {
  publicKey?: unknown
  retireAt?: unknown
}

export class RemoteAccessKeys implements AccessKeySource {
  private keys = new Map<string, number>()
  private fetchedAt = -Infinity
  private attemptedAt = -Infinity
  private inflight: Promise<void> | undefined
  private readonly maxAgeMs: number
  private readonly cooldownMs: number
  private readonly timeoutMs: number
  private readonly fetcher: typeof fetch
  private readonly verifier: Verifier
  private readonly noncer: Noncer
  private readonly onError: (error: unknown) => void
  private readonly now: () => number

  constructor(private readonly options: RemoteAccessKeysOptions) {
    if (!isPublicKeyText(options.responseKey)) {
      throw new TypeError(`responseKey is not a qualified public key: ${options.responseKey}`)
    }
    this.maxAgeMs = options.maxAgeMs ?? 300_000
    this.cooldownMs = options.cooldownMs ?? 5000
    this.timeoutMs = options.timeoutMs ?? 5000
    this.fetcher = options.fetch ?? globalThis.fetch
    this.verifier = options.verifier ?? new NodeP256Verifier()
    this.noncer = options.noncer ?? new RandomNoncer()
    this.onError = options.onError ?? (() => undefined)
    this.now = options.now ?? Date.now
  }

  isTrusted(serverIdentity: string): boolean {
    const now = this.now()
    if (now - this.fetchedAt > this.maxAgeMs) this.refresh().catch(() => undefined)
    const until = this.keys.get(serverIdentity)
    return until !== undefined && until > now
  }

  /** Fetches the list unless a fetch is under way or one was made within `cooldownMs`. */
  refresh(): Promise<void> {
    if (this.inflight !== undefined) return this.inflight
    if (this.now() - this.attemptedAt < this.cooldownMs) return Promise.resolve()
    this.attemptedAt = this.now()
    this.inflight = this.fetchKeys()
      .catch(error => this.onError(error))
      .finally(() => (this.inflight = undefined))
    return this.inflight
  }

  /** Fetches the list now; rejects if it cannot (e.g. to check the setup at start). */
  async ready(): Promise<void> {
    this.attemptedAt = this.now()
    await this.fetchKeys()
  }

  /** The keys known now, with their retirement times (ms; Infinity: none). */
  known(): Map<string, number> {
    return new Map(this.keys)
  }

  /**
   * The list must be signed by the pinned response key in the key-list context over the exact
   * payload text (no re-serialized form), and echo this fetch's nonce. An ordinary signed reply of
   * the auth server does not verify here, whatever data it carries.
   */
  private async checkKeyList(envelope: Envelope, nonce: string): Promise<void> {
    const access = envelope.payload.access
    if (!isObject(access)) throw new InvalidResponseError('access keys: payload.access is missing')
    if (access.serverIdentity !== this.options.responseKey) {
      throw new InvalidResponseError('access keys: not signed by the pinned response key')
    }
    if (
      envelope.signature === undefined ||
      !(await this.verifier.verify(
        accessKeysSigningInput(envelope.text),
        envelope.signature,
        this.options.responseKey
      ))
    ) {
      throw new InvalidSignatureError('access key list')
    }
    if (access.nonce !== nonce) throw new IncorrectNonceError(nonce, access.nonce)
  }

  private async fetchKeys(): Promise<void> {
    const nonce = this.noncer.generate128()
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(), this.timeoutMs)
    let text: string
    try {
      const reply = await this.fetcher(this.options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ payload: { access: { nonce } } }),
        signal: controller.signal,
      })
      text = await reply.text()
      if (!reply.ok) throw new InvalidResponseError(`access keys: HTTP ${reply.status}`)
    } finally {
      clearTimeout(timer)
    }
    const envelope = parseEnvelope(text, { maxBodyBytes: 1 << 20 })
    await this.checkKeyList(envelope, nonce)
    const list = (envelope.payload.response as { accessKeys?: unknown } | undefined)?.accessKeys
    if (!Array.isArray(list)) throw new InvalidResponseError('access keys: list is missing')
    const keys = new Map<string, number>()
    for (const entry of list as Published[]) {
      if (!isPublicKeyText(entry?.publicKey)) {
        throw new InvalidResponseError('access keys: an entry has no valid publicKey')
      }
      const until = entry.retireAt === undefined ? Infinity : parseTimestamp(entry.retireAt)
      if (Number.isNaN(until)) throw new InvalidResponseError('access keys: invalid retireAt')
      keys.set(entry.publicKey, until)
    }
    this.keys = keys
    this.fetchedAt = this.now()
  }
}
