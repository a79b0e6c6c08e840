/** The client-store conformance suite on the memory stores and on fileStores (plain and sealed). */
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BetterAuthClient, NodeSigningKey, fileStores } from '../src'
import {
  LocalLock,
  MemoryRotatingKeyStore,
  MemoryValueStore,
  type ClientStores,
} from '../src/client'
import { clientStoreCases, type ClientStoreFixture } from '../testing'
import { InProcessNetwork, hash, makeServer } from './helpers'

async function memoryFixture(): Promise<ClientStoreFixture> {
  const stores = {
    identity: new MemoryValueStore(),
    device: new MemoryValueStore(),
    accessToken: new MemoryValueStore(),
    authenticationKeys: new MemoryRotatingKeyStore(),
    accessKeys: new MemoryRotatingKeyStore(),
    lock: new LocalLock(),
  }
  return { stores, reopen: () => stores }
}

const dirs: string[] = []
afterAll(() => Promise.all(dirs.map(dir => rm(dir, { recursive: true, force: true }))))

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bap-client-'))
  dirs.push(dir)
  return join(dir, 'state')
}

function fileFixture(passphrase?: string) {
  return async (): Promise<ClientStoreFixture> => {
    const dir = await tempDir()
    const open = () => fileStores(dir, { passphrase })
    return {
      stores: open(),
      reopen: open,
      async corrupt() {
        await writeFile(join(dir, 'authentication-keys.json'), '{"version":1,"current":')
      },
    }
  }
}

describe.each([
  ['memory stores', memoryFixture],
  ['fileStores', fileFixture()],
  ['fileStores with a passphrase', fileFixture('correct horse battery staple')],
])('client store conformance: %s', (_name, factory) => {
  for (const c of clientStoreCases(factory)) it(c.name, c.run)
})

describe('fileStores', () => {
  it('writes owner-only files atomically, leaving no temporary file', async () => {
    const dir = await tempDir()
    const stores = fileStores(dir)
    await stores.identity.store('x')
    await stores.authenticationKeys.initialize()
    await stores.authenticationKeys.next()
    expect((await stat(dir)).mode & 0o777).toBe(0o700)
    const files = (await readdir(dir)).sort()
    expect(files).toEqual(['authentication-keys.json', 'identity.json'])
    for (const file of files) expect((await stat(join(dir, file))).mode & 0o777).toBe(0o600)
  })

  it('seals private keys: no PEM on disk, and the wrong passphrase cannot read them', async () => {
    const dir = await tempDir()
    await fileStores(dir, { passphrase: 'right' }).authenticationKeys.initialize()
    const text = await readFile(join(dir, 'authentication-keys.json'), 'utf8')
    expect(text).not.toMatch(/PRIVATE KEY/)
    expect(JSON.parse(text)).toMatchObject({ version: 1, salt: expect.any(String) })
    await expect(
      fileStores(dir, { passphrase: 'wrong' }).authenticationKeys.signer()
    ).rejects.toThrow(/corrupted.*wrong passphrase/)
    await expect(fileStores(dir).authenticationKeys.signer()).rejects.toThrow(
      /passphrase is needed/
    )
    const signer = await fileStores(dir, { passphrase: 'right' }).authenticationKeys.signer()
    expect(await signer.publicKey()).toMatch(/^1AAI/)
  })

  it('reports a corrupted value file clearly', async () => {
    const dir = await tempDir()
    const stores = fileStores(dir)
    await stores.identity.store('x')
    await writeFile(join(dir, 'identity.json'), 'garbage')
    await expect(stores.identity.get()).rejects.toThrow(/identity.json is corrupted/)
  })

  it('keeps an account across runs: a new client on the same directory signs in and calls', async () => {
    const server = makeServer()
    const dir = await tempDir()
    const make = (stores: ClientStores) =>
      new BetterAuthClient({ network: new InProcessNetwork(server), now: server.clock.now, stores })
    const first = make(fileStores(dir, { passphrase: 'p' }))
    await first.createAccount(hash(NodeSigningKey.generate().publicKeyText))
    await first.rotateDevice()
    await first.createSession()
    const again = make(fileStores(dir, { passphrase: 'p' }))
    expect(await again.identity()).toBe(await first.identity())
    expect(await again.accessRequest('/foo/bar', { foo: 1, bar: 2 })).toEqual({
      wasFoo: 1,
      wasBar: 2,
    })
    await again.refreshSession()
    await again.rotateDevice()
    await again.createSession()
    expect(await again.accessRequest('/foo/bar', { foo: 'a', bar: 'b' })).toEqual({
      wasFoo: 'a',
      wasBar: 'b',
    })
  })
})
