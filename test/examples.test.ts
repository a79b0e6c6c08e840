/**
 * The examples, as users run them: our client through every kind of call against each, and the
 * README's quick starts compared with the examples' files (the README shows their real code).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify'
import { Test } from '@nestjs/testing'
import { BetterAuthClient, NodeSigningKey, type Network } from '../src'
import { hash } from './helpers'
import { supertestTarget, type Target } from './adapters/contract'
import { app as expressApp } from '../examples/express/server'
import { app as koaApp } from '../examples/koa/server'
import { AppModule } from '../examples/nestjs/main'
import { handle } from '../examples/fetch/server'
import { server as nodeServer } from '../examples/node/server'

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
  ['node', async () => supertestTarget(nodeServer.listener)],
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
    const client = new BetterAuthClient({ network: new TargetNetwork(target) })
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

describe('README', () => {
  const root = join(__dirname, '..')
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const blocks = [...readme.matchAll(/<!-- example: (\S+) -->\n\n```ts\n([\s\S]*?)```\n/g)]

  it('shows each example exactly as its file', () => {
    expect(blocks.map(b => b[1])).toEqual([
      'examples/express/server.ts',
      'examples/koa/server.ts',
      'examples/nestjs/main.ts',
      'examples/fetch/server.ts',
      'examples/node/server.ts',
    ])
    for (const [, file, code] of blocks) {
      expect({ file, code }).toEqual({
        file,
        code: readFileSync(join(root, file as string), 'utf8'),
      })
    }
  })
})
