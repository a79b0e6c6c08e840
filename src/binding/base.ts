/**
 * The signature base of RFC 9421 §2.5 for the components the header form uses.
 *
 * Written here rather than taken from `http-message-signatures`: that package derives the same
 * values, but it imports `node:crypto` at load (this module also runs in browsers, for the
 * client), takes headers as a record only (no `Headers`, no duplicate detection) and parses each
 * component identifier again per call; the components used here are few and fixed, so deriving
 * them directly is short. Its output is checked against ours in test/binding.
 */
import {
  serializeByteSequence,
  serializeInnerList,
  serializeItem,
  type BareItem,
  type Item,
  type Parameters,
} from 'structured-headers'
import { InvalidMessageError } from '../errors'
import { FieldError, singleField, type HeadersInput } from './fields'

/** The dictionary label of the header form's signature, in `Signature-Input` and `Signature`. */
export const LABEL = 'ba'
/** The only algorithm: ECDSA P-256 with SHA-256, signature as raw r ‖ s (RFC 9421 §3.3.4). */
export const ALGORITHM = 'ecdsa-p256-sha256'
/** The `tag` of an access request signature. */
export const REQUEST_TAG = 'better-auth'
/** The `tag` of a reply signature. */
export const RESPONSE_TAG = 'better-auth-response'

/**
 * A component identifier: a name (`"@method"`, `"authorization"` — derived components start
 * with `@`, others are header fields, lower case), or a name with parameters as a
 * structured-field item (`REQUEST_SIGNATURE_COMPONENT`).
 */
export type ComponentId = string | Item

/** `"signature";req;key="ba"`: a reply's binding to the request's signature (RFC 9421 §2.4). */
export const REQUEST_SIGNATURE_COMPONENT: Item = [
  'signature',
  new Map<string, BareItem>([
    ['req', true],
    ['key', LABEL],
  ]),
]

/** What components are derived from: a request's or a reply's parts. */
export interface SignatureBaseMessage {
  method?: string
  /** The absolute request URL (a URL object is used as is). */
  url?: string | URL
  /** The `@authority` value; defaults to the URL's host (lower case, default port omitted). */
  authority?: string
  status?: number
  headers?: HeadersInput
  /** For a reply: the raw bytes of the request's `ba` signature. */
  requestSignature?: Uint8Array
}

/** Signature parameters, serialized in their iteration order. */
export type SignatureParams = Parameters | Readonly<Record<string, BareItem>>

const toParameters = (params: SignatureParams): Parameters =>
  params instanceof Map ? params : new Map(Object.entries(params))

const toItem = (id: ComponentId): Item => (typeof id === 'string' ? [id, new Map()] : id)

/** A byte sequence in structured-field form, `:base64:` (standard alphabet, padded). */
export const byteSequence = (bytes: Uint8Array): string =>
  serializeByteSequence(bytes as Uint8Array<ArrayBuffer>)

/** The serialized identifier of a component: `"@method"`, `"signature";req;key="ba"`. */
export function componentIdentifier(id: ComponentId): string {
  if (typeof id === 'string') return '"' + id + '"'
  return id[1].size === 0 ? '"' + String(id[0]) + '"' : serializeItem(id)
}

/**
 * `@signature-params`: the inner list of component identifiers with the parameters, exactly as
 * the `Signature-Input` member value is serialized.
 */
export function serializeSignatureParams(
  components: readonly ComponentId[],
  params: SignatureParams
): string {
  const parameters = toParameters(params)
  return (
    fastSignatureParams(components, parameters) ??
    serializeInnerList([components.map(toItem), parameters])
  )
}

// The values every signature of this binding holds (component names, `created`, `nonce`,
// `keyid`, `alg`, `tag`, `req`, `key`) are strings, integers and `true`, serialized here
// directly: the generic serializer costs more than the ECDSA verification beside it. Anything
// else (or a string or key the RFC does not allow) goes to the library, which serializes or
// refuses it; test/binding checks that both agree.
const SF_STRING = /^[\x20-\x7e]*$/
const SF_KEY = /^[a-z*][a-z0-9_\-.*]*$/
const QUOTE_OR_BACKSLASH = /["\\]/g

function fastString(value: string): string | undefined {
  if (!SF_STRING.test(value)) return undefined
  return '"' + value.replace(QUOTE_OR_BACKSLASH, '\\$&') + '"'
}

function fastParameters(params: Parameters): string | undefined {
  let out = ''
  for (const [key, value] of params) {
    if (!SF_KEY.test(key)) return undefined
    if (value === true) out += ';' + key
    else if (typeof value === 'string') {
      const text = fastString(value)
      if (text === undefined) return undefined
      out += ';' + key + '=' + text
    } else if (typeof value === 'number' && Number.isSafeInteger(value)) {
      if (Math.abs(value) > 999_999_999_999_999) return undefined
      out += ';' + key + '=' + String(value)
    } else return undefined
  }
  return out
}

function fastSignatureParams(
  components: readonly ComponentId[],
  params: Parameters
): string | undefined {
  let out = '('
  for (let i = 0; i < components.length; i++) {
    const id = components[i] as ComponentId
    const [name, itemParams] = typeof id === 'string' ? [id, undefined] : id
    if (typeof name !== 'string') return undefined
    const text = fastString(name)
    if (text === undefined) return undefined
    const suffix = itemParams === undefined ? '' : fastParameters(itemParams)
    if (suffix === undefined) return undefined
    out += (i === 0 ? '' : ' ') + text + suffix
  }
  const suffix = fastParameters(params)
  return suffix === undefined ? undefined : out + ')' + suffix
}

/** Joins `[identifier, value]` lines and the `@signature-params` line (RFC 9421 §2.5). */
export function joinBase(
  lines: readonly (readonly [string, string])[],
  paramsText: string
): string {
  let base = ''
  for (const [id, value] of lines) base += id + ': ' + value + '\n'
  return base + '"@signature-params": ' + paramsText
}

const missing = (what: string): InvalidMessageError =>
  new InvalidMessageError('signature-input', `covered component ${what} is missing`)

function parseUrl(url: string | URL | undefined): URL {
  if (url instanceof URL) return url
  if (url === undefined) throw missing('url')
  try {
    return new URL(url)
  } catch {
    throw new InvalidMessageError('url', 'not an absolute URL')
  }
}

/** The `@authority` of a URL: host in lower case, with the port only when not the default. */
export const authorityOf = (url: URL): string => url.host.toLowerCase()

/**
 * What the header form covers of a request's URL: `@authority`, `@path` and `@query` (`?` when
 * there is none), as the WHATWG URL parser gives them.
 */
export interface RequestTarget {
  authority: string
  path: string
  query: string
}

/** The covered parts of an absolute URL. Throws TypeError if `url` is not one. */
export function targetOfUrl(url: string | URL): RequestTarget {
  const parsed = url instanceof URL ? url : new URL(url)
  return {
    authority: authorityOf(parsed),
    path: parsed.pathname || '/',
    query: parsed.search || '?',
  }
}

// A host and a request target these patterns admit come out of the URL parser unchanged, so the
// server can skip it (a URL parse and its object cost ~0.5 µs per request): lower-case ASCII
// names whose last label cannot be read as a number (the parser rewrites IPv4 forms such as
// `127.1`), no punycode label (it is validated), canonical dotted-quad IPv4, a port without
// leading zeros that is not http's default; a path and query of characters the parser neither
// percent-encodes (the query's set includes `'`) nor reads specially (`\`, `#`), with no dot
// segment (`/.` and `%2e` anywhere send the request to the parser). Anything else is parsed.
const NAME_HOST = /^(?!.*(?:^|\.)xn--)[a-z0-9-]+(?:\.[a-z0-9-]+)*$/
const NUMERIC_LABEL = /(?:^|\.)(?:\d+|0x[0-9a-f]*)$/
const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)'
const IPV4_HOST = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`)
const PORT = /^[1-9]\d{0,4}$/
const PLAIN_PATH = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$/
const PLAIN_QUERY = /^\?[A-Za-z0-9\-._~!$&()*+,;=:@/?%]*$/
const DOT_SEGMENT = /\/\.|%2e/i

/**
 * The last few plain targets `serverTarget` read, by host and request target: a route called
 * again and again (`GET /me`) is matched by its text rather than by the four patterns (~2,000
 * instructions a request). Only what the patterns admitted is kept, frozen; the result depends
 * on nothing but the two texts.
 */
const targets: { target: string; parts: Readonly<RequestTarget> }[] = []
const TARGETS_KEPT = 4
let nextTarget = 0

/**
 * The covered parts of a request as a server receives it: its `Host` field (undefined or empty:
 * `localhost`) and its request target (`/path?query`, node's `req.url`). The same as
 * `targetOfUrl(new URL('http://' + host + target))`, without the parse in the common case.
 * Throws TypeError when they do not make a URL.
 */
export function serverTarget(host: string | undefined, target: string): Readonly<RequestTarget> {
  const authority = host === undefined || host === '' ? 'localhost' : host
  for (const seen of targets) {
    if (seen.target === target && seen.parts.authority === authority) return seen.parts
  }
  const q = target.indexOf('?')
  const path = q < 0 ? target : target.slice(0, q)
  const query = q < 0 ? '?' : target.slice(q)
  if (
    plainAuthority(authority) &&
    PLAIN_PATH.test(path) &&
    !DOT_SEGMENT.test(path) &&
    (q < 0 || PLAIN_QUERY.test(query))
  ) {
    const parts: Readonly<RequestTarget> = Object.freeze({ authority, path, query })
    targets[nextTarget] = { target, parts }
    nextTarget = (nextTarget + 1) % TARGETS_KEPT
    return parts
  }
  if (resolvesAway(path)) {
    throw new InvalidMessageError(
      'request target',
      'has a "." or ".." segment or a backslash, which URL parsing resolves: the signed path would not be the one routed'
    )
  }
  return targetOfUrl(`http://${authority}${target}`)
}

/**
 * Whether a path as received has a part URL parsing resolves away: a `.` or `..` segment (its
 * dots percent-encoded or not, `%2e` in either case) or a backslash (a `/` to the WHATWG
 * parser). node:http routers route such a path as it was sent, while `@path` is the path as
 * parsed: `/notes/%2e%2e` would be signed as `/` and routed as a note. Servers refuse them
 * (docs/http-binding.md §2.2); clients on `fetch` or `URL` never send them.
 */
export function resolvesAway(path: string): boolean {
  if (path.includes('\\')) return true
  if (!DOT_SEGMENT.test(path)) return false
  for (const segment of path.split('/')) {
    const dots = segment.replace(/%2e/gi, '.')
    if (dots === '.' || dots === '..') return true
  }
  return false
}

function plainAuthority(authority: string): boolean {
  const colon = authority.indexOf(':')
  const name = colon < 0 ? authority : authority.slice(0, colon)
  if (colon >= 0) {
    const port = authority.slice(colon + 1)
    if (!PORT.test(port) || Number(port) > 65535 || port === '80') return false
  }
  return NUMERIC_LABEL.test(name) ? IPV4_HOST.test(name) : NAME_HOST.test(name)
}

/** The value of one component (RFC 9421 §2.1–2.4), for the components this binding uses. */
export function componentValue(message: SignatureBaseMessage, id: ComponentId): string {
  const [name, params] = toItem(id)
  if (typeof name !== 'string') throw new InvalidMessageError('signature-input', 'bad component')
  if (name === 'signature' && params.get('req') === true && params.get('key') === LABEL) {
    if (params.size !== 2) throw new InvalidMessageError('signature-input', 'bad component')
    if (message.requestSignature === undefined) throw missing('"signature";req')
    return byteSequence(message.requestSignature)
  }
  if (params.size !== 0) {
    throw new InvalidMessageError('signature-input', `component ${name} has parameters`)
  }
  switch (name) {
    case '@method':
      if (message.method === undefined) throw missing(name)
      return message.method
    case '@authority':
      return message.authority?.toLowerCase() ?? authorityOf(parseUrl(message.url))
    case '@path':
      return parseUrl(message.url).pathname || '/'
    case '@query':
      return parseUrl(message.url).search || '?'
    case '@target-uri':
      return parseUrl(message.url).href
    case '@scheme':
      return parseUrl(message.url).protocol.slice(0, -1)
    case '@status':
      if (message.status === undefined) throw missing(name)
      return String(message.status)
  }
  if (name.startsWith('@') || name !== name.toLowerCase()) {
    throw new InvalidMessageError('signature-input', `unsupported component ${name}`)
  }
  let value: string | undefined
  try {
    value = singleField(message.headers, name, Infinity)
  } catch (error) {
    throw new InvalidMessageError(name, (error as FieldError).message)
  }
  if (value === undefined) throw missing(name)
  return value
}

/**
 * The signature base (RFC 9421 §2.5) of `message` for `components` and `params`: one line per
 * component, then `"@signature-params"`. Throws InvalidMessageError (BA101) when a component
 * is missing or not one this module derives (`@method`, `@authority`, `@path`, `@query`,
 * `@target-uri`, `@scheme`, `@status`, a header field, `"signature";req;key="ba"`); the header
 * form itself accepts fewer (see readHeaderAccess).
 */
export function signatureBase(
  message: SignatureBaseMessage,
  components: readonly ComponentId[],
  params: SignatureParams
): string {
  const url = message.url === undefined ? undefined : parseUrl(message.url)
  const resolved = { ...message, url }
  const lines = components.map(
    id => [componentIdentifier(id), componentValue(resolved, id)] as const
  )
  return joinBase(lines, serializeSignatureParams(components, params))
}
