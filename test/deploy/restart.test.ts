/**
 * Restart: the example server (`make server`) keeps accounts, sessions and keys in its SQLite
 * file, so after a restart (a clean stop, and a crash) sessions still refresh and accounts
 * still authenticate.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Blake3Hasher, NodeSigningKey } from '../../src'
import { SwitchNetwork, clientOn, startServer, type ServerProcess } from './processes'

const PORT = 18210
const dir = mkdtempSync(join(tmpdir(), 'better-auth-restart-'))
const env = { BETTER_AUTH_DATABASE: `sqlite:${join(dir, 'auth.db')}` }
let server: ServerProcess | undefined

afterAll(async () => {
  await server?.stop('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

const keyOf = async (url: string) => (await fetch(`${url}/key/response`, { method: 'POST' })).text()

it('sessions refresh and accounts authenticate across restarts of the server process', async () => {
  server = await startServer('examples/server-listen.ts', PORT, env)
  const responseKey = await keyOf(server.url)
  const network = new SwitchNetwork(server.url)
  const client = clientOn(network)
  const recovery = NodeSigningKey.generate()
  await client.createAccount(new Blake3Hasher().sum(recovery.publicKeyText))
  await client.createSession()
  await client.rotateDevice()
  expect(await client.accessRequest('/foo/bar', { foo: 1, bar: 2 })).toEqual({
    wasFoo: 1,
    wasBar: 2,
  })

  // A clean stop, then a crash: both keep what was committed.
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    await server.stop(signal)
    server = await startServer('examples/server-listen.ts', PORT, env)
    expect(await keyOf(server.url)).toBe(responseKey)
    // The old token was signed by the same (persisted) access key: the session refreshes.
    await client.refreshSession()
    expect(await client.accessRequest('/foo/bar', { foo: 'a', bar: signal })).toEqual({
      wasFoo: 'a',
      wasBar: signal,
    })
    // The account authenticates: a new session, and a rotation of its device.
    await client.createSession()
    await client.rotateDevice()
  }
  // The recovery key still recovers the account on the restarted server.
  const recovered = clientOn(network)
  await recovered.recoverAccount(
    await client.identity(),
    recovery,
    new Blake3Hasher().sum(NodeSigningKey.generate().publicKeyText)
  )
  await recovered.createSession()
  await expect(client.createSession()).rejects.toMatchObject({ code: 'BA301' })
})
