/**
 * The conformance flows over real HTTP against the conformance server: `make server` (the
 * standalone node:http server) and the same server as an Express app.
 */
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import { createConformanceApp } from '../examples/express-conformance'
import { createConformanceServer } from '../examples/server'
import { conformanceFlows } from './integration/flows'
import { BetterAuthClient, NodeSigningKey } from '../src'
import { hash } from './helpers'

const names = [
  'completes auth flows',
  'recovers from loss',
  'links another device',
  'detects mismatched access nonce',
  'refuses replayed access requests',
  'refuses replayed refreshes and rotations',
]

interface Running {
  url: string
  close(): Promise<void>
}

const servers: [string, () => Promise<Running>][] = [
  [
    'standalone (make server)',
    async () => {
      const { server, auth } = createConformanceServer({ rateLimit: false })
      await auth.ready()
      const { port } = await server.listen(0)
      return { url: `http://127.0.0.1:${port}`, close: () => server.close() }
    },
  ],
  [
    'Express',
    async () => {
      const { app, auth } = createConformanceApp()
      await auth.ready()
      const server = await new Promise<Server>(resolve => {
        const s = app.listen(0, '127.0.0.1', () => resolve(s))
      })
      return {
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        close: () => new Promise(resolve => server.close(() => resolve())),
      }
    },
  ],
]

describe.each(servers)('conformance flows against the %s conformance server', (_name, start) => {
  let running: Running
  let flows: Record<string, () => Promise<void>>

  beforeAll(async () => {
    running = await start()
    flows = conformanceFlows(running.url)
  })

  afterAll(async () => {
    await running.close()
  })

  it('covers every flow the integration runner has', () => {
    expect(Object.keys(flows).sort()).toEqual([...names].sort())
  })

  it.each(names)('%s', async name => {
    await (flows[name] as () => Promise<void>)()
  })

  it('answers GET /me and DELETE /notes/:id in the header form, as every example does', async () => {
    const client = new BetterAuthClient({ baseUrl: running.url })
    await client.createAccount(hash(NodeSigningKey.generate().publicKeyText))
    await client.createSession()
    const me = await client.fetch(`${running.url}/me`)
    const body = (await me.json()) as { identity: string; device: string }
    expect([me.status, body.identity]).toEqual([200, await client.identity()])
    expect(body.device).toMatch(/^E[\w-]{43}$/)
    const deleted = await client.fetch(`${running.url}/notes/a%20b`, { method: 'DELETE' })
    expect([deleted.status, await deleted.json()]).toEqual([200, { deleted: 'a b' }])
    // The header form only: the same route in the classic form is refused.
    const classic = await fetch(`${running.url}/me`)
    expect(classic.status).toBe(401)
  })
})
