/**
 * Express 5: the bare route (`express.json()` + `res.json`) and the same route behind
 * `requireAccess`, in one app.
 */
import type { AddressInfo } from 'node:net'
import express from 'express'
import { requireAccess } from '../../adapters/express'
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

export const start: Start = async port => {
  const { auth, store } = benchAuth()
  await auth.ready()
  const app = express()
  app.post(BARE_PATH, express.json(), (req, res) => {
    res.json(bareEnvelope(req.body))
  })
  // requireAccess reads the body itself and puts the verified request data on req.body.
  app.post(PROTECTED_PATH, requireAccess<Attributes, FooBar>(auth), (req, res) => {
    res.json(fooBar(req.body as FooBar))
  })
  const server = await new Promise<ReturnType<typeof app.listen>>(resolve => {
    const s = app.listen(port, '127.0.0.1', () => resolve(s))
  })
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      await new Promise(resolve => server.close(resolve))
      await auth.close()
    },
    stats: () => storeStats(store),
  }
}
