/**
 * The behaviour every adapter must show, written once and run against Express 4, Express 5, Koa,
 * NestJS and the fetch handler. Each adapter test builds an app with the same routes:
 *
 * - the protocol endpoints under `/auth`, and the OpenAPI document at `/auth/openapi.json`;
 * - `POST /foo/bar` (protected; replies `{wasFoo, wasBar}` from the verified request data);
 * - `POST /admin/delete` (protected; authorize requires the `delete` permission of role admin:
 *   the test attributes grant only read and write, so it answers 403);
 * - `POST /optional` (optional access; replies `{identity}` or `{identity: null}`);
 * - `GET /public` and `POST /public` (not protected; the POST echoes the parsed JSON body).
 */
import request from 'supertest'
import type { Server } from 'node:http'
import {
  BetterAuthClient,
  NodeP256Verifier,
  NodeSigningKey,
  createBetterAuth,
  formatTimestamp,
  parseEnvelope,
  type BetterAuthServer,
  type Network,
} from '../../src'
import {
  ATTRIBUTES,
  accessBody,
  hash,
  makeServer,
  nonce as newNonce,
  type Attributes,
  type TestServer,
} from '../helpers'

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
}

/** Builds the app of the module comment around the given core. */
export type Build = (auth: BetterAuthServer<Attributes>) => Promise<Target> | Target

/** A supertest target for a node:http request listener (Express app, Koa callback, Nest server). */
export function supertestTarget(
  app: Parameters<typeof request>[0],
  close?: () => Promise<void>
): Target {
  const reply = (r: request.Response): Reply => ({
    status: r.status,
    headers: r.headers as Record<string, string>,
    text: r.text,
  })
  return {
    async post(path, body, headers = { 'content-type': 'application/json' }) {
      const req = request(app as Server)
        .post(path)
        .set(headers)
      return reply(await (body === undefined ? req : req.send(body)))
    },
    async get(path) {
      return reply(await request(app as Server).get(path))
    },
    close,
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
  server: TestServer,
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
  expect(reply.status).toBeLessThan(300)
  expect(reply.headers['content-type']).toMatch(/^application\/json/)
  const envelope = parseEnvelope(reply.text)
  const key = await auth.responsePublicKey()
  const access = envelope.payload.access as Record<string, unknown>
  expect(access.nonce).toBe(nonce)
  expect(access.serverIdentity).toBe(key)
  expect(envelope.signature).toBeDefined()
  expect(await verifier.verify(Buffer.from(envelope.text), envelope.signature as string, key)).toBe(
    true
  )
  return envelope.payload.response as Record<string, unknown>
}

export function errorCode(reply: Reply): string {
  expect(reply.text).not.toContain('"payload"')
  return (JSON.parse(reply.text) as { error: { code: string } }).error.code
}

/** The shared suite. */
export function adapterContract(name: string, build: Build): void {
  describe(`${name}: adapter contract`, () => {
    let server: TestServer
    let target: Target

    beforeEach(async () => {
      server = makeServer()
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

export { makeServer }
