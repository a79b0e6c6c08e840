/**
 * `Content-Digest` (RFC 9530) with `sha-256`: the field that lets a signature cover a body.
 * SHA-256 comes from @noble/hashes so that this module runs in browsers as well as in Node.
 */
import { sha256 } from '@noble/hashes/sha2'
import { parseDictionary } from 'structured-headers'
import { equalBytes } from '../codec/bytes'
import { byteSequence } from './base'
import { InvalidMessageError, InvalidSignatureError } from '../errors'
import { FieldError, dictionaryKeys } from './fields'
import { simpleDigest } from './strict'

/**
 * The `Content-Digest` value for `body`: `sha-256=:<base64 of SHA-256(body)>:`. `hash` is the
 * SHA-256 to use (default @noble/hashes; a server may pass node:crypto's, several times faster).
 */
export function contentDigest(
  body: Uint8Array,
  hash: (bytes: Uint8Array) => Uint8Array = sha256
): string {
  return 'sha-256=' + byteSequence(hash(body))
}

/** Why a digest was refused: the field is malformed, or it names another body. */
export type DigestProblem = 'malformed' | 'mismatch'

/**
 * Checks a `Content-Digest` value against `body`; undefined when it matches, else the problem
 * and a reason. Other algorithms may appear beside `sha-256` (they are covered by the
 * signature like the rest of the field) but only `sha-256` is required and checked. `hash` is
 * the SHA-256 to use (as for `contentDigest`).
 */
export function digestProblem(
  header: string,
  body: Uint8Array | undefined,
  hash: (bytes: Uint8Array) => Uint8Array = sha256
): { problem: DigestProblem; reason: string } | undefined {
  // The common shape, `sha-256=:…:` alone, read directly (src/binding/strict.ts); any other
  // (more algorithms, parameters) goes to the generic parser below.
  const simple = simpleDigest(header)
  if (simple === 'malformed') return { problem: 'malformed', reason: 'not a structured dictionary' }
  if (simple !== undefined) return compare(simple, body, hash)
  let claimed: unknown
  try {
    dictionaryKeys(header, 'content-digest')
    const member = parseDictionary(header).get('sha-256')
    if (member === undefined) return { problem: 'malformed', reason: 'no sha-256 member' }
    if (Array.isArray(member[0]) || member[1].size !== 0) {
      return { problem: 'malformed', reason: 'sha-256 is not a plain byte sequence' }
    }
    claimed = member[0]
  } catch (error) {
    const reason = error instanceof FieldError ? error.message : 'not a structured dictionary'
    return { problem: 'malformed', reason }
  }
  if (!(claimed instanceof ArrayBuffer)) {
    return { problem: 'malformed', reason: 'sha-256 is not 32 bytes' }
  }
  return compare(new Uint8Array(claimed), body, hash)
}

function compare(
  claimed: Uint8Array,
  body: Uint8Array | undefined,
  hash: (bytes: Uint8Array) => Uint8Array
): { problem: DigestProblem; reason: string } | undefined {
  if (claimed.length !== 32) return { problem: 'malformed', reason: 'sha-256 is not 32 bytes' }
  if (!equalBytes(claimed, hash(body ?? new Uint8Array(0)))) {
    return { problem: 'mismatch', reason: 'content digest does not match the body' }
  }
  return undefined
}

/**
 * Checks a `Content-Digest` value against `body`. Throws InvalidMessageError (BA101) when the
 * value is malformed or lacks `sha-256`, InvalidSignatureError (BA201) when it does not match.
 */
export function checkContentDigest(header: string, body: Uint8Array | undefined): void {
  const found = digestProblem(header, body)
  if (found === undefined) return
  if (found.problem === 'mismatch') {
    throw new InvalidSignatureError('content digest', { context: { reason: found.reason } })
  }
  throw new InvalidMessageError('content-digest', found.reason)
}
