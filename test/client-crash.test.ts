/**
 * Crash safety of the key chains: a rotation or refresh whose reply is lost after the server
 * applied it (the process died, the connection dropped), or whose request never arrived, leaves
 * chains the next operation (in a new process on the same fileStores directory) settles.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BetterAuthClient, NodeSigningKey, fileStores, type Network } from '../src'
import { InvalidResponseError, type ClientStores } from '../src/client'
import { InProcessNetwork, hash, makeServer, type TestServer } from './helpers'

/** Passes requests to the server; `failOn` a path, it fails before or after the server sees it. */
class CrashingNetwork implements Network {
  failOn: { path: string; when: 'before' | 'after' } | undefined
  readonly inner: InProcessNetwork
  constructor(server: TestServer) {
    this.inner = new InProcessNetwork(server)
  }
  async send(path: string, body: string) {
    const fail = this.failOn?.path === path ? this.failOn.when : undefined
    if (fail !== undefined) this.failOn = undefined
    if (fail === 'before') throw new InvalidResponseError(`no reply from ${path}: ECONNREFUSED`)
    const reply = await this.inner.send(path, body)
    if (fail === 'after') throw new Error('the process died before the reply was read')
    return reply
  }
  count(path: string): number {
    return this.inner.sent.filter(s => s.path === path).length
  }
}

const dirs: string[] = []
afterAll(() => Promise.all(dirs.map(dir => rm(dir, { recursive: true, force: true }))))

async function setup() {
  const server = makeServer()
  const dir = await mkdtemp(join(tmpdir(), 'bap-crash-'))
  dirs.push(dir)
  const network = new CrashingNetwork(server)
  /** A client on the directory: a new one stands for the program started again. */
  const open = (stores: ClientStores = fileStores(dir)) =>
    new BetterAuthClient({ network, now: server.clock.now, stores })
  const client = open()
  await client.createAccount(hash(NodeSigningKey.generate().publicKeyText))
  await client.createSession()
  return { server, network, dir, open, client }
}

const call = (client: BetterAuthClient, foo: unknown) =>
  expect(client.accessRequest('/foo/bar', { foo, bar: 1 })).resolves.toEqual({
    wasFoo: foo,
    wasBar: 1,
  })

describe('device key chain', () => {
  it.each([
    ['/device/rotate', (client: BetterAuthClient) => client.rotateDevice()],
    ['/recovery/change', (client: BetterAuthClient) => client.changeRecoveryKey(hash('next'))],
  ])(
    'a reply lost after the server applied a rotation (%s): the next run recovers',
    async (path, operation) => {
      const { network, open, client } = await setup()
      network.failOn = { path, when: 'after' }
      await expect(operation(client)).rejects.toThrow(/process died/)
      const again = open()
      await again.rotateDevice()
      await again.rotateDevice()
      await again.createSession()
      await call(again, 'rotated')
    }
  )

  it('a lost rotation reply, then a new session first: the challenge is signed by the right key', async () => {
    const { network, open, client } = await setup()
    network.failOn = { path: '/device/rotate', when: 'after' }
    await expect(client.rotateDevice()).rejects.toThrow(/process died/)
    const again = open()
    await again.signOut()
    await again.createSession()
    await call(again, 'session')
    await again.rotateDevice()
  })

  it('a network error before the server saw the rotation leaves the old chain working', async () => {
    const { network, open, client } = await setup()
    const before = network.count('/device/rotate')
    network.failOn = { path: '/device/rotate', when: 'before' }
    await expect(client.rotateDevice()).rejects.toMatchObject({ code: 'BA204' })
    expect(network.count('/device/rotate')).toBe(before)
    // In the same process and in a new one.
    await client.rotateDevice()
    network.failOn = { path: '/device/rotate', when: 'before' }
    await expect(client.rotateDevice()).rejects.toThrow(/ECONNREFUSED/)
    const again = open()
    await again.rotateDevice()
    await again.createSession()
    await call(again, 'old chain')
  })

  it('a lost linkDevice reply: the link happened, and both devices carry on', async () => {
    const { server, network, open, client } = await setup()
    const phone = new BetterAuthClient({
      network: new InProcessNetwork(server),
      now: server.clock.now,
    })
    const container = await phone.generateLinkContainer(await client.identity())
    network.failOn = { path: '/device/link', when: 'after' }
    await expect(client.linkDevice(container)).rejects.toThrow(/process died/)
    await phone.createSession()
    await call(phone, 'phone')
    const again = open()
    await again.createSession()
    await call(again, 'laptop')
    await again.rotateDevice()
  })

  it('keeps both outcomes while the server cannot be reached, and settles once it can', async () => {
    const { network, open, client } = await setup()
    network.failOn = { path: '/device/rotate', when: 'after' }
    await expect(client.rotateDevice()).rejects.toThrow(/process died/)
    const again = open()
    network.failOn = { path: '/device/rotate', when: 'before' }
    await expect(again.rotateDevice()).rejects.toThrow(/ECONNREFUSED/)
    const third = open()
    await third.rotateDevice()
    await third.createSession()
    await call(third, 'settled')
  })
})

describe('access key chain', () => {
  it('a refresh reply lost after the server applied it: the next run signs in again', async () => {
    const { network, open, client } = await setup()
    network.failOn = { path: '/session/refresh', when: 'after' }
    await expect(client.refreshSession()).rejects.toThrow(/process died/)
    const again = open()
    const sessions = network.count('/session/create')
    await again.refreshSession()
    // The key had refreshed once already: a new session, opened with the device key.
    expect(network.count('/session/create')).toBe(sessions + 1)
    await call(again, 'after refresh')
    await again.refreshSession()
    await call(again, 'refreshed again')
  })

  it('a network error before the server saw the refresh leaves the old chain working', async () => {
    const { network, open, client } = await setup()
    network.failOn = { path: '/session/refresh', when: 'before' }
    await expect(client.refreshSession()).rejects.toThrow(/ECONNREFUSED/)
    await call(client, 'old token')
    const again = open()
    const sessions = network.count('/session/create')
    await again.refreshSession()
    expect(network.count('/session/create')).toBe(sessions)
    await call(again, 'refreshed')
  })

  it('a crash between saving the new token and rotating the chain: the chain moves to the token', async () => {
    const { network, dir, open, client } = await setup()
    const stores = fileStores(dir)
    const rotate = stores.accessKeys.rotate.bind(stores.accessKeys)
    stores.accessKeys.rotate = async () => {
      stores.accessKeys.rotate = rotate
      throw new Error('the process died before the chain was written')
    }
    void client
    await expect(open(stores).refreshSession()).rejects.toThrow(/process died/)
    const again = open()
    const sessions = network.count('/session/create')
    await call(again, 'token kept')
    await again.refreshSession()
    await call(again, 'refreshed')
    expect(network.count('/session/create')).toBe(sessions)
  })

  it('without reauthentication, a lost refresh reply is reported', async () => {
    const { server, network, dir } = await setup()
    network.failOn = { path: '/session/refresh', when: 'after' }
    const make = () =>
      new BetterAuthClient({
        network,
        now: server.clock.now,
        stores: fileStores(dir),
        session: { reauthenticate: false },
      })
    await expect(make().refreshSession()).rejects.toThrow(/process died/)
    await expect(make().refreshSession()).rejects.toMatchObject({ status: 401 })
  })
})
