/**
 * Message envelopes: `{"payload":…,"signature":"0I…"}`.
 *
 * A signature is checked over the exact payload text the client sent. Implementations that sign
 * `JSON.stringify(payload)` but send the message re-formatted are still accepted: if the exact
 * text does not verify and differs from the compact re-serialization, that form is tried too.
 */
import type { Verifier } from '../crypto/types'
import {
  IncorrectNonceError,
  InvalidMessageError,
  InvalidResponseError,
  InvalidSignatureError,
  PayloadTooLargeError,
} from '../errors'
import { isObject, object, signature as signatureField, type JsonObject } from './fields'
import { decodeUtf8, parseStrictJson, type JsonLimits } from './json'

export interface SignedPart {
  /** The parsed payload. */
  payload: JsonObject
  /** The payload exactly as received. */
  text: string
  /** The `signature` next to it, if present and well-formed. */
  signature: string | undefined
}

export interface Envelope extends SignedPart {
  /** Signed parts nested in the payload (e.g. a link container), by dotted key path. */
  spans: Map<string, [number, number]>
  body: string
}

export interface ParseLimits extends JsonLimits {
  /** Largest body accepted, in bytes. @default 65536 */
  maxBodyBytes?: number
}

/** Parses a request body (bytes or text) into its envelope, strictly. */
export function parseEnvelope(raw: string | Uint8Array, limits: ParseLimits = {}): Envelope {
  const maxBytes = limits.maxBodyBytes ?? 65536
  const byteLength = typeof raw === 'string' ? Buffer.byteLength(raw) : raw.byteLength
  if (byteLength > maxBytes) throw new PayloadTooLargeError(maxBytes)
  const body = typeof raw === 'string' ? raw : decodeUtf8(raw)
  if (body.length === 0) throw new InvalidMessageError('body', 'is empty')
  const { value, payloadSpans } = parseStrictJson(body, limits)
  if (!isObject(value)) throw new InvalidMessageError('body', 'must be a JSON object')
  const payload = object(value, 'payload', '')
  const span = payloadSpans.get('payload') as [number, number]
  const sig = value.signature
  return {
    payload,
    text: body.slice(span[0], span[1]),
    signature: sig === undefined ? undefined : signatureField(value, 'signature', ''),
    spans: payloadSpans,
    body,
  }
}

/** A nested signed part (`{payload, signature}`): `container`, found at `path` in the envelope. */
export function signedPart(envelope: Envelope, container: JsonObject, path: string): SignedPart {
  const payload = object(container, 'payload', path)
  const span = envelope.spans.get(`${path}.payload`)
  if (span === undefined) throw new InvalidMessageError(`${path}.payload`, 'is required')
  return {
    payload,
    text: envelope.body.slice(span[0], span[1]),
    signature: signatureField(container, 'signature', path),
  }
}

/**
 * Verifies a signed part by `publicKey`; throws InvalidSignatureError (BA201) if it does not
 * verify, InvalidMessageError (BA101) if the signature is missing.
 */
export async function verifySigned(
  verifier: Verifier,
  part: SignedPart,
  publicKey: string,
  what = 'message',
  field = 'signature'
): Promise<void> {
  if (part.signature === undefined) throw new InvalidMessageError(field, 'is required')
  if (await verifier.verify(Buffer.from(part.text), part.signature, publicKey)) return
  const compact = JSON.stringify(part.payload)
  if (
    compact !== part.text &&
    (await verifier.verify(Buffer.from(compact), part.signature, publicKey))
  ) {
    return
  }
  throw new InvalidSignatureError(what)
}

/**
 * True when a body carries no access request at all: it is empty, or it is a JSON object
 * without `payload.access.token`. A protected route answers such a body "credentials required"
 * (BA404) rather than "invalid message" (BA101), which stays the answer for anything else it
 * cannot read (malformed JSON, a non-object body, a bad access request, or a body the strict
 * parser refuses: invalid UTF-8, duplicate keys, nesting past `limits`).
 */
export function lacksCredentials(body: string | Uint8Array, limits: JsonLimits = {}): boolean {
  let value: unknown
  try {
    const text = typeof body === 'string' ? body : decodeUtf8(body)
    if (text.trim() === '') return true
    value = parseStrictJson(text, limits).value
  } catch {
    return false
  }
  if (!isObject(value)) return false
  const payload = value.payload
  if (payload === undefined) return true
  if (!isObject(payload)) return false
  const access = payload.access
  if (access === undefined) return true
  return isObject(access) && !('token' in access)
}

/**
 * The signing context of a published access-key list (`/key/access`): the response key signs
 * these bytes followed by the payload text. No other reply is ever signed with a prefix, and an
 * application reply's payload starts with `{`, so no application reply (whatever data it echoes)
 * verifies as a key list, and no key list verifies as an application reply.
 */
export const ACCESS_KEYS_SIGNING_CONTEXT = 'better-auth-protocol access-keys v1\n'

/** The exact bytes the response key signs for a key list whose payload text is `payload`. */
export function accessKeysSigningInput(payload: string): Buffer {
  return Buffer.from(ACCESS_KEYS_SIGNING_CONTEXT + payload)
}

/**
 * Checks a server's response envelope: it names `responseKey` as its server identity, its
 * signature by that key verifies over the exact payload text, and it echoes `nonce`. Throws
 * InvalidResponseError (BA204), InvalidSignatureError (BA201) or IncorrectNonceError (BA203).
 */
export async function checkResponse(
  verifier: Verifier,
  part: SignedPart,
  responseKey: string,
  nonce: string,
  what = 'response'
): Promise<void> {
  const access = part.payload.access
  if (!isObject(access)) throw new InvalidResponseError(`${what}: payload.access is missing`)
  if (access.serverIdentity !== responseKey) {
    throw new InvalidResponseError(`${what}: not signed by the pinned response key`)
  }
  await verifySigned(verifier, part, responseKey, what)
  if (access.nonce !== nonce) throw new IncorrectNonceError(nonce, access.nonce)
}
