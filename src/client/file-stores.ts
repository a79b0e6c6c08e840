/**
 * Client state in files, for Node (a CLI, a daemon, a test bot): one directory, files 0600,
 * each written atomically (write a temporary file, fsync, rename). With a passphrase, private
 * keys are sealed: scrypt derives an AES-256-GCM key from the passphrase and a per-file salt.
 *
 * Node-only (node:fs, node:crypto): the `better-auth-protocol/client` entry does not import it;
 * it is exported from the package root.
 */
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  randomBytes,
  scrypt as scryptCallback,
  type KeyObject,
} from 'node:crypto'
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { NodeSigningKey } from '../crypto/node'
import type { Hasher } from '../crypto/types'
import type { ClientStores } from './client'
import {
  ClientStoreError,
  LocalLock,
  PersistentRotatingKeyStore,
  type ClientValueStore,
} from './stores'
import { Blake3Hasher } from './webcrypto'

const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const

function scrypt(passphrase: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCallback(passphrase, salt, 32, SCRYPT, (error, key) =>
      error === null ? resolve(key) : reject(error)
    )
  )
}

function isMissing(error: unknown): boolean {
  return (error as { code?: string }).code === 'ENOENT'
}

/** Writes `text` to `path` atomically, readable by the owner only. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`
  const handle = await open(temporary, 'wx', 0o600)
  try {
    await handle.writeFile(text)
    await handle.sync()
  } finally {
    await handle.close()
  }
  try {
    await rename(temporary, path)
  } catch (error) {
    await rm(temporary, { force: true })
    throw error
  }
}

class FileValueStore implements ClientValueStore {
  constructor(
    private readonly path: string,
    private readonly ready: () => Promise<void>
  ) {}

  async get(): Promise<string | undefined> {
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (error) {
      if (isMissing(error)) return undefined
      throw error
    }
    let value: unknown
    try {
      value = (JSON.parse(text) as { value?: unknown }).value
    } catch {
      value = undefined
    }
    if (typeof value !== 'string') {
      throw new ClientStoreError(`client store ${this.path} is corrupted`)
    }
    return value
  }

  async store(value: string): Promise<void> {
    await this.ready()
    await writeAtomically(this.path, JSON.stringify({ value }))
  }

  async clear(): Promise<void> {
    await rm(this.path, { force: true })
  }
}

/** A private key as saved: PKCS#8 PEM, or sealed (AES-256-GCM, base64url fields). */
type SavedFileKey = { pem: string } | { sealed: { iv: string; data: string; tag: string } }

interface ChainFile {
  version: 1
  /** scrypt salt (base64url), when keys are sealed. */
  salt?: string
  current: unknown
  upcoming: unknown
  future?: unknown
  beyond?: unknown
}

/** Derives and caches the sealing key of each salt. */
class Sealer {
  private readonly keys = new Map<string, Promise<Buffer>>()
  constructor(private readonly passphrase: string) {}

  private key(salt: string): Promise<Buffer> {
    let key = this.keys.get(salt)
    if (key === undefined) {
      key = scrypt(this.passphrase, Buffer.from(salt, 'base64url'))
      this.keys.set(salt, key)
    }
    return key
  }

  async seal(salt: string, plain: string): Promise<SavedFileKey> {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', await this.key(salt), iv)
    const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()])
    return {
      sealed: {
        iv: iv.toString('base64url'),
        data: data.toString('base64url'),
        tag: cipher.getAuthTag().toString('base64url'),
      },
    }
  }

  async open(salt: string, sealed: { iv: string; data: string; tag: string }): Promise<string> {
    const decipher = createDecipheriv(
      'aes-256-gcm',
      await this.key(salt),
      Buffer.from(sealed.iv, 'base64url')
    )
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64url'))
    try {
      return Buffer.concat([
        decipher.update(Buffer.from(sealed.data, 'base64url')),
        decipher.final(),
      ]).toString('utf8')
    } catch {
      throw new Error('wrong passphrase, or the sealed key was altered')
    }
  }
}

/** A key chain in one JSON file; keys are node:crypto keys (NodeSigningKey). */
export class FileRotatingKeyStore extends PersistentRotatingKeyStore<SavedFileKey> {
  constructor(
    path: string,
    options: { hasher?: Hasher; passphrase?: string; ready?: () => Promise<void> } = {}
  ) {
    const sealer = options.passphrase === undefined ? undefined : new Sealer(options.passphrase)
    let salt: string | undefined
    super(
      {
        location: path,
        async load() {
          let text: string
          try {
            text = await readFile(path, 'utf8')
          } catch (error) {
            if (isMissing(error)) return undefined
            throw error
          }
          let file: ChainFile
          try {
            file = JSON.parse(text) as ChainFile
          } catch {
            throw new ClientStoreError(`client store ${path} is corrupted: not JSON`)
          }
          if (typeof file !== 'object' || file === null || file.version !== 1) {
            throw new ClientStoreError(`client store ${path} is corrupted: unknown format`)
          }
          salt = file.salt
          return {
            current: file.current,
            upcoming: file.upcoming,
            future: file.future,
            beyond: file.beyond,
          }
        },
        async save(chain) {
          await options.ready?.()
          if (sealer !== undefined) salt ??= randomBytes(16).toString('base64url')
          const file: ChainFile = { version: 1, ...(sealer ? { salt } : {}), ...chain }
          await writeAtomically(path, `${JSON.stringify(file, null, 2)}\n`)
        },
        async generate() {
          const signingKey = NodeSigningKey.generate()
          const pem = signingKey.toPem()
          if (sealer === undefined) return { signingKey, saved: { pem } }
          salt ??= randomBytes(16).toString('base64url')
          return { signingKey, saved: await sealer.seal(salt, pem) }
        },
        async restore(saved, publicKey) {
          let pem: string
          if ('sealed' in saved) {
            if (sealer === undefined) throw new Error('the key is sealed: a passphrase is needed')
            if (salt === undefined) throw new Error('the sealing salt is missing')
            pem = await sealer.open(salt, saved.sealed)
          } else if (typeof saved.pem === 'string') {
            pem = saved.pem
          } else {
            throw new Error('not a saved key')
          }
          const key = new NodeSigningKey(createPrivateKey(pem) as KeyObject)
          if (key.publicKeyText !== publicKey)
            throw new Error('the key does not match its public key')
          return key
        },
      },
      options
    )
  }
}

export interface FileStoresOptions {
  hasher?: Hasher
  /** Seals the private keys with this passphrase (scrypt + AES-256-GCM). */
  passphrase?: string
}

/**
 * The client's state in `dir` (created 0700 if missing): `identity.json`, `device.json`,
 * `access-token.json`, `authentication-keys.json`, `access-keys.json`, all 0600. The lock spans
 * this process: do not share one directory between processes running at the same time.
 */
export function fileStores(dir: string, options: FileStoresOptions = {}): Required<ClientStores> {
  let made: Promise<void> | undefined
  const ready = (): Promise<void> => {
    made ??= mkdir(dir, { recursive: true, mode: 0o700 }).then(() => undefined)
    made.catch(() => (made = undefined))
    return made
  }
  const hasher = options.hasher ?? new Blake3Hasher()
  const chain = (file: string) =>
    new FileRotatingKeyStore(join(dir, file), { hasher, passphrase: options.passphrase, ready })
  return {
    identity: new FileValueStore(join(dir, 'identity.json'), ready),
    device: new FileValueStore(join(dir, 'device.json'), ready),
    accessToken: new FileValueStore(join(dir, 'access-token.json'), ready),
    authenticationKeys: chain('authentication-keys.json'),
    accessKeys: chain('access-keys.json'),
    lock: new LocalLock(),
  }
}
