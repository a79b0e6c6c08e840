/**
 * Administration (`auth.admin`) through real protocol flows on the in-process server: ended
 * sessions, suspension, revoked devices, deleted identities, refreshed attributes, the revocation
 * check across two instances within its bound, refusals that change nothing, and audit events.
 */
import {
  AdminNotFoundError,
  BetterAuthError,
  MemoryStore,
  NodeSigningKey,
  createBetterAuth,
  type AccountStore,
  type AuditEvent,
  type BetterAuthServer,
  type HandlerResult,
  type ServerStore,
} from '../src'
import {
  ATTRIBUTES,
  accessBody,
  challenge,
  createSessionBody,
  createdAccount,
  errorOf,
  hash,
  makeServer,
  openSession,
  payloadOf,
  sessionRequest,
  type Attributes,
  type Session,
  type TestServer,
  outcomeOf,
} from './helpers'
import { linked, refreshBody, rotateBody, twoDevicesWithSessions } from './scenario'

const ACTOR = { actor: 'ops:alice' }
const silent = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} }

/** Refreshes `session`; the new session when it was accepted. */
async function refresh(
  server: TestServer,
  session: Session
): Promise<{ result: HandlerResult; session?: Session }> {
  const next = NodeSigningKey.generate()
  const result = await server.call('refreshSession', refreshBody(session, { next }))
  if (result.status !== 200) return { result }
  const payload = payloadOf<{ response: { access: { token: string } } }>(result)
  return { result, session: { token: payload.response.access.token, key: session.next, next } }
}

/** An access check with `checkRevocation` on `auth` (the server's own by default). */
async function revocable(
  server: TestServer,
  session: Session,
  auth: BetterAuthServer<Attributes> = server.auth
): Promise<{ status: number; code?: string }> {
  try {
    await auth.verifyAccess(
      accessBody(session.token, session.key, { at: server.clock.ms }),
      {},
      { checkRevocation: true }
    )
    return { status: 200 }
  } catch (error) {
    if (!(error instanceof BetterAuthError)) throw error
    return { status: error.status, code: error.code }
  }
}

/** Everything stored of the server's accounts, admin state included. */
async function everything(server: TestServer, identities: string[]): Promise<string> {
  const records = await Promise.all(identities.map(i => server.store.accounts.getIdentityRecord(i)))
  return JSON.stringify({ dump: server.store.dump(), records })
}

/** The code of what an admin call threw. */
async function refusal(call: Promise<unknown>): Promise<{ status: number; code: string }> {
  try {
    await call
  } catch (error) {
    if (!(error instanceof BetterAuthError)) throw error
    return { status: error.status, code: error.code }
  }
  throw new Error('the call did not fail')
}

describe('auth.admin.getIdentity', () => {
  it('lists the devices with when they were created, rotated and last used for a session', async () => {
    const server = makeServer()
    const account = await createdAccount(server)
    const createdAt = server.clock.ms
    server.clock.advance(10)
    const second = await linked(server, account)
    const linkedAt = server.clock.ms
    server.clock.advance(10)
    await openSession(server, second)
    const sessionAt = server.clock.ms
    await new Promise(resolve => setImmediate(resolve)) // the record is written in the background

    expect(await server.auth.admin.getIdentity(account.identity)).toEqual({
      identity: account.identity,
      createdAt,
      suspendedAt: null,
      suspendedReason: null,
      sessionsEndedAt: null,
      devices: [
        {
          device: account.first.device,
          createdAt,
          rotatedAt: linkedAt,
          lastSessionAt: null,
          sessionsEndedAt: null,
        },
        {
          device: second.device,
          createdAt: linkedAt,
          rotatedAt: null,
          lastSessionAt: sessionAt,
          sessionsEndedAt: null,
        },
      ],
    })
  })

  it('records the last session at most once a minute (createSession and refresh)', async () => {
    const server = makeServer()
    const account = await createdAccount(server)
    const lastSession = async () => {
      await new Promise(resolve => setImmediate(resolve))
      const record = await server.auth.admin.getIdentity(account.identity)
      return record.devices[0]?.lastSessionAt
    }
    let session = await openSession(server, account.first)
    const opened = server.clock.ms
    expect(await lastSession()).toBe(opened)
    server.clock.advance(30)
    session = (await refresh(server, session)).session as Session
    expect(await lastSession()).toBe(opened) // moved by less than a minute: not written
    server.clock.advance(31)
    await refresh(server, session)
    expect(await lastSession()).toBe(server.clock.ms)
  })
})

describe('auth.admin.endSessions', () => {
  it('refuses the refresh of every earlier token with 401 BA401, changing nothing; new sessions work', async () => {
    const events: AuditEvent[] = []
    const server = makeServer({ onEvent: event => events.push(event) })
    const { account, first, other } = await twoDevicesWithSessions(server)
    server.clock.advance(1)

    const result = await server.auth.admin.endSessions(account.identity, ACTOR)
    expect(result).toEqual({
      action: 'admin.sessions.ended',
      identity: account.identity,
      at: server.clock.ms,
      changed: true,
      actor: 'ops:alice',
    })
    for (const session of [first, other]) {
      const before = await everything(server, [account.identity])
      const refused = await refresh(server, session)
      expect(outcomeOf(refused.result)).toEqual({ status: 401, code: 'BA401' })
      expect(refused.result.headers['www-authenticate']).toContain('BA401')
      expect(await everything(server, [account.identity])).toBe(before)
    }
    // The key of a refused refresh was not spent: it is refused again for the same reason.
    expect(outcomeOf((await refresh(server, first)).result)).toEqual({ status: 401, code: 'BA401' })

    // A session opened after the end refreshes.
    server.clock.advance(0.001)
    const fresh = await openSession(server, account.first)
    server.clock.advance(60)
    expect(outcomeOf((await refresh(server, fresh)).result)).toEqual({ status: 200 })
    expect(events.filter(e => e.type.startsWith('admin.'))).toEqual([
      {
        type: 'admin.sessions.ended',
        time: expect.any(String),
        route: 'admin',
        identity: account.identity,
        actor: 'ops:alice',
      },
    ])
  })

  it('of one device: only that device is refused', async () => {
    const server = makeServer()
    const { account, second, first, other } = await twoDevicesWithSessions(server)
    server.clock.advance(1)
    const result = await server.auth.admin.endSessions(account.identity, {
      ...ACTOR,
      device: second.device,
    })
    expect(result).toMatchObject({ device: second.device, changed: true })
    expect(outcomeOf((await refresh(server, other)).result)).toEqual({ status: 401, code: 'BA401' })
    expect(outcomeOf((await refresh(server, first)).result)).toEqual({ status: 200 })
    const record = await server.auth.admin.getIdentity(account.identity)
    expect(record.sessionsEndedAt).toBeNull()
    expect(record.devices.find(d => d.device === second.device)?.sessionsEndedAt).toBe(
      server.clock.ms
    )
  })

  it('with checkRevocation, refuses access at once here and within revocationCacheMs on another instance', async () => {
    const server = makeServer({ revocationCacheMs: 2000 })
    // A second instance on the same store and keys, with its own cache.
    const other = createBetterAuth<Attributes>({
      store: server.store,
      keys: await server.auth.keys(),
      now: server.clock.now,
      attributes: () => ATTRIBUTES,
      logger: silent,
      revocationCacheMs: 2000,
    })
    const account = await createdAccount(server)
    const session = await openSession(server, account.first)
    expect(await revocable(server, session)).toEqual({ status: 200 })
    expect(await revocable(server, session, other)).toEqual({ status: 200 })
    server.clock.advance(0.5)

    await server.auth.admin.endSessions(account.identity, ACTOR)
    // The acting instance dropped its cache: refused at once.
    expect(await revocable(server, session)).toEqual({ status: 401, code: 'BA401' })
    // The other read the state 0.5 s ago: it may accept until its 2 s are up, never after.
    expect(await revocable(server, session, other)).toEqual({ status: 200 })
    server.clock.advance(1.499)
    expect(await revocable(server, session, other)).toEqual({ status: 200 })
    server.clock.advance(0.001)
    expect(await revocable(server, session, other)).toEqual({ status: 401, code: 'BA401' })
    // Without the check, tokens are stateless: the token works until it expires.
    expect(
      (await server.access(accessBody(session.token, session.key, { at: server.clock.ms }))).status
    ).toBe(200)
  })
})

describe('auth.admin.suspend and reinstate', () => {
  it('refuses new sessions and refreshes (403 BA307) until reinstated; its sessions stay ended', async () => {
    const events: AuditEvent[] = []
    const server = makeServer({ onEvent: event => events.push(event) })
    const account = await createdAccount(server)
    const session = await openSession(server, account.first)
    const pending = await challenge(server, account.identity)
    server.clock.advance(1)

    const suspended = await server.auth.admin.suspend(account.identity, {
      ...ACTOR,
      reason: 'chargeback',
    })
    expect(suspended).toMatchObject({ action: 'admin.identity.suspended', changed: true })
    const record = await server.auth.admin.getIdentity(account.identity)
    expect(record).toMatchObject({
      suspendedAt: server.clock.ms,
      suspendedReason: 'chargeback',
      sessionsEndedAt: server.clock.ms,
    })

    const before = await everything(server, [account.identity])
    const requested = await server.call('requestSession', sessionRequest(account.identity))
    expect(outcomeOf(requested)).toEqual({ status: 403, code: 'BA307' })
    // A challenge obtained before the suspension cannot be answered either, and is not consumed.
    const key = NodeSigningKey.generate()
    const next = NodeSigningKey.generate()
    const answer = createSessionBody(account.first, pending, key, next)
    expect(outcomeOf(await server.call('createSession', answer))).toEqual({
      status: 403,
      code: 'BA307',
    })
    expect(server.store.dump().challenges).toContain(pending)
    expect(outcomeOf((await refresh(server, session)).result)).toEqual({
      status: 403,
      code: 'BA307',
    })
    expect(await revocable(server, session)).toEqual({ status: 403, code: 'BA307' })
    expect(await everything(server, [account.identity])).toBe(before)

    // Suspending again changes nothing, and emits nothing.
    const again = await server.auth.admin.suspend(account.identity, ACTOR)
    expect(again.changed).toBe(false)

    server.clock.advance(1)
    expect((await server.auth.admin.reinstate(account.identity, ACTOR)).changed).toBe(true)
    // The challenge from before works now; the old session stays ended.
    expect(outcomeOf(await server.call('createSession', answer))).toEqual({ status: 200 })
    expect(outcomeOf((await refresh(server, session)).result)).toEqual({
      status: 401,
      code: 'BA401',
    })
    const reopened = await openSession(server, account.first)
    server.clock.advance(60)
    expect(outcomeOf((await refresh(server, reopened)).result)).toEqual({ status: 200 })
    expect((await server.auth.admin.reinstate(account.identity, ACTOR)).changed).toBe(false)

    expect(
      events.filter(e => e.type.startsWith('admin.')).map(e => [e.type, e.actor, e.reason])
    ).toEqual([
      ['admin.identity.suspended', 'ops:alice', 'chargeback'],
      ['admin.identity.reinstated', 'ops:alice', undefined],
    ])
  })
})

describe('auth.admin.revokeDevice', () => {
  it('refuses the device at once: access with checkRevocation, refresh, rotation, new sessions', async () => {
    const server = makeServer()
    const account = await createdAccount(server)
    const second = await linked(server, account)
    const session = await openSession(server, second)
    expect(await revocable(server, session)).toEqual({ status: 200 })

    const result = await server.auth.admin.revokeDevice(account.identity, second.device, ACTOR)
    expect(result).toMatchObject({ action: 'admin.device.revoked', device: second.device })
    expect(await revocable(server, session)).toEqual({ status: 401, code: 'BA301' })
    expect(outcomeOf((await refresh(server, session)).result)).toEqual({
      status: 401,
      code: 'BA301',
    })
    expect(outcomeOf(await server.call('rotateDevice', rotateBody(second)))).toEqual({
      status: 401,
      code: 'BA301',
    })
    const c = await challenge(server, account.identity)
    const body = createSessionBody(second, c, NodeSigningKey.generate(), NodeSigningKey.generate())
    expect(outcomeOf(await server.call('createSession', body))).toEqual({
      status: 401,
      code: 'BA301',
    })
    // The other device is untouched.
    const first = await openSession(server, account.first)
    expect(await revocable(server, first)).toEqual({ status: 200 })
    expect(
      (await server.auth.admin.getIdentity(account.identity)).devices.map(d => d.device)
    ).toEqual([account.first.device])
  })

  it('on another instance, access with checkRevocation is refused within the bound', async () => {
    const server = makeServer({ revocationCacheMs: 1000 })
    const other = createBetterAuth<Attributes>({
      store: server.store,
      keys: await server.auth.keys(),
      now: server.clock.now,
      logger: silent,
      revocationCacheMs: 1000,
    })
    const account = await createdAccount(server)
    const session = await openSession(server, account.first)
    expect(await revocable(server, session, other)).toEqual({ status: 200 })
    await server.auth.admin.revokeDevice(account.identity, account.first.device, ACTOR)
    server.clock.advance(1)
    expect(await revocable(server, session, other)).toEqual({ status: 401, code: 'BA301' })
  })

  it('a rotation racing the revocation: the device ends revoked either way', async () => {
    for (let i = 0; i < 10; i++) {
      const server = makeServer()
      const account = await createdAccount(server)
      const [rotated, revoked] = await Promise.all([
        server.call('rotateDevice', rotateBody(account.first)),
        server.auth.admin.revokeDevice(account.identity, account.first.device, ACTOR),
      ])
      expect(revoked.changed).toBe(true)
      expect([200, 401]).toContain(rotated.status)
      if (rotated.status !== 200) expect(errorOf(rotated).code).toBe('BA301')
      account.first.advance()
      expect(outcomeOf(await server.call('rotateDevice', rotateBody(account.first)))).toEqual({
        status: 401,
        code: 'BA301',
      })
    }
  })
})

describe('auth.admin.deleteIdentity', () => {
  it('deletes for good: refresh refused, the creation replayed refused (409)', async () => {
    const server = makeServer()
    const account = await createdAccount(server)
    const session = await openSession(server, account.first)
    const result = await server.auth.admin.deleteIdentity(account.identity, ACTOR)
    expect(result).toMatchObject({ action: 'admin.identity.deleted', changed: true })
    expect(server.store.dump().accounts[account.identity]).toBeUndefined()
    expect(outcomeOf((await refresh(server, session)).result)).toEqual({
      status: 401,
      code: 'BA301',
    })
    expect(outcomeOf(await server.call('createAccount', account.createAccountBody()))).toEqual({
      status: 409,
      code: 'BA305',
    })
    expect(await refusal(server.auth.admin.getIdentity(account.identity))).toEqual({
      status: 404,
      code: 'BA608',
    })
  })
})

describe('auth.admin refusals', () => {
  it('an unknown identity or device: 404 BA608, nothing changed, no event', async () => {
    const events: AuditEvent[] = []
    const server = makeServer({ onEvent: event => events.push(event) })
    const account = await createdAccount(server)
    const stranger = await createdAccount(server)
    const before = await everything(server, [account.identity, stranger.identity])
    events.length = 0
    const unknown = hash('nobody')
    const admin = server.auth.admin
    const calls: [string, Promise<unknown>][] = [
      ['identity', admin.getIdentity(unknown)],
      ['identity', admin.revokeDevice(unknown, account.first.device, ACTOR)],
      ['device', admin.revokeDevice(account.identity, hash('no device'), ACTOR)],
      ['device', admin.revokeDevice(account.identity, stranger.first.device, ACTOR)],
      ['identity', admin.endSessions(unknown, ACTOR)],
      ['device', admin.endSessions(account.identity, { ...ACTOR, device: hash('x') })],
      ['identity', admin.suspend(unknown, ACTOR)],
      ['identity', admin.reinstate(unknown, ACTOR)],
      ['identity', admin.deleteIdentity(unknown, ACTOR)],
    ]
    for (const [subject, call] of calls) {
      const error = await call.then(
        () => undefined,
        (e: unknown) => e
      )
      expect(error).toBeInstanceOf(AdminNotFoundError)
      expect(error).toMatchObject({ code: 'BA608', status: 404, subject })
    }
    expect(await everything(server, [account.identity, stranger.identity])).toBe(before)
    expect(events).toEqual([])
  })

  it('bad arguments: 400 BA101 naming the field, nothing changed', async () => {
    const server = makeServer()
    const account = await createdAccount(server)
    const before = await everything(server, [account.identity])
    const admin = server.auth.admin
    const bad = async (call: () => Promise<unknown>, field: string) => {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e
      )
      expect(error).toMatchObject({ code: 'BA101', status: 400, field })
    }
    await bad(() => admin.suspend(account.identity, { actor: '' }), 'actor')
    await bad(() => admin.suspend(account.identity, {} as never), 'actor')
    await bad(() => admin.suspend(account.identity, { actor: 'a\nb' }), 'actor')
    await bad(() => admin.suspend(account.identity, { actor: 'x'.repeat(257) }), 'actor')
    await bad(
      () => admin.suspend(account.identity, { ...ACTOR, reason: 'x'.repeat(1001) }),
      'reason'
    )
    await bad(() => admin.endSessions('', ACTOR), 'identity')
    await bad(() => admin.revokeDevice(account.identity, 42 as never, ACTOR), 'device')
    await bad(() => admin.endSessions(account.identity, { ...ACTOR, device: '' }), 'device')
    expect(await everything(server, [account.identity])).toBe(before)
  })

  it('a store without administration: 501 BA609; the protocol works as before', async () => {
    const memory = new MemoryStore({ sweepIntervalMs: 0 })
    // An account store with the protocol's methods only (a third-party store).
    const m = memory.accounts
    const accounts: AccountStore = {
      createAccount: a => m.createAccount(a),
      hasIdentity: i => m.hasIdentity(i),
      getDeviceKey: (i, d) => m.getDeviceKey(i, d),
      getRecoveryHash: i => m.getRecoveryHash(i),
      rotate: (i, d, e, n, f) => m.rotate(i, d, e, n, f),
      recover: (i, e, r, d) => m.recover(i, e, r, d),
    }
    const store: ServerStore = { ...memory, accounts, close: () => memory.close() }
    const server = makeServer({ store })
    expect(server.auth.admin.supported).toBe(false)
    const someone = hash('someone')
    expect(await refusal(server.auth.admin.getIdentity(someone))).toEqual({
      status: 501,
      code: 'BA609',
    })
    expect(await refusal(server.auth.admin.suspend(someone, ACTOR))).toEqual({
      status: 501,
      code: 'BA609',
    })
    // Sessions, refresh and the revocation check work as they did.
    const created = await createdAccount(server)
    const session = await openSession(server, created.first)
    expect(await revocable(server, session)).toEqual({ status: 200 })
    server.clock.advance(60)
    expect(outcomeOf((await refresh(server, session)).result)).toEqual({ status: 200 })
  })

  it('validates the new options once, naming them', () => {
    const base = () => ({
      store: new MemoryStore({ sweepIntervalMs: 0 }),
      keys: { env: false as const },
    })
    expect(() => createBetterAuth({ ...base(), revocationCacheMs: -1 })).toThrow(
      /revocationCacheMs/
    )
    expect(() => createBetterAuth({ ...base(), revocationCacheMs: Number.NaN })).toThrow(TypeError)
    expect(() => createBetterAuth({ ...base(), refreshAttributes: 'yes' as never })).toThrow(
      /refreshAttributes/
    )
  })
})

describe('refreshAttributes', () => {
  it('recomputes the attributes at refresh, with the previous ones available', async () => {
    const roles = new Map<string, string[]>()
    const calls: unknown[] = []
    const server = makeServer({
      refreshAttributes: true,
      attributes: (identity, _device, context) => {
        calls.push(context)
        return { permissionsByRole: { user: roles.get(identity) ?? [] } }
      },
    })
    const account = await createdAccount(server)
    roles.set(account.identity, ['read', 'write'])
    const session = await openSession(server, account.first)
    expect((await server.auth.verifyToken(session.token)).attributes).toEqual({
      permissionsByRole: { user: ['read', 'write'] },
    })
    // The application revokes a role; the next refresh carries it.
    roles.set(account.identity, ['read'])
    server.clock.advance(60)
    const refreshed = (await refresh(server, session)).session as Session
    expect((await server.auth.verifyToken(refreshed.token)).attributes).toEqual({
      permissionsByRole: { user: ['read'] },
    })
    expect(calls).toEqual([
      { operation: 'createSession' },
      {
        operation: 'refreshSession',
        previous: { permissionsByRole: { user: ['read', 'write'] } },
      },
    ])
  })

  it('a callback that throws refuses the refresh without spending the key', async () => {
    let refuse = true
    const server = makeServer({
      refreshAttributes: true,
      attributes: (_identity, _device, context) => {
        if (context.operation === 'refreshSession' && refuse) {
          throw new BetterAuthError('BA306', 'role revoked')
        }
        return ATTRIBUTES
      },
    })
    const account = await createdAccount(server)
    const session = await openSession(server, account.first)
    server.clock.advance(60)
    const before = server.snapshot()
    expect(outcomeOf((await refresh(server, session)).result)).toEqual({
      status: 403,
      code: 'BA306',
    })
    expect(server.snapshot()).toBe(before)
    refuse = false
    expect(outcomeOf((await refresh(server, session)).result)).toEqual({ status: 200 })
  })

  it('is off by default: a token keeps its attributes through every refresh', async () => {
    let calls = 0
    let attributes: Attributes = ATTRIBUTES
    const server = makeServer({
      attributes: () => {
        calls++
        return attributes
      },
    })
    const account = await createdAccount(server)
    const session = await openSession(server, account.first)
    attributes = { permissionsByRole: {} }
    server.clock.advance(60)
    const refreshed = (await refresh(server, session)).session as Session
    expect((await server.auth.verifyToken(refreshed.token)).attributes).toEqual(ATTRIBUTES)
    expect(calls).toBe(1)
  })
})

describe('administrative audit events', () => {
  it('carry the type, identity, device acted on and actor — never a key, token or nonce', async () => {
    const events: AuditEvent[] = []
    const server = makeServer({ onEvent: event => events.push(event) })
    const account = await createdAccount(server)
    const second = await linked(server, account)
    const session = await openSession(server, account.first)
    events.length = 0
    const admin = server.auth.admin
    const context = { context: { ip: '203.0.113.9', path: '/admin/identities' } }
    await admin.endSessions(account.identity, { actor: 'ops:bob', device: account.first.device })
    await admin.endSessions(account.identity, { actor: 'ops:bob' })
    await admin.suspend(account.identity, {
      actor: 'ops:carol',
      reason: 'abuse report',
      ...context,
    })
    await admin.reinstate(account.identity, { actor: 'ops:carol' })
    await admin.revokeDevice(account.identity, second.device, { actor: 'ops:dan' })
    await admin.deleteIdentity(account.identity, { actor: 'ops:erin' })

    const strip = ({ time, ...rest }: AuditEvent) => {
      expect(Number.isNaN(Date.parse(time))).toBe(false)
      return rest
    }
    const identity = account.identity
    expect(events.map(strip)).toEqual([
      {
        type: 'admin.sessions.ended',
        route: 'admin',
        identity,
        device: account.first.device,
        actor: 'ops:bob',
      },
      { type: 'admin.sessions.ended', route: 'admin', identity, actor: 'ops:bob' },
      {
        type: 'admin.identity.suspended',
        route: '/admin/identities',
        ip: '203.0.113.9',
        identity,
        actor: 'ops:carol',
        reason: 'abuse report',
      },
      { type: 'admin.identity.reinstated', route: 'admin', identity, actor: 'ops:carol' },
      {
        type: 'admin.device.revoked',
        route: 'admin',
        identity,
        device: second.device,
        actor: 'ops:dan',
      },
      { type: 'admin.identity.deleted', route: 'admin', identity, actor: 'ops:erin' },
    ])
    const text = JSON.stringify(events)
    for (const secret of [
      session.token,
      session.key.publicKeyText,
      session.next.publicKeyText,
      account.first.current.publicKeyText,
      account.recovery.publicKeyText,
      account.recoveryHash,
    ]) {
      expect(text).not.toContain(secret)
    }
  })
})
