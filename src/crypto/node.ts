/**
 * P-256 on node:crypto (OpenSSL). Public keys are parsed once into `KeyObject`s and cached,
 * which is what makes verification fast: parsing dominates a single verify.
 */
import * as nodeCrypto from 'node:crypto'
import {
  ECDH,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as nodeSign,
  verify as nodeVerify,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto'
import { availableParallelism } from 'node:os'
import { performance } from 'node:perf_hooks'
import { LRUCache } from 'lru-cache'
import { decodePublicKey, decodeSignature, encodePublicKey, encodeSignature } from '../codec/cesr'
import type { SigningKey, Verifier } from './types'

interface OneShotHash {
  (algorithm: string, data: Uint8Array, encoding: 'buffer'): Buffer
  (algorithm: string, data: Uint8Array, encoding: 'base64'): string
}

/**
 * node:crypto's one-shot `hash()` (Node ≥ 20.12) when it returns bytes: it makes no `Hash`
 * object, so no handle for the GC to finalize; ~0.5–0.9 µs for a short body against ~3–4 µs for
 * `createHash().update().digest()` here. Read through the namespace, so an older Node without it
 * loads this module and falls back.
 */
const oneShot = ((): OneShotHash | undefined => {
  const hash = (nodeCrypto as { hash?: OneShotHash }).hash
  try {
    const probe = hash?.('sha256', new Uint8Array(0), 'buffer')
    return probe instanceof Uint8Array && probe.length === 32 ? hash : undefined
  } catch {
    return undefined
  }
})()

/** SHA-256 on node:crypto (for `Content-Digest` on the server). */
export const sha256: (bytes: Uint8Array) => Uint8Array =
  oneShot === undefined
    ? bytes => createHash('sha256').update(bytes).digest()
    : bytes => oneShot('sha256', bytes, 'buffer')

/**
 * SHA-256 on node:crypto as base64 text, what `Content-Digest` carries: one-shot `hash()` gives
 * the text itself, ~0.4 µs for a short body against ~1.3 µs for its bytes and then their base64
 * (the `'buffer'` encoding is not on its fast path in Node 20–24, and it makes a Buffer).
 */
export const sha256Base64: (bytes: Uint8Array) => string =
  oneShot === undefined
    ? bytes => createHash('sha256').update(bytes).digest('base64')
    : bytes => oneShot('sha256', bytes, 'base64')

/**
 * The uncompressed point (`04 ‖ x ‖ y`) of a qualified public key, or undefined if it is not a
 * point on P-256. `ECDH.convertKey` decompresses and checks that the point is on the curve
 * (P-256 has cofactor 1, so that is membership of the group) in ~25 µs, where importing the
 * compressed key as a KeyObject costs ~120 µs in OpenSSL 3.
 */
export function uncompressedPoint(publicKey: string): Buffer | undefined {
  const compressed = decodePublicKey(publicKey)
  if (compressed === undefined) return undefined
  try {
    return ECDH.convertKey(compressed, 'prime256v1', undefined, undefined, 'uncompressed') as Buffer
  } catch {
    return undefined
  }
}

/** A KeyObject for an uncompressed P-256 point (JWK import: ~70 µs, the cheapest path). */
function pointKeyObject(point: Buffer): KeyObject {
  return createPublicKey({
    key: {
      kty: 'EC',
      crv: 'P-256',
      x: point.subarray(1, 33).toString('base64url'),
      y: point.subarray(33, 65).toString('base64url'),
    },
    format: 'jwk',
  })
}

/** Parses a qualified public key into a KeyObject, or undefined if it is not a P-256 point. */
export function publicKeyObject(publicKey: string): KeyObject | undefined {
  const point = uncompressedPoint(publicKey)
  if (point === undefined) return undefined
  try {
    return pointKeyObject(point)
  } catch {
    return undefined
  }
}

/** Compresses the public half of a P-256 key object and qualifies it (`1AAI…`). */
export function qualifiedPublicKey(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' })
  if (jwk.crv !== 'P-256' || jwk.x === undefined || jwk.y === undefined) {
    throw new TypeError('expected a P-256 key')
  }
  const x = Buffer.from(jwk.x, 'base64url')
  const y = Buffer.from(jwk.y, 'base64url')
  const compressed = new Uint8Array(33)
  compressed[0] = ((y[31] as number) & 1) === 0 ? 2 : 3
  compressed.set(x, 33 - x.length)
  return encodePublicKey(compressed)
}

export interface NodeVerifierOptions {
  /** How many parsed public keys to keep. @default 10000 */
  cacheSize?: number
}

/** A cached public key: its checked point, and its KeyObject once a signature needed it. */
interface CachedKey {
  point: Buffer
  key?: KeyObject
}

/** What the cache keeps for a text that is not a P-256 point. */
const NOT_A_POINT = Object.freeze({}) as CachedKey

/**
 * ECDSA P-256 verification on node:crypto with a bounded cache of parsed keys. Checking a key
 * (`isValidPublicKey`) only validates the point; the KeyObject is made when a signature is
 * first verified with it, so a key that is only checked (an access key at createSession) never
 * pays for one.
 */
export class NodeP256Verifier implements Verifier {
  private readonly cache: LRUCache<string, CachedKey>

  constructor(options: NodeVerifierOptions = {}) {
    this.cache = new LRUCache({ max: Math.max(1, options.cacheSize ?? 10_000) })
  }

  private entry(publicKey: string): CachedKey | undefined {
    let entry = this.cache.get(publicKey)
    if (entry === undefined) {
      const point = uncompressedPoint(publicKey)
      entry = point === undefined ? NOT_A_POINT : { point }
      this.cache.set(publicKey, entry)
    }
    return entry === NOT_A_POINT ? undefined : entry
  }

  /** The parsed key (cached), or undefined if `publicKey` is not a P-256 point. */
  keyObject(publicKey: string): KeyObject | undefined {
    const entry = this.entry(publicKey)
    if (entry === undefined) return undefined
    if (entry.key === undefined) {
      try {
        entry.key = pointKeyObject(entry.point)
      } catch {
        this.cache.set(publicKey, NOT_A_POINT)
        return undefined
      }
    }
    return entry.key
  }

  isValidPublicKey(publicKey: string): boolean {
    return this.entry(publicKey) !== undefined
  }

  verify(message: Uint8Array, signature: string, publicKey: string): boolean {
    const rs = decodeSignature(signature)
    return rs !== undefined && this.verifyRaw(message, rs, publicKey)
  }

  /** `verify` of a raw signature (r ‖ s, 64 bytes), as RFC 9421 carries it. */
  verifyRaw(message: Uint8Array, rs: Uint8Array, publicKey: string): boolean {
    const key = this.keyObject(publicKey)
    if (key === undefined || rs.length !== 64) return false
    try {
      return nodeVerify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, rs)
    } catch {
      return false
    }
  }
}

/**
 * Where the server's ECDSA P-256 operations (node:crypto) run:
 *
 * - `'threadpool'`: on libuv's threadpool, off the event loop. Each hand-over costs CPU: in
 *   isolation ~15–25 µs on the event loop to make the job and take its result back, and more on
 *   the pool's thread (a verify 89–132 µs of CPU in all against 62 on the calling thread, a
 *   signature 52–68 against 31). Under saturation it is the cheaper placement all the same (a
 *   session flow 458–672 µs against 566–791 inline, same hour): one process uses a second core,
 *   and the pool's thread, doing nothing but ECDSA, likely keeps its caches warm for it.
 * - `'inline'`: on the calling thread. No hand-over: a protected request sent one at a time cost
 *   252–255 µs of CPU against 293–341 on the threadpool, and answers sooner.
 * - `'auto'` (the default): inline while the event loop has room, on the threadpool while it is
 *   busy (its utilization over the last 100 ms above 85 %, back below 50 %): the light-load
 *   figure of the one and the saturated figure of the other. Always inline on one CPU.
 */
export type EcdsaPlacement = 'auto' | 'threadpool' | 'inline'

/** Decides, per operation, whether ECDSA goes to the threadpool (see EcdsaPlacement). */
export interface EcdsaScheduler {
  readonly placement: EcdsaPlacement
  /** Whether the next operation goes to the threadpool. */
  offload(): boolean
}

const ECDSA_PLACEMENTS: readonly EcdsaPlacement[] = ['auto', 'threadpool', 'inline']

/** Whether `value` names an EcdsaPlacement. */
export const isEcdsaPlacement = (value: unknown): value is EcdsaPlacement =>
  ECDSA_PLACEMENTS.includes(value as EcdsaPlacement)

const ALWAYS: EcdsaScheduler = { placement: 'threadpool', offload: () => true }
const NEVER: EcdsaScheduler = { placement: 'inline', offload: () => false }

/** The window over which `'auto'` reads the event loop's utilization, ms. */
const AUTO_WINDOW_MS = 100
/** `'auto'` moves ECDSA to the threadpool above this utilization… */
const AUTO_BUSY = 0.85
/** …and back to the event loop below this one (with the crypto gone, the loop looks idler). */
const AUTO_IDLE = 0.5

/**
 * `'auto'`: the event loop's utilization (node:perf_hooks, the loop's own idle-time accounting)
 * over the last window, read at most once a window when an operation asks, so no timer runs.
 * One per process: the event loop and the threadpool are the process's.
 */
class LoopLoad implements EcdsaScheduler {
  readonly placement = 'auto'
  private busy = false
  private at = performance.now()
  private mark = performance.eventLoopUtilization()

  offload(): boolean {
    const now = performance.now()
    if (now - this.at >= AUTO_WINDOW_MS) {
      const { utilization } = performance.eventLoopUtilization(this.mark)
      this.mark = performance.eventLoopUtilization()
      this.at = now
      this.busy = utilization > (this.busy ? AUTO_IDLE : AUTO_BUSY)
    }
    return this.busy
  }
}

let loopLoad: LoopLoad | undefined

/** The scheduler for `placement` (see EcdsaPlacement). */
export function ecdsaScheduler(placement: EcdsaPlacement = 'auto'): EcdsaScheduler {
  if (placement === 'inline') return NEVER
  if (placement === 'threadpool') return ALWAYS
  if (availableParallelism() < 2) return NEVER
  loopLoad ??= new LoopLoad()
  return loopLoad
}

/**
 * Signs `message` with `key`: a node:crypto key on this thread unless `scheduler` offloads it,
 * any other key (a KMS, a browser key) as it signs. The signature as CESR text.
 */
export async function signPlaced(
  key: SigningKey,
  message: Uint8Array,
  scheduler: EcdsaScheduler
): Promise<string> {
  if (key instanceof NodeSigningKey && !scheduler.offload()) return key.signSync(message)
  return key.sign(message)
}

/**
 * `signPlaced`, giving the raw signature (r ‖ s, 64 bytes) as RFC 9421 carries it: its
 * standard base64 (a byte sequence's content), or undefined when the key's signature is not a
 * P-256 one. The promise settles with a string, not node's Buffer: settling one with an object
 * first looks up `then` on it, through a Buffer's four prototypes (~0.3 µs a reply by `perf`),
 * and the reply needs the text anyway. Not an async function: that would add a promise.
 */
export function signBase64Placed(
  key: SigningKey,
  message: Uint8Array,
  scheduler: EcdsaScheduler
): Promise<string | undefined> {
  if (!(key instanceof NodeSigningKey)) {
    return key.sign(message).then(text => {
      const raw = decodeSignature(text)
      return raw === undefined ? undefined : base64Of(raw)
    })
  }
  try {
    if (!scheduler.offload()) return Promise.resolve(base64Of(key.signRawSync(message)))
    return signOnPool(key.privateKey, message, toBase64)
  } catch (error) {
    return Promise.reject(error as Error)
  }
}

const toBase64 = (rs: Buffer): string => rs.toString('base64')

/**
 * ECDSA P-256 with SHA-256 by `privateKey` on libuv's threadpool (node:crypto's callback form),
 * the raw signature (r ‖ s, 64 bytes) handed to `encode` there: the promise settles with what
 * `encode` makes of it, so a caller that wants text is not settled with a Buffer first.
 */
function signOnPool<T>(
  privateKey: KeyObject,
  message: Uint8Array,
  encode: (rs: Buffer) => T
): Promise<T> {
  return new Promise((resolve, reject) => {
    nodeSign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' }, (error, rs) =>
      error === null ? resolve(encode(rs)) : reject(error)
    )
  })
}

/** Standard base64 of bytes (a Buffer over them, not a copy). */
export const base64Of = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')

/**
 * ECDSA P-256 verification on libuv's threadpool (node:crypto's callback form) or on the calling
 * thread, as its scheduler says (see EcdsaPlacement; `'threadpool'` unless given): on the pool,
 * signatures are checked off the event loop, so under load they run on other cores while the
 * loop parses and answers other requests. Parsed keys are cached as in NodeP256Verifier. The
 * server's default, with the `'auto'` scheduler.
 */
export class ThreadpoolP256Verifier implements Verifier {
  private readonly keys: NodeP256Verifier
  private readonly scheduler: EcdsaScheduler

  constructor(options: NodeVerifierOptions & { scheduler?: EcdsaScheduler } = {}) {
    this.keys = new NodeP256Verifier(options)
    this.scheduler = options.scheduler ?? ALWAYS
  }

  isValidPublicKey(publicKey: string): boolean {
    return this.keys.isValidPublicKey(publicKey)
  }

  verify(message: Uint8Array, signature: string, publicKey: string): Promise<boolean> {
    const rs = decodeSignature(signature)
    return rs === undefined ? Promise.resolve(false) : this.verifyRaw(message, rs, publicKey)
  }

  /** `verify` of a raw signature (r ‖ s, 64 bytes), as RFC 9421 carries it. */
  verifyRaw(message: Uint8Array, rs: Uint8Array, publicKey: string): Promise<boolean> {
    if (!this.scheduler.offload())
      return Promise.resolve(this.keys.verifyRaw(message, rs, publicKey))
    const key = this.keys.keyObject(publicKey)
    if (key === undefined || rs.length !== 64) return Promise.resolve(false)
    return new Promise(resolve => {
      try {
        nodeVerify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, rs, (error, valid) =>
          resolve(error === null && valid)
        )
      } catch {
        resolve(false)
      }
    })
  }
}

/** A P-256 signing key held in process memory (node:crypto). */
export class NodeSigningKey implements SigningKey {
  readonly publicKeyText: string

  constructor(readonly privateKey: KeyObject) {
    if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ec') {
      throw new TypeError('expected an EC private key')
    }
    this.publicKeyText = qualifiedPublicKey(createPublicKey(privateKey))
  }

  static generate(): NodeSigningKey {
    // The pair comes back as a JWK and is imported as a new key, on purpose: on Node 20, reading
    // a freshly generated KeyObject (the JWK export in the constructor) can deadlock when a
    // garbage collection in the middle of it finalizes the generation job, which takes the
    // key's lock again. A key imported from the JWK has its own lock and no job behind it.
    // (@types/node lacks the 'jwk' overload of generateKeyPairSync.)
    const generate = generateKeyPairSync as unknown as (
      type: 'ec',
      options: object
    ) => { privateKey: JsonWebKey }
    const { privateKey } = generate('ec', {
      namedCurve: 'P-256',
      privateKeyEncoding: { format: 'jwk' },
      publicKeyEncoding: { format: 'jwk' },
    })
    return new NodeSigningKey(createPrivateKey({ key: privateKey, format: 'jwk' }))
  }

  /** From a PKCS#8 or SEC1 PEM, or a private JWK (object or JSON text). */
  static from(input: string | JsonWebKey | KeyObject): NodeSigningKey {
    if (typeof input === 'object' && 'asymmetricKeyType' in input) {
      return new NodeSigningKey(input as KeyObject)
    }
    if (typeof input === 'string') {
      const text = input.trim()
      if (text.startsWith('{')) {
        return NodeSigningKey.from(JSON.parse(text) as JsonWebKey)
      }
      return new NodeSigningKey(createPrivateKey({ key: text, format: 'pem' }))
    }
    return new NodeSigningKey(createPrivateKey({ key: input as JsonWebKey, format: 'jwk' }))
  }

  publicKey(): Promise<string> {
    return Promise.resolve(this.publicKeyText)
  }

  signSync(message: Uint8Array): string {
    return encodeSignature(this.signRawSync(message))
  }

  /** `signSync`, giving the raw signature (r ‖ s, 64 bytes). */
  signRawSync(message: Uint8Array): Uint8Array {
    return nodeSign('sha256', message, { key: this.privateKey, dsaEncoding: 'ieee-p1363' })
  }

  /** Signs on libuv's threadpool, off the event loop (`signSync` signs on the calling thread). */
  sign(message: Uint8Array): Promise<string> {
    return signOnPool(this.privateKey, message, encodeSignature)
  }

  /** `sign`, giving the raw signature (r ‖ s, 64 bytes) as RFC 9421 carries it. */
  signRaw(message: Uint8Array): Promise<Uint8Array> {
    return signOnPool(this.privateKey, message, rs => rs)
  }

  /** PKCS#8 PEM of the private key (keep it secret). */
  toPem(): string {
    return this.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
  }

  /** Private JWK (keep it secret). */
  toJwk(): JsonWebKey {
    return this.privateKey.export({ format: 'jwk' })
  }
}
