/**
 * The behaviour every adapter must show, written once and run against Express 4, Express 5, Koa,
 * NestJS and the fetch handler — and against yours: `import { adapterContract } from
 * 'better-auth-protocol/testing'`. It declares Jest-style tests (Jest, or Vitest with
 * `globals: true`). Each adapter test builds an app with the same routes:
 *
 * - the protocol endpoints under `/auth`, and the OpenAPI document at `/auth/openapi.json`;
 * - `POST /foo/bar` (protected; replies `{wasFoo, wasBar}` from the verified request data);
 * - `POST /admin/delete` (protected; authorize requires the `delete` permission of role admin:
 *   the test attributes grant only read and write, so it answers 403);
 * - `POST /optional` (optional access; replies `{identity}` or `{identity: null}`);
 * - `GET /public` and `POST /public` (not protected; the POST echoes the parsed JSON body).
 */
import { createServer, type RequestListener, type Server } from 'node:http'
import { connect } from 'node:net'
import { once } from 'node:events'
import { handleClientErrors } from '../adapters/shared/http'
import { BetterAuthClient, type Network } from '../src/client/client'
import { formatTimestamp } from '../src/codec/timestamp'
import { NodeP256Verifier, NodeSigningKey } from '../src/crypto/node'
import { parseEnvelope } from '../src/messages/envelope'
import { createBetterAuth, type BetterAuthServer } from '../src/server/core'
import {
  ATTRIBUTES,
  accessBody,
  hash,
  makeContractServer,
  nonce as newNonce,
  type Attributes,
  type ContractServer,
} from './fixtures'
import { testGlobals } from './globals'

export { ATTRIBUTES, accessBody, makeContractServer, type Attributes, type ContractServer }

export interface Reply {
  status: number
  headers: Record<string, string>
  text: string
}

/** An app under test, reached through HTTP-like calls. */
export interface Target {
  post(path: string, body?: string, headers?: Record<string, string>): Promise<Reply>
  get(path: string): Promise<Reply>
  close?(): Promise<void>
  /**
   * Starts listening on a real port (once; closed with `close`) so raw bytes can be sent, with
   * `handleClientErrors` on the server as the README tells apps to do.
   */
  listen?(): Promise<number>
}

/** A node:http server for a listener or an existing server, listening on 127.0.0.1. */
export function listening(app: RequestListener | Server): {
  port(): Promise<number>
  close(): Promise<void>
} {
  let server: Server | undefined
  let started: Promise<number> | undefined
  let ownServer = false
  return {
    port() {
      started ??= (async () => {
        ownServer = typeof app === 'function'
        server = handleClientErrors(
          ownServer ? createServer(app as RequestListener) : (app as Server)
        )
        if (!server.listening) {
          server.listen(0, '127.0.0.1')
          await once(server, 'listening')
        }
        return (server.address() as { port: number }).port
      })()
      return started
    },
    async close() {
      if (server === undefined || !ownServer) return
      server.closeAllConnections()
      await new Promise(resolve => server?.close(resolve))
    },
  }
}

/** A raw reply: what came back on the socket, parsed as far as it goes. */
export interface RawReply extends Reply {
  /** Everything received, head included. */
  raw: string
}

/**
 * Sends raw bytes on a fresh connection (the head, then `bodyBytes` bytes of body in chunks,
 * stopping as soon as an answer starts), and reads until the server closes or answers fully.
 */
export async function rawRequest(
  port: number,
  head: string,
  options: { bodyBytes?: number; chunked?: boolean } = {}
): Promise<RawReply> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => undefined) // a reset after the answer is the server's right
  await once(socket, 'connect')
  const received: Buffer[] = []
  let answered = false
  const closed = new Promise<void>(resolve => socket.on('close', () => resolve()))
  socket.on('data', (chunk: Buffer) => {
    received.push(chunk)
    answered = true
  })
  socket.write(head)
  const total = options.bodyBytes ?? 0
  const chunk = Buffer.alloc(16 * 1024, 'a')
  for (let sent = 0; sent < total && !answered && !socket.destroyed; sent += chunk.length) {
    const part = chunk.subarray(0, Math.min(chunk.length, total - sent))
    const framed = options.chunked
      ? Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')])
      : part
    if (!socket.write(framed)) {
      await Promise.race([once(socket, 'drain'), closed, new Promise(r => setTimeout(r, 50))])
    }
  }
  if (options.chunked && !answered && !socket.destroyed) socket.write('0\r\n\r\n')
  const complete = (): boolean => {
    const text = Buffer.concat(received).toString('latin1')
    const end = text.indexOf('\r\n\r\n')
    if (end < 0) return false
    const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))
    return length !== null && text.length - end - 4 >= Number(length[1])
  }
  const deadline = Date.now() + 10_000
  while (!socket.destroyed && !complete() && Date.now() < deadline) {
    await Promise.race([closed, new Promise(r => setTimeout(r, 20))])
  }
  socket.destroy()
  const raw = Buffer.concat(received).toString('utf8')
  const end = raw.indexOf('\r\n\r\n')
  const [statusLine = '', ...lines] = (end < 0 ? raw : raw.slice(0, end)).split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
  }
  let text = end < 0 ? '' : raw.slice(end + 4)
  if (headers['transfer-encoding'] === 'chunked') {
    let decoded = ''
    for (let rest = text; ;) {
      const at = rest.indexOf('\r\n')
      const size = parseInt(rest.slice(0, at), 16)
      if (!(size > 0)) break
      decoded += rest.slice(at + 2, at + 2 + size)
      rest = rest.slice(at + 4 + size)
    }
    text = decoded
  }
  return { status: Number(statusLine.split(' ')[1] ?? 0), headers, text, raw }
}

/** Builds the app of the module comment around the given core. */
export type Build = (auth: BetterAuthServer<Attributes>) => Promise<Target> | Target

/**
 * A target for a node:http request listener or server (Express app, Koa callback, Nest server),
 * reached over a real connection with `fetch`.
 */
export function listenerTarget(app: RequestListener | Server, close?: () => Promise<void>): Target {
  const server = listening(app)
  const call = async (path: string, init: RequestInit): Promise<Reply> => {
    const response = await fetch(`http://127.0.0.1:${await server.port()}${path}`, init)
    const headers: Record<string, string> = {}
    response.headers.forEach((value, name) => (headers[name] = value))
    return { status: response.status, headers, text: await response.text() }
  }
  return {
    post: (path, body, headers = { 'content-type': 'application/json' }) =>
      call(path, { method: 'POST', headers, ...(body === undefined ? {} : { body }) }),
    get: path => call(path, { method: 'GET' }),
    async close() {
      await server.close()
      await close?.()
    },
    listen: () => server.port(),
  }
}

export const permitsDelete = (attributes: Attributes): boolean =>
  attributes.permissionsByRole.admin?.includes('delete') === true

/** A network for the client, going through the target. */
export class TargetNetwork implements Network {
  constructor(
    private readonly target: Target,
    private readonly prefix = '/auth'
  ) {}
  async send(path: string, body: string): Promise<{ status: number; body: string }> {
    const protocol = !['/foo/bar', '/admin/delete', '/optional'].includes(path)
    const reply = await this.target.post(protocol ? this.prefix + path : path, body)
    return { status: reply.status, body: reply.text }
  }
}

/** A token for a fresh access key, issued by `auth` (or another core) at the clock's time. */
export async function session(
  server: Pick<ContractServer, 'auth' | 'clock'>,
  issuer: BetterAuthServer<Attributes> = server.auth,
  lifetimeSeconds = 900
) {
  const key = NodeSigningKey.generate()
  const now = server.clock.ms
  const token = await issuer.issueToken({
    device: hash('device'),
    identity: hash('identity'),
    publicKey: key.publicKeyText,
    rotationHash: hash(NodeSigningKey.generate().publicKeyText),
    issuedAt: formatTimestamp(now),
    expiry: formatTimestamp(now + lifetimeSeconds * 1000),
    refreshExpiry: formatTimestamp(now + 43_200_000),
    attributes: ATTRIBUTES,
  })
  return { key, token }
}

const verifier = new NodeP256Verifier()

/** Checks a reply is a response envelope signed by the response key over its exact text. */
export async function verifiedReply(
  auth: BetterAuthServer<Attributes>,
  reply: Reply,
  nonce: string
): Promise<Record<string, unknown>> {
  const { expect } = testGlobals()
  expect(reply.status).toBeLessThan(300)
  expect(reply.headers['content-type']).toMatch(/^application\/json/)
  const envelope = parseEnvelope(reply.text)
  const key = await auth.responsePublicKey()
  const access = envelope.payload.access as Record<string, unknown>
  expect(access.nonce).toBe(nonce)
  expect(access.serverIdentity).toBe(key)
  expect(envelope.signature).toBeDefined()
  expect(verifier.verify(Buffer.from(envelope.text), envelope.signature as string, key)).toBe(true)
  return envelope.payload.response as Record<string, unknown>
}

/** Stack frames or source paths, which no answer may carry. */
export const STACK_TRACE = /\n\s*at |\bat [^\s]+ \(|node_modules|[\\/][\w.-]+\.[cm]?[jt]s:\d+/

/** The parsed JSON of a body, or `undefined` when it is not JSON. */
export function parsedJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

export function errorCode(reply: Reply): string {
  const { expect } = testGlobals()
  expect(reply.text).not.toContain('"payload"')
  return (JSON.parse(reply.text) as { error: { code: string } }).error.code
}

/** The shared suite. */
export function adapterContract(name: string, build: Build): void {
  const { describe, it, expect, beforeEach, afterEach } = testGlobals()
  describe(`${name}: adapter contract`, () => {
    let server: ContractServer
    let target: Target

    beforeEach(async () => {
      server = makeContractServer()
      target = await build(server.auth)
    })
    afterEach(async () => {
      await target.close?.()
    })

    const access = async (body: string) => target.post('/foo/bar', body)
    const at = (offsetSeconds = 0) => server.clock.ms + offsetSeconds * 1000

    it('mounts the protocol endpoints under the prefix', async () => {
      const key = await target.post('/auth/key/response', '')
      expect(key.status).toBe(200)
      expect(key.text).toBe(await server.auth.responsePublicKey())
      const unprefixed = await target.post('/key/response', '')
      expect(unprefixed.text).not.toBe(key.text)
      const create = await target.post('/auth/account/create', '{"payload":{}}')
      expect(create.status).toBe(400)
      expect(errorCode(create)).toBe('BA101')
    })

    it('serves the OpenAPI document of the mounted paths', async () => {
      const reply = await target.get('/auth/openapi.json')
      expect(reply.status).toBe(200)
      const document = JSON.parse(reply.text) as { openapi: string; paths: Record<string, unknown> }
      expect(document.openapi).toBe('3.1.0')
      expect(Object.keys(document.paths)).toContain('/auth/session/create')
    })

    it('runs a real client through account, session and a protected route', async () => {
      const client = new BetterAuthClient({
        network: new TargetNetwork(target),
        now: server.clock.now,
      })
      await client.createAccount(hash(NodeSigningKey.generate().publicKeyText))
      await client.createSession()
      const reply = await client.accessRequest<{ wasFoo: string }>('/foo/bar', {
        foo: 'x',
        bar: 'y',
      })
      expect(reply).toEqual({ wasFoo: 'x', wasBar: 'y' })
    })

    it('accepts a valid access request and signs the reply, echoing the nonce', async () => {
      const { key, token } = await session(server)
      const n = newNonce()
      const reply = await access(accessBody(token, key, { at: at(), nonce: n }))
      expect(await verifiedReply(server.auth, reply, n)).toEqual({ wasFoo: 'bar', wasBar: 'foo' })
    })

    it('refuses a missing body with 401 BA404 and WWW-Authenticate', async () => {
      const reply = await target.post('/foo/bar', undefined, {})
      expect(reply.status).toBe(401)
      expect(errorCode(reply)).toBe('BA404')
      expect(reply.headers['www-authenticate']).toBe('BetterAuth error="BA404"')
      const empty = await target.post('/foo/bar', '{}')
      expect([empty.status, errorCode(empty)]).toEqual([401, 'BA404'])
    })

    it('refuses a malformed access request with 400 BA101', async () => {
      const { token } = await session(server)
      const body = JSON.stringify({
        payload: { access: { nonce: 'short', timestamp: 'now', token }, request: {} },
        signature: 'x',
      })
      const reply = await access(body)
      expect([reply.status, errorCode(reply)]).toEqual([400, 'BA101'])
    })

    it('refuses a tampered signature (401 BA201) without using up the nonce', async () => {
      const { key, token } = await session(server)
      const n = newNonce()
      const good = accessBody(token, key, { at: at(), nonce: n })
      const tampered = good.replace(
        /"signature":"0I(.)/,
        (_m, c: string) => `"signature":"0I${c === 'A' ? 'B' : 'A'}`
      )
      const reply = await access(tampered)
      expect([reply.status, errorCode(reply)]).toEqual([401, 'BA201'])
      expect(reply.headers['www-authenticate']).toBe('BetterAuth error="BA201"')
      const changedData = good.replace('"foo":"bar"', '"foo":"baz"')
      expect(errorCode(await access(changedData))).toBe('BA201')
      expect((await access(good)).status).toBe(200)
    })

    it('refuses a replay (401 BA304)', async () => {
      const { key, token } = await session(server)
      const body = accessBody(token, key, { at: at() })
      expect((await access(body)).status).toBe(200)
      const replay = await access(body)
      expect([replay.status, errorCode(replay)]).toEqual([401, 'BA304'])
    })

    it('refuses a stale (422 BA501) and a future (422 BA502) timestamp', async () => {
      const { key, token } = await session(server)
      const stale = await access(accessBody(token, key, { at: at(-31) }))
      expect([stale.status, errorCode(stale)]).toEqual([422, 'BA501'])
      const future = await access(accessBody(token, key, { at: at(10) }))
      expect([future.status, errorCode(future)]).toEqual([422, 'BA502'])
      expect((await access(accessBody(token, key, { at: at(-29) }))).status).toBe(200)
    })

    it('refuses an expired token (401 BA401)', async () => {
      const { key, token } = await session(server, server.auth, 60)
      server.clock.advance(61)
      const reply = await access(accessBody(token, key, { at: at() }))
      expect([reply.status, errorCode(reply)]).toEqual([401, 'BA401'])
      expect(reply.headers['www-authenticate']).toBe('BetterAuth error="BA401"')
    })

    it('refuses a token signed by an unknown server key (401 BA202)', async () => {
      const stranger = createBetterAuth<Attributes>({ keys: { env: false } })
      const { key, token } = await session(server, stranger)
      const reply = await access(accessBody(token, key, { at: at() }))
      expect([reply.status, errorCode(reply)]).toEqual([401, 'BA202'])
    })

    it('answers 403 BA306 when authorize refuses a verified caller', async () => {
      const { key, token } = await session(server)
      const reply = await target.post('/admin/delete', accessBody(token, key, { at: at() }))
      expect([reply.status, errorCode(reply)]).toEqual([403, 'BA306'])
      expect(reply.headers['www-authenticate']).toBeUndefined()
    })

    it('lets a request without credentials through optional access, unsigned', async () => {
      const anonymous = await target.post('/optional', undefined, {})
      expect(anonymous.status).toBe(200)
      expect(JSON.parse(anonymous.text)).toEqual({ identity: null })
      const plain = await target.post('/optional', '{"hello":"world"}')
      expect(JSON.parse(plain.text)).toEqual({ identity: null })

      const { key, token } = await session(server)
      const n = newNonce()
      const signed = await target.post('/optional', accessBody(token, key, { at: at(), nonce: n }))
      expect(await verifiedReply(server.auth, signed, n)).toEqual({ identity: hash('identity') })

      const bad = await target.post('/optional', accessBody(token, key, { at: at(-60) }))
      expect([bad.status, errorCode(bad)]).toEqual([422, 'BA501'])
    })

    describe('raw requests: no request line, method, header or body size breaks the server', () => {
      const json = { 'content-type': 'application/json' }
      const twoMb = 2 * 1024 * 1024
      const head = (line: string, headers: Record<string, string> = {}) =>
        [line, 'Host: localhost', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)].join(
          '\r\n'
        ) + '\r\n\r\n'
      type Case = [string, string, { bodyBytes?: number; chunked?: boolean }, number[], string?]
      const protectedJson = (line: string, headers: Record<string, string>) =>
        head(line, { ...json, ...headers })
      const cases: Case[] = [
        ['TRACE on a protocol path', head('TRACE /auth/key/response HTTP/1.1'), {}, [404, 405]],
        ['TRACE on an app route', head('TRACE /public HTTP/1.1'), {}, [404, 405]],
        ['CONNECT', head('CONNECT 127.0.0.1:443 HTTP/1.1'), {}, [405], 'BA605'],
        [
          'an absolute-form target',
          head('POST http://x/auth/key/response HTTP/1.1', { 'Content-Length': '0' }),
          {},
          [200],
        ],
        [
          // Fastify's parser refuses an empty JSON body (400) before the guard's 401.
          'an absolute-form target on a protected route',
          protectedJson('POST http://x/foo/bar HTTP/1.1', { 'Content-Length': '0' }),
          {},
          [400, 401],
        ],
        ['an invalid method token', head('G(T /public HTTP/1.1'), {}, [400], 'BA101'],
        [
          'a header without a colon',
          head('GET /public HTTP/1.1', { NoColonHere: '' }).replace(': \r\n', '\r\n'),
          {},
          [400],
          'BA101',
        ],
        [
          'a 2 MB body on a protected route',
          protectedJson('POST /foo/bar HTTP/1.1', { 'Content-Length': String(twoMb) }),
          { bodyBytes: twoMb },
          [413],
          'BA603',
        ],
        [
          'a 2 MB chunked body on a protected route',
          protectedJson('POST /foo/bar HTTP/1.1', { 'Transfer-Encoding': 'chunked' }),
          { bodyBytes: twoMb, chunked: true },
          [413],
          'BA603',
        ],
        [
          'a 2 MB body on a protocol endpoint',
          protectedJson('POST /auth/session/request HTTP/1.1', {
            'Content-Length': String(twoMb),
          }),
          { bodyBytes: twoMb },
          [413],
          'BA603',
        ],
      ]
      const table = cases.map(([label, bytes, options, statuses, code]) => {
        return { label, bytes, options, statuses, code }
      })
      for (const { label, bytes, options, statuses, code } of table)
        it(label, async () => {
          if (target.listen === undefined) return
          const reply = await rawRequest(await target.listen(), bytes, options)
          expect(statuses).toContain(reply.status)
          expect(reply.text).not.toMatch(STACK_TRACE)
          // Where the answer is a protocol error body (NestJS's own body parser answers in Nest's
          // form; see the README), it carries the right code.
          const body = parsedJson(reply.text) as { error?: { code?: unknown } } | undefined
          if (code !== undefined && typeof body?.error?.code === 'string') {
            expect(body.error.code).toBe(code)
          }
          // Still serving.
          expect((await target.get('/public')).status).toBe(200)
        })
    })

    it('leaves unrelated routes alone', async () => {
      const got = await target.get('/public')
      expect(got.status).toBe(200)
      expect(JSON.parse(got.text)).toEqual({ public: true })
      const posted = await target.post('/public', '{"a":[1,2]}')
      expect(posted.status).toBe(200)
      expect(JSON.parse(posted.text)).toEqual({ echo: { a: [1, 2] } })
    })
  })
}

/** A body whose signed text differs from its re-serialization (`JSON.parse` moves key "10"). */
export function numericKeyBody(token: string, key: NodeSigningKey, at: number, nonce = newNonce()) {
  const payload =
    `{"access":{"nonce":"${nonce}","timestamp":"${formatTimestamp(at)}","token":"${token}"},` +
    `"request":{"foo":"bar","bar":"foo","z":1,"10":"ten"}}`
  const signature = key.signSync(Buffer.from(payload))
  return { body: `{"payload":${payload},"signature":"${signature}"}`, nonce }
}

export { headerFormContract } from './header-contract'
