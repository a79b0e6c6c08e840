/**
 * Client crypto on web APIs only (`crypto.subtle`, `crypto.getRandomValues`) and @noble/hashes'
 * BLAKE3: it runs unchanged in browsers, Web Workers and Node ≥ 20.
 *
 * Signing keys are WebCrypto ECDSA P-256 keys, generated non-extractable by default: the private
 * key can sign but no script can read it, and a browser can keep it in IndexedDB as it is.
 */
import { blake3 } from '@noble/hashes/blake3'
import { fromBase64Url, toBase64Url, utf8 } from '../codec/bytes'
import {
  qualifyHash,
  qualifyNonce,
  qualifyPublicKey,
  qualifySignature,
  unqualifyPublicKey,
  unqualifySignature,
} from '../codec/qualified'
import type { Hasher, Noncer, SigningKey, Verifier } from '../crypto/types'

const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const
const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const

/** `crypto.subtle`, or a clear error where the platform has none (e.g. an insecure origin). */
export function subtle(): SubtleCrypto {
  const value = globalThis.crypto?.subtle
  if (value === undefined) {
    throw new Error(
      'crypto.subtle is not available (browsers offer it only in secure contexts: https or localhost)'
    )
  }
  return value
}

/** True where WebCrypto signing keys can be used. */
export const hasWebCrypto = (): boolean => globalThis.crypto?.subtle !== undefined

/** A view whose buffer is a plain ArrayBuffer, as WebCrypto's typings ask. */
const bytes = (data: Uint8Array): Uint8Array<ArrayBuffer> => data as Uint8Array<ArrayBuffer>

/** BLAKE3-256 over the UTF-8 bytes of a string, qualified as `E…`. */
export class Blake3Hasher implements Hasher {
  sum(text: string): string {
    return qualifyHash(blake3(utf8(text)))
  }
}

/** 128-bit nonces from `crypto.getRandomValues`, drawn 4 KiB at a time. */
export class RandomNoncer implements Noncer {
  private readonly pool = new Uint8Array(4096)
  private offset = 4096

  generate128(): string {
    if (this.offset === this.pool.length) {
      globalThis.crypto.getRandomValues(this.pool)
      this.offset = 0
    }
    const nonce = this.pool.slice(this.offset, this.offset + 16)
    this.offset += 16
    return qualifyNonce(nonce)
  }
}

// ------------------------------------------------------------------ P-256 points

const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn

function modPow(base: bigint, exponent: bigint): bigint {
  let result = 1n
  let b = base % P
  let e = exponent
  while (e > 0n) {
    if (e & 1n) result = (result * b) % P
    b = (b * b) % P
    e >>= 1n
  }
  return result
}

function toBigInt(data: Uint8Array): bigint {
  let n = 0n
  for (const byte of data) n = (n << 8n) | BigInt(byte)
  return n
}

function toBytes32(n: bigint): Uint8Array {
  const out = new Uint8Array(32)
  for (let i = 31; i >= 0; i--) {
    out[i] = Number(n & 0xffn)
    n >>= 8n
  }
  return out
}

/**
 * The uncompressed point (`04 ‖ x ‖ y`, 65 bytes) of a SEC1 compressed P-256 point, or undefined
 * if it is not on the curve. y² = x³ − 3x + b, and as p ≡ 3 (mod 4) a square root of a residue
 * r is r^((p+1)/4).
 */
export function decompressPoint(compressed: Uint8Array): Uint8Array | undefined {
  if (compressed.length !== 33 || (compressed[0] !== 2 && compressed[0] !== 3)) return undefined
  const x = toBigInt(compressed.subarray(1))
  if (x >= P) return undefined
  const rhs = (((x * x) % P) * x - 3n * x + B + 3n * P) % P
  let y = modPow(rhs, (P + 1n) / 4n)
  if ((y * y) % P !== rhs) return undefined
  if (Number(y & 1n) !== (compressed[0] & 1)) y = (P - y) % P
  const point = new Uint8Array(65)
  point[0] = 4
  point.set(compressed.subarray(1), 1)
  point.set(toBytes32(y), 33)
  return point
}

/** The SEC1 compressed form of an uncompressed point (`04 ‖ x ‖ y`). */
export function compressPoint(point: Uint8Array): Uint8Array {
  if (point.length !== 65 || point[0] !== 4) throw new TypeError('expected an uncompressed point')
  const compressed = new Uint8Array(33)
  compressed[0] = ((point[64] as number) & 1) === 0 ? 2 : 3
  compressed.set(point.subarray(1, 33), 1)
  return compressed
}

/** The qualified public key (`1AAI…`) of a WebCrypto ECDSA P-256 public key. */
export async function qualifiedCryptoKey(publicKey: CryptoKey): Promise<string> {
  const raw = new Uint8Array(await subtle().exportKey('raw', publicKey))
  return qualifyPublicKey(compressPoint(raw))
}

// ------------------------------------------------------------------ verifier

/**
 * ECDSA P-256 / SHA-256 verification on WebCrypto. Qualified keys are decompressed here (WebCrypto
 * imports only uncompressed points) and the imported keys are cached.
 */
export class WebCryptoVerifier implements Verifier {
  private readonly keys = new Map<string, Promise<CryptoKey | undefined>>()

  constructor(private readonly cacheSize = 256) {}

  isValidPublicKey(publicKey: string): boolean {
    const compressed = unqualifyPublicKey(publicKey)
    return compressed !== undefined && decompressPoint(compressed) !== undefined
  }

  private key(publicKey: string): Promise<CryptoKey | undefined> {
    let key = this.keys.get(publicKey)
    if (key === undefined) {
      const compressed = unqualifyPublicKey(publicKey)
      const point = compressed && decompressPoint(compressed)
      key =
        point === undefined
          ? Promise.resolve(undefined)
          : subtle()
              .importKey('raw', bytes(point), ECDSA_P256, false, ['verify'])
              .catch(() => undefined)
      if (this.keys.size >= this.cacheSize) this.keys.clear()
      this.keys.set(publicKey, key)
    }
    return key
  }

  async verify(message: Uint8Array, signature: string, publicKey: string): Promise<boolean> {
    const rs = unqualifySignature(signature)
    const key = await this.key(publicKey)
    if (key === undefined || rs === undefined) return false
    try {
      return await subtle().verify(ECDSA_SHA256, key, bytes(rs), bytes(message))
    } catch {
      return false
    }
  }
}

// ------------------------------------------------------------------ signing keys

export interface GenerateOptions {
  /**
   * Whether the private key can be exported (needed only for a recovery key shown to its owner).
   * @default false
   */
  extractable?: boolean
}

/** An ECDSA P-256 signing key held by WebCrypto. */
export class WebCryptoSigningKey implements SigningKey {
  /**
   * @param privateKey a WebCrypto ECDSA P-256 private key with the `sign` usage
   * @param publicKeyText its qualified public key (`1AAI…`)
   */
  constructor(
    readonly privateKey: CryptoKey,
    readonly publicKeyText: string
  ) {
    const algorithm = privateKey.algorithm as EcKeyAlgorithm
    if (
      privateKey.type !== 'private' ||
      algorithm.name !== 'ECDSA' ||
      algorithm.namedCurve !== 'P-256'
    ) {
      throw new TypeError('expected an ECDSA P-256 private CryptoKey')
    }
  }

  /** A new key pair; the private key is non-extractable unless asked otherwise. */
  static async generate(options: GenerateOptions = {}): Promise<WebCryptoSigningKey> {
    const pair = await subtle().generateKey(ECDSA_P256, options.extractable ?? false, [
      'sign',
      'verify',
    ])
    return WebCryptoSigningKey.fromKeyPair(pair)
  }

  /** From a WebCrypto key pair (e.g. one read back from IndexedDB). */
  static async fromKeyPair(pair: CryptoKeyPair): Promise<WebCryptoSigningKey> {
    return new WebCryptoSigningKey(pair.privateKey, await qualifiedCryptoKey(pair.publicKey))
  }

  /** From PKCS#8 DER bytes; the imported key is non-extractable unless asked otherwise. */
  static async importPkcs8(
    der: Uint8Array,
    options: GenerateOptions = {}
  ): Promise<WebCryptoSigningKey> {
    // WebCrypto cannot derive a public key from a private one: read x and y from the JWK form of
    // a transient extractable import, then import the private key as asked.
    const transient = await subtle().importKey('pkcs8', bytes(der), ECDSA_P256, true, ['sign'])
    const jwk = await subtle().exportKey('jwk', transient)
    const x = fromBase64Url(jwk.x ?? '')
    const y = fromBase64Url(jwk.y ?? '')
    if (x?.length !== 32 || y?.length !== 32) throw new TypeError('not a P-256 private key')
    const point = new Uint8Array(65)
    point[0] = 4
    point.set(x, 1)
    point.set(y, 33)
    const privateKey = options.extractable
      ? transient
      : await subtle().importKey('pkcs8', bytes(der), ECDSA_P256, false, ['sign'])
    return new WebCryptoSigningKey(privateKey, qualifyPublicKey(compressPoint(point)))
  }

  /** Whether the private key can be exported (false for keys generated by default). */
  get extractable(): boolean {
    return this.privateKey.extractable
  }

  publicKey(): Promise<string> {
    return Promise.resolve(this.publicKeyText)
  }

  /** WebCrypto's ECDSA signature is already r ‖ s (IEEE P1363), the protocol's form. */
  async sign(message: Uint8Array): Promise<string> {
    const rs = await subtle().sign(ECDSA_SHA256, this.privateKey, bytes(message))
    return qualifySignature(new Uint8Array(rs))
  }

  /** PKCS#8 DER of the private key; only for an extractable key. */
  async exportPkcs8(): Promise<Uint8Array> {
    if (!this.privateKey.extractable) throw new TypeError('this key is not extractable')
    return new Uint8Array(await subtle().exportKey('pkcs8', this.privateKey))
  }
}

// ------------------------------------------------------------------ recovery keys

/** What starts every exported recovery key: the format's name and version. */
export const RECOVERY_KEY_PREFIX = 'bap-recovery-1:'

/**
 * A recovery key as text, to print or store offline: `bap-recovery-1:` followed by the base64url
 * (no padding) of the key's PKCS#8 DER (RFC 5208) encoding. Node reads the same DER with
 * `createPrivateKey({ key, format: 'der', type: 'pkcs8' })`.
 */
export async function exportRecoveryKey(key: WebCryptoSigningKey): Promise<string> {
  return RECOVERY_KEY_PREFIX + toBase64Url(await key.exportPkcs8())
}

/** Rebuilds a recovery key from its text (whitespace is ignored); non-extractable. */
export async function importRecoveryKey(text: string): Promise<WebCryptoSigningKey> {
  const compact = text.replace(/\s+/g, '')
  const der = compact.startsWith(RECOVERY_KEY_PREFIX)
    ? fromBase64Url(compact.slice(RECOVERY_KEY_PREFIX.length))
    : undefined
  if (der === undefined) {
    throw new TypeError(`not a recovery key (expected ${RECOVERY_KEY_PREFIX}<base64url PKCS#8>)`)
  }
  try {
    return await WebCryptoSigningKey.importPkcs8(der)
  } catch (error) {
    throw new TypeError('not a recovery key (the PKCS#8 data is not a P-256 key)', { cause: error })
  }
}

/** A new recovery key: the key, its text (show it once) and the recovery hash to register. */
export async function generateRecoveryKey(
  hasher: Hasher = new Blake3Hasher()
): Promise<{ key: WebCryptoSigningKey; text: string; hash: string }> {
  const key = await WebCryptoSigningKey.generate({ extractable: true })
  return { key, text: await exportRecoveryKey(key), hash: hasher.sum(key.publicKeyText) }
}
