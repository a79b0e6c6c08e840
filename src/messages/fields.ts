/**
 * Typed field readers for parsed messages. Each names the full path of a missing or malformed
 * field in its BA101 error, e.g. `payload.request.authentication.device`.
 */
import { decodeHash, decodeNonce, decodePublicKey, decodeSignature } from '../codec/cesr'
import { parseTimestamp } from '../codec/timestamp'
import { InvalidMessageError } from '../errors'

export type JsonObject = Record<string, unknown>

/** `path.key`, or `key` at the root. */
export const join = (path: string, key: string): string => (path === '' ? key : path + '.' + key)

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** A child object: `parent[key]` must be a JSON object. */
export function object(parent: JsonObject, key: string, path: string): JsonObject {
  const value = parent[key]
  if (!isObject(value)) {
    throw new InvalidMessageError(
      join(path, key),
      value === undefined ? 'is required' : 'must be an object'
    )
  }
  return value
}

export function string(parent: JsonObject, key: string, path: string): string {
  const value = parent[key]
  if (typeof value !== 'string') {
    throw new InvalidMessageError(
      join(path, key),
      value === undefined ? 'is required' : 'must be a string'
    )
  }
  return value
}

function qualified(
  parent: JsonObject,
  key: string,
  path: string,
  what: string,
  check: (text: string) => unknown
): string {
  const value = string(parent, key, path)
  if (check(value) === undefined) throw new InvalidMessageError(join(path, key), `not a ${what}`)
  return value
}

/** A qualified BLAKE3 digest (`E…`, 44 characters). */
export const hash = (parent: JsonObject, key: string, path: string): string =>
  qualified(parent, key, path, 'qualified hash (E…, 44 chars)', decodeHash)

/** A qualified nonce (`0A…`, 24 characters). */
export const nonce = (parent: JsonObject, key: string, path: string): string =>
  qualified(parent, key, path, 'qualified nonce (0A…, 24 chars)', decodeNonce)

/** A qualified signature (`0I…`, 88 characters). */
export const signature = (parent: JsonObject, key: string, path: string): string =>
  qualified(parent, key, path, 'qualified signature (0I…, 88 chars)', decodeSignature)

/**
 * A qualified compressed P-256 public key (`1AAI…`, 48 characters). The caller checks that the
 * point is on the curve with its verifier (`isValidPublicKey`).
 */
export function publicKey(
  parent: JsonObject,
  key: string,
  path: string,
  isValidPoint: (text: string) => boolean
): string {
  const value = qualified(
    parent,
    key,
    path,
    'qualified public key (1AAI…, 48 chars)',
    decodePublicKey
  )
  if (!isValidPoint(value)) throw new InvalidMessageError(join(path, key), 'not a point on P-256')
  return value
}

/** An RFC 3339 timestamp; returns its text and milliseconds since the epoch. */
export function timestamp(
  parent: JsonObject,
  key: string,
  path: string
): { text: string; ms: number } {
  const text = string(parent, key, path)
  const ms = parseTimestamp(text)
  if (Number.isNaN(ms)) throw new InvalidMessageError(join(path, key), 'not an RFC 3339 timestamp')
  return { text, ms }
}
