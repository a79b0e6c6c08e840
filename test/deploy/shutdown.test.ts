/**
 * SIGTERM ends a busy server: a real process (`make server`: examples/server-listen.ts, and the CLI's
 * `serve`) under continuous keep-alive load exits 0 within its shutdown deadline; every request
 * answered 200 got a complete reply and its account is in the database; requests after the
 * signal are refused or answered with `Connection: close`, never left hanging. A client holding
 * a request open (a slow upload) does not keep the process alive past the deadline.
 */
import { Agent, request as httpRequest } from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SqliteStore } from '../../src/stores/sqlite'
import { TestAccount, until } from '../helpers'
import { startServer, type ServerProcess } from './processes'

const DEADLINE_MS = 2000
const dir = mkdtempSync(join(tmpdir(), 'better-auth-shutdown-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

interface Outcome {
  identity: string
  status?: number
  complete?: boolean
  connection?: string
  error?: string
  afterSignal: boolean
}

/** POSTs /account/create; settles with what happened (never rejects), within `timeoutMs`. */
function createAccount(url: string, agent: Agent, signalled: () => boolean): Promise<Outcome> {
  const account = new TestAccount()
  const body = account.createAccountBody()
  const afterSignal = signalled()
  const { hostname, port } = new URL(url)
  return new Promise(resolve => {
    const req = httpRequest(
      {
        host: hostname,
        port,
        method: 'POST',
        path: '/account/create',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        timeout: 5000,
      },
      res => {
        let text = ''
        res.on('data', chunk => (text += String(chunk)))
        res.on('end', () => {
          let complete = false
          try {
            complete = typeof (JSON.parse(text) as { payload?: unknown }).payload === 'object'
          } catch {
            complete = false
          }
          resolve({
            identity: account.identity,
            status: res.statusCode,
            complete,
            connection: res.headers.connection,
            afterSignal,
          })
        })
        res.on('error', error =>
          resolve({ identity: account.identity, error: String(error), afterSignal })
        )
      }
    )
    req.on('timeout', () => req.destroy(new Error('hung')))
    req.on('error', (error: NodeJS.ErrnoException) =>
      resolve({ identity: account.identity, error: error.code ?? error.message, afterSignal })
    )
    req.end(body)
  })
}

/** Waits for the exit; resolves with its code and how long it took from `since`. */
function exitOf(server: ServerProcess, since: () => number) {
  return new Promise<{ code: number | null; signal: string | null; ms: number }>(resolve => {
    const done = () =>
      resolve({
        code: server.child.exitCode,
        signal: server.child.signalCode,
        ms: Date.now() - since(),
      })
    if (server.child.exitCode !== null || server.child.signalCode !== null) done()
    else server.child.once('exit', done)
  })
}

describe.each([
  ['make server (examples/server-listen.ts)', 'examples/server-listen.ts', [] as string[], 18260],
  ['better-auth-protocol serve', 'cli/index.ts', ['serve'], 18261],
])('%s', (_name, script, args, port) => {
  it('SIGTERM under keep-alive load: exits 0 by the deadline, every 200 is complete and stored', async () => {
    const path = join(dir, `load-${port}.db`)
    const server = await startServer(
      script,
      port,
      {
        BETTER_AUTH_DATABASE: `sqlite:${path}`,
        BETTER_AUTH_SHUTDOWN_TIMEOUT_MS: String(DEADLINE_MS),
      },
      args
    )
    const agent = new Agent({ keepAlive: true, maxSockets: 4 })
    let signalledAt = 0
    const signalled = () => signalledAt !== 0
    const exited = exitOf(server, () => signalledAt)
    const outcomes: Outcome[] = []
    // Four clients, each sending one request after another on its keep-alive connection, for
    // at most 600 requests or 2 s after the signal, and stopping at their first refusal.
    const worker = async () => {
      for (let i = 0; i < 150; i++) {
        if (signalled() && Date.now() - signalledAt > 2000) return
        const outcome = await createAccount(server.url, agent, signalled)
        outcomes.push(outcome)
        if (outcome.error !== undefined && signalled()) return
      }
    }
    try {
      const load = Promise.all([worker(), worker(), worker(), worker()])
      // Under load: some requests answered before the signal.
      await until(() => outcomes.filter(o => o.status === 200).length >= 20, 20_000)
      signalledAt = Date.now()
      server.child.kill('SIGTERM')
      const [exit] = await Promise.all([exited, load])
      expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null })
      expect(exit.ms).toBeLessThan(DEADLINE_MS + 1500)

      const ok = outcomes.filter(o => o.status === 200)
      expect(ok.length).toBeGreaterThan(10)
      // Nothing hung; whatever failed failed because the server had stopped.
      expect(outcomes.filter(o => o.error === 'hung')).toEqual([])
      const refused = outcomes.filter(o => o.status === undefined)
      for (const o of refused) {
        expect(o.afterSignal || signalled()).toBe(true)
        expect(['ECONNREFUSED', 'ECONNRESET', 'socket hang up', 'EPIPE']).toContain(o.error)
      }
      // Every answer is a 200 (serve's rate limit may refuse some: 429), and every 200 is
      // complete and stored.
      expect(
        outcomes.filter(o => o.status !== undefined && ![200, 429].includes(o.status))
      ).toEqual([])
      expect(ok.every(o => o.complete)).toBe(true)
      const store = new SqliteStore({ path, sweepIntervalMs: 0 })
      try {
        for (const o of ok) expect(await store.accounts.hasIdentity(o.identity)).toBe(true)
      } finally {
        await store.close()
      }
      // Replies written after the server saw the signal asked the client to close the
      // connection. A request sent after the signal may reach the server in the event-loop turn
      // that also brings the signal, and be answered before the signal's handler runs (with
      // ECDSA on the event loop, within that turn): at most one such reply per connection.
      const late = outcomes.filter(o => o.afterSignal && o.status !== undefined)
      const kept = late.filter(o => o.connection !== 'close')
      expect(kept.length).toBeLessThanOrEqual(4)
      for (const o of kept) expect(o.connection).toBe('keep-alive')
    } finally {
      agent.destroy()
      await server.stop('SIGKILL')
    }
  })
})

it('a request held open (slow upload) does not keep the process past the deadline', async () => {
  const server = await startServer(
    'cli/index.ts',
    18262,
    {
      BETTER_AUTH_DATABASE: `sqlite:${join(dir, 'slow.db')}`,
      BETTER_AUTH_SHUTDOWN_TIMEOUT_MS: String(DEADLINE_MS),
    },
    ['serve']
  )
  let signalledAt = 0
  const exited = exitOf(server, () => signalledAt)
  const socket = connect(18262, '127.0.0.1')
  socket.on('error', () => undefined)
  try {
    await new Promise(resolve => socket.once('connect', resolve))
    // `Expect: 100-continue`: the server answers "100 Continue" once it has the request, which
    // is when the signal is sent.
    let received = ''
    socket.on('data', chunk => (received += String(chunk)))
    socket.write(
      'POST /account/create HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n' +
        'expect: 100-continue\r\ncontent-length: 5000\r\n\r\n{"payload":'
    )
    // It keeps sending, a byte at a time.
    const drip = setInterval(() => socket.write(' '), 100)
    await until(() => received.startsWith('HTTP/1.1 100 Continue\r\n'), {
      what: 'the server has the request',
    })
    signalledAt = Date.now()
    server.child.kill('SIGTERM')
    const exit = await exited
    clearInterval(drip)
    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null })
    expect(exit.ms).toBeGreaterThanOrEqual(DEADLINE_MS - 100)
    expect(exit.ms).toBeLessThan(DEADLINE_MS + 1500)
    // New connections are refused.
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow()
  } finally {
    socket.destroy()
    await server.stop('SIGKILL')
  }
})
