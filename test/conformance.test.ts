/** The conformance flows over real HTTP against the conformance server (`make server`). */
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import { createConformanceApp } from '../examples/server'
import { conformanceFlows } from './integration/flows'

let server: Server
let flows: Record<string, () => Promise<void>>

beforeAll(async () => {
  const { app, auth } = createConformanceApp()
  await auth.ready()
  server = await new Promise<Server>(resolve => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s))
  })
  flows = conformanceFlows(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
})

afterAll(async () => {
  await new Promise(resolve => server.close(resolve))
})

const names = [
  'completes auth flows',
  'recovers from loss',
  'links another device',
  'detects mismatched access nonce',
  'refuses replayed access requests',
  'refuses replayed refreshes and rotations',
]

describe('conformance flows against the conformance server', () => {
  it('covers every flow the integration runner has', () => {
    expect(Object.keys(flows).sort()).toEqual([...names].sort())
  })

  it.each(names)('%s', async name => {
    await (flows[name] as () => Promise<void>)()
  })
})
