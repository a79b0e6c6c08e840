/** Audit events and the opt-in revocation check. */
import { NodeSigningKey, type AuditEvent } from '../src'
import {
  accessBody,
  createdAccount,
  hash,
  InProcessNetwork,
  makeClient,
  makeServer,
  nonce,
  openSession,
  signed,
  TestAccount,
} from './helpers'

describe('audit events', () => {
  it('fire for every operation with identity, device and route, and never carry secrets', async () => {
    const events: AuditEvent[] = []
    const server = makeServer({ onEvent: event => events.push(event) })
    const network = new InProcessNetwork(server)
    const first = makeClient(server, network)
    const second = makeClient(server, network)
    await first.createAccount(hash(NodeSigningKey.generate().publicKeyText))
    await first.rotateDevice()
    await first.linkDevice(await second.generateLinkContainer(await first.identity()))
    await first.createSession()
    await first.refreshSession()
    await second.unlinkDevice(await first.device())
    await second.changeRecoveryKey(hash('next recovery'))
    await second.deleteAccount()

    expect(events.map(e => e.type)).toEqual([
      'account.created',
      'device.rotated',
      'device.linked',
      'session.requested',
      'session.created',
      'session.refreshed',
      'device.unlinked',
      'recovery.changed',
      'account.deleted',
    ])
    const identity = await first.identity()
    for (const event of events) {
      expect(event.identity).toBe(identity)
      expect(Number.isNaN(Date.parse(event.time))).toBe(false)
      expect(event.code).toBeUndefined()
    }
    expect(events[0]).toMatchObject({ route: 'createAccount', device: await first.device() })
    expect(events[2]).toMatchObject({
      device: await first.device(),
      targetDevice: await second.device(),
    })
    expect(events[6]).toMatchObject({
      device: await second.device(),
      targetDevice: await first.device(),
    })

    // No key, signature, token or nonce that crossed the wire appears in any event.
    const secrets = new Set<string>()
    for (const { body } of network.sent) {
      for (const m of body.matchAll(
        /"(0I[A-Za-z0-9_-]{86}|0A[A-Za-z0-9_-]{22}|1AAI[A-Za-z0-9_-]{44}|0I[A-Za-z0-9_-]{100,})"/g
      )) {
        secrets.add(m[1] as string)
      }
    }
    expect(secrets.size).toBeGreaterThan(20)
    const serialized = JSON.stringify(events)
    for (const secret of secrets) expect(serialized).not.toContain(secret)
    expect(serialized).not.toMatch(/"(0I|0A|1AAI)[A-Za-z0-9_-]{20,}/)
  })

  it('report refusals with code, reason and client IP', async () => {
    const events: AuditEvent[] = []
    const server = makeServer({ onEvent: event => events.push(event) })
    const a = new TestAccount()
    await server.auth.handle('createAccount', a.createAccountBody(), { ip: '203.0.113.4' })
    await server.auth.handle('createAccount', a.createAccountBody(), { ip: '203.0.113.4' })
    expect(events[1]).toMatchObject({
      type: 'request.rejected',
      route: 'createAccount',
      identity: a.identity,
      code: 'BA305',
      reason: 'conflict',
      ip: '203.0.113.4',
    })
    await server.auth
      .verifyAccess('{"payload":{}}', { ip: '203.0.113.4', path: '/orders' })
      .catch(() => undefined)
    // No access request at all: credentials required (BA404).
    expect(events[2]).toMatchObject({ type: 'access.denied', route: '/orders', code: 'BA404' })
    // A malformed one: invalid message (BA101).
    await server.auth
      .verifyAccess('{"payload":{"access":{"token":"x"}}}', { path: '/orders' })
      .catch(() => undefined)
    expect(events[3]).toMatchObject({ type: 'access.denied', code: 'BA101' })
    // Optional access: a request without credentials passes anonymously and is not an event.
    await expect(
      server.auth.verifyAccess('', { path: '/feed' }, { credentialsRequired: false })
    ).rejects.toMatchObject({ code: 'BA404' })
    expect(events).toHaveLength(4)
  })

  it('report rate limiting', async () => {
    const events: AuditEvent[] = []
    const server = makeServer({
      onEvent: event => events.push(event),
      rateLimit: { ip: { createAccount: { points: 1, duration: 60 } } },
    })
    await server.auth.handle('createAccount', new TestAccount().createAccountBody(), {
      ip: '192.0.2.1',
    })
    await server.auth.handle('createAccount', new TestAccount().createAccountBody(), {
      ip: '192.0.2.1',
    })
    expect(events.map(e => e.type)).toEqual(['account.created', 'rate.limited'])
    expect(events[1]).toMatchObject({ code: 'BA601', ip: '192.0.2.1' })
  })

  it('a failing listener does not break the request', async () => {
    const server = makeServer({
      onEvent: () => {
        throw new Error('listener bug')
      },
    })
    expect((await server.call('createAccount', new TestAccount().createAccountBody())).status).toBe(
      200
    )
  })

  it('onEvent() subscribes and unsubscribes', async () => {
    const server = makeServer()
    const seen: string[] = []
    const off = server.auth.onEvent(e => seen.push(e.type))
    await server.call('createAccount', new TestAccount().createAccountBody())
    off()
    await server.call('createAccount', new TestAccount().createAccountBody())
    expect(seen).toEqual(['account.created'])
  })
})

describe('revocation check', () => {
  async function unlinkedDeviceWithToken() {
    const server = makeServer()
    const a = await createdAccount(server)
    const { token, key } = await openSession(server, a.first)
    return { server, a, token, key }
  }

  it("is off by default: a deleted account's unexpired token still works (stateless tokens)", async () => {
    const { server, a, token, key } = await unlinkedDeviceWithToken()
    const del = signed(
      { access: { nonce: nonce() }, request: { authentication: a.first.rotating() } },
      a.first.next
    )
    expect((await server.call('deleteAccount', del)).status).toBe(200)
    expect((await server.access(accessBody(token, key, { at: server.clock.ms }))).status).toBe(200)
  })

  it("refuses a revoked device's token when asked, after the cache expires", async () => {
    const { server, a, token, key } = await unlinkedDeviceWithToken()
    const check = { checkRevocation: { cacheMs: 2000 } }
    const access = () =>
      server.auth.verifyAccess(accessBody(token, key, { at: server.clock.ms }), {}, check)
    await expect(access()).resolves.toMatchObject({ identity: a.identity })
    const del = signed(
      { access: { nonce: nonce() }, request: { authentication: a.first.rotating() } },
      a.first.next
    )
    expect((await server.call('deleteAccount', del)).status).toBe(200)
    // Still cached as active:
    await expect(access()).resolves.toMatchObject({ identity: a.identity })
    server.clock.advance(2.001)
    await expect(access()).rejects.toMatchObject({ code: 'BA301', status: 401 })
    // A refused request does not burn its nonce in the store:
    const n = nonce()
    await expect(
      server.auth.verifyAccess(accessBody(token, key, { at: server.clock.ms, nonce: n }), {}, check)
    ).rejects.toMatchObject({ code: 'BA301' })
    expect(server.store.dump().accessNonces).not.toContain(n)
  })
})
