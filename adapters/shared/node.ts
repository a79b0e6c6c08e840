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
import { refuseContentCoding, usesHeaderForm } from './binding'
import { serverTarget, type RequestTarget } from '../../src/binding/base'
import { readBody } from './body'
import { JSON_CONTENT_TYPE, bodyLimit, type AdapterCore } from './core'

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
  // An explicit length: no chunked framing on keep-alive connections.
  res.setHeader('content-length', Buffer.byteLength(result.body))
  res.writeHead(result.status, result.headers)
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
    const headers = accessFieldLines(target.req)
    // Node's names are lower case: the two fields the choice depends on, looked up directly.
    const choice = {
      authorization: headers.authorization,
      'signature-input': headers['signature-input'],
    }
    if (usesHeaderForm(choice, options.binding)) {
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

/** The fields the header form is read from (lower case), by the length of their names. */
const ACCESS_FIELD_NAMES = new Map<number, string>([
  [13, 'authorization'],
  [15, 'signature-input'],
  [9, 'signature'],
  [14, 'content-digest'],
])

/**
 * Every line of the header form's four fields, by lower-case name, read from `req.rawHeaders` in
 * one pass: what `req.headersDistinct` holds for them, without that copy of every field of the
 * request (an array per field, ~1–2 µs and its garbage per request). A request object without
 * `rawHeaders` (a test double) is read through `headersDistinct`.
 */
function accessFieldLines(req: IncomingMessage): NodeJS.Dict<string[]> {
  const raw = req.rawHeaders as string[] | undefined
  if (!Array.isArray(raw)) return req.headersDistinct
  const found: NodeJS.Dict<string[]> = {}
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string
    const wanted = ACCESS_FIELD_NAMES.get(name.length)
    if (wanted === undefined || (name !== wanted && name.toLowerCase() !== wanted)) continue
    const lines = found[wanted]
    if (lines === undefined) found[wanted] = [raw[i + 1] as string]
    else lines.push(raw[i + 1] as string)
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
  headers: NodeJS.Dict<string[]>,
  body: Buffer | string,
  source: BodySource
): Promise<AccessPrincipal<Attributes, Request> | undefined> {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body
  refuseContentCoding(target.req.headers['content-encoding'], bytes.length)
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
    headers: headers as Record<string, string[] | undefined>,
    parsed,
    ...(bytes.length === 0
      ? {}
      : { body: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length) }),
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

/** What `signNodeReplies` keeps for one response. */
interface HeldReply {
  core: Pick<AdapterCore, 'signHeaderResponse'>
  requestSignature: Uint8Array
  onError: (error: unknown) => void
  chunks: Buffer[]
  ended: boolean
  /** Once the reply is sent (or failed): the replacements pass every call on to these. */
  released: boolean
  writeHead: ServerResponse['writeHead']
  write: ServerResponse['write']
  end: ServerResponse['end']
}

/**
 * The held replies, by response. Kept beside the response rather than on it: Express (and Nest
 * on Express) gives every response its own prototype (`Object.setPrototypeOf`), after which V8
 * copies the object's whole property layout for each property added to it (~2.5 µs each here),
 * so the replacements below are the only properties this adds, and none is written back.
 */
const held = new WeakMap<ServerResponse, HeldReply>()

/**
 * Signs what a handler writes on a node:http response, whatever it writes (any status below 400,
 * any content type, `res.send`, `res.json`, `res.end` or several `res.write`s): the body is held
 * until `end`, then sent with the response-signature headers of the header form. Replies of 400
 * or more go out unsigned. `onError` gets a signing failure while nothing has been sent.
 *
 * The replacements of `writeHead`, `write` and `end` are made once (module functions reading
 * their state from the response), not as closures per request.
 */
export function signNodeReplies(
  core: Pick<AdapterCore, 'signHeaderResponse'>,
  res: ServerResponse,
  requestSignature: Uint8Array,
  onError: (error: unknown) => void
): void {
  const { writeHead, write, end } = res
  held.set(res, {
    core,
    requestSignature,
    onError,
    chunks: [],
    ended: false,
    released: false,
    writeHead,
    write,
    end,
  })
  res.writeHead = heldWriteHead as ServerResponse['writeHead']
  res.write = heldWrite as ServerResponse['write']
  res.end = signedEnd as ServerResponse['end']
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

/** From now on the replacements call the response's own methods. */
function release(reply: HeldReply): void {
  reply.released = true
}

/** The response's own `name` method, which a released (or never held) reply's calls go to. */
function own(reply: HeldReply | undefined, name: 'writeHead' | 'write' | 'end'): End {
  return (reply?.[name] ?? ServerResponse.prototype[name]) as unknown as End
}

function heldWriteHead(this: ServerResponse, status: number, ...rest: unknown[]): ServerResponse {
  const reply = held.get(this)
  if (reply === undefined || reply.released)
    return own(reply, 'writeHead').call(this, status, ...rest)
  this.statusCode = status
  for (const arg of rest) {
    if (typeof arg === 'string') this.statusMessage = arg
    else if (Array.isArray(arg)) {
      for (let i = 0; i + 1 < arg.length; i += 2) {
        this.appendHeader(String(arg[i]), String(arg[i + 1]))
      }
    } else if (typeof arg === 'object' && arg !== null) {
      for (const [name, value] of Object.entries(arg)) {
        if (value !== undefined) this.setHeader(name, value as string | string[])
      }
    }
  }
  return this
}

function heldWrite(this: ServerResponse, chunk: unknown, ...rest: unknown[]): boolean {
  const reply = held.get(this)
  if (reply === undefined || reply.released) {
    return own(reply, 'write').call(this, chunk, ...rest) as unknown as boolean
  }
  const bytes = bytesOf(chunk, rest[0])
  if (bytes !== undefined) reply.chunks.push(Buffer.from(bytes))
  const callback = callbackOf(rest)
  if (callback !== undefined) process.nextTick(callback)
  return true
}

function signedEnd(this: ServerResponse, chunk?: unknown, ...rest: unknown[]): ServerResponse {
  const reply = held.get(this)
  if (reply === undefined || reply.released) return own(reply, 'end').call(this, chunk, ...rest)
  if (reply.ended) return this
  reply.ended = true
  const bytes = bytesOf(chunk, rest[0])
  if (bytes !== undefined) reply.chunks.push(bytes)
  const callback = typeof chunk === 'function' ? (chunk as Callback) : callbackOf(rest)
  const chunks = reply.chunks
  const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)
  if (this.statusCode >= 400) finishHeld(this, reply, body, callback)
  else void signHeld(this, reply, body, callback)
  return this
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

/** Sends the held body with the response's own `end`. */
function finishHeld(
  res: ServerResponse,
  reply: HeldReply,
  body: Buffer,
  callback: Callback | undefined
): void {
  release(reply)
  if (res.destroyed) return
  const end = own(reply, 'end')
  if (body.length > 0) {
    res.setHeader('content-length', body.length)
    end.call(res, body, callback)
  } else {
    end.call(res, callback)
  }
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
  ;(target.holder as Record<string, unknown>)[options.requestProperty ?? 'betterAuth'] = principal
  if (options.replaceBody !== false) target.setBody(principal.request)
}

/** The principal an access check put on this request (or context), or `undefined`. */
export function getPrincipal<Attributes = unknown, Body = unknown>(
  key: object
): AccessPrincipal<Attributes, Body> | undefined {
  return principals.get(key) as AccessPrincipal<Attributes, Body> | undefined
}
