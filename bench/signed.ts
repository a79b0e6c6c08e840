/**
 * What bench/instructions.ts and bench/forms.ts share: a target's environment (its keys, a
 * one-hour access window for requests signed ahead), sessions whose tokens it accepts, and
 * protected requests of either form as raw HTTP/1.1 bytes.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { createBetterAuth, formatTimestamp, MemoryStore, NodeSigningKey } from '../src'
import { compiledChild } from './compile'
import { headerFormRequest } from './header-form'
import { httpRequest, rawRequest } from './load'
import { accessBody, hash, type Session } from './protocol'
import { PROTECTED_PATH } from './targets/common'

export type Form = 'classic' | 'headers'

/** The environment of a target: fresh server keys, a long window, no metrics twin. */
export function targetEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    BETTER_AUTH_RESPONSE_KEY: NodeSigningKey.generate().toPem(),
    BETTER_AUTH_ACCESS_KEY: NodeSigningKey.generate().toPem(),
    BENCH_ACCESS_WINDOW: '3600',
    BENCH_METRICS_TWIN: '0',
    NODE_ENV: 'production',
    UV_THREADPOOL_SIZE: '1',
  }
}

/** `count` sessions whose tokens a target started with `env` accepts (minted with its key). */
export async function sessionsFor(env: NodeJS.ProcessEnv, count: number): Promise<Session[]> {
  const minter = createBetterAuth({ store: new MemoryStore(), keys: { env }, rateLimit: false })
  await minter.ready()
  const out: Session[] = []
  for (let i = 0; i < count; i++) {
    const key = NodeSigningKey.generate()
    const now = Date.now()
    const token = await minter.issueToken({
      identity: hash(`identity ${i}`),
      device: hash(`device ${i}`),
      publicKey: key.publicKeyText,
      rotationHash: hash(`rotation ${i}`),
      issuedAt: formatTimestamp(now),
      expiry: formatTimestamp(now + 3_600_000),
      refreshExpiry: formatTimestamp(now + 7_200_000),
      attributes: { permissionsByRole: { admin: ['read', 'write'] } },
    })
    out.push({ token, key, next: key })
  }
  await minter.close()
  return out
}

/** `n` protected requests of `form` to the target at `url`, signed now, round-robin. */
export async function protectedRequests(
  url: string,
  form: Form,
  sessions: Session[],
  n: number
): Promise<Buffer[]> {
  const host = new URL(url).host
  const out = new Array<Buffer>(n)
  for (let i = 0; i < n; i++) {
    const s = sessions[i % sessions.length] as Session
    if (form === 'classic') out[i] = httpRequest(host, PROTECTED_PATH, accessBody(s))
    else {
      const r = await headerFormRequest(url + PROTECTED_PATH, s.token, s.key)
      out[i] = rawRequest(host, r.method, PROTECTED_PATH, r.headers, r.body)
    }
  }
  return out
}

/**
 * Starts `target` (bench/child.ts, compiled) on a free port with `env`, under `execPath` with
 * `execArgv` when given (valgrind and its options, or node flags), and waits until it listens.
 */
export async function startTarget(
  target: string,
  env: NodeJS.ProcessEnv,
  options: { execPath?: string; execArgv?: string[] } = {}
): Promise<{ child: ChildProcess; url: string }> {
  const child = fork(compiledChild(), [target, '0'], {
    ...(options.execPath === undefined ? {} : { execPath: options.execPath }),
    execArgv: options.execArgv ?? [],
    env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', code => reject(new Error(`${target} exited (${code}) before it was ready`)))
    child.once('message', (m: { port: number }) => resolve(m.port))
  })
  return { child, url: `http://127.0.0.1:${port}` }
}
