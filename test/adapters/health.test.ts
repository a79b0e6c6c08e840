/** Opt-in liveness and readiness on the Express, Koa and fetch adapters. */
import express from 'express'
import Koa from 'koa'
import request from 'supertest'
import { MemoryStore, createBetterAuth } from '../../src'
import { betterAuth as expressAuth } from '../../adapters/express'
import { betterAuth as fetchAuth } from '../../adapters/fetch'
import { betterAuth as koaAuth } from '../../adapters/koa'

const silent = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
}

/** A core whose account store can be made to hang (a frozen database). */
function core() {
  const store = new MemoryStore({ sweepIntervalMs: 0 })
  const hasIdentity = store.accounts.hasIdentity.bind(store.accounts)
  let frozen = false
  store.accounts.hasIdentity = identity =>
    frozen ? new Promise<boolean>(() => undefined) : hasIdentity(identity)
  const auth = createBetterAuth({ store, keys: { env: false }, logger: silent })
  return { auth, freeze: (on: boolean) => (frozen = on) }
}

type Get = (path: string) => Promise<{ status: number; body: unknown }>

const adapters: [string, (c: ReturnType<typeof core>) => Get][] = [
  [
    'express',
    ({ auth }) => {
      const app = express()
      app.use(expressAuth(auth).health({ timeoutMs: 200 }))
      app.get('/other', (_req, res) => res.json({ other: true }))
      return async path => {
        const reply = await request(app).get(path)
        return { status: reply.status, body: JSON.parse(reply.text) as unknown }
      }
    },
  ],
  [
    'koa',
    ({ auth }) => {
      const app = new Koa()
      app.use(koaAuth(auth).health({ timeoutMs: 200 }))
      app.use(ctx => {
        ctx.body = { other: true }
      })
      return async path => {
        const reply = await request(app.callback()).get(path)
        return { status: reply.status, body: JSON.parse(reply.text) as unknown }
      }
    },
  ],
  [
    'fetch',
    ({ auth }) => {
      const health = fetchAuth(auth).health({ timeoutMs: 200 })
      const handle = async (req: Request) => (await health(req)) ?? Response.json({ other: true })
      return async path => {
        const reply = await handle(new Request(`http://localhost${path}`))
        return { status: reply.status, body: JSON.parse(await reply.text()) as unknown }
      }
    },
  ],
]

describe.each(adapters)('%s: auth.health()', (_name, mount) => {
  it('answers /healthz and /readyz, and goes 503 and back when a store stops answering', async () => {
    const c = core()
    const get = mount(c)
    expect(await get('/healthz')).toEqual({ status: 200, body: { status: 'ok' } })
    expect(await get('/readyz')).toMatchObject({ status: 200, body: { status: 'ready' } })
    expect(await get('/other')).toEqual({ status: 200, body: { other: true } })
    c.freeze(true)
    const started = Date.now()
    const down = await get('/readyz')
    expect(Date.now() - started).toBeLessThan(5000)
    expect(down).toMatchObject({
      status: 503,
      body: { error: { code: 'BA602' }, checks: { accounts: 'timeout' } },
    })
    expect(await get('/healthz')).toEqual({ status: 200, body: { status: 'ok' } })
    c.freeze(false)
    expect(await get('/readyz')).toMatchObject({ status: 200, body: { status: 'ready' } })
    await c.auth.close()
  })
})
