/**
 * Koa 3 with @koa/router: a bare route (raw body + `JSON.parse`, `ctx.body = object`; Koa ships
 * no body parser) and the same route behind the Koa adapter's `requireAccess`.
 */
import Router from '@koa/router'
import Koa from 'koa'
import { requireAccess } from '../../adapters/koa'
import { readBody } from '../../adapters/shared/body'
import {
  BARE_PATH,
  PROTECTED_PATH,
  bareEnvelope,
  benchAuth,
  fooBar,
  serve,
  type Attributes,
  type FooBar,
  type Start,
} from './common'

export const start: Start = async port => {
  const core = benchAuth()
  const { auth } = core
  await auth.ready()
  const router = new Router()
  router.post(BARE_PATH, async ctx => {
    ctx.body = bareEnvelope(JSON.parse((await readBody(ctx.req, 65536)).toString()))
  })
  // requireAccess puts the verified request data on ctx.request.body and signs ctx.body.
  router.post(PROTECTED_PATH, requireAccess<Attributes, FooBar>(auth), ctx => {
    ctx.body = fooBar((ctx.request as { body?: FooBar }).body ?? {})
  })
  const app = new Koa()
  app.use(router.routes())
  return serve(app.callback(), port, core)
}
