/**
 * What the node:http frameworks share (Express, Koa, NestJS on Express or Fastify): the raw request
 * body whatever body parser ran before the adapter, and protocol endpoints as node:http middleware.
 */
import { ServerResponse, type IncomingMessage } from 'node:http'
import type { AccessPrincipal, HandlerResult, RequestContext } from '../../src/server/core'
import type { Endpoint } from '../../src/server/routes'
import {
  ForbiddenError,
  InvalidMessageError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
} from '../../src/errors'
import { checkAccess, principals, settleAccess, type AccessOptions } from './access'
import { usesHeaderForm } from './binding'
import { serverTarget, type RequestTarget } from '../../src/binding/base'
import { NO_LINES, type HeaderRecord } from '../../src/binding/fields'
import {
  ACCESS_FIELDS,
  AUTH_SCHEME,
  AccessFieldLines,
  type AccessFieldName,
} from '../../src/binding/request'
import { readBody } from './body'
import { JSON_CONTENT_TYPE, bodyLimit, type AdapterCore } from './core'
import { forgetJsonRoute, routeJson, type JsonMethod } from './express-json'

export { DEFAULT_BODY_LIMIT } from './core'

/** Where the bytes came from. */
export type BodySource = 'raw' | 'stream' | 'reserialized'

/** What a body parser may have left: the raw bytes it kept, and what it parsed. */
export interface ParsedBody {
  /** Raw bytes kept by a parser (`verify` hook, Nest's `rawBody: true`, koa-bodyparser). */
  rawBody?: unknown
  /** What a parser produced (`req.body` / `ctx.request.body`). */
  body?: unknown
}

/** Whether a parser already consumed the request stream. */
export function streamConsumed(req: IncomingMessage): boolean {
  return (
    (req as { _body?: unknown })._body === true ||
    req.readableEnded ||
    (req.complete && !req.readable)
  )
}

/**
 * The request body as the client sent it, when that can be had: raw bytes a parser kept, a body a
 * raw/text parser produced, or the unread stream. When a JSON parser consumed the stream without
 * keeping the bytes, the compact re-serialization of what it parsed is the best left: it verifies
 * for clients that sign `JSON.stringify` output (every known client), but not for a payload whose
 * text differs from its re-serialization (e.g. a numeric-looking key, which `JSON.parse`
 * reorders). Mount the adapter before the parser, or keep the raw bytes, to avoid that.
 */
export async function nodeRawBody(
  req: IncomingMessage,
  parsed: ParsedBody,
  limit: number
): Promise<{ body: Buffer | string; source: BodySource }> {
  const raw = parsed.rawBody
  if (Buffer.isBuffer(raw) || typeof raw === 'string') return { body: raw, source: 'raw' }
  if (streamConsumed(req)) {
    const body = parsed.body
    if (Buffer.isBuffer(body) || typeof body === 'string') return { body, source: 'raw' }
    let text: string
    try {
      text = body === undefined || body === null ? '' : JSON.stringify(body)
    } catch (cause) {
      throw new InvalidMessageError('body', 'cannot be re-serialized', { cause })
    }
    return { body: text, source: 'reserialized' }
  }
  return { body: await readBody(req, limit), source: 'stream' }
}

const warned = new WeakSet<object>()

/**
 * A body a parser re-serialized: logged once per core with the way to avoid it, and refused (415
 * BA606, saying how to keep the raw body) where the core has `allowReserializedBody: false`.
 */
export function warnReserialized(
  core: Pick<AdapterCore, 'logger' | 'allowReserializedBody'>,
  advice: string
): void {
  if (core.allowReserializedBody === false) {
    throw new UnsupportedMediaTypeError(
      {},
      `the request body was consumed by a body parser before better-auth and its raw bytes were not kept. ${advice}`
    )
  }
  if (warned.has(core)) return
  warned.add(core)
  core.logger.warn(
    { adapter: 'better-auth-protocol' },
    `a body parser consumed the request before better-auth; verifying the re-serialized body. ${advice}`
  )
}

/**
 * A body-parser `verify` hook that keeps the raw bytes on `req.rawBody`, so signatures are checked
 * over exactly what was sent: `express.json({ verify: keepRawBody })`.
 */
export function keepRawBody(req: IncomingMessage, _res: unknown, buffer: Buffer): void {
  ;(req as IncomingMessage & { rawBody?: Buffer }).rawBody = buffer
}

/** Parses a body read for an anonymous request, so handlers after the adapter still get it. */
export function parsedForHandler(body: Buffer | string): unknown {
  const text = typeof body === 'string' ? body : body.toString('utf8')
  if (text === '') return undefined
  try {
    return JSON.parse(text) as unknown
  } catch {
    return text
  }
}

/**
 * After a body over the limit the rest of it is not read: the connection closes once the answer is
 * sent, instead of draining an upload of any length to keep it alive.
 */
export function closeAfterOverlongBody(
  error: unknown,
  setHeader: (name: string, value: string) => unknown
): void {
  if (error instanceof PayloadTooLargeError) setHeader('connection', 'close')
}

/** Writes a core answer on a plain node:http response, with an explicit length. */
export function writeResult(res: ServerResponse, result: HandlerResult): void {
  // Every field in one `writeHead`, as a flat list, with an explicit length (no chunked framing
  // on keep-alive connections) unless the result gives one. On a response with no field set
  // before, node writes such a list as it is, checking each name and value once, where
  // `setHeader` would store each field (a lower-cased name and an entry) to be read back: ~6,500
  // instructions fewer a reply here (callgrind), more with more fields. With fields set before
  // (CORS, `connection: close`), node merges the list through `setHeader`, as it did.
  const headers = result.headers
  const fields: (string | number)[] = []
  let length = true
  for (const name of Object.keys(headers)) {
    const value = headers[name]
    if (value === undefined) continue
    if (name.length === 14 && name.toLowerCase() === 'content-length') length = false
    fields.push(name, value)
  }
  if (length) fields.push('content-length', Buffer.byteLength(result.body))
  res.writeHead(result.status, fields)
  res.end(result.body)
}

/**
 * Sends a signed response envelope (its JSON text) on a node:http response: its type, its length
 * and the text, with the status the handler set. Express's `res.send` would also parse and format
 * the type three times, hash the text for an `ETag` and check the request's freshness, for a text
 * that echoes the request's fresh nonce, so that no `ETag` of it can ever match. As `res.send`
 * does, a 204 or 304 goes out with no body and a 205 with an empty one; node itself sends no body
 * in answer to `HEAD`.
 */
export function endSignedJson(res: ServerResponse, text: string): void {
  const status = res.statusCode
  if (status === 204 || status === 304) {
    res.removeHeader('content-type')
    res.removeHeader('content-length')
    res.removeHeader('transfer-encoding')
    res.end()
    return
  }
  res.setHeader('content-type', JSON_CONTENT_TYPE)
  if (status === 205) {
    res.removeHeader('transfer-encoding')
    res.setHeader('content-length', 0)
    res.end()
    return
  }
  // Content-Length and Transfer-Encoding never go together: a length only if none was chosen.
  if (!res.hasHeader('transfer-encoding')) {
    res.setHeader('content-length', Buffer.byteLength(text))
  }
  res.end(text)
}

/** A request as node:http middleware sees it: Express's, or the one @fastify/middie passes on. */
export type MiddlewareRequest = IncomingMessage & { ip?: string; originalUrl?: string }

/** The path of a request, without its query (`originalUrl` where a router rewrote `url`). */
export const requestPath = (req: { originalUrl?: string; url?: string }): string =>
  (req.originalUrl ?? req.url ?? '').split('?', 1)[0] as string

/** The client IP a framework worked out (`req.ip`), else the socket's peer. */
export const requestIp = (req: MiddlewareRequest): string | undefined =>
  req.ip ?? req.socket?.remoteAddress

/**
 * Answers one protocol endpoint on a node:http request: reads the raw body (kept by a parser, or
 * from the unread stream) and runs the core. Never rejects: a body that cannot be read becomes
 * its error answer (after a body over the limit the connection closes).
 */
export async function answerEndpoint(
  core: AdapterCore,
  endpoint: Endpoint,
  req: IncomingMessage,
  parsed: ParsedBody,
  context: RequestContext,
  io: { advice: string; setHeader: (name: string, value: string) => unknown }
): Promise<HandlerResult> {
  let read: { body: Buffer | string; source: BodySource }
  try {
    read = await nodeRawBody(req, parsed, bodyLimit(core))
    if (read.source === 'reserialized') warnReserialized(core, io.advice)
  } catch (error) {
    closeAfterOverlongBody(error, io.setHeader)
    return core.errorResult(error, { endpoint, ...context })
  }
  return core.handle(endpoint, read.body, context)
}

/**
 * node:http middleware answering one protocol endpoint (whatever the path it is mounted at):
 * reads the raw body (kept by a parser, or from the unread stream) and writes the core's answer.
 */
export function endpointMiddleware<
  Req extends MiddlewareRequest = MiddlewareRequest,
  Res extends ServerResponse = ServerResponse,
>(
  auth: AdapterCore,
  endpoint: Endpoint,
  options: {
    /** How to keep the raw bytes, logged once if a parser re-serialized the body. */
    advice: string
    clientIp?: ((req: Req) => string | undefined) | undefined
    write?: (res: Res, result: HandlerResult) => void
  }
): (req: Req, res: Res, next: (error?: unknown) => void) => void {
  const clientIp = options.clientIp ?? requestIp
  const write = options.write ?? writeResult
  return (req, res, next) => {
    const context: RequestContext = { ip: clientIp(req), path: requestPath(req) }
    const setHeader = (name: string, value: string) => res.setHeader(name, value)
    answerEndpoint(auth, endpoint, req, req as ParsedBody, context, {
      advice: options.advice,
      setHeader,
    })
      .then(result => {
        if (!res.destroyed) write(res, result) // else the client went away: nothing to answer
      })
      .catch(next)
  }
}

/** Where an adapter keeps what the access step found, in its framework's terms. */
export interface AccessTarget<Source> {
  /** The node:http request whose body is read. */
  req: IncomingMessage
  /** What a body parser left (raw bytes, parsed body). */
  parsed: ParsedBody
  /** What `authorize` gets (the framework's request, context or execution context). */
  source: Source
  /** The object principals are kept by (see `getPrincipal`). */
  key: object
  /** Where the principal is put, as `holder[requestProperty]`. */
  holder: object
  /** Sets the body later handlers read (`req.body`, `ctx.request.body`). */
  setBody(body: unknown): void
  context: RequestContext
  /** The request target as received, path and query (default `req.originalUrl ?? req.url`). */
  url?: string
}

/** Options of the Node-side access step. */
export interface NodeAccessOptions<Attributes, Request, Source> extends AccessOptions<
  Attributes,
  Request,
  Source
> {
  /** Where the principal is put on `holder`. @default 'betterAuth' */
  requestProperty?: string | undefined
  /** Replace the body with the verified request data. @default true */
  replaceBody?: boolean | undefined
  /** Put the principal on the request at once (see `attachPrincipal`). @default true */
  attach?: boolean
}

/** What the access step found. */
export interface NodeAccessResult<Attributes, Request> {
  /** The caller; `undefined` for an anonymous caller (optional access). */
  principal: AccessPrincipal<Attributes, Request> | undefined
  /** Verified by an earlier check on the same request (only authorized again here). */
  earlier: boolean
  /** Where the body came from (`undefined` when an earlier check read it). */
  source: BodySource | undefined
}

/**
 * The access step every node:http framework adapter runs (Express, Koa, NestJS, the standalone
 * server): a request verified earlier is only authorized again; otherwise the raw body is read
 * (with the re-serialization warning), verified and authorized, and the principal put on the
 * request (`holder[requestProperty]`, `getPrincipal`) with the body replaced by the verified
 * request data. An anonymous caller (optional access) keeps a body read from the stream, parsed.
 * Rejects with what failed; adapters hand that to {@link accessFailure}.
 */
export async function nodeAccess<Attributes, Request, Source>(
  core: AdapterCore<Attributes>,
  target: AccessTarget<Source>,
  options: NodeAccessOptions<Attributes, Request, Source>,
  advice: string
): Promise<NodeAccessResult<Attributes, Request>> {
  const earlier = principals.get(target.key) as AccessPrincipal<Attributes, Request> | undefined
  if (earlier !== undefined) {
    if (options.authorize !== undefined && !(await options.authorize(earlier, target.source))) {
      throw new ForbiddenError()
    }
    return { principal: earlier, earlier: true, source: undefined }
  }
  const { body, source } = await nodeRawBody(target.req, target.parsed, bodyLimit(core))
  if (source === 'reserialized') warnReserialized(core, advice)
  if (mayUseHeaderForm(target.req, options.binding)) {
    const headers = readAccessFields(target.req)
    if (
      usualHeaderForm(headers.authorization) ||
      // Node's names are lower case: the two fields the choice depends on, looked up directly.
      usesHeaderForm(
        { authorization: headers.authorization, 'signature-input': headers['signature-input'] },
        options.binding
      )
    ) {
      const principal = await headerAccess(core, target, options, headers, body, source)
      return { principal, earlier: false, source }
    }
  }
  const principal = await checkAccess<Attributes, Request, Source>(
    core,
    body,
    target.context,
    target.source,
    options
  )
  if (principal === undefined && source === 'stream') target.setBody(parsedForHandler(body))
  if (principal !== undefined && options.attach !== false) {
    attachPrincipal(target, principal, options)
  }
  return { principal, earlier: false, source }
}

/**
 * Whether the header form may apply, from node's already parsed `req.headers`: a request with
 * neither an `Authorization` nor a `Signature-Input` line is in the classic form (unless the
 * route requires the header form), and needs no per-line copy of its headers.
 */
function mayUseHeaderForm(
  req: IncomingMessage,
  binding: 'headers' | 'body' | 'any' | undefined
): boolean {
  if (binding === 'headers') return true
  if (binding === 'body') return false
  const headers = req.headers
  return headers.authorization !== undefined || headers['signature-input'] !== undefined
}

/**
 * The usual header-form request, told without `usesHeaderForm`'s general walk (~0.3 µs a
 * request by `perf`): one `Authorization` line that starts `BetterAuth ` exactly, which that
 * walk also takes for the header form (the route's binding is not `'body'` here).
 */
function usualHeaderForm(lines: string | readonly string[] | undefined): boolean {
  if (lines === undefined || (typeof lines !== 'string' && lines.length !== 1)) return false
  const line = typeof lines === 'string' ? lines : (lines[0] as string)
  return line.charCodeAt(AUTH_SCHEME.length) === 0x20 && line.startsWith(AUTH_SCHEME)
}

/** The fields the header form is read from (lower case), by the length of their names. */
const ACCESS_FIELD_NAMES = new Map<number, AccessFieldName[]>()
for (const name of ACCESS_FIELDS) {
  const same = ACCESS_FIELD_NAMES.get(name.length)
  if (same === undefined) ACCESS_FIELD_NAMES.set(name.length, [name])
  else same.push(name)
}

/**
 * Every line of the header form's fields, by lower-case name, read from `req.rawHeaders` in
 * one pass: what `req.headersDistinct` holds for them, without that copy of every field of the
 * request (an array per field, ~1–2 µs and its garbage per request), in the record
 * `readHeaderAccess` reads as it is (`AccessFieldLines`). A request object without
 * `rawHeaders` (a test double) is read through `headersDistinct`.
 */
function readAccessFields(req: IncomingMessage): AccessFieldLines | HeaderRecord {
  const raw = req.rawHeaders as string[] | undefined
  if (!Array.isArray(raw)) return req.headersDistinct
  // Every field named up front, in one order: each request's record has the same layout, so
  // the stores below and the reads of it stay on V8's fast paths (a record built in the order
  // the fields arrived took a layout per order, and its walk the runtime).
  const found = new AccessFieldLines()
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string
    const candidates = ACCESS_FIELD_NAMES.get(name.length)
    if (candidates === undefined) continue
    // Lower-cased only when not already lower case, and once.
    let lower: string | undefined
    let wanted: AccessFieldName | undefined
    for (const candidate of candidates) {
      if (name === candidate || (lower ??= name.toLowerCase()) === candidate) {
        wanted = candidate
        break
      }
    }
    if (wanted === undefined) continue
    // The shared empty array replaced by the field's own; that one is this record's, and grows.
    const lines = found[wanted]
    if (lines === NO_LINES) found[wanted] = [raw[i + 1] as string]
    else (lines as string[]).push(raw[i + 1] as string)
  }
  return found
}

/**
 * The header form of the access step: the request's method, URL (`http://<Host><target>`, the
 * authority checked against the configured one when there is one), every header line, and the
 * raw body bytes against `Content-Digest`. The body the application parsed stays as it is (a body
 * read here from the stream is parsed for it), and is the principal's `request`.
 */
async function headerAccess<Attributes, Request, Source>(
  core: AdapterCore<Attributes>,
  target: AccessTarget<Source>,
  options: NodeAccessOptions<Attributes, Request, Source>,
  headers: AccessFieldLines | HeaderRecord,
  body: Buffer | string,
  source: BodySource
): Promise<AccessPrincipal<Attributes, Request> | undefined> {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body
  const parsed = (source === 'stream' ? parsedForHandler(bytes) : target.parsed.body) as Request
  if (source === 'stream') target.setBody(parsed)
  const req = target.req as MiddlewareRequest
  const path = target.url ?? req.originalUrl ?? req.url ?? '/'
  let url: RequestTarget
  try {
    url = serverTarget(req.headers.host, path)
  } catch (cause) {
    if (cause instanceof InvalidMessageError) throw cause
    throw new InvalidMessageError('request target', 'cannot be read as a URL', { cause })
  }
  const request = {
    method: req.method ?? 'GET',
    url,
    headers,
    parsed,
    // The Buffer itself (a Uint8Array): a view of it was one more object a request.
    body: bytes.length === 0 ? undefined : bytes,
  }
  const principal = await settleAccess(
    () => core.verifyHeaderAccess<Request>(request, target.context, options),
    options,
    target.source
  )
  if (principal === undefined) return undefined
  if (options.attach !== false) {
    attachPrincipal(target, principal, {
      requestProperty: options.requestProperty,
      replaceBody: false,
    })
  }
  return principal
}

type Callback = (error?: Error | null) => void
type End = (this: ServerResponse, ...args: unknown[]) => ServerResponse
type Methods = Pick<ServerResponse, 'writeHead' | 'write' | 'end'>

/** What `signNodeReplies` keeps for one response. */
interface HeldReply {
  core: Pick<AdapterCore, 'signHeaderResponse'>
  requestSignature: Uint8Array
  onError: (error: unknown) => void
  /**
   * Held through the hooks on ServerResponse.prototype (see `hookPrototype`), not through
   * replacements set on the response itself.
   */
  viaPrototype: boolean
  chunks: Buffer[]
  /** The reply's one chunk as the handler passed it, when it was one UTF-8 text (see holdEnd). */
  text: string | undefined
  ended: boolean
  /** Once the reply is sent (or failed): the hooks pass every call on to the methods below. */
  released: boolean
  /** The response's own methods, that a released reply's calls go to. */
  writeHead: ServerResponse['writeHead']
  write: ServerResponse['write']
  end: ServerResponse['end']
}

/** The held replies, by response: kept beside the response rather than on it (see below). */
const held = new WeakMap<ServerResponse, HeldReply>()

/**
 * ServerResponse.prototype's `writeHead`, `write` and `end` from before `hookPrototype` put its
 * hooks in their place; undefined until then.
 */
let prototypeMethods: Methods | undefined

/**
 * Puts hooks in place of ServerResponse.prototype's `writeHead`, `write` and `end`, once per
 * process: each passes the call on to the method it replaced unless the response is held (a
 * WeakMap look-up). Holding a response through these costs no property on it. Express (and Nest
 * on Express) gives every response its own prototype (`Object.setPrototypeOf`), after which each
 * property added to the object makes V8 copy its whole layout: setting the three replacements on
 * the response cost ~7.7 µs per header-form request on Express (a CPU profile of 30,000). Every
 * response in the process inherits from this prototype, a framework's own prototype included
 * (and one a sub-application switches to after the hold), so a reply cannot slip past the hooks
 * that way; one whose own methods shadow them is held by replacements set on it, as before.
 */
function hookPrototype(): Methods {
  if (prototypeMethods !== undefined) return prototypeMethods
  const proto = ServerResponse.prototype
  prototypeMethods = { writeHead: proto.writeHead, write: proto.write, end: proto.end }
  proto.writeHead = onPrototype.writeHead as ServerResponse['writeHead']
  proto.write = onPrototype.write as ServerResponse['write']
  proto.end = onPrototype.end as ServerResponse['end']
  return prototypeMethods
}

/**
 * Signs what a handler writes on a node:http response, whatever it writes (any status below 400,
 * any content type, `res.send`, `res.json`, `res.end` or several `res.write`s): the body is held
 * until `end`, then sent with the response-signature headers of the header form. Replies of 400
 * or more go out unsigned. `onError` gets a signing failure while nothing has been sent.
 *
 * The hooks are module functions reading their state from the response (by a WeakMap), not
 * closures per request: on ServerResponse.prototype when nothing on the response shadows them,
 * else set on the response itself.
 */
export function signNodeReplies(
  core: Pick<AdapterCore, 'signHeaderResponse'>,
  res: ServerResponse,
  requestSignature: Uint8Array,
  onError: (error: unknown) => void
): void {
  const base = hookPrototype()
  const viaPrototype =
    res.writeHead === onPrototype.writeHead &&
    res.write === onPrototype.write &&
    res.end === onPrototype.end
  const { writeHead, write, end } = viaPrototype ? base : res
  held.set(res, {
    core,
    requestSignature,
    onError,
    viaPrototype,
    chunks: [],
    text: undefined,
    ended: false,
    released: false,
    writeHead,
    write,
    end,
  })
  if (viaPrototype) {
    routeJson(res, heldJson)
    return
  }
  res.writeHead = onResponse.writeHead as ServerResponse['writeHead']
  res.write = onResponse.write as ServerResponse['write']
  res.end = onResponse.end as ServerResponse['end']
}

/**
 * Express's `res.json(data)` of a held reply (see `routeJson`): in the usual case the text is
 * signed and sent as it is, without `res.send`, which would parse and format the content type,
 * make a Buffer of the text and hash it with SHA-1 for an `ETag`, and check the request's
 * freshness (~12 µs per request on Express; docs/performance.md, change 13). The reply is what
 * `res.send` would send, but for the `ETag`: a signed reply answers one request, and a validator
 * on it only invites a conditional request whose `304` is signed over no body while a browser
 * shows the stored one (docs/http-binding.md §3, "Caches"). Everything else goes to Express's
 * own `json`, and is held and signed as any reply: a conditional request (its freshness check
 * kept), `HEAD`, a status of 204, 205, 304 or 400 and above, a content type the handler chose,
 * the `json replacer`, `json spaces` or `json escape` settings, something written already, Express
 * 4's `res.json(status, data)`.
 */
function heldJson(res: ServerResponse, args: unknown[], json: JsonMethod): ServerResponse {
  const reply = held.get(res)
  const text =
    reply !== undefined && args.length === 1 && plainJsonReply(res, reply)
      ? JSON.stringify(args[0])
      : undefined
  if (reply === undefined || typeof text !== 'string') return json.apply(res, args)
  res.setHeader('Content-Type', JSON_CONTENT_TYPE)
  reply.ended = true
  reply.text = text
  void signHeld(res, reply, Buffer.from(text), undefined)
  return res
}

/** Whether Express's `res.send` would send a JSON text as it is, with only an `ETag` added. */
function plainJsonReply(res: ServerResponse, reply: HeldReply): boolean {
  const status = res.statusCode
  if (status >= 400 || status === 204 || status === 205 || status === 304) return false
  if (reply.released || reply.ended || reply.chunks.length > 0 || res.headersSent) return false
  if (res.hasHeader('content-type')) return false
  const { req, app } = res as ServerResponse & { app?: { settings?: Record<string, unknown> } }
  if ((req as IncomingMessage | undefined) === undefined || req.method === 'HEAD') return false
  const headers = req.headers
  if (headers['if-none-match'] !== undefined || headers['if-modified-since'] !== undefined) {
    return false
  }
  const settings = app?.settings
  return (
    settings !== undefined &&
    !settings['json replacer'] &&
    !settings['json spaces'] &&
    !settings['json escape']
  )
}

/** The bytes of a chunk passed to `write` or `end` (undefined for none). */
function bytesOf(chunk: unknown, encoding: unknown): Buffer | undefined {
  if (chunk === undefined || chunk === null || typeof chunk === 'function') return undefined
  if (typeof chunk === 'string') {
    return Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
  }
  const view = chunk as Uint8Array
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength)
}

function callbackOf(args: readonly unknown[]): Callback | undefined {
  for (const a of args) if (typeof a === 'function') return a as Callback
  return undefined
}

/** From now on the hooks call the response's own methods. */
function release(reply: HeldReply): void {
  reply.released = true
}

/**
 * A reply held through the prototype's hooks and sent: its entries go. The hooks then pass every
 * call on, as for a released reply, and a WeakMap entry keyed by the response no longer keeps it
 * (and its request, its headers, the held body) through V8's young-generation collections until
 * a full one (see adapters/shared/principals.ts): with the entries kept, each header-form request
 * on Express promoted ~10 KB to the old generation. A reply held by replacements set on the
 * response keeps its entry, which those replacements read to reach the response's own methods.
 */
function forget(res: ServerResponse, reply: HeldReply): void {
  if (!reply.viaPrototype) return
  held.delete(res)
  forgetJsonRoute(res)
}

type Name = 'writeHead' | 'write' | 'end'

/**
 * The three hooks of one way of holding a reply (on ServerResponse.prototype, or set on the
 * response): each holds the call while the response has a reply held that way and not yet
 * released, and otherwise passes it on to `passOn(res, name)`.
 */
function hooks(viaPrototype: boolean, passOn: (res: ServerResponse, name: Name) => End) {
  const holding = (res: ServerResponse): HeldReply | undefined => {
    const reply = held.get(res)
    return reply !== undefined && reply.viaPrototype === viaPrototype && !reply.released
      ? reply
      : undefined
  }
  return {
    writeHead(this: ServerResponse, ...args: unknown[]): ServerResponse {
      if (holding(this) === undefined) return passOn(this, 'writeHead').apply(this, args)
      return holdHead(this, args)
    },
    write(this: ServerResponse, ...args: unknown[]): boolean {
      const reply = holding(this)
      if (reply === undefined) return passOn(this, 'write').apply(this, args) as unknown as boolean
      return holdChunk(reply, args)
    },
    end(this: ServerResponse, ...args: unknown[]): ServerResponse {
      const reply = holding(this)
      if (reply === undefined) return passOn(this, 'end').apply(this, args)
      return holdEnd(this, reply, args)
    },
  }
}

/**
 * The hooks on ServerResponse.prototype. Any other response's calls go to the methods they
 * replaced, and so do those of a reply held on the response itself once released (its
 * replacements lead here): never back to that reply's own methods, which may lead here again.
 */
const onPrototype = hooks(true, (_res, name) => (prototypeMethods as Methods)[name] as End)

/** The replacements set on a response whose own methods shadow the prototype's hooks. */
const onResponse = hooks(
  false,
  (res, name) => (held.get(res)?.[name] ?? ServerResponse.prototype[name]) as unknown as End
)

/** `writeHead` of a held reply: the status and headers are set, not sent. */
function holdHead(res: ServerResponse, [status, ...rest]: unknown[]): ServerResponse {
  res.statusCode = status as number
  for (const arg of rest) {
    if (typeof arg === 'string') res.statusMessage = arg
    else if (Array.isArray(arg)) {
      for (let i = 0; i + 1 < arg.length; i += 2) {
        res.appendHeader(String(arg[i]), String(arg[i + 1]))
      }
    } else if (typeof arg === 'object' && arg !== null) {
      for (const [name, value] of Object.entries(arg)) {
        if (value !== undefined) res.setHeader(name, value as string | string[])
      }
    }
  }
  return res
}

/** `write` of a held reply: the chunk is kept (copied: the caller may reuse its buffer). */
function holdChunk(reply: HeldReply, [chunk, ...rest]: unknown[]): boolean {
  const bytes = bytesOf(chunk, rest[0])
  if (bytes !== undefined) reply.chunks.push(Buffer.from(bytes))
  const callback = callbackOf(rest)
  if (callback !== undefined) process.nextTick(callback)
  return true
}

/** `end` of a held reply: signs what was held and the last chunk, then sends them. */
function holdEnd(res: ServerResponse, reply: HeldReply, args: unknown[]): ServerResponse {
  if (reply.ended) return res
  reply.ended = true
  const [chunk, ...rest] = args
  const callback = typeof chunk === 'function' ? (chunk as Callback) : callbackOf(rest)
  const encoding = typeof rest[0] === 'string' ? (rest[0] as BufferEncoding) : undefined
  if (
    reply.chunks.length === 0 &&
    typeof chunk === 'string' &&
    (encoding === undefined || encoding === 'utf8' || encoding === 'utf-8')
  ) {
    // The usual reply (`res.send`, `res.json`, `res.end(text)`): one text, handed on as it came,
    // so that node writes it with the head in one string instead of a head and a buffer.
    reply.text = chunk
  }
  const bytes = bytesOf(chunk, encoding)
  if (bytes !== undefined) reply.chunks.push(bytes)
  const chunks = reply.chunks
  const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)
  if (res.statusCode >= 400) finishHeld(res, reply, body, callback)
  else void signHeld(res, reply, body, callback)
  return res
}

/** Signs the held reply and sends it; a signing failure goes to `onError` if nothing was sent. */
async function signHeld(
  res: ServerResponse,
  reply: HeldReply,
  body: Buffer,
  callback: Callback | undefined
): Promise<void> {
  let headers: Record<string, string>
  try {
    headers = await reply.core.signHeaderResponse({
      status: res.statusCode,
      body: new Uint8Array(body.buffer, body.byteOffset, body.length),
      requestSignature: reply.requestSignature,
    })
  } catch (error) {
    release(reply)
    if (!res.headersSent) reply.onError(error)
    return
  }
  for (const name in headers) res.setHeader(name, headers[name] as string)
  finishHeld(res, reply, body, callback)
}

/** Whether a reply is held for this response, or was and is not forgotten (for tests). */
export const hasHeldReply = (res: ServerResponse): boolean => held.has(res)

/** Sends the held body with the response's own `end`. */
function finishHeld(
  res: ServerResponse,
  reply: HeldReply,
  body: Buffer,
  callback: Callback | undefined
): void {
  release(reply)
  forget(res, reply)
  if (res.destroyed) return
  const end = reply.end as unknown as End
  if (body.length === 0) {
    end.call(res, callback)
    return
  }
  // Content-Length and Transfer-Encoding never go together: a length only if none was chosen.
  if (!res.hasHeader('transfer-encoding')) res.setHeader('content-length', body.length)
  if (reply.text !== undefined) end.call(res, reply.text, 'utf8', callback)
  else end.call(res, body, callback)
}

/**
 * Puts a verified principal on the request: kept for `getPrincipal`, set as
 * `holder[requestProperty]`, and (unless `replaceBody: false`) as the body later handlers read.
 */
export function attachPrincipal<Attributes, Request>(
  target: Pick<AccessTarget<unknown>, 'key' | 'holder' | 'setBody'>,
  principal: AccessPrincipal<Attributes, Request>,
  options: { requestProperty?: string | undefined; replaceBody?: boolean | undefined }
): void {
  principals.set(target.key, principal)
  const property = options.requestProperty ?? 'betterAuth'
  // Not `holder[property] = principal`: V8 turns an object into a slow dictionary when a property
  // is added through a computed key while its out-of-object properties are full and more than a
  // dozen (Express's request has ~30: one size in three). In the header form the body is set
  // before this, and the keyed store made every Express request a dictionary, ~15,000
  // instructions a request (docs/performance.md, change 22). A named store, and for another name
  // a definition (`Reflect.set` is a computed-key store too), add it under V8's far higher limit
  // for named properties.
  if (property === 'betterAuth') (target.holder as { betterAuth?: unknown }).betterAuth = principal
  else {
    Object.defineProperty(target.holder, property, {
      value: principal,
      writable: true,
      enumerable: true,
      configurable: true,
    })
  }
  if (options.replaceBody !== false) target.setBody(principal.request)
}

/** The principal an access check put on this request (or context), or `undefined`. */
export function getPrincipal<Attributes = unknown, Body = unknown>(
  key: object
): AccessPrincipal<Attributes, Body> | undefined {
  return principals.get(key) as AccessPrincipal<Attributes, Body> | undefined
}
