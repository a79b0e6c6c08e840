/**
 * Express 5: the bare route (`express.json()` + `res.json`) and the same route behind
 * `requireAccess`, in one app.
 */
import express from 'express'
import { requireAccess } from '../../adapters/express'
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
  return serve(app, port, core)
}
