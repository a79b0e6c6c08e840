/**
 * Koa 3: a bare route (raw body + `JSON.parse`, `ctx.body = object`) and the same route behind an
 * access-checking middleware.
 *
 * TODO(adapters/koa): the middleware below uses the core API directly (`verifyAccess` +
 * `respond`) until the Koa adapter lands; then switch to it so the adapter itself is measured.
 */
import type { IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import Koa, { type Context, type Next } from 'koa'
import { readBody } from '../../adapters/shared/body'
import type { BetterAuthServer } from '../../src'
import {
  BARE_PATH,
  PROTECTED_PATH,
  bareEnvelope,
  benchAuth,
  fooBar,
  storeStats,
  type Attributes,
  type FooBar,
  type Start,
} from './common'

const LIMIT = 65536

/** Stand-in for the Koa adapter's middleware: verify, run the route, sign its `ctx.body`. */
function requireAccess(auth: BetterAuthServer<Attributes>) {
  return async (ctx: Context, next: Next) => {
    let principal
    try {
      const body = await readBody(ctx.req, LIMIT)
      principal = await auth.verifyAccess<FooBar>(body, { ip: ctx.ip, path: ctx.path })
    } catch (error) {
      const result = auth.errorResult(error, { path: ctx.path })
      ctx.status = result.status
      ctx.set(result.headers)
      ctx.body = result.body
      return
    }
    ctx.state.betterAuth = principal
    await next()
    ctx.body = await auth.respond(principal.nonce, ctx.body)
    ctx.type = 'application/json'
  }
}

async function parseJson(req: IncomingMessage): Promise<unknown> {
  return JSON.parse((await readBody(req, LIMIT)).toString())
}

export const start: Start = async port => {
  const { auth, store } = benchAuth()
  await auth.ready()
  const protect = requireAccess(auth)
  const app = new Koa()
  app.use(async (ctx, next) => {
    if (ctx.method !== 'POST') return next()
    if (ctx.path === BARE_PATH) {
      ctx.body = bareEnvelope(await parseJson(ctx.req))
      return
    }
    if (ctx.path === PROTECTED_PATH) {
      await protect(ctx, async () => {
        ctx.body = fooBar(ctx.state.betterAuth.request as FooBar)
      })
      return
    }
    return next()
  })
  const server = app.listen(port, '127.0.0.1')
  await new Promise(resolve => server.once('listening', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      await new Promise(resolve => server.close(resolve))
      await auth.close()
    },
    stats: () => storeStats(store),
  }
}
