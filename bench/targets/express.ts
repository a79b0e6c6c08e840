/**
 * Express 5: the bare route (`express.json()` + `res.json`) and the same route behind
 * `requireAccess`, in one app, on a server made with `expressServerOptions(app)`.
 */
import express from 'express'
import { expressServerOptions, requireAccess } from '../../adapters/express'
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
  const app = express()
  app.post(BARE_PATH, express.json(), (req, res) => {
    res.json(bareEnvelope(req.body))
  })
  // requireAccess reads the body itself and puts the verified request data on req.body.
  app.post(PROTECTED_PATH, requireAccess<Attributes, FooBar>(auth), (req, res) => {
    res.json(fooBar(req.body as FooBar))
  })
  // The server builds Express's requests and responses with the app's prototypes, as
  // docs/performance.md advises; BENCH_EXPRESS_SERVER=plain measures `http.createServer(app)`
  // (what `app.listen` makes) instead.
  const plain = process.env.BENCH_EXPRESS_SERVER === 'plain'
  return serve(app, port, core, plain ? {} : expressServerOptions(app))
}
