/**
 * A reference verifier of the header form, in the order docs/http-binding.md specifies:
 * the pieces of src/binding plus what the server core does around them (token checks, window,
 * nonce reservation), so that the vectors are checked end to end.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  checkRequestTime,
  readHeaderAccess,
  verifyHeaderAccess,
  type HeaderRecord,
} from '../../src/binding'
import { parseTimestamp } from '../../src/codec/timestamp'
import { NodeP256Verifier } from '../../src/crypto/node'
import {
  ExpiredTokenError,
  FutureTokenError,
  InvalidSignatureError,
  ReplayError,
  UnknownServerKeyError,
} from '../../src/errors'
import { decodeToken } from '../../src/messages/token'

export interface RequestCase {
  name: string
  method: string
  url: string
  expectedAuthority?: string
  headers: Record<string, string | string[]>
  body?: string
  nonce?: string
  created?: number
  signatureBase?: string
  signature?: string
  now?: string
  presentTwice?: boolean
  error?: string
}

export interface ResponseCase {
  name: string
  request: string
  status: number
  headers: Record<string, string | string[]>
  body?: string
  signatureBase?: string
  signature?: string
  signed?: boolean
  error?: string
}

export interface Vectors {
  now: string
  accessWindowSeconds: number
  clockSkewSeconds: number
  keys: Record<
    'serverAccess' | 'access' | 'response' | 'other',
    { privateKeyPem: string; publicKey: string }
  >
  token: { text: string }
  requests: RequestCase[]
  invalidRequests: RequestCase[]
  responses: ResponseCase[]
  invalidResponses: ResponseCase[]
}

export const vectors = JSON.parse(
  readFileSync(join(__dirname, '..', 'fixtures', 'http-binding-vectors.json'), 'utf8')
) as Vectors

export const verifier = new NodeP256Verifier()
export const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text)
export const bodyOf = (c: { body?: string }): Uint8Array | undefined =>
  c.body === undefined ? undefined : utf8(c.body)

/** Verifies a request case as a server would; `nonces` is the access-nonce time-lock. */
export async function verifyRequest(c: RequestCase, nonces: Set<string>): Promise<string> {
  const now = parseTimestamp(c.now ?? vectors.now)
  const skew = vectors.clockSkewSeconds * 1000
  const body = bodyOf(c)
  const access = readHeaderAccess({
    method: c.method,
    url: c.url,
    headers: c.headers as HeaderRecord,
    ...(body === undefined ? {} : { body }),
    ...(c.expectedAuthority === undefined ? {} : { expectedAuthority: c.expectedAuthority }),
  })
  const token = decodeToken(access.token)
  if (token.serverIdentity !== vectors.keys.serverAccess.publicKey)
    throw new UnknownServerKeyError()
  if (!verifier.verify(utf8(token.json), token.signature, token.serverIdentity)) {
    throw new InvalidSignatureError('token')
  }
  if (token.issuedAtMs > now + skew) throw new FutureTokenError()
  if (now > token.expiryMs) throw new ExpiredTokenError('access')
  await verifyHeaderAccess(access, verifier, token.publicKey)
  checkRequestTime(access.created, now, {
    accessWindowMs: vectors.accessWindowSeconds * 1000,
    clockSkewMs: skew,
  })
  if (nonces.has(access.nonce)) throw new ReplayError('request nonce')
  nonces.add(access.nonce)
  return access.signatureBase
}

/** The error code a promise rejects with, or "ok". */
export async function outcome(run: () => Promise<unknown>): Promise<string> {
  try {
    await run()
    return 'ok'
  } catch (error) {
    return (error as { code?: string }).code ?? String(error)
  }
}
