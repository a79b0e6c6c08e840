/** Server keys: loading (PEM, JWK, files, environment), several access keys, rotation. */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NodeSigningKey, ServerKeys, decodeToken } from '../src'
import { NobleSigningKey } from '../src/noble'
import {
  accessBody,
  createdAccount,
  errorOf,
  makeServer,
  openSession,
  type TestServer,
} from './helpers'

describe('ServerKeys.load', () => {
  const response = NodeSigningKey.generate()
  const access = NodeSigningKey.generate()

  it('takes PEM text, JWK objects and JWK text', async () => {
    const fromPem = await ServerKeys.load({
      response: response.toPem(),
      access: access.toJwk(),
      env: false,
    })
    expect(fromPem.responseIdentity).toBe(response.publicKeyText)
    expect(fromPem.accessIdentity).toBe(access.publicKeyText)
    const fromJwkText = await ServerKeys.load({
      response: JSON.stringify(response.toJwk()),
      env: false,
    })
    expect(fromJwkText.responseIdentity).toBe(response.publicKeyText)
  })

  it('reads the environment: inline values and _FILE paths', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'better-auth-keys-'))
    const file = join(dir, 'access.pem')
    writeFileSync(file, access.toPem())
    const keys = await ServerKeys.load({
      env: { BETTER_AUTH_RESPONSE_KEY: response.toPem(), BETTER_AUTH_ACCESS_KEY_FILE: file },
    })
    expect(keys.responseIdentity).toBe(response.publicKeyText)
    expect(keys.accessIdentity).toBe(access.publicKeyText)
  })

  it('generates distinct keys when none are given', async () => {
    const keys = await ServerKeys.load({ env: false })
    expect(keys.responseIdentity).not.toBe(keys.accessIdentity)
    expect(keys.isTrustedAccessKey(keys.accessIdentity)).toBe(true)
    expect(keys.isTrustedAccessKey(keys.responseIdentity)).toBe(false)
  })

  it('accepts any SigningKey implementation (e.g. an HSM-backed one)', async () => {
    const noble = NobleSigningKey.generate()
    const keys = await ServerKeys.load({ response: noble, env: false })
    expect(keys.responseIdentity).toBe(noble.publicKeyText)
  })

  it('refuses keys that are not P-256 private keys, and malformed verification keys', async () => {
    await expect(ServerKeys.load({ response: 'not a key', env: false })).rejects.toThrow()
    await expect(
      ServerKeys.load({ accessVerificationKeys: ['1AAIbogus'], env: false })
    ).rejects.toThrow(/not a qualified public key/)
  })
})

async function sessionToken(server: TestServer) {
  return openSession(server, (await createdAccount(server)).first)
}

describe('access key rotation', () => {
  it('new tokens use the new key; old tokens verify until the old key is retired', async () => {
    const server = makeServer()
    const keys = await server.auth.keys()
    const old = await sessionToken(server)
    const oldIdentity = keys.accessIdentity

    await keys.rotateAccessKey(NodeSigningKey.generate())
    const fresh = await sessionToken(server)
    expect(decodeToken(fresh.token).serverIdentity).toBe(keys.accessIdentity)
    expect(decodeToken(old.token).serverIdentity).toBe(oldIdentity)
    expect(keys.accessVerificationKeys()).toEqual(
      expect.arrayContaining([oldIdentity, keys.accessIdentity])
    )

    const at = server.clock.ms
    expect((await server.access(accessBody(old.token, old.key, { at }))).status).toBe(200)
    keys.distrustAccessKey(oldIdentity)
    const refused = await server.access(accessBody(old.token, old.key, { at }))
    expect([refused.status, errorOf(refused).code]).toEqual([401, 'BA202'])
    expect((await server.access(accessBody(fresh.token, fresh.key, { at }))).status).toBe(200)
    // The current key cannot be retired.
    keys.distrustAccessKey(keys.accessIdentity)
    expect(keys.isTrustedAccessKey(keys.accessIdentity)).toBe(true)
  })

  it('trusts extra verification keys given at start (e.g. a sibling auth server)', async () => {
    const issuer = makeServer()
    const issued = await sessionToken(issuer)
    const issuerKey = (await issuer.auth.keys()).accessIdentity
    const verifier = makeServer({ keys: { env: false, accessVerificationKeys: [issuerKey] } })
    const at = verifier.clock.ms
    expect((await verifier.access(accessBody(issued.token, issued.key, { at }))).status).toBe(200)
  })
})
