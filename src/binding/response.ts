/**
 * Signed replies to header-form requests: an RFC 9421 response signature by the server's
 * response key over `@status`, the body's `Content-Digest` and the request's own signature
 * (`"signature";req;key="ba"`), tagged `better-auth-response`.
 */
import type { SigningKey, Verifier } from '../crypto/types'
import { InvalidResponseError, InvalidSignatureError } from '../errors'
import {
  LABEL,
  byteSequence,
  REQUEST_SIGNATURE_COMPONENT,
  RESPONSE_TAG,
  componentIdentifier,
  joinBase,
  serializeSignatureParams,
  type ComponentId,
} from './base'
import { contentDigest, digestProblem } from './digest'
import { FieldError, fieldLines, singleField, type HeadersInput } from './fields'
import {
  BOUND_SIGNATURE,
  checkComponents,
  emitParams,
  parseSignatureFields,
  qualified,
  signBase,
} from './signature'

const ALLOWED_COMPONENTS = new Set(['@status', 'content-digest', BOUND_SIGNATURE])
const ALLOWED_PARAMS = new Set(['created', 'keyid', 'alg', 'tag'])

/** A reply to sign. */
export interface ResponseToSign {
  status: number
  /** The reply's other headers, to refuse ones this would duplicate. */
  headers?: HeadersInput
  /** The body exactly as it will be sent. */
  body?: Uint8Array
  /** The raw signature of the request answered (`HeaderAccess.signature`). */
  requestSignature: Uint8Array
  /** The reply time, ms. @default Date.now() */
  timestamp?: number | Date
  /** Sent as `keyid` when given: the response public key (`1AAI…`). */
  keyid?: string
  /** The SHA-256 of the body's digest. @default @noble/hashes' (the server passes node's) */
  sha256?: (bytes: Uint8Array) => Uint8Array
}

/** A reply to verify, as the client received it. */
export interface ResponseToVerify {
  status: number
  headers: HeadersInput
  body?: Uint8Array
  /** The raw signature of the request this answers (`SignedHeaderRequest.signature`). */
  requestSignature: Uint8Array
}

function replyBase(
  status: number,
  digest: string | undefined,
  requestSignature: Uint8Array,
  components: readonly ComponentId[],
  paramsText: string
): string {
  const lines = components.map(id => {
    const identifier = componentIdentifier(id)
    if (typeof id !== 'string') return [identifier, byteSequence(requestSignature)] as const
    return [identifier, id === '@status' ? String(status) : (digest as string)] as const
  })
  return joinBase(lines, paramsText)
}

/**
 * Signs a reply with the response key. Returns the headers to add (`content-digest` with a
 * body, `signature-input`, `signature`). Throws TypeError if `headers` already holds one.
 */
export async function signResponse(
  response: ResponseToSign,
  responseSigner: SigningKey
): Promise<Record<string, string>> {
  for (const name of ['signature-input', 'signature', 'content-digest']) {
    if (fieldLines(response.headers, name).length > 0) throw new TypeError(`${name} is already set`)
  }
  if (!Number.isInteger(response.status) || response.status < 100 || response.status > 999) {
    throw new TypeError('status must be a three-digit integer')
  }
  const headers: Record<string, string> = {}
  const components: ComponentId[] = ['@status']
  const hasBody = response.body !== undefined && response.body.length > 0
  if (hasBody) {
    headers['content-digest'] = contentDigest(response.body as Uint8Array, response.sha256)
    components.push('content-digest')
  }
  components.push(REQUEST_SIGNATURE_COMPONENT)
  const ts = response.timestamp ?? Date.now()
  const ms = ts instanceof Date ? ts.getTime() : ts
  const params = emitParams({
    created: Math.floor(ms / 1000),
    tag: RESPONSE_TAG,
    ...(response.keyid === undefined ? {} : { keyid: response.keyid }),
  })
  const paramsText = serializeSignatureParams(components, params)
  const base = replyBase(
    response.status,
    headers['content-digest'],
    response.requestSignature,
    components,
    paramsText
  )
  const signature = await signBase(responseSigner, base)
  headers['signature-input'] = `${LABEL}=${paramsText}`
  headers['signature'] = `${LABEL}=${byteSequence(signature)}`
  return headers
}

/** A parsed reply signature and its base, before any key is used. */
export interface ResponseSignature {
  created: number
  keyid: string | undefined
  signature: Uint8Array
  signatureBase: string
}

const invalid = (reason: string): InvalidResponseError => new InvalidResponseError(reason)

/**
 * Reads a reply's signature: undefined when the reply is unsigned. Throws InvalidResponseError
 * (BA204) when it is malformed or does not cover what it must, InvalidSignatureError (BA201)
 * when `Content-Digest` does not match the body.
 */
export function readResponseSignature(response: ResponseToVerify): ResponseSignature | undefined {
  let input: string | undefined
  let signature: string | undefined
  let digest: string | undefined
  try {
    input = singleField(response.headers, 'signature-input', 1024)
    signature = singleField(response.headers, 'signature', 256)
    digest = singleField(response.headers, 'content-digest', 512)
  } catch (error) {
    throw invalid((error as FieldError).message)
  }
  if (input === undefined && signature === undefined) return undefined
  if (input === undefined || signature === undefined) throw invalid('half a signature')
  let parsed
  try {
    parsed = parseSignatureFields(input, signature, RESPONSE_TAG, ALLOWED_PARAMS)
    const hasBody = response.body !== undefined && response.body.length > 0
    const required = hasBody
      ? ['@status', 'content-digest', BOUND_SIGNATURE]
      : ['@status', BOUND_SIGNATURE]
    checkComponents(parsed.names, ALLOWED_COMPONENTS, required)
  } catch (error) {
    if (error instanceof FieldError) throw invalid(error.message)
    throw error
  }
  if (parsed.names.includes('content-digest')) {
    if (digest === undefined) throw invalid('content-digest is covered but missing')
    const problem = digestProblem(digest, response.body)
    if (problem?.problem === 'malformed') throw invalid(`content-digest: ${problem.reason}`)
    if (problem !== undefined) throw new InvalidSignatureError('response content digest')
  }
  const components: ComponentId[] = parsed.components.map(item =>
    typeof item[0] === 'string' && item[1].size === 0 ? item[0] : item
  )
  return {
    created: parsed.created * 1000,
    keyid: parsed.params.get('keyid') as string | undefined,
    signature: parsed.signature,
    signatureBase: replyBase(
      response.status,
      digest,
      response.requestSignature,
      components,
      parsed.paramsText
    ),
  }
}

/**
 * Verifies a reply to a header-form request with the (pinned) response key. True when it is
 * signed and verifies; false for an unsigned reply with status 400 or above (error replies
 * may be unsigned: the caller reads the error, which is not authenticated). Throws
 * InvalidResponseError (BA204) for an unsigned reply below 400 or a malformed signature,
 * InvalidSignatureError (BA201) when the signature or the digest does not verify.
 */
export async function verifyResponse(
  response: ResponseToVerify,
  verifier: Verifier,
  responsePublicKey: string
): Promise<boolean> {
  const read = readResponseSignature(response)
  if (read === undefined) {
    if (response.status >= 400) return false
    throw invalid(`HTTP ${response.status} reply is not signed`)
  }
  if (read.keyid !== undefined && read.keyid !== responsePublicKey) {
    throw new InvalidSignatureError('response', {
      context: { reason: 'keyid is not the response key' },
    })
  }
  const base = new TextEncoder().encode(read.signatureBase)
  if (!(await verifier.verify(base, qualified(read.signature), responsePublicKey))) {
    throw new InvalidSignatureError('response')
  }
  return true
}
