/**
 * The protocol's qualified text forms (see ./cesr) without `Buffer`: the same codes and rules,
 * over `Uint8Array`, for the client entry (browsers, workers, Node). The server keeps ./cesr,
 * which uses Node's native base64 on its hot paths; tests check that both agree.
 */
import { fromBase64Url, toBase64Url } from './bytes'

/** A qualified form: its code prefix, zero padding, raw size and text length. */
export interface Qualifier {
  prefix: string
  pad: number
  size: number
  length: number
}

export const HASH: Qualifier = { prefix: 'E', pad: 1, size: 32, length: 44 }
export const PUBLIC_KEY: Qualifier = { prefix: '1AAI', pad: 3, size: 33, length: 48 }
export const SIGNATURE: Qualifier = { prefix: '0I', pad: 2, size: 64, length: 88 }
export const NONCE: Qualifier = { prefix: '0A', pad: 2, size: 16, length: 24 }

/** The qualified text of `raw`, with the given base64url encoder (web or Node's native one). */
export function qualifyWith(
  q: Qualifier,
  raw: Uint8Array,
  toBase64: (bytes: Uint8Array) => string
): string {
  if (raw.length !== q.size) throw new RangeError(`expected ${q.size} bytes, got ${raw.length}`)
  const padded = new Uint8Array(q.pad + q.size)
  padded.set(raw, q.pad)
  return q.prefix + toBase64(padded).slice(q.prefix.length)
}

/** The raw bytes of a qualified text, or undefined; with the given strict base64url decoder. */
export function unqualifyWith<B extends Uint8Array>(
  q: Qualifier,
  text: unknown,
  fromBase64: (text: string) => B | undefined
): B | undefined {
  if (typeof text !== 'string' || text.length !== q.length || !text.startsWith(q.prefix)) {
    return undefined
  }
  const bytes = fromBase64('A'.repeat(q.prefix.length) + text.slice(q.prefix.length))
  if (bytes === undefined || bytes.length !== q.pad + q.size) return undefined
  for (let i = 0; i < q.pad; i++) if (bytes[i] !== 0) return undefined
  return bytes.subarray(q.pad) as B
}

const encode = (q: Qualifier, raw: Uint8Array): string => qualifyWith(q, raw, toBase64Url)
const decode = (q: Qualifier, text: unknown): Uint8Array | undefined =>
  unqualifyWith(q, text, fromBase64Url)

export const qualifyHash = (digest: Uint8Array): string => encode(HASH, digest)
export const unqualifyHash = (text: unknown): Uint8Array | undefined => decode(HASH, text)

/** Qualifies a SEC1 compressed P-256 point (33 bytes). */
export const qualifyPublicKey = (compressed: Uint8Array): string => encode(PUBLIC_KEY, compressed)
/** A 33-byte SEC1 compressed point; checks the 0x02/0x03 prefix, not the curve. */
export function unqualifyPublicKey(text: unknown): Uint8Array | undefined {
  const bytes = decode(PUBLIC_KEY, text)
  if (bytes === undefined || (bytes[0] !== 2 && bytes[0] !== 3)) return undefined
  return bytes
}

/** Qualifies an IEEE-P1363 signature (r ‖ s, 64 bytes). */
export const qualifySignature = (rs: Uint8Array): string => encode(SIGNATURE, rs)
export const unqualifySignature = (text: unknown): Uint8Array | undefined => decode(SIGNATURE, text)

export const qualifyNonce = (bytes: Uint8Array): string => encode(NONCE, bytes)
export const unqualifyNonce = (text: unknown): Uint8Array | undefined => decode(NONCE, text)

/**
 * The texts `unqualifyNonce` and `unqualifyPublicKey` accept, as patterns: a check without the
 * decoding (and its allocations) where the bytes are not needed. A nonce's two zero pad bytes
 * are `0A` and the top four bits of its third character (`A`–`D`); a public key's three are
 * `1AAI`, and its first byte, 0x02 or 0x03, is `A` and a character of value 32–63.
 */
export const NONCE_TEXT = /^0A[A-D][A-Za-z0-9_-]{21}$/
export const PUBLIC_KEY_TEXT = /^1AAIA[g-z0-9_-][A-Za-z0-9_-]{42}$/

export const isQualifiedHash = (text: unknown): text is string => unqualifyHash(text) !== undefined

export const QUALIFIED_SIGNATURE_LENGTH = SIGNATURE.length
