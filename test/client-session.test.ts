/**
 * A session that looks after itself (refresh before expiry, one refresh for many concurrent
 * calls, re-authentication after the refresh window) and the client's refusals of bad input.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { BetterAuthClient, FetchNetwork, MemoryValueStore, type Network } from '../src/client'
import { InProcessNetwork, hash, makeServer, type TestServer } from './helpers'

/** Passes requests to the server, counts them by path, and lets a test rewrite replies. */
class CountingNetwork implements Network {
  readonly counts = new Map<string, number>()
  rewrite: ((path: string, body: string) => string | Promise<string>) | undefined
  private readonly inner: InProcessNetwork
  constructor(server: TestServer) {
    this.inner = new InProcessNetwork(server)
  }
  count(path: string): number {
    return this.counts.get(path) ?? 0
  }
  async send(path: string, body: string) {
    this.counts.set(path, this.count(path) + 1)
    const reply = await this.inner.send(path, body)
    return {
      status: reply.status,
      body: this.rewrite ? await this.rewrite(path, reply.body) : reply.body,
    }
  }
}

async function signedIn(
  options: { refreshBeforeMs?: number | false; reauthenticate?: boolean } = {}
) {
  const server = makeServer()
  const network = new CountingNetwork(server)
  const tokenStore = new MemoryValueStore()
  const identityStore = new MemoryValueStore()
  const client = new BetterAuthClient({
    network,
    now: server.clock.now,
    session: options,
    stores: { accessToken: tokenStore, identity: identityStore },
  })
  await client.createAccount(hash('recovery'))
  await client.createSession()
  return { server, network, client, tokenStore, identityStore }
}

const echo = (i: number) => ({ foo: i, bar: 100 + i })

describe('a session that looks after itself', () => {
  it('does not refresh a fresh token', async () => {
    const { network, client } = await signedIn()
    await client.accessRequest('/foo/bar', echo(1))
    expect(network.count('/session/refresh')).toBe(0)
  })

  it('refreshes once before expiry for many concurrent access requests', async () => {
    const { server, network, client } = await signedIn()
    const before = await client.session()
    server.clock.advance(15 * 60 - 30) // 30 s before expiry: inside the 60 s margin
    const replies = await Promise.all(
      Array.from({ length: 25 }, (_, i) => client.accessRequest('/foo/bar', echo(i)))
    )
    expect(replies).toEqual(Array.from({ length: 25 }, (_, i) => ({ wasFoo: i, wasBar: 100 + i })))
    expect(network.count('/session/refresh')).toBe(1)
    const after = await client.session()
    expect(after?.expiryMs).toBeGreaterThan(before?.expiryMs as number)
    // And the chain is intact: the next refresh works.
    server.clock.advance(15 * 60 - 30)
    await client.accessRequest('/foo/bar', echo(0))
    expect(network.count('/session/refresh')).toBe(2)
  })

  it('refreshes an expired token (the server says BA401) and retries once', async () => {
    const { server, network, client } = await signedIn({ refreshBeforeMs: 0 })
    server.clock.advance(15 * 60 + 1)
    await expect(client.accessRequest('/foo/bar', echo(7))).resolves.toEqual({
      wasFoo: 7,
      wasBar: 107,
    })
    expect(network.count('/session/refresh')).toBe(1)
  })

  it('signs in again with the device key once the refresh window has closed', async () => {
    const { server, network, client } = await signedIn()
    server.clock.advance(12 * 3600 + 60)
    await expect(client.accessRequest('/foo/bar', echo(2))).resolves.toEqual({
      wasFoo: 2,
      wasBar: 102,
    })
    expect(network.count('/session/create')).toBe(2)
  })

  it('leaves an expired session alone when told to', async () => {
    const { server, client } = await signedIn({ refreshBeforeMs: false })
    server.clock.advance(15 * 60 + 1)
    await expect(client.accessRequest('/foo/bar', echo(2))).rejects.toMatchObject({ code: 'BA401' })
  })

  it('serializes concurrent explicit refreshes: each succeeds, the chain holds', async () => {
    const { network, client } = await signedIn()
    await Promise.all([client.refreshSession(), client.refreshSession(), client.refreshSession()])
    expect(network.count('/session/refresh')).toBe(3)
    await expect(client.accessRequest('/foo/bar', echo(3))).resolves.toEqual({
      wasFoo: 3,
      wasBar: 103,
    })
  })

  it('stays signed out after signOut()', async () => {
    const { client, network } = await signedIn()
    await client.signOut()
    expect(await client.session()).toBeUndefined()
    await expect(client.accessRequest('/foo/bar', echo(1))).rejects.toThrow(/no access token/)
    expect(network.count('/session/create')).toBe(1)
  })
})

describe('the client refuses bad input', () => {
  it('a reply not signed by the pinned response key', async () => {
    const { network, client } = await signedIn()
    const other = makeServer()
    network.rewrite = async (_path, body) =>
      other.auth.respond(JSON.parse(body).payload.access.nonce, JSON.parse(body).payload.response)
    await expect(client.accessRequest('/foo/bar', echo(1))).rejects.toMatchObject({ code: 'BA204' })
    // Same server identity claimed, signature by another key.
    network.rewrite = async (_path, body) => {
      const forged = JSON.parse(
        await other.auth.respond(JSON.parse(body).payload.access.nonce, { wasFoo: 'x' })
      )
      forged.payload.access.serverIdentity = JSON.parse(body).payload.access.serverIdentity
      return JSON.stringify(forged)
    }
    await expect(client.accessRequest('/foo/bar', echo(1))).rejects.toMatchObject({ code: 'BA201' })
  })

  it('a reply echoing another nonce', async () => {
    const { network, client, server } = await signedIn()
    network.rewrite = async (_path, body) =>
      server.auth.respond(`0A${'B'.repeat(22)}`, JSON.parse(body).payload.response)
    await expect(client.accessRequest('/foo/bar', echo(1))).rejects.toMatchObject({ code: 'BA203' })
  })

  it.each([
    ['garbage'],
    [`0I${'A'.repeat(86)}H4sIAAAAAAAA`],
    ['the current token (issued for another key)'],
  ])('a token it cannot decode or that is not for it: %s; nothing is stored', async what => {
    const { network, client, server, tokenStore } = await signedIn()
    const kept = await tokenStore.get()
    const token = what.startsWith('the current') ? kept : what
    network.rewrite = async (path, body) =>
      path === '/session/refresh' || path === '/session/create'
        ? server.auth.respond(JSON.parse(body).payload.access.nonce, { access: { token } })
        : body
    await expect(client.refreshSession()).rejects.toMatchObject({
      code: 'BA204',
      message: expect.stringMatching(/token (cannot be decoded|was issued for another key)/),
    })
    expect(await tokenStore.get()).toBe(kept)
    await expect(client.createSession()).rejects.toMatchObject({ code: 'BA204' })
    expect(await tokenStore.get()).toBe(kept)
  })

  it('a server answering HTML, nothing, or not at all (over HTTP)', async () => {
    let answer: 'html' | 'empty' | 'hangup' = 'html'
    const http: Server = createServer((req, res) => {
      if (answer === 'hangup') return req.socket.destroy()
      res.writeHead(502, { 'content-type': answer === 'html' ? 'text/html' : 'text/plain' })
      res.end(answer === 'html' ? '<html><body>Bad gateway</body></html>' : '')
    })
    await new Promise<void>(resolve => http.listen(0, '127.0.0.1', resolve))
    const { port } = http.address() as AddressInfo
    try {
      const server = makeServer()
      const client = new BetterAuthClient({
        network: new FetchNetwork(`http://127.0.0.1:${port}`),
        responseKey: await server.auth.responsePublicKey(),
      })
      await expect(client.createAccount(hash('r'))).rejects.toThrow(/HTTP 502, body is not JSON/)
      answer = 'empty'
      await expect(client.createAccount(hash('r'))).rejects.toThrow(/HTTP 502, empty reply/)
      answer = 'hangup'
      await expect(client.createAccount(hash('r'))).rejects.toMatchObject({
        code: 'BA204',
        message: expect.stringMatching(/no reply from http:\/\/127\.0\.0\.1/),
      })
    } finally {
      await new Promise(resolve => http.close(resolve))
    }
  })

  it('a corrupted store, with a clear error', async () => {
    const { client, tokenStore, identityStore } = await signedIn()
    await tokenStore.store('not a token')
    await expect(client.accessRequest('/foo/bar', echo(1))).rejects.toThrow(
      /client store is corrupted: the stored access token cannot be read/
    )
    await identityStore.store('{broken')
    await expect(client.rotateDevice()).rejects.toThrow(
      /client store is corrupted: the stored identity is not a hash/
    )
  })
})
