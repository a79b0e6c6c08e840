/**
 * Reads an access token on the client (browsers, workers, Node) without node:zlib or Buffer:
 * `signature (88 chars) ‖ base64url(gzip(json))`, gunzipped by `DecompressionStream`. The
 * signature is the server's business; the client reads the claims to know when to refresh.
 */
import { fromBase64Url } from '../codec/bytes'
import { gunzipWeb } from '../codec/gunzip-web'
import { QUALIFIED_SIGNATURE_LENGTH, unqualifySignature } from '../codec/qualified'
import { parseTimestamp } from '../codec/timestamp'
import { parseStrictJson } from '../messages/json'
// A type only: nothing of the server's token module is bundled into the client.
import type { AccessTokenClaims } from '../messages/token'

/** The claims of an access token, with its times in milliseconds since the epoch. */
export interface TokenClaims<Attributes = unknown> extends AccessTokenClaims<Attributes> {
  issuedAtMs: number
  expiryMs: number
  refreshExpiryMs: number
}

export class TokenFormatError extends Error {
  override readonly name = 'TokenFormatError'
}

const MAX_TOKEN_LENGTH = 16384
const MAX_TOKEN_BYTES = 65536
const STRING_CLAIMS = ['serverIdentity', 'device', 'identity', 'publicKey', 'rotationHash'] as const

/** Decodes a token's claims; throws TokenFormatError for anything that is not a token. */
export async function readTokenClaims<Attributes = unknown>(
  token: string
): Promise<TokenClaims<Attributes>> {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) {
    throw new TokenFormatError('not a token of a sensible length')
  }
  if (unqualifySignature(token.slice(0, QUALIFIED_SIGNATURE_LENGTH)) === undefined) {
    throw new TokenFormatError('malformed token signature')
  }
  const compressed = fromBase64Url(token.slice(QUALIFIED_SIGNATURE_LENGTH))
  if (compressed === undefined) throw new TokenFormatError('token body is not base64url')
  let value: unknown
  try {
    const json = new TextDecoder('utf-8', { fatal: true }).decode(
      await gunzipWeb(compressed, MAX_TOKEN_BYTES)
    )
    value = parseStrictJson(json).value
  } catch (error) {
    throw new TokenFormatError(`token body cannot be read (${(error as Error).message})`, {
      cause: error,
    })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TokenFormatError('token body is not a JSON object')
  }
  const claims = value as Record<string, unknown>
  for (const key of STRING_CLAIMS) {
    if (typeof claims[key] !== 'string') throw new TokenFormatError(`token.${key} is missing`)
  }
  const times = (['issuedAt', 'expiry', 'refreshExpiry'] as const).map(key => {
    const ms = parseTimestamp(claims[key])
    if (Number.isNaN(ms)) throw new TokenFormatError(`token.${key} is not a timestamp`)
    return ms
  })
  return {
    ...(claims as unknown as TokenClaims<Attributes>),
    issuedAtMs: times[0] as number,
    expiryMs: times[1] as number,
    refreshExpiryMs: times[2] as number,
  }
}
