/**
 * Access tokens: `signature (88 chars) ‖ base64url_nopad(gzip(json))`, the signature by the
 * access key over the JSON text. Keys are serialized in the protocol's order.
 */
import { decodeBase64Url, encodeBase64Url } from '../codec/base64url'
import { SIGNATURE_LENGTH, decodeSignature } from '../codec/cesr'
import { GzipError, gunzipBounded, gzip } from '../codec/gzip'
import { BetterAuthError, InvalidTokenError } from '../errors'
import { hash, isObject, publicKey, timestamp } from './fields'
import { decodeUtf8, parseStrictJson } from './json'

export interface AccessTokenClaims<Attributes = unknown> {
  serverIdentity: string
  device: string
  identity: string
  publicKey: string
  rotationHash: string
  issuedAt: string
  expiry: string
  refreshExpiry: string
  attributes: Attributes
}

/** A decoded token: its claims, the exact signed JSON text, and parsed times (ms). */
export interface AccessToken<Attributes = unknown> extends AccessTokenClaims<Attributes> {
  signature: string
  json: string
  issuedAtMs: number
  expiryMs: number
  refreshExpiryMs: number
}

export interface TokenLimits {
  /** Longest token accepted (characters), checked before anything is decoded. @default 16384 */
  maxTokenLength?: number
  /** Largest decompressed token JSON, in bytes. @default 65536 */
  maxTokenBytes?: number
  /** Deepest JSON nesting inside the token. @default 32 */
  maxDepth?: number
}

/** Serializes claims as JSON in the protocol's key order. */
export function serializeClaims(claims: AccessTokenClaims): string {
  return JSON.stringify({
    serverIdentity: claims.serverIdentity,
    device: claims.device,
    identity: claims.identity,
    publicKey: claims.publicKey,
    rotationHash: claims.rotationHash,
    issuedAt: claims.issuedAt,
    expiry: claims.expiry,
    refreshExpiry: claims.refreshExpiry,
    attributes: claims.attributes,
  })
}

/** Assembles a token from its signature and signed JSON. */
export function encodeToken(signature: string, json: string, compressionLevel = 6): string {
  return signature + encodeBase64Url(gzip(Buffer.from(json), compressionLevel))
}

const anyPoint = (): boolean => true

/**
 * Decodes a token strictly and cheaply: the length is capped before decoding, base64url must be
 * canonical, gzip must be one bounded member. The signature is NOT verified here.
 * Throws InvalidTokenError (BA402).
 */
export function decodeToken<Attributes = unknown>(
  token: string,
  limits: TokenLimits = {}
): AccessToken<Attributes> {
  const maxLength = limits.maxTokenLength ?? 16384
  if (token.length > maxLength) throw new InvalidTokenError(`longer than ${maxLength} characters`)
  if (token.length <= SIGNATURE_LENGTH) throw new InvalidTokenError('too short')
  const signature = token.slice(0, SIGNATURE_LENGTH)
  if (decodeSignature(signature) === undefined) throw new InvalidTokenError('malformed signature')
  const compressed = decodeBase64Url(token.slice(SIGNATURE_LENGTH))
  if (compressed === undefined) throw new InvalidTokenError('not canonical base64url')
  let json: string
  let value: unknown
  try {
    json = decodeUtf8(gunzipBounded(compressed, limits.maxTokenBytes ?? 65536))
    value = parseStrictJson(json, { maxDepth: limits.maxDepth ?? 32 }).value
  } catch (error) {
    if (error instanceof GzipError || error instanceof BetterAuthError) {
      throw new InvalidTokenError(error.message)
    }
    throw error
  }
  if (!isObject(value)) throw new InvalidTokenError('not a JSON object')
  try {
    const issuedAt = timestamp(value, 'issuedAt', 'token')
    const expiry = timestamp(value, 'expiry', 'token')
    const refreshExpiry = timestamp(value, 'refreshExpiry', 'token')
    if (!('attributes' in value)) throw new InvalidTokenError('token.attributes is required')
    return {
      serverIdentity: publicKey(value, 'serverIdentity', 'token', anyPoint),
      device: hash(value, 'device', 'token'),
      identity: hash(value, 'identity', 'token'),
      publicKey: publicKey(value, 'publicKey', 'token', anyPoint),
      rotationHash: hash(value, 'rotationHash', 'token'),
      issuedAt: issuedAt.text,
      expiry: expiry.text,
      refreshExpiry: refreshExpiry.text,
      attributes: value.attributes as Attributes,
      signature,
      json,
      issuedAtMs: issuedAt.ms,
      expiryMs: expiry.ms,
      refreshExpiryMs: refreshExpiry.ms,
    }
  } catch (error) {
    if (error instanceof InvalidTokenError) throw error
    throw new InvalidTokenError((error as Error).message)
  }
}
