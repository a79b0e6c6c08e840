/**
 * The server core, operation by operation: happy paths through the client, and for every check
 * the protocol demands a violating message that is rejected with the right code and status and
 * changes no state.
 */
import {
  NodeP256Verifier,
  NodeSigningKey,
  decodeToken,
  encodePublicKey,
  formatTimestamp,
  type Operation,
} from '../src'

/** x = 1 has no square root of x³ − 3x + b on P-256: a well-formed key off the curve. */
const offCurve = encodePublicKey(Uint8Array.from([2, ...new Array<number>(31).fill(0), 1]))
import {
  ATTRIBUTES,
  challenge,
  createSessionBody,
  createdAccount,
  openSession,
  sessionRequest,
  type Session,
  TestAccount,
  TestDevice,
  accessBody,
  errorOf,
  hash,
  linkContainer,
  makeClient,
  makeServer,
  nonce,
  payloadOf,
  signed,
  type TestServer,
} from './helpers'

async function expectRejected(
  server: TestServer,
  operation: Operation | 'access',
  body: string,
  code: string,
  status: number
): Promise<void> {
  const before = server.snapshot()
  const result =
    operation === 'access' ? await server.access(body) : await server.call(operation, body)
  const error = errorOf(result)
  expect({ status: result.status, code: error.code }).toEqual({ status, code })
  expect(result.body).not.toContain('"payload"')
  expect(typeof error.message).toBe('string')
  if (status === 401) expect(result.headers['www-authenticate']).toContain(code)
  expect(server.snapshot()).toEqual(before)
}

async function expectOk(server: TestServer, operation: Operation, body: string) {
  const result = await server.call(operation, body)
  expect(result.status).toBe(200)
  return payloadOf<{ access: { nonce: string; serverIdentity: string }; response: unknown }>(result)
}

async function created(server: TestServer): Promise<TestAccount> {
  return createdAccount(server)
}

function refreshBody(session: Session, options: { signer?: NodeSigningKey; token?: string } = {}) {
  const after = NodeSigningKey.generate()
  return {
    after,
    body: signed(
      {
        access: { nonce: nonce() },
        request: {
          access: {
            publicKey: session.next.publicKeyText,
            rotationHash: hash(after.publicKeyText),
            token: options.token ?? session.token,
          },
        },
      },
      options.signer ?? session.next
    ),
  }
}

function rotateBody(device: TestDevice, extra: Record<string, unknown> = {}, signer = device.next) {
  return signed(
    { access: { nonce: nonce() }, request: { authentication: device.rotating(extra) } },
    signer
  )
}

describe('happy paths, client to server in process', () => {
  it('create, rotate, session, refresh, access, change recovery, delete', async () => {
    const server = makeServer()
    const client = makeClient(server)
    const recovery = NodeSigningKey.generate()
    await client.createAccount(hash(recovery.publicKeyText))
    await client.rotateDevice()
    await client.createSession()
    const first = decodeToken(await client.accessToken())
    expect(first.attributes).toEqual(ATTRIBUTES)
    expect(first.identity).toBe(await client.identity())
    expect(first.device).toBe(await client.device())
    expect(first.serverIdentity).toBe((await server.auth.keys()).accessIdentity)
    expect(first.expiryMs - first.issuedAtMs).toBe(15 * 60 * 1000)
    expect(first.refreshExpiryMs - first.issuedAtMs).toBe(12 * 3600 * 1000)

    server.clock.advance(60)
    await client.refreshSession()
    const second = decodeToken(await client.accessToken())
    expect(second.refreshExpiry).toBe(first.refreshExpiry)
    expect(second.publicKey).not.toBe(first.publicKey)
    expect(second.issuedAtMs).toBe(first.issuedAtMs + 60_000)

    const reply = await client.accessRequest<{ wasFoo: string; wasBar: string }>('/foo/bar', {
      foo: 'bar',
      bar: 'foo',
    })
    expect(reply).toEqual({ wasFoo: 'bar', wasBar: 'foo' })

    await client.changeRecoveryKey(hash(NodeSigningKey.generate().publicKeyText))
    expect(await server.store.accounts.getRecoveryHash(await client.identity())).not.toBe(
      hash(recovery.publicKeyText)
    )
    await client.deleteAccount()
    expect(await server.store.accounts.hasIdentity(await client.identity())).toBe(false)
  })

  it('recovers an account on a new device and revokes the old ones', async () => {
    const server = makeServer()
    const client = makeClient(server)
    const recovery = NodeSigningKey.generate()
    await client.createAccount(hash(recovery.publicKeyText))
    const identity = await client.identity()
    const recovered = makeClient(server)
    await recovered.recoverAccount(
      identity,
      recovery,
      hash(NodeSigningKey.generate().publicKeyText)
    )
    expect(
      await server.store.accounts.getDeviceKey(identity, await client.device())
    ).toBeUndefined()
    await recovered.createSession()
    await expect(recovered.accessRequest('/foo/bar', { foo: 1, bar: 2 })).resolves.toEqual({
      wasFoo: 1,
      wasBar: 2,
    })
    await expect(client.createSession()).rejects.toMatchObject({ code: 'BA301', status: 401 })
  })

  it('links a device, which then unlinks the first one', async () => {
    const server = makeServer()
    const first = makeClient(server)
    await first.createAccount(hash(NodeSigningKey.generate().publicKeyText))
    const second = makeClient(server)
    await first.linkDevice(await second.generateLinkContainer(await first.identity()))
    await first.createSession()
    await second.createSession()
    await second.unlinkDevice(await first.device())
    await expect(first.refreshSession()).rejects.toMatchObject({ code: 'BA301' })
    await second.refreshSession()
    // A device may unlink itself; afterwards it can neither rotate nor open sessions.
    await second.unlinkDevice(await second.device())
    await expect(second.createSession()).rejects.toMatchObject({ code: 'BA301' })
  })

  it('the response key endpoint returns the key that signs responses', async () => {
    const server = makeServer()
    const result = await server.auth.handle('responseKey', '')
    expect(result.status).toBe(200)
    expect(result.body).toBe(await server.auth.responsePublicKey())
    const account = new TestAccount()
    const payload = await expectOk(server, 'createAccount', account.createAccountBody())
    expect(payload.access.serverIdentity).toBe(result.body)
  })
})

describe('createAccount', () => {
  const server = makeServer()

  it('answers with a signed envelope echoing the nonce', async () => {
    const account = new TestAccount()
    const n = nonce()
    const result = await server.call(
      'createAccount',
      signed(account.createAccountPayload(n), account.first.current)
    )
    expect(result.headers['content-type']).toContain('application/json')
    const reply = JSON.parse(result.body) as {
      payload: { access: { nonce: string } }
      signature: string
    }
    expect(reply.payload.access.nonce).toBe(n)
    const text = result.body.slice('{"payload":'.length, result.body.lastIndexOf(',"signature"'))
    expect(
      await server.auth.verifier.verify(
        Buffer.from(text),
        reply.signature,
        await server.auth.responsePublicKey()
      )
    ).toBe(true)
  })

  const cases: [string, (a: TestAccount) => string, string, number][] = [
    ['an empty body', () => '', 'BA101', 400],
    ['a body that is not JSON', () => '{"payload":', 'BA101', 400],
    ['a JSON array', () => '[]', 'BA101', 400],
    ['no payload', () => '{"signature":"x"}', 'BA101', 400],
    [
      'a missing nonce',
      a => {
        const p = a.createAccountPayload()
        p.access = {}
        return signed(p, a.first.current)
      },
      'BA101',
      400,
    ],
    [
      'a malformed nonce',
      a => signed(a.createAccountPayload('0Axyz'), a.first.current),
      'BA101',
      400,
    ],
    [
      'a missing device',
      a => {
        const p = a.createAccountPayload() as {
          request: { authentication: Record<string, unknown> }
        }
        delete p.request.authentication.device
        return signed(p, a.first.current)
      },
      'BA101',
      400,
    ],
    [
      'a public key with a bad point prefix',
      a => {
        const p = a.createAccountPayload() as {
          request: { authentication: Record<string, unknown> }
        }
        p.request.authentication.publicKey = '1AAIA' + 'A'.repeat(43)
        return signed(p, a.first.current)
      },
      'BA101',
      400,
    ],
    [
      'a public key that is not on the curve',
      a => {
        const p = a.createAccountPayload() as {
          request: { authentication: Record<string, unknown> }
        }
        p.request.authentication.publicKey = offCurve
        return signed(p, a.first.current)
      },
      'BA101',
      400,
    ],
    ['no signature', a => `{"payload":${JSON.stringify(a.createAccountPayload())}}`, 'BA101', 400],
    [
      'a signature by another key',
      a => signed(a.createAccountPayload(), NodeSigningKey.generate()),
      'BA201',
      401,
    ],
    [
      'a payload changed after signing',
      a =>
        a
          .createAccountBody()
          .replace(/"device":"E(.)/, (_m, c: string) => `"device":"E${c === 'A' ? 'B' : 'A'}`),
      'BA201',
      401,
    ],
    [
      'an identity that does not derive from the keys',
      a => {
        const p = a.createAccountPayload() as {
          request: { authentication: Record<string, unknown> }
        }
        p.request.authentication.identity = hash('someone else')
        return signed(p, a.first.current)
      },
      'BA102',
      400,
    ],
    [
      'a device that does not derive from the keys',
      a => {
        const p = a.createAccountPayload() as {
          request: { authentication: Record<string, unknown> }
        }
        p.request.authentication.device = hash('another device')
        return signed(p, a.first.current)
      },
      'BA103',
      400,
    ],
    [
      'duplicate keys',
      a => a.createAccountBody().replace('{"payload":', '{"signature":"0I","payload":'),
      'BA101',
      400,
    ],
    [
      'a __proto__ key',
      a => a.createAccountBody().replace('{"payload":', '{"__proto__":{},"payload":'),
      'BA101',
      400,
    ],
    ['a body over the size limit', () => `{"payload":"${'x'.repeat(70000)}"}`, 'BA603', 413],
  ]

  it.each(cases)('rejects %s', async (_name, build, code, status) => {
    await expectRejected(server, 'createAccount', build(new TestAccount()), code, status)
  })

  it('rejects an existing identity (a replay) with 409', async () => {
    const account = await created(server)
    await expectRejected(server, 'createAccount', account.createAccountBody(), 'BA305', 409)
  })

  it('names the missing field', async () => {
    const a = new TestAccount()
    const p = a.createAccountPayload() as { request: { authentication: Record<string, unknown> } }
    delete p.request.authentication.recoveryHash
    const error = errorOf(await server.call('createAccount', signed(p, a.first.current)))
    expect(error.message).toContain('payload.request.authentication.recoveryHash')
  })

  it('verifies over the exact bytes received, even when re-serializing would reorder keys', async () => {
    const a = new TestAccount()
    const p = a.createAccountPayload() as { request: Record<string, unknown> }
    // JSON.parse moves integer-like keys first; the signature covers the order sent.
    const text = JSON.stringify(p).replace(
      '{"authentication"',
      '{"z":1,"10":"ten","authentication"'
    )
    expect(JSON.stringify(JSON.parse(text))).not.toBe(text)
    const body = `{"payload":${text},"signature":"${a.first.current.signSync(Buffer.from(text))}"}`
    expect((await server.call('createAccount', body)).status).toBe(200)
  })

  it('accepts a re-formatted message signed over its compact form', async () => {
    const a = new TestAccount()
    const p = a.createAccountPayload()
    const compact = JSON.stringify(p)
    const body = JSON.stringify(
      { payload: p, signature: a.first.current.signSync(Buffer.from(compact)) },
      null,
      2
    )
    expect((await server.call('createAccount', body)).status).toBe(200)
  })

  it('hides error context unless debug is on', async () => {
    const debug = makeServer({ debug: true })
    const a = new TestAccount()
    const body = signed(a.createAccountPayload(), NodeSigningKey.generate())
    expect(
      JSON.parse((await server.call('createAccount', body)).body).error.context
    ).toBeUndefined()
    const error = JSON.parse((await debug.call('createAccount', body)).body).error
    expect(error.code).toBe('BA201')
  })
})

describe('rotation-gated operations', () => {
  it('rotateDevice: rotates once; a replay, a wrong key and an unknown device are refused', async () => {
    const server = makeServer()
    const a = await created(server)
    const body = rotateBody(a.first)
    await expectRejected(
      server,
      'rotateDevice',
      rotateBody(a.first, {}, NodeSigningKey.generate()),
      'BA201',
      401
    )
    await expectOk(server, 'rotateDevice', body)
    a.first.advance()
    await expectRejected(server, 'rotateDevice', body, 'BA104', 401)
    // Revealing a key that is not the committed one:
    const stranger = new TestDevice()
    stranger.identity = a.identity
    stranger.device = a.first.device
    await expectRejected(server, 'rotateDevice', rotateBody(stranger), 'BA104', 401)
    const unknown = new TestDevice()
    unknown.identity = a.identity
    await expectRejected(server, 'rotateDevice', rotateBody(unknown), 'BA301', 401)
    const noIdentity = new TestDevice()
    noIdentity.identity = hash('nobody')
    await expectRejected(server, 'rotateDevice', rotateBody(noIdentity), 'BA301', 401)
  })

  it('deleteAccount: refuses a wrong rotation; deletes everything once', async () => {
    const server = makeServer()
    const a = await created(server)
    const stranger = new TestDevice()
    stranger.identity = a.identity
    stranger.device = a.first.device
    await expectRejected(server, 'deleteAccount', rotateBody(stranger), 'BA104', 401)
    const body = rotateBody(a.first)
    await expectOk(server, 'deleteAccount', body)
    expect(await server.store.accounts.hasIdentity(a.identity)).toBe(false)
    expect(await server.store.accounts.getRecoveryHash(a.identity)).toBeUndefined()
    await expectRejected(server, 'deleteAccount', body, 'BA301', 401)
  })

  it('changeRecoveryKey: requires a rotation and a well-formed recovery hash', async () => {
    const server = makeServer()
    const a = await created(server)
    await expectRejected(
      server,
      'changeRecoveryKey',
      rotateBody(a.first, { recoveryHash: 'not a hash' }),
      'BA101',
      400
    )
    const newRecovery = NodeSigningKey.generate()
    const body = rotateBody(a.first, { recoveryHash: hash(newRecovery.publicKeyText) })
    await expectOk(server, 'changeRecoveryKey', body)
    a.first.advance()
    expect(await server.store.accounts.getRecoveryHash(a.identity)).toBe(
      hash(newRecovery.publicKeyText)
    )
    await expectRejected(server, 'changeRecoveryKey', body, 'BA104', 401)
  })
})

describe('recoverAccount', () => {
  function recoverBody(
    a: TestAccount,
    device: TestDevice,
    signer: NodeSigningKey,
    recoveryKey = a.recovery
  ) {
    return signed(
      {
        access: { nonce: nonce() },
        request: {
          authentication: {
            device: device.device,
            identity: a.identity,
            publicKey: device.current.publicKeyText,
            recoveryHash: hash(NodeSigningKey.generate().publicKeyText),
            recoveryKey: recoveryKey.publicKeyText,
            rotationHash: device.rotationHash,
          },
        },
      },
      signer
    )
  }

  it('refuses a wrong recovery key, a wrong signer, a bad device and an unknown identity; then recovers once', async () => {
    const server = makeServer()
    const a = await created(server)
    const device = new TestDevice()
    const impostor = NodeSigningKey.generate()
    await expectRejected(
      server,
      'recoverAccount',
      recoverBody(a, device, impostor, impostor),
      'BA104',
      401
    )
    await expectRejected(server, 'recoverAccount', recoverBody(a, device, impostor), 'BA201', 401)
    const badDevice = new TestDevice()
    badDevice.device = hash('x')
    await expectRejected(
      server,
      'recoverAccount',
      recoverBody(a, badDevice, a.recovery),
      'BA103',
      400
    )
    const nobody = new TestAccount()
    await expectRejected(
      server,
      'recoverAccount',
      recoverBody(nobody, device, nobody.recovery),
      'BA301',
      401
    )
    const body = recoverBody(a, device, a.recovery)
    await expectOk(server, 'recoverAccount', body)
    expect(await server.store.accounts.getDeviceKey(a.identity, a.first.device)).toBeUndefined()
    expect(await server.store.accounts.getDeviceKey(a.identity, device.device)).toBeDefined()
    await expectRejected(server, 'recoverAccount', body, 'BA104', 401)
  })
})

describe('linkDevice and unlinkDevice', () => {
  function linkBody(a: TestAccount, container: Record<string, unknown>, signer = a.first.next) {
    return signed(
      {
        access: { nonce: nonce() },
        request: { authentication: a.first.rotating(), link: container },
      },
      signer
    )
  }

  it('refuses bad link containers without rotating the existing device', async () => {
    const server = makeServer()
    const a = await created(server)
    const other = new TestDevice()

    const forged = linkContainer(other, a.identity)
    ;(forged as { signature: string }).signature = NodeSigningKey.generate().signSync(
      Buffer.from('x')
    )
    await expectRejected(server, 'linkDevice', linkBody(a, forged), 'BA201', 401)

    await expectRejected(
      server,
      'linkDevice',
      linkBody(a, linkContainer(new TestDevice(), hash('other identity'))),
      'BA302',
      400
    )

    const wrongDevice = new TestDevice()
    wrongDevice.device = hash('not derived')
    await expectRejected(
      server,
      'linkDevice',
      linkBody(a, linkContainer(wrongDevice, a.identity)),
      'BA103',
      400
    )

    await expectRejected(
      server,
      'linkDevice',
      signed(
        { access: { nonce: nonce() }, request: { authentication: a.first.rotating() } },
        a.first.next
      ),
      'BA101',
      400
    )
    await expectRejected(
      server,
      'linkDevice',
      linkBody(a, linkContainer(new TestDevice(), a.identity), NodeSigningKey.generate()),
      'BA201',
      401
    )
  })

  it('links once; linking an existing device is a conflict', async () => {
    const server = makeServer()
    const a = await created(server)
    const other = new TestDevice()
    const container = linkContainer(other, a.identity)
    await expectOk(server, 'linkDevice', linkBody(a, container))
    a.first.advance()
    expect(await server.store.accounts.getDeviceKey(a.identity, other.device)).toEqual({
      publicKey: other.current.publicKeyText,
      rotationHash: other.rotationHash,
    })
    await expectRejected(server, 'linkDevice', linkBody(a, container), 'BA305', 409)
  })

  it('unlink refuses an unknown device and keeps the rotation unapplied', async () => {
    const server = makeServer()
    const a = await created(server)
    const unlink = (device: string) =>
      signed(
        {
          access: { nonce: nonce() },
          request: { authentication: a.first.rotating(), link: { device } },
        },
        a.first.next
      )
    await expectRejected(server, 'unlinkDevice', unlink(hash('nope')), 'BA301', 401)
    const other = new TestDevice()
    await expectOk(server, 'linkDevice', linkBody(a, linkContainer(other, a.identity)))
    a.first.advance()
    await expectOk(server, 'unlinkDevice', unlink(other.device))
    expect(await server.store.accounts.getDeviceKey(a.identity, other.device)).toBeUndefined()
  })
})

describe('sessions', () => {
  it('requestSession refuses unknown and malformed identities', async () => {
    const server = makeServer()
    await expectRejected(server, 'requestSession', sessionRequest(hash('nobody')), 'BA301', 401)
    await expectRejected(server, 'requestSession', sessionRequest('E123'), 'BA101', 400)
  })

  it('createSession consumes the challenge once, and only for a valid answer', async () => {
    const server = makeServer()
    const a = await created(server)
    const c = await challenge(server, a.identity)
    const key = NodeSigningKey.generate()
    const next = NodeSigningKey.generate()
    // A bad signature does not burn the challenge.
    await expectRejected(
      server,
      'createSession',
      createSessionBody(a.first, c, key, next, NodeSigningKey.generate()),
      'BA201',
      401
    )
    const body = createSessionBody(a.first, c, key, next)
    await expectOk(server, 'createSession', body)
    await expectRejected(server, 'createSession', body, 'BA303', 401)
    await expectRejected(
      server,
      'createSession',
      createSessionBody(a.first, c, key, next),
      'BA303',
      401
    )
  })

  it("refuses an unknown, an expired, and another identity's challenge", async () => {
    const server = makeServer()
    const a = await created(server)
    const b = await created(server)
    const key = NodeSigningKey.generate()
    await expectRejected(
      server,
      'createSession',
      createSessionBody(a.first, nonce(), key, key),
      'BA303',
      401
    )
    const forB = await challenge(server, b.identity)
    await expectRejected(
      server,
      'createSession',
      createSessionBody(a.first, forB, key, key),
      'BA301',
      401
    )
    const c = await challenge(server, a.identity)
    server.clock.advance(61)
    await expectRejected(
      server,
      'createSession',
      createSessionBody(a.first, c, key, key),
      'BA303',
      401
    )
  })

  it('refuses an access key that is not a P-256 point', async () => {
    const server = makeServer()
    const a = await created(server)
    const c = await challenge(server, a.identity)
    const body = signed(
      {
        access: { nonce: nonce() },
        request: {
          access: { publicKey: offCurve, rotationHash: hash('x') },
          authentication: { device: a.first.device, nonce: c },
        },
      },
      a.first.current
    )
    await expectRejected(server, 'createSession', body, 'BA101', 400)
  })
})

describe('refreshSession', () => {
  async function setup() {
    const server = makeServer()
    const a = await created(server)
    const session = await openSession(server, a.first)
    return { server, a, session }
  }

  it('refreshes once; a replay is refused', async () => {
    const { server, session } = await setup()
    const { body } = refreshBody(session)
    const payload = await expectOk(server, 'refreshSession', body)
    const token = decodeToken((payload.response as { access: { token: string } }).access.token)
    expect(token.publicKey).toBe(session.next.publicKeyText)
    await expectRejected(server, 'refreshSession', body, 'BA304', 401)
    await expectRejected(server, 'refreshSession', refreshBody(session).body, 'BA304', 401)
  })

  it('refuses a signature by another key, a key that is not the committed one, and tampered tokens', async () => {
    const { server, session } = await setup()
    await expectRejected(
      server,
      'refreshSession',
      refreshBody(session, { signer: session.key }).body,
      'BA201',
      401
    )
    // Revealing the current key instead of the committed next one:
    const wrong = { ...session, next: session.key }
    await expectRejected(server, 'refreshSession', refreshBody(wrong).body, 'BA104', 401)
    const t = session.token
    const i = Math.floor((88 + t.length) / 2)
    const flipped = t.slice(0, i) + (t[i] === 'A' ? 'B' : 'A') + t.slice(i + 1)
    const tampered = refreshBody(session, { token: flipped }).body
    const result = await server.call('refreshSession', tampered)
    expect(['BA402', 'BA201']).toContain(errorOf(result).code)
    expect(result.status).toBe(401)
    await expectRejected(
      server,
      'refreshSession',
      refreshBody(session, { token: 'garbage' }).body,
      'BA402',
      401
    )
  })

  it('refuses tokens of an unknown server key', async () => {
    const { server, a } = await setup()
    const foreign = makeServer()
    await expectOk(foreign, 'createAccount', a.createAccountBody())
    const session = await openSession(foreign, a.first)
    await expectRejected(server, 'refreshSession', refreshBody(session).body, 'BA202', 401)
  })

  it('refuses an expired refresh window and a revoked device', async () => {
    const { server, a, session } = await setup()
    server.clock.advance(12 * 3600 + 1)
    await expectRejected(server, 'refreshSession', refreshBody(session).body, 'BA401', 401)
    server.clock.advance(-(12 * 3600 + 1))
    await expectOk(server, 'deleteAccount', rotateBody(a.first))
    await expectRejected(server, 'refreshSession', refreshBody(session).body, 'BA301', 401)
  })
})

describe('the verified-token cache', () => {
  it("checks a token's signature once while it stays cached; least recently used out first", async () => {
    const verifier = new NodeP256Verifier()
    const server = makeServer({ tokenCacheSize: 2, crypto: { verifier } })
    const a = await created(server)
    const [s1, s2, s3] = [
      await openSession(server, a.first),
      await openSession(server, a.first),
      await openSession(server, a.first),
    ] as [Session, Session, Session]
    const verify = jest.spyOn(verifier, 'verify')
    // A token is checked with the server's access key; a request with its session's own key.
    const sessionKeys = new Set([s1, s2, s3].map(s => s.key.publicKeyText))
    const tokenChecks = (): number =>
      verify.mock.calls.filter(([, , publicKey]) => !sessionKeys.has(publicKey)).length
    const access = async (s: Session): Promise<void> => {
      const result = await server.access(accessBody(s.token, s.key, { at: server.clock.ms }))
      expect(result.status).toBe(200)
    }
    await access(s1)
    await access(s2)
    expect(tokenChecks()).toBe(2)
    await access(s1) // cached
    expect(tokenChecks()).toBe(2)
    await access(s3) // evicts s2, the least recently used
    expect(tokenChecks()).toBe(3)
    await access(s1)
    expect(tokenChecks()).toBe(3)
    await access(s2) // checked again
    expect(tokenChecks()).toBe(4)
  })
})

describe('access requests', () => {
  async function setup() {
    const server = makeServer()
    const a = await created(server)
    const session = await openSession(server, a.first)
    return { server, a, session }
  }

  it('accepts a valid request and answers with a signed envelope echoing its nonce', async () => {
    const { server, session } = await setup()
    const n = nonce()
    const result = await server.access(
      accessBody(session.token, session.key, { nonce: n, at: server.clock.ms })
    )
    const payload = payloadOf<{ access: { nonce: string }; response: unknown }>(result)
    expect(payload.access.nonce).toBe(n)
    expect(payload.response).toEqual({ wasFoo: 'bar', wasBar: 'foo' })
  })

  it('refuses a replay, but a rejected request does not burn its nonce', async () => {
    const { server, session } = await setup()
    const n = nonce()
    await expectRejected(
      server,
      'access',
      accessBody(session.token, session.key, { nonce: n, at: server.clock.ms - 31_000 }),
      'BA501',
      422
    )
    const body = accessBody(session.token, session.key, { nonce: n, at: server.clock.ms })
    expect((await server.access(body)).status).toBe(200)
    await expectRejected(server, 'access', body, 'BA304', 401)
    await expectRejected(
      server,
      'access',
      accessBody(session.token, session.key, { nonce: n, at: server.clock.ms }),
      'BA304',
      401
    )
  })

  it('enforces the timestamp window with a small clock-skew tolerance', async () => {
    const { server, session } = await setup()
    const now = server.clock.ms
    await expectRejected(
      server,
      'access',
      accessBody(session.token, session.key, { at: now - 30_001 }),
      'BA501',
      422
    )
    expect(
      (await server.access(accessBody(session.token, session.key, { at: now - 30_000 }))).status
    ).toBe(200)
    expect(
      (await server.access(accessBody(session.token, session.key, { at: now + 5_000 }))).status
    ).toBe(200)
    await expectRejected(
      server,
      'access',
      accessBody(session.token, session.key, { at: now + 5_001 }),
      'BA502',
      422
    )
  })

  it('refuses unparseable timestamps and accepts RFC 3339 variants', async () => {
    const { server, session } = await setup()
    for (const timestamp of [
      'not-a-timestamp',
      '',
      '2025-13-01T00:00:00Z',
      '2025-02-30T00:00:00Z',
      '1e3',
    ]) {
      await expectRejected(
        server,
        'access',
        accessBody(session.token, session.key, { timestamp }),
        'BA101',
        400
      )
    }
    const iso = formatTimestamp(server.clock.ms)
    const nano = iso.replace('Z', '000000Z')
    const offset = new Date(server.clock.ms + 2 * 3600_000).toISOString().replace('Z', '+02:00')
    for (const timestamp of [nano, offset]) {
      expect(
        (await server.access(accessBody(session.token, session.key, { timestamp }))).status
      ).toBe(200)
    }
  })

  it('refuses a bad request signature, an expired token and a token from the future', async () => {
    const { server, session } = await setup()
    await expectRejected(
      server,
      'access',
      accessBody(session.token, NodeSigningKey.generate(), { at: server.clock.ms }),
      'BA201',
      401
    )
    server.clock.advance(15 * 60 + 1)
    await expectRejected(
      server,
      'access',
      accessBody(session.token, session.key, { at: server.clock.ms }),
      'BA401',
      401
    )
    server.clock.advance(-(15 * 60 + 1) - 6)
    await expectRejected(
      server,
      'access',
      accessBody(session.token, session.key, { at: server.clock.ms }),
      'BA403',
      401
    )
  })

  it('refuses tokens of unknown keys and a response-key signature presented as a token', async () => {
    const { server, session } = await setup()
    const foreign = makeServer()
    const b = new TestAccount()
    await expectOk(foreign, 'createAccount', b.createAccountBody())
    const other = await openSession(foreign, b.first)
    await expectRejected(
      server,
      'access',
      accessBody(other.token, other.key, { at: server.clock.ms }),
      'BA202',
      401
    )

    // Re-sign the token's JSON with the response key but claim the access key's identity.
    const decoded = decodeToken(session.token)
    const keys = await server.auth.keys()
    const responseSigned =
      (await keys.responseKey.sign(Buffer.from(decoded.json))) + session.token.slice(88)
    await expectRejected(
      server,
      'access',
      accessBody(responseSigned, session.key, { at: server.clock.ms }),
      'BA201',
      401
    )
  })

  it('refuses a missing token, a missing request and a malformed nonce', async () => {
    const { server, session } = await setup()
    const body = (access: Record<string, unknown>, withRequest = true) =>
      signed(withRequest ? { access, request: {} } : { access }, session.key)
    const timestamp = formatTimestamp(server.clock.ms)
    // No token at all: credentials required.
    await expectRejected(server, 'access', body({ nonce: nonce(), timestamp }), 'BA404', 401)
    await expectRejected(
      server,
      'access',
      body({ nonce: nonce(), timestamp, token: session.token }, false),
      'BA101',
      400
    )
    await expectRejected(
      server,
      'access',
      body({ nonce: 'abc', timestamp, token: session.token }),
      'BA101',
      400
    )
  })
})
