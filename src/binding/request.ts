/**
 * The header form of the access request (docs/http-binding.md): reading and checking it on the
 * server, signing it on the client. The token's own checks, the time window and the nonce
 * reservation belong to the server core, which calls these pieces in the documented order:
 *
 *   readHeaderAccess → decode and verify the token (BA402/BA202/BA201/BA403/BA401)
 *   → verifyHeaderAccess (BA201) → checkRequestTime (BA501/BA502) → reserve the nonce (BA304)
 */
import { NONCE_TEXT, PUBLIC_KEY_TEXT, unqualifyNonce } from '../codec/qualified'
import type { SigningKey, Verifier } from '../crypto/types'
import {
  CredentialsRequiredError,
  FutureRequestError,
  InvalidMessageError,
  InvalidSignatureError,
  StaleRequestError,
  UnsupportedMediaTypeError,
} from '../errors'
import {
  LABEL,
  byteSequence,
  REQUEST_TAG,
  targetOfUrl,
  type RequestTarget,
  componentIdentifier,
  joinBase,
  serializeSignatureParams,
} from './base'
import { contentDigest, digestProblem } from './digest'
import {
  FieldError,
  NO_LINES,
  announcesBody,
  checkControl,
  fieldLines,
  fieldsLines,
  namesCoding,
  singleLine,
  type HeadersInput,
} from './fields'
import { checkComponents, emitParams, qualified, signBase } from './signature'
import { parseRequestSignature } from './strict'

/** The authentication scheme of the header form. */
export const AUTH_SCHEME = 'BetterAuth'

/** The components a request signature covers, in the order clients emit them. */
export const REQUEST_COMPONENTS = [
  '@method',
  '@authority',
  '@path',
  '@query',
  'authorization',
] as const
const BODY_COMPONENT = 'content-digest'
const WITH_BODY_COMPONENTS: readonly string[] = [...REQUEST_COMPONENTS, BODY_COMPONENT]
const ALLOWED_COMPONENTS = new Set<string>(WITH_BODY_COMPONENTS)
const ALLOWED_PARAMS = new Set(['created', 'nonce', 'keyid', 'alg', 'tag'])

/** A component's identifier as the base writes it: quoted, and as the start of its line. */
interface QuotedId {
  quoted: string
  line: string
}
const QUOTED_IDS = new Map<string, QuotedId>(
  WITH_BODY_COMPONENTS.map(name => [name, { quoted: `"${name}"`, line: `"${name}": ` }])
)

/** A request as any server sees it. */
export interface HeaderAccessInput {
  /** The method as received (case-sensitive, RFC 9110). */
  method: string
  /**
   * The absolute request URL as the server reconstructs it (scheme is not covered), or its
   * covered parts already split (`serverTarget(host, req.url)`).
   */
  url: string | URL | RequestTarget
  headers: HeadersInput
  /** The whole body, when the request has one; a signature covering a body needs all of it. */
  body?: Uint8Array
  /**
   * The `@authority` to verify against, when the server is behind a proxy or is reached under a
   * name it knows better than the `Host` it receives (e.g. `api.example.com`). Default: the
   * URL's authority.
   */
  expectedAuthority?: string
  /**
   * The SHA-256 that checks `Content-Digest`. @default @noble/hashes' (a server may pass
   * node:crypto's, several times faster)
   */
  sha256?: (bytes: Uint8Array) => Uint8Array
  /**
   * SHA-256 as base64 text (a server's node:crypto): a `Content-Digest` that is exactly
   * `sha-256=:<that text>:`, the usual shape, then matches without being decoded; any other
   * value is checked with `sha256` as before.
   */
  sha256Base64?: (bytes: Uint8Array) => string
  /**
   * Whether a token text is one the server already verified (its token cache). Such a text
   * decoded as a token, so its base64url character check is skipped (a scan of the whole token,
   * ~600 characters, on every request). Any other text is checked as before.
   */
  knownToken?: (token: string) => boolean
}

/** Size caps, checked before anything is parsed. Over a cap: BA101. */
export interface HeaderAccessLimits {
  /** Longest `Authorization` value (scheme + token), characters. @default 16448 */
  maxAuthorizationLength?: number
  /** Longest `Signature-Input` value. @default 1024 */
  maxSignatureInputLength?: number
  /** Longest `Signature` value. @default 256 */
  maxSignatureLength?: number
  /** Longest `Content-Digest` value. @default 512 */
  maxContentDigestLength?: number
}

/** A syntactically valid header-form access request, not yet verified. */
export interface HeaderAccess {
  /** The access token text, for the core's token checks (its signature is not checked here). */
  token: string
  /** The request nonce (`0A…`), to reserve exactly like a classic request's. */
  nonce: string
  /** `created`, in milliseconds since the epoch (whole seconds on the wire). */
  created: number
  /** The `keyid` parameter when sent (it must then equal the token's `publicKey`). */
  keyid: string | undefined
  /** The raw ECDSA signature, r ‖ s (64 bytes). */
  signature: Uint8Array
  /** The exact signature base the signature is over. */
  signatureBase: string
  /** The covered component identifiers, as sent (`"@method"` …). */
  components: string[]
}

const malformed = (reason: string): InvalidMessageError =>
  new InvalidMessageError('headers', reason)

/** True when the request carries `Authorization: BetterAuth …`: the header form applies. */
export function hasHeaderAccess(headers: HeadersInput): boolean {
  for (const line of fieldLines(headers, 'authorization')) {
    const text = line.trimStart()
    if (
      text.length >= AUTH_SCHEME.length &&
      (text.startsWith(AUTH_SCHEME) ||
        text.slice(0, AUTH_SCHEME.length).toLowerCase() === 'betterauth') &&
      (text.length === AUTH_SCHEME.length || text[AUTH_SCHEME.length] === ' ')
    ) {
      return true
    }
  }
  return false
}

const EMPTY = new Uint8Array(0)

const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/** Methods that are HTTP tokens without the pattern (node:http gives these as constants). */
const USUAL_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])
const AUTHORIZATION = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?: +(.*))?$/
const TOKEN_CHARS = /^[A-Za-z0-9_-]+$/

/** The fields a request's access is read from, gathered in one walk over its headers. */
export const ACCESS_FIELDS = [
  'authorization',
  'signature-input',
  'signature',
  'content-digest',
  'content-encoding',
  'content-length',
] as const
export type AccessFieldName = (typeof ACCESS_FIELDS)[number]
type AccessFields = Record<AccessFieldName, readonly string[]>

/**
 * The lines of the fields `readHeaderAccess` reads, by lower-case name (each NO_LINES until
 * set), for an adapter that walks a request's header lines itself (node's `rawHeaders`): passed
 * as the request's headers, an instance is read as it is rather than copied field by field
 * again. Its layout is the same for every request. A copy of one (a spread) is a plain record,
 * read like any other.
 */
export class AccessFieldLines implements AccessFields {
  // A record of field lines as any adapter's (HeaderRecord), with these six names only.
  [name: string]: readonly string[]
  authorization: readonly string[] = NO_LINES
  'signature-input': readonly string[] = NO_LINES
  signature: readonly string[] = NO_LINES
  'content-digest': readonly string[] = NO_LINES
  'content-encoding': readonly string[] = NO_LINES
  'content-length': readonly string[] = NO_LINES
}

/**
 * The one line of field `name`, given its lines: each caller reads them by their constant name,
 * which V8 compiles to a plain load, where a read by a name passed in here was one look-up
 * shared by all four names (V8's polymorphic keyed load, ~0.3 µs a request by `perf`).
 */
function field(
  lines: readonly string[],
  name: keyof AccessFields,
  max: number,
  control = true
): string | undefined {
  try {
    return singleLine(lines, name, max, control)
  } catch (error) {
    throw malformed((error as FieldError).message)
  }
}

const isRequestTarget = (url: unknown): url is RequestTarget =>
  typeof url === 'object' &&
  url !== null &&
  typeof (url as RequestTarget).authority === 'string' &&
  typeof (url as RequestTarget).path === 'string' &&
  typeof (url as RequestTarget).query === 'string'

/** BA101 when field `name`'s value holds control characters. */
function controlCheck(value: string, name: string): void {
  try {
    checkControl(value, name)
  } catch (error) {
    throw malformed((error as FieldError).message)
  }
}

/**
 * Refuses a request whose `Content-Length` announces a body that did not reach the check (400
 * BA101, docs/http-binding.md §2.6): a runtime that drops the body of a `GET` (a fetch `Request`
 * cannot carry one) would otherwise take a request with a body for one without, and accept it
 * with neither `content-digest` covered nor the body checked. Every member of every line (a
 * `Headers` object joins lines with ", ") must be zero. A chunked body has no length: an empty
 * one is no body, and a runtime that drops a chunked one cannot be told from it here (this
 * library's node:http bridge gives every body its length).
 */
function refuseUnreadBody(lines: readonly string[], hasBody: boolean): void {
  if (!hasBody && announcesBody(lines)) {
    throw malformed('content-length announces a body that was not received')
  }
}

/**
 * Refuses a body with a content coding (415 BA606, docs/http-binding.md §2.7): `Content-Digest`
 * is over the bytes as sent, and body parsers (express.json, Nest's) decode them before keeping
 * the raw bytes, so no server could hash what was sent and give the handler the decoded data
 * alike. `identity` is no coding; a request without a body has nothing coded.
 */
function refuseContentCoding(lines: readonly string[], hasBody: boolean): void {
  if (hasBody && namesCoding(lines)) {
    throw new UnsupportedMediaTypeError(
      {},
      'a header-form request body must be sent without Content-Encoding (its digest is over the bytes as sent)'
    )
  }
}

/** The token of `Authorization: BetterAuth <token>`. No such header: BA404. */
function readToken(
  fields: AccessFields,
  max: number,
  known: ((token: string) => boolean) | undefined
): { token: string; value: string } {
  const value = field(fields.authorization, 'authorization', max, false)
  if (value === undefined) throw new CredentialsRequiredError()
  // The usual shape, `BetterAuth <token>` with one space, read without the general pattern;
  // TOKEN_CHARS admits no control character, so the field's own check is not needed here.
  if (value.charCodeAt(AUTH_SCHEME.length) === 0x20 && value.startsWith(AUTH_SCHEME)) {
    const token = value.slice(AUTH_SCHEME.length + 1)
    if (token !== '' && (known?.(token) === true || TOKEN_CHARS.test(token))) {
      return { token, value }
    }
  }
  controlCheck(value, 'authorization')
  const m = AUTHORIZATION.exec(value)
  if (m === null || (m[1] as string).toLowerCase() !== 'betterauth') {
    // A value that is not even `scheme [credentials]` may be two joined lines: say so.
    if (m === null && value.includes(',')) throw malformed('authorization is duplicated')
    if (m !== null) throw new CredentialsRequiredError({ context: { scheme: m[1] } })
    throw malformed('authorization is not "BetterAuth <token>"')
  }
  const token = m[2]
  if (token === undefined || token === '') throw malformed('authorization has no token')
  if (!TOKEN_CHARS.test(token)) {
    throw malformed(token.includes(',') ? 'authorization is duplicated' : 'token is not base64url')
  }
  return { token, value }
}

/**
 * Reads and checks everything about a header-form access request that needs no key: the
 * `Authorization`, `Signature-Input`, `Signature` and (with a body) `Content-Digest` fields,
 * the covered components and parameters, the body digest; and builds the signature base.
 *
 * Throws UnsupportedMediaTypeError (BA606) for a body with a `Content-Encoding` other than
 * `identity`; CredentialsRequiredError (BA404) without `Authorization: BetterAuth`;
 * InvalidMessageError (BA101) for anything malformed, missing, duplicated, oversized or not
 * allowed; InvalidSignatureError (BA201) when `Content-Digest` does not match the body.
 */
export function readHeaderAccess(
  input: HeaderAccessInput,
  limits: HeaderAccessLimits = {}
): HeaderAccess {
  const headers =
    input.headers instanceof AccessFieldLines
      ? input.headers
      : fieldsLines(input.headers, ACCESS_FIELDS)
  const hasBody = input.body !== undefined && input.body.length > 0
  refuseContentCoding(headers['content-encoding'], hasBody)
  refuseUnreadBody(headers['content-length'], hasBody)
  const { token, value: authorization } = readToken(
    headers,
    limits.maxAuthorizationLength ?? 16448,
    input.knownToken
  )
  // No control-character scan of these two up front: the strict parser below admits none (its
  // strings, keys, digits and base64 are printable ASCII, and only SP or HTAB may follow a
  // member), so a value with one fails to parse, and is then named as the reason.
  const maxInput = limits.maxSignatureInputLength ?? 1024
  const signatureInput = field(headers['signature-input'], 'signature-input', maxInput, false)
  const signatureField = field(
    headers.signature,
    'signature',
    limits.maxSignatureLength ?? 256,
    false
  )
  if (signatureInput === undefined) throw malformed('signature-input is missing')
  if (signatureField === undefined) throw malformed('signature is missing')

  let parsed
  try {
    // The strict parser of the one allowed shape (src/binding/strict.ts), not the generic one.
    parsed = parseRequestSignature(
      signatureInput,
      signatureField,
      REQUEST_TAG,
      ALLOWED_COMPONENTS,
      ALLOWED_PARAMS
    )
    checkComponents(
      parsed.names,
      ALLOWED_COMPONENTS,
      hasBody ? WITH_BODY_COMPONENTS : REQUEST_COMPONENTS
    )
  } catch (error) {
    if (error instanceof FieldError) {
      controlCheck(signatureInput, 'signature-input')
      controlCheck(signatureField, 'signature')
      throw malformed(error.message)
    }
    throw error
  }
  const nonce = parsed.params.get('nonce') as string | undefined
  if (nonce === undefined) throw malformed('signature parameter nonce is missing')
  if (!NONCE_TEXT.test(nonce)) throw malformed('nonce is not a 128-bit nonce (0A…)')
  const keyid = parsed.params.get('keyid') as string | undefined
  if (keyid !== undefined && !PUBLIC_KEY_TEXT.test(keyid)) {
    throw malformed('keyid is not a public key (1AAI…)')
  }
  if (!USUAL_METHODS.has(input.method) && !METHOD.test(input.method)) {
    throw malformed('method is not an HTTP token')
  }

  let target: RequestTarget
  try {
    // A URL from another realm (a vm context) is not `instanceof URL`: anything that is not a
    // RequestTarget is read as URL text.
    const url = input.url
    target = isRequestTarget(url) ? url : targetOfUrl(url instanceof URL ? url : String(url))
  } catch {
    throw malformed('url is not absolute')
  }

  // The base by concatenation, from each component's constant quoted id: a tree of pieces that
  // is flattened once, when it is encoded for the verifier. Joining an array of the pieces and
  // encoding that costs ~1,900 instructions more a request (the array, then the join's copy).
  let base = ''
  const components: string[] = []
  for (let i = 0; i < parsed.names.length; i++) {
    const name = parsed.names[i] as string
    let value: string
    switch (name) {
      case '@method':
        value = input.method
        break
      case '@authority':
        value = input.expectedAuthority?.toLowerCase() ?? target.authority
        break
      case '@path':
        value = target.path
        break
      case '@query':
        value = target.query
        break
      case 'authorization':
        value = authorization
        break
      default: {
        // content-digest, the only other allowed component
        const max = limits.maxContentDigestLength ?? 512
        const digest = field(headers['content-digest'], 'content-digest', max, false)
        if (digest === undefined) throw malformed('content-digest is covered but missing')
        // The usual value is exactly the digest this server computes (so printable); any other
        // is scanned for control characters, then checked in full.
        // Compared in pieces: a concatenation would be a new string to flatten per request.
        const usual =
          input.sha256Base64 !== undefined &&
          digest.length === 54 && // `sha-256=:` + 44 characters of base64 + `:`
          digest.charCodeAt(53) === 0x3a &&
          digest.substring(0, 9) === 'sha-256=:' &&
          digest.substring(9, 53) === input.sha256Base64(input.body ?? EMPTY)
        if (!usual) controlCheck(digest, 'content-digest')
        const problem = usual ? undefined : digestProblem(digest, input.body, input.sha256)
        if (problem?.problem === 'malformed') throw malformed(`content-digest: ${problem.reason}`)
        if (problem !== undefined) {
          throw new InvalidSignatureError('content digest', { context: { reason: problem.reason } })
        }
        value = digest
      }
    }
    const id = QUOTED_IDS.get(name) as QuotedId
    components.push(id.quoted)
    base += id.line + value + '\n'
  }
  base += '"@signature-params": ' + parsed.paramsText

  return {
    token,
    nonce,
    created: parsed.created * 1000,
    keyid,
    signature: parsed.signature,
    signatureBase: base,
    components,
  }
}

/**
 * Verifies the request signature with the token's access key (`token.publicKey`), after the
 * core has verified the token itself. A `keyid` that names another key fails the same way.
 * Throws InvalidSignatureError (BA201).
 */
export async function verifyHeaderAccess(
  access: HeaderAccess,
  verifier: Verifier,
  tokenPublicKey: string
): Promise<void> {
  if (access.keyid !== undefined && access.keyid !== tokenPublicKey) {
    throw new InvalidSignatureError('request', {
      context: { reason: 'keyid is not the token key' },
    })
  }
  const base = new TextEncoder().encode(access.signatureBase)
  if (!(await verifier.verify(base, qualified(access.signature), tokenPublicKey))) {
    throw new InvalidSignatureError('request')
  }
}

/** The time rules, as the classic form's (seconds in the server's options). */
export interface RequestTimeLimits {
  /** How old a request may be, ms. @default 30000 */
  accessWindowMs?: number
  /** How far ahead of the server's clock a request may be, ms. @default 5000 */
  clockSkewMs?: number
}

/**
 * The classic form's window applied to `created` (ms): older than the window is BA501
 * (StaleRequestError), ahead of `now` by more than the skew is BA502 (FutureRequestError).
 */
export function checkRequestTime(
  created: number,
  now: number,
  limits: RequestTimeLimits = {}
): void {
  if (created < now - (limits.accessWindowMs ?? 30_000)) throw new StaleRequestError()
  if (created > now + (limits.clockSkewMs ?? 5_000)) throw new FutureRequestError()
}

/** What a client signs. */
export interface HeaderRequestToSign {
  method: string
  /** The absolute URL the request goes to. */
  url: string | URL
  /** The request's other headers, to refuse ones this would duplicate. */
  headers?: HeadersInput
  /** The body exactly as it will be sent; a stream must be read into bytes first. */
  body?: Uint8Array
  /** The access token (from createSession or refreshSession). */
  token: string
  /** The access key: the key whose public key is the token's `publicKey`. */
  signer: SigningKey
  /** A fresh 128-bit nonce (`0A…`). */
  nonce: string
  /** The request time, ms since the epoch (sent in whole seconds). */
  timestamp: number | Date
  /** Sent as `keyid` when given: the token's `publicKey`. */
  keyid?: string
}

/** The headers to add, and what the client keeps to verify the reply. */
export interface SignedHeaderRequest {
  /** Lower-case names: `authorization`, `content-digest` (with a body), `signature-input`, `signature`. */
  headers: Record<string, string>
  /** The raw request signature: a signed reply is bound to it. */
  signature: Uint8Array
  signatureBase: string
  /** The method as signed (normalized as fetch sends it). */
  method: string
}

// fetch upper-cases these methods and sends every other one as given (Fetch standard).
const NORMALIZED = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT'])

const OWN_FIELDS = ['authorization', 'signature-input', 'signature', 'content-digest']

/**
 * Signs a request in the header form. Returns the headers to add; the caller sends the body
 * bytes exactly as given. Throws TypeError for a bad nonce or method, or if `headers` already
 * holds one of the fields this adds.
 */
export async function signHeaderRequest(
  request: HeaderRequestToSign
): Promise<SignedHeaderRequest> {
  if (unqualifyNonce(request.nonce) === undefined) throw new TypeError('nonce must be a 0A… nonce')
  if (!TOKEN_CHARS.test(request.token)) throw new TypeError('token must be base64url text')
  const upper = request.method.toUpperCase()
  const method = NORMALIZED.has(upper) ? upper : request.method
  if (!METHOD.test(method)) throw new TypeError('method is not an HTTP token')
  for (const name of OWN_FIELDS) {
    if (fieldLines(request.headers, name).length > 0) throw new TypeError(`${name} is already set`)
  }
  const target = targetOfUrl(request.url)
  const ms = request.timestamp instanceof Date ? request.timestamp.getTime() : request.timestamp
  const authorization = `${AUTH_SCHEME} ${request.token}`
  const headers: Record<string, string> = { authorization }
  const lines: [string, string][] = [
    ['"@method"', method],
    ['"@authority"', target.authority],
    ['"@path"', target.path],
    ['"@query"', target.query],
    ['"authorization"', authorization],
  ]
  const components: string[] = [...REQUEST_COMPONENTS]
  if (request.body !== undefined && request.body.length > 0) {
    headers['content-digest'] = contentDigest(request.body)
    lines.push([componentIdentifier(BODY_COMPONENT), headers['content-digest']])
    components.push(BODY_COMPONENT)
  }
  const params = emitParams({
    created: Math.floor(ms / 1000),
    nonce: request.nonce,
    tag: REQUEST_TAG,
    ...(request.keyid === undefined ? {} : { keyid: request.keyid }),
  })
  const paramsText = serializeSignatureParams(components, params)
  const signatureBase = joinBase(lines, paramsText)
  const signature = await signBase(request.signer, signatureBase)
  headers['signature-input'] = `${LABEL}=${paramsText}`
  headers['signature'] = `${LABEL}=${byteSequence(signature)}`
  return { headers, signature, signatureBase, method }
}
