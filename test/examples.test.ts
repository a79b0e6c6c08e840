/**
 * The examples, as users run them: our client through every kind of call against each, and the
 * README's quick starts compared with the examples' files (the README shows their real code).
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify'
import { Test } from '@nestjs/testing'
import { BetterAuthClient, NodeSigningKey, type Network } from '../src'
import { hash } from './helpers'
import {
  STACK_TRACE,
  listening,
  parsedJson,
  rawRequest,
  supertestTarget,
  type Target,
} from './adapters/contract'
import { app as expressApp } from '../examples/express/server'
import { app as koaApp } from '../examples/koa/server'
import { AppModule, bootstrap as bootstrapExpress } from '../examples/nestjs/main'
import { bootstrap as bootstrapFastify } from '../examples/nestjs/fastify'
import { handle, listener as fetchListener } from '../examples/fetch/server'
import { listener as nodeListener } from '../examples/node/server'

class TargetNetwork implements Network {
  constructor(private readonly target: Target) {}
  async send(path: string, body: string) {
    const reply = await this.target.post(path, body)
    return { status: reply.status, body: reply.text }
  }
}

function fetchTarget(): Target {
  const reply = async (response: Response) => {
    const headers: Record<string, string> = {}
    response.headers.forEach((value, name) => (headers[name] = value))
    return { status: response.status, headers, text: await response.text() }
  }
  return {
    post: async (path, body, headers = { 'content-type': 'application/json' }) =>
      reply(
        await handle(new Request(`http://localhost${path}`, { method: 'POST', body, headers }))
      ),
    get: async path => reply(await handle(new Request(`http://localhost${path}`))),
  }
}

const examples: [string, () => Promise<Target>][] = [
  ['express', async () => supertestTarget(expressApp)],
  ['koa', async () => supertestTarget(koaApp.callback())],
  [
    'nestjs',
    async () => {
      const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile()
      const app = moduleRef.createNestApplication({ rawBody: true, logger: false })
      await app.init()
      return supertestTarget(app.getHttpServer(), () => app.close())
    },
  ],
  [
    'nestjs on Fastify',
    async () => {
      const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile()
      const app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), {
        rawBody: true,
        logger: false,
      })
      await app.init()
      await app.getHttpAdapter().getInstance().ready()
      return supertestTarget(app.getHttpServer(), () => app.close())
    },
  ],
  ['fetch', async () => fetchTarget()],
  ['node', async () => supertestTarget(nodeListener)],
]

describe.each(examples)('examples/%s', (_name, start) => {
  let target: Target
  beforeAll(async () => {
    target = await start()
  })
  afterAll(async () => {
    await target.close?.()
  })

  it('serves the protocol, the protected routes and the public ones', async () => {
    const network = new TargetNetwork(target)
    const statuses = new Map<string, number>()
    const client = new BetterAuthClient({
      network: {
        send: async (path, body) => {
          const reply = await network.send(path, body)
          statuses.set(path, reply.status)
          return reply
        },
      },
    })
    await client.createAccount(hash(NodeSigningKey.generate().publicKeyText))
    await client.rotateDevice()
    await client.createSession()
    await client.refreshSession()
    expect(await client.accessRequest('/foo/bar', { foo: 'bar', bar: 'foo' })).toEqual({
      wasFoo: 'bar',
      wasBar: 'foo',
    })
    expect(await client.accessRequest('/notes', { text: 'hello' })).toEqual({
      saved: 'hello',
      by: await client.identity(),
    })
    expect(statuses.get('/notes')).toBe(201) // every example answers a created note with 201
    await expect(client.accessRequest('/bad/nonce', { foo: 1, bar: 2 })).rejects.toMatchObject({
      code: 'BA203',
    })
    const health = await target.get('/health')
    expect([health.status, JSON.parse(health.text)]).toEqual([200, { ok: true }])
    const anonymous = await target.post('/notes', '{"text":"x"}')
    expect(anonymous.status).toBe(401)
    expect(anonymous.headers['www-authenticate']).toBe('BetterAuth error="BA404"')
    const openapi = JSON.parse((await target.get('/openapi.json')).text) as { openapi: string }
    expect(openapi.openapi).toBe('3.1.0')
  })
})

/** Each example on a real port, as `make example-…` serves it (with `handleClientErrors`). */
const servers: [string, () => Promise<{ port: number; close(): Promise<void> }>][] = [
  ['fetch', async () => serve(listening(fetchListener))],
  ['express', async () => serve(listening(expressApp))],
  ['koa', async () => serve(listening(koaApp.callback()))],
  // The Nest examples as their bootstrap builds them (exception filter, client errors).
  ['nestjs', async () => nestServer(await bootstrapExpress(0, '127.0.0.1'))],
  ['nestjs on Fastify', async () => nestServer(await bootstrapFastify(0, '127.0.0.1'))],
]

function nestServer(app: { getHttpServer(): Server; close(): Promise<void> }) {
  return { port: (app.getHttpServer().address() as AddressInfo).port, close: () => app.close() }
}

async function serve(server: ReturnType<typeof listening>) {
  return { port: await server.port(), close: () => server.close() }
}

const head = (line: string, headers: Record<string, string> = {}) =>
  [line, 'Host: localhost', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)].join('\r\n') +
  '\r\n\r\n'
const TWO_MB = 2 * 1024 * 1024
const JSON_TYPE = { 'Content-Type': 'application/json' }

/** Raw requests, the statuses each example may answer, and the fetch example's exact code. */
const hostile: {
  label: string
  bytes: string
  options?: { bodyBytes?: number; chunked?: boolean }
  statuses: number[]
  fetch?: [number, string]
}[] = [
  {
    label: 'TRACE /health',
    bytes: head('TRACE /health HTTP/1.1'),
    // No route takes TRACE: 404 where the path is unknown to the router, else 405.
    statuses: [404, 405],
    fetch: [405, 'BA605'],
  },
  {
    label: 'CONNECT',
    bytes: head('CONNECT 127.0.0.1:443 HTTP/1.1'),
    statuses: [405],
    fetch: [405, 'BA605'],
  },
  {
    label: 'an absolute-form request line',
    bytes: head('POST http://x/foo/bar HTTP/1.1', { ...JSON_TYPE, 'Content-Length': '2' }) + '{}',
    statuses: [401],
    fetch: [401, 'BA404'],
  },
  {
    label: 'an invalid method token',
    bytes: head('G(T /health HTTP/1.1'),
    statuses: [400],
    fetch: [400, 'BA101'],
  },
  {
    label: 'a header without a colon',
    bytes: 'GET /health HTTP/1.1\r\nHost: localhost\r\nNoColonHere\r\n\r\n',
    statuses: [400],
    fetch: [400, 'BA101'],
  },
  {
    label: 'a 2 MB body',
    bytes: head('POST /foo/bar HTTP/1.1', { ...JSON_TYPE, 'Content-Length': String(TWO_MB) }),
    options: { bodyBytes: TWO_MB },
    statuses: [413],
    fetch: [413, 'BA603'],
  },
  {
    label: 'a 2 MB chunked body',
    bytes: head('POST /foo/bar HTTP/1.1', { ...JSON_TYPE, 'Transfer-Encoding': 'chunked' }),
    options: { bodyBytes: TWO_MB, chunked: true },
    statuses: [413],
    fetch: [413, 'BA603'],
  },
  {
    label: 'a malformed JSON body',
    bytes: head('POST /foo/bar HTTP/1.1', { ...JSON_TYPE, 'Content-Length': '11' }) + '{"payload":',
    statuses: [400],
    fetch: [400, 'BA101'],
  },
]

describe.each(servers)('examples/%s on a real port: raw requests', (name, start) => {
  let server: { port: number; close(): Promise<void> }
  beforeAll(async () => {
    server = await start()
  })
  afterAll(async () => {
    await server.close()
  })

  it.each(hostile)('$label: an answer, no stack trace, still serving', async request => {
    const reply = await rawRequest(server.port, request.bytes, request.options)
    expect(request.statuses).toContain(reply.status)
    expect(reply.text).not.toMatch(STACK_TRACE)
    // Every example answers with the protocol's error body, whatever refused the request.
    const body = parsedJson(reply.text) as { error: { code: string; message: string } }
    expect(Object.keys(body)).toEqual(['error'])
    expect(body.error.code).toMatch(/^BA\d{3}$/)
    expect(typeof body.error.message).toBe('string')
    if (name === 'fetch' && request.fetch !== undefined) {
      expect([reply.status, body.error.code]).toEqual(request.fetch)
    }
    const health = await rawRequest(server.port, head('GET /health HTTP/1.1'))
    expect([health.status, parsedJson(health.text)]).toEqual([200, { ok: true }])
  })
})

describe('examples/express: body-parser failures get the protocol error body', () => {
  const target = supertestTarget(expressApp)
  const bodies: [string, string, Record<string, string>, number, string][] = [
    ['a malformed body', '{"payload":', { 'content-type': 'application/json' }, 400, 'BA101'],
    [
      'a charset=latin1 body',
      '{"payload":{}}',
      { 'content-type': 'application/json; charset=latin1' },
      415,
      'BA606',
    ],
    [
      'a body over 100 kB',
      JSON.stringify({ payload: 'x'.repeat(150_000) }),
      { 'content-type': 'application/json' },
      413,
      'BA603',
    ],
  ]
  it.each(bodies)('%s', async (_label, body, headers, status, code) => {
    for (const path of ['/foo/bar', '/notes', '/health']) {
      const reply = await target.post(path, body, headers)
      expect(reply.headers['content-type']).toMatch(/^application\/json/)
      expect(reply.text).not.toMatch(STACK_TRACE)
      expect(reply.text).not.toMatch(/<html|<pre/i)
      const parsed = parsedJson(reply.text) as { error: { code: string; message: string } }
      expect([path, reply.status, parsed.error.code]).toEqual([path, status, code])
      expect(Object.keys(parsed)).toEqual(['error'])
    }
  })
})

describe('README', () => {
  const root = join(__dirname, '..')
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const blocks = [...readme.matchAll(/<!-- example: (\S+) -->\n\n```ts\n([\s\S]*?)```\n/g)]

  it('shows each example exactly as its file', () => {
    expect(blocks.map(b => b[1])).toEqual([
      'examples/client-fetch.ts',
      'examples/express/server.ts',
      'examples/express/listen.ts',
      'examples/koa/server.ts',
      'examples/koa/listen.ts',
      'examples/nestjs/main.ts',
      'examples/nestjs/listen.ts',
      'examples/fetch/server.ts',
      'examples/fetch/listen.ts',
      'examples/node/server.ts',
      'examples/node/listen.ts',
    ])
    for (const [, file, code] of blocks) {
      expect({ file, code }).toEqual({
        file,
        code: readFileSync(join(root, file as string), 'utf8'),
      })
    }
  })
})

/** A Nest example app as its bootstrap builds it (CORS, exception filter), on a free port. */
async function nestBooted(boot: typeof bootstrapExpress | typeof bootstrapFastify) {
  const app = await boot(0, '127.0.0.1')
  return {
    port: async () => (app.getHttpServer().address() as AddressInfo).port,
    close: () => app.close(),
  }
}

/** Runs examples/client-fetch.ts against `base`, as the README says (with tsx). */
function clientExample(base: string): Promise<{ code: number | null; out: string; err: string }> {
  const root = join(__dirname, '..')
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/client-fetch.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', BASE_URL: base },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.on('data', chunk => (out += String(chunk)))
  child.stderr.on('data', chunk => (err += String(chunk)))
  return new Promise(resolve => child.once('close', code => resolve({ code, out, err })))
}

const ALLOWED = 'http://localhost:5173'
const list = (value: string | null) => (value ?? '').toLowerCase().split(/\s*,\s*/)

/**
 * The header form on each example: our client's `fetch` gets `GET /me` and `DELETE /notes/7`,
 * and every example answers CORS on those routes for the allowed origins only.
 */
describe.each([
  ['express', async () => listening(expressApp)],
  ['koa', async () => listening(koaApp.callback())],
  ['nestjs', () => nestBooted(bootstrapExpress)],
  ['nestjs on Fastify', () => nestBooted(bootstrapFastify)],
  ['fetch', async () => listening(fetchListener)],
  ['node', async () => listening(nodeListener)],
] as const)('examples/%s: header-form routes', (_name, start) => {
  let server: { port(): Promise<number>; close(): Promise<void> }
  let base: string
  let client: BetterAuthClient
  beforeAll(async () => {
    server = await start()
    base = `http://127.0.0.1:${await server.port()}`
    client = new BetterAuthClient({ baseUrl: base })
    await client.createAccount(hash(NodeSigningKey.generate().publicKeyText))
    await client.createSession()
  })
  afterAll(async () => {
    await server.close()
  })

  it('answers client.fetch with signed replies', async () => {
    const me = await client.fetch(`${base}/me`)
    const body = (await me.json()) as { identity: string; device: string }
    expect([me.status, body.identity]).toEqual([200, await client.identity()])
    expect(typeof body.device).toBe('string')
    const deleted = await client.fetch(`${base}/notes/7`, { method: 'DELETE' })
    expect(await deleted.json()).toEqual({ deleted: '7' })
    // The id as the frameworks give route parameters: percent-decoded.
    const spaced = await client.fetch(`${base}/notes/a%20b`, { method: 'DELETE' })
    expect(await spaced.json()).toEqual({ deleted: 'a b' })
    // Any body, of any type or none: its bytes are covered by Content-Digest.
    const bodies: [string | undefined, BodyInit][] = [
      ['application/octet-stream', new Uint8Array([0, 1, 2, 255])],
      ['text/plain', 'plain text, é'],
      [undefined, new Uint8Array([0, 1, 2, 255])],
    ]
    for (const [type, body] of bodies) {
      const withBody = await client.fetch(`${base}/notes/8`, {
        method: 'DELETE',
        body,
        ...(type === undefined ? {} : { headers: { 'content-type': type } }),
      })
      expect([type, withBody.status, await withBody.json()]).toEqual([type, 200, { deleted: '8' }])
    }
  })

  it("answers the README's client (examples/client-fetch.ts)", async () => {
    const { code, out, err } = await clientExample(base)
    expect({ code, err: code === 0 ? '' : err }).toEqual({ code: 0, err: '' })
    const [me, deleted] = out.trim().split('\n')
    expect(me).toMatch(/^200 \{"identity":"E[\w-]{43}","device":"E[\w-]{43}"\}$/)
    expect(deleted).toBe('200 {"deleted":"42"}')
  })

  it.each([
    ['/me', 'GET'],
    ['/notes/7', 'DELETE'],
  ])('answers the preflight of %s (%s) from an allowed origin', async (path, method) => {
    const preflight = await fetch(`${base}${path}`, {
      method: 'OPTIONS',
      headers: {
        origin: ALLOWED,
        'access-control-request-method': method,
        'access-control-request-headers': 'authorization,content-digest,signature,signature-input',
      },
    })
    expect([200, 204]).toContain(preflight.status)
    expect(preflight.headers.get('access-control-allow-origin')).toBe(ALLOWED)
    expect(list(preflight.headers.get('access-control-allow-methods'))).toContain(
      method.toLowerCase()
    )
    expect(list(preflight.headers.get('access-control-allow-headers'))).toEqual(
      expect.arrayContaining(['authorization', 'content-digest', 'signature', 'signature-input'])
    )
  })

  it('exposes the reply signature of a header-form request to an allowed origin', async () => {
    const me = await client.fetch(`${base}/me`, { headers: { origin: ALLOWED } })
    expect(me.status).toBe(200)
    expect(me.headers.get('signature')).not.toBeNull()
    expect(me.headers.get('access-control-allow-origin')).toBe(ALLOWED)
    expect(list(me.headers.get('access-control-expose-headers'))).toEqual(
      expect.arrayContaining(['signature', 'signature-input', 'content-digest'])
    )
    const deleted = await client.fetch(`${base}/notes/7`, {
      method: 'DELETE',
      headers: { origin: ALLOWED },
    })
    expect(deleted.headers.get('access-control-allow-origin')).toBe(ALLOWED)
    expect(list(deleted.headers.get('access-control-expose-headers'))).toContain('signature')
  })

  it('answers no other origin', async () => {
    const stranger = 'https://evil.example'
    const preflight = await fetch(`${base}/me`, {
      method: 'OPTIONS',
      headers: { origin: stranger, 'access-control-request-method': 'GET' },
    })
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull()
    const anonymous = await fetch(`${base}/me`, { headers: { origin: stranger } })
    expect(anonymous.headers.get('access-control-allow-origin')).toBeNull()
    const signed = await client.fetch(`${base}/me`, { headers: { origin: stranger } })
    expect(signed.status).toBe(200)
    expect(signed.headers.get('access-control-allow-origin')).toBeNull()
  })
})
