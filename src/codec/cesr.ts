/**
 * The protocol's qualified (CESR-style) text forms: a code prefix replaces the leading
 * characters of the base64url encoding of zero-padded raw bytes.
 *
 * | value      | raw bytes | pad | prefix | length |
 * |------------|-----------|-----|--------|--------|
 * | hash       | 32        | 1   | `E`    | 44     |
 * | public key | 33        | 3   | `1AAI` | 48     |
 * | signature  | 64        | 2   | `0I`   | 88     |
 * | nonce      | 16        | 2   | `0A`   | 24     |
 */
import { decodeBase64Url, encodeBase64Url } from './base64url'
import {
  HASH,
  NONCE,
  PUBLIC_KEY,
  SIGNATURE,
  qualifyWith,
  unqualifyWith,
  type Qualifier,
} from './qualified'

// The forms of ./qualified, on Node's native base64 (the server's hot paths).
const encode = (q: Qualifier, raw: Uint8Array): string => qualifyWith(q, raw, encodeBase64Url)
const decode = (q: Qualifier, text: unknown): Buffer | undefined =>
  unqualifyWith(q, text, decodeBase64Url)

export const encodeHash = (digest: Uint8Array): string => encode(HASH, digest)
export const decodeHash = (text: unknown): Buffer | undefined => decode(HASH, text)

/** Encodes a SEC1 compressed P-256 point (33 bytes). */
export const encodePublicKey = (compressed: Uint8Array): string => encode(PUBLIC_KEY, compressed)
/** Decodes to a 33-byte SEC1 compressed point; checks the 0x02/0x03 prefix, not the curve. */
export function decodePublicKey(text: unknown): Buffer | undefined {
  const bytes = decode(PUBLIC_KEY, text)
  if (bytes === undefined || (bytes[0] !== 2 && bytes[0] !== 3)) return undefined
  return bytes
}

/** Encodes an IEEE-P1363 signature (r ‖ s, 64 bytes). */
export const encodeSignature = (rs: Uint8Array): string => encode(SIGNATURE, rs)
export const decodeSignature = (text: unknown): Buffer | undefined => decode(SIGNATURE, text)

export const encodeNonce = (bytes: Uint8Array): string => encode(NONCE, bytes)
export const decodeNonce = (text: unknown): Buffer | undefined => decode(NONCE, text)

export const isHash = (text: unknown): text is string => decodeHash(text) !== undefined
export const isPublicKeyText = (text: unknown): text is string =>
  decodePublicKey(text) !== undefined
export const isSignature = (text: unknown): text is string => decodeSignature(text) !== undefined
export const isNonce = (text: unknown): text is string => decodeNonce(text) !== undefined

export const SIGNATURE_LENGTH = SIGNATURE.length
