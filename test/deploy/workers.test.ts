/**
 * `serve --workers 2`: two processes of the standalone server on one port (node:cluster) sharing
 * a SQLite database (WAL) and the keys kept in it. Requests land on both workers (told apart by
 * the `pid=` their log lines end with); both sign with the same keys; a challenge or a refresh
 * used on one worker is refused as a replay on the other; `/metrics` sums both; rate limits are
 * counted across them; a worker that dies is replaced; SIGTERM stops every worker by the
 * deadline and the primary exits 0. A database each process keeps to itself is refused (exit 2).
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Blake3Hasher, NodeSigningKey, type Network } from '../../src'
import {
  TestAccount,
  createSessionBody,
  hash,
  nonce,
  sessionRequest,
  signed,
  until,
} from '../helpers'
import { cli, clientOn, startServer, type ServerProcess } from './processes'

const DEADLINE_MS = 2000
const dir = mkdtempSync(join(tmpdir(), 'better-auth-workers-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

interface Reply {
  status: number
  body: string
  headers: IncomingHttpHeaders
}

/** One request on a connection of its own (so the primary hands each to the next worker). */
function send(url: string, method: string, body = ''): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        method,
        agent: false,
        headers: body === '' ? {} : { 'content-type': 'application/json' },
        timeout: 10_000,
      },
      res => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', chunk => (text += chunk))
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers })
        )
        res.on('error', reject)
      }
    )
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', reject)
    req.end(body)
  })
}

/** The client's network, one connection per request. */
class FreshConnections implements Network {
  constructor(private readonly url: string) {}
  async send(path: string, body: string): Promise<{ status: number; body: string }> {
    const { status, body: text } = await send(this.url + path, 'POST', body)
    return { status, body: text }
  }
}

/** The request lines of a worker's log: method, path, status, and the worker's pid. */
function requestLines(
  output: string
): { method: string; path: string; status: number; pid: number }[] {
  const lines = []
  for (const match of output.matchAll(/ info (GET|POST|HEAD) (\S+) (\d{3}) \S+ \S+ pid=(\d+)$/gm)) {
    lines.push({
      method: match[1] as string,
      path: match[2] as string,
      status: Number(match[3]),
      pid: Number(match[4]),
    })
  }
  return lines
}

/** The pids of the workers that said they listen, in order. */
function workerPids(output: string): number[] {
  return [...output.matchAll(/worker pid (\d+) listening/g)].map(match => Number(match[1]))
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolve(port))
    })
  })
}

describe('serve --workers: usage', () => {
  it('refuses a database each process would keep to itself (exit 2, says why)', async () => {
    for (const database of ['memory:', 'sqlite::memory:']) {
      const result = await cli(['serve', '--workers', '2', '--database', database, '--port', '0'])
      expect(result.code).toBe(2)
      expect(result.err).toContain('--workers 2 needs a database the workers share')
      expect(result.err).toContain('use sqlite:PATH or postgres://')
    }
    const fromEnv = await cli(['serve', '--port', '0'], {
      BETTER_AUTH_WORKERS: '3',
      BETTER_AUTH_DATABASE: 'memory:',
    })
    expect([fromEnv.code, fromEnv.err]).toEqual([2, expect.stringContaining('--workers 3')])
  })

  it('refuses a count that is not one', async () => {
    for (const workers of ['0', 'two', '1.5', '2000']) {
      const result = await cli(['serve', '--workers', workers, '--database', 'memory:'])
      expect([result.code, result.err]).toEqual([2, expect.stringContaining('--workers:')])
    }
  })

  it('documents the option', async () => {
    const help = await cli(['serve', '--help'])
    expect(help.out).toContain('--workers N|auto')
    expect(help.out).toContain('BETTER_AUTH_WORKERS, default 1')
  })

  it('a real process with the memory store exits 2 with the message', async () => {
    const { spawn } = await import('node:child_process')
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(__dirname, '..', '..', 'cli', 'index.ts'), 'serve'],
      {
        env: {
          PATH: process.env.PATH ?? '',
          BETTER_AUTH_DATABASE: 'memory:',
          BETTER_AUTH_WORKERS: '2',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      }
    )
    let err = ''
    child.stderr.on('data', chunk => (err += String(chunk)))
    const code = await new Promise(resolve => child.once('exit', resolve))
    expect(code).toBe(2)
    expect(err).toContain('--workers 2 needs a database the workers share')
  })
})

describe('serve --workers 2 on SQLite', () => {
  let server: ServerProcess
  let url: string
  const created = { count: 0 }

  beforeAll(async () => {
    const port = await freePort()
    server = await startServer(
      'cli/index.ts',
      port,
      {
        BETTER_AUTH_RATE_LIMIT: 'on',
        BETTER_AUTH_SHUTDOWN_TIMEOUT_MS: String(DEADLINE_MS),
      },
      ['serve', '--workers', '2', '--metrics', '--database', `sqlite:${join(dir, 'shared.db')}`]
    )
    url = server.url
    // The port answers once the first worker listens; the banner once both do.
    await until(() => server.output().includes('(2 workers)'), 30_000)
  }, 60_000)

  afterAll(async () => {
    await server?.stop('SIGKILL')
  })

  /** Sends a request, then waits for its log line; resolves with the reply and the worker. */
  async function traced(method: string, path: string, body = ''): Promise<Reply & { pid: number }> {
    const before = requestLines(server.output()).filter(l => l.path === path).length
    const reply = await send(url + path, method, body)
    await until(() => requestLines(server.output()).filter(l => l.path === path).length > before)
    const line = requestLines(server.output()).filter(l => l.path === path)[before]
    return { ...reply, pid: line?.pid as number }
  }

  /** Sends `body` until a worker other than `pid` answers it; returns the replies. */
  async function onAnotherWorker(path: string, body: string, pid: number) {
    const replies: (Reply & { pid: number })[] = []
    for (let i = 0; i < 6 && !replies.some(r => r.pid !== pid); i++) {
      replies.push(await traced('POST', path, body))
    }
    expect(replies.some(r => r.pid !== pid)).toBe(true)
    return replies
  }

  it('starts two workers, which answer in turn and sign with the same keys', async () => {
    const pids = workerPids(server.output())
    expect(new Set(pids).size).toBe(2)
    expect(pids).not.toContain(server.child.pid)
    const keys = []
    for (let i = 0; i < 6; i++) keys.push(await traced('POST', '/key/response'))
    expect(new Set(keys.map(k => k.body)).size).toBe(1)
    expect(server.output()).toContain(`response key: ${keys[0]?.body}`)
    expect(new Set(keys.map(k => k.pid))).toEqual(new Set(pids))
    const access = await Promise.all(
      Array.from({ length: 4 }, () => send(`${url}/key/access`, 'POST'))
    )
    const published = access.map(a => JSON.stringify(JSON.parse(a.body).payload.response))
    expect(new Set(published).size).toBe(1)
  })

  it("runs the client's flows with their requests spread over both workers", async () => {
    const client = clientOn(new FreshConnections(url))
    const before = requestLines(server.output()).length
    await client.createAccount(new Blake3Hasher().sum(NodeSigningKey.generate().publicKeyText))
    created.count++
    await client.createSession()
    await client.refreshSession()
    await client.rotateDevice()
    await client.refreshSession()
    await client.createSession()
    await client.refreshSession()
    await until(() => requestLines(server.output()).length >= before + 7)
    const lines = requestLines(server.output()).slice(before)
    expect(lines.every(l => l.status === 200)).toBe(true)
    expect(new Set(lines.map(l => l.pid)).size).toBe(2)
  })

  /** A new account (counted in `created`) and the challenge of a session request for it. */
  async function accountWithChallenge(): Promise<{ account: TestAccount; challenge: string }> {
    const account = new TestAccount()
    expect((await send(`${url}/account/create`, 'POST', account.createAccountBody())).status).toBe(
      200
    )
    created.count++
    const started = JSON.parse(
      (await send(`${url}/session/request`, 'POST', sessionRequest(account.identity))).body
    )
    return { account, challenge: started.payload.response.authentication.nonce as string }
  }

  it('a challenge answered on one worker cannot be answered again on the other', async () => {
    const { account, challenge } = await accountWithChallenge()
    const key = NodeSigningKey.generate()
    const body = createSessionBody(account.first, challenge, key, NodeSigningKey.generate())
    const first = await traced('POST', '/session/create', body)
    expect(first.status).toBe(200)
    const replays = await onAnotherWorker('/session/create', body, first.pid)
    for (const replay of replays) {
      expect([replay.status, JSON.parse(replay.body).error?.code]).toEqual([401, 'BA303'])
    }
  })

  it("a token's refresh accepted by one worker is refused as a replay by the other", async () => {
    const { account, challenge } = await accountWithChallenge()
    const key = NodeSigningKey.generate()
    const next = NodeSigningKey.generate()
    const session = JSON.parse(
      (
        await send(
          `${url}/session/create`,
          'POST',
          createSessionBody(account.first, challenge, key, next)
        )
      ).body
    )
    const token = session.payload.response.access.token as string
    // The access request of a refresh: the token, signed by the access key it commits to next.
    const refresh = signed(
      {
        access: { nonce: nonce() },
        request: {
          access: {
            publicKey: next.publicKeyText,
            rotationHash: hash(NodeSigningKey.generate().publicKeyText),
            token,
          },
        },
      },
      next
    )
    const first = await traced('POST', '/session/refresh', refresh)
    expect(first.status).toBe(200)
    const replays = await onAnotherWorker('/session/refresh', refresh, first.pid)
    for (const replay of replays) {
      expect([replay.status, JSON.parse(replay.body).error?.code]).toEqual([401, 'BA304'])
    }
  })

  it('/metrics answers the sum over both workers, whichever answers', async () => {
    const answers = []
    for (let i = 0; i < 4; i++) answers.push(await traced('GET', '/metrics'))
    expect(new Set(answers.map(a => a.pid)).size).toBe(2)
    for (const answer of answers) {
      expect(answer.status).toBe(200)
      const match = /better_auth_requests_total\{operation="createAccount",code="ok"\} (\d+)/.exec(
        answer.body
      )
      expect(Number(match?.[1])).toBe(created.count)
    }
  })

  it('rate limits are counted across the workers (30 account creations a minute per IP)', async () => {
    const statuses: number[] = []
    for (let i = 0; i < 40; i++) {
      statuses.push(
        (await send(`${url}/account/create`, 'POST', new TestAccount().createAccountBody())).status
      )
    }
    // Counted per worker, all 40 would pass (20 each, under 30 with the few made before).
    expect(statuses.filter(s => s === 200).length).toBeLessThanOrEqual(30 - created.count)
    expect(statuses.filter(s => s === 429).length).toBeGreaterThanOrEqual(10 + created.count)
    expect(statuses.filter(s => s !== 200 && s !== 429)).toEqual([])
  })

  it('a worker that dies is replaced', async () => {
    const [victim, other] = workerPids(server.output()) as [number, number]
    process.kill(victim, 'SIGKILL')
    await until(() => workerPids(server.output()).length === 3, 30_000)
    expect(server.output()).toContain(`worker pid ${victim} exited on SIGKILL: starting another`)
    const replacement = workerPids(server.output())[2] as number
    expect([alive(victim), alive(other), alive(replacement)]).toEqual([false, true, true])
    const answered = new Set<number>()
    for (let i = 0; i < 4; i++) answered.add((await traced('POST', '/key/response')).pid)
    expect(answered).toEqual(new Set([other, replacement]))
  }, 40_000)

  it('SIGTERM: every worker finishes, a held request is cut at the deadline, exit 0', async () => {
    const pids = workerPids(server.output()).filter(alive)
    expect(pids).toHaveLength(2)
    // A request whose body never completes holds one worker until the deadline.
    const held: Socket = connect(Number(new URL(url).port), '127.0.0.1')
    await new Promise(resolve => held.once('connect', resolve))
    held.on('error', () => undefined)
    // `Expect: 100-continue`: the worker answers "100 Continue" once it has the request.
    let received = ''
    held.on('data', chunk => (received += String(chunk)))
    held.write(
      'POST /account/create HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n' +
        'Content-Length: 100\r\n\r\n{"pay'
    )
    await until(() => received.startsWith('HTTP/1.1 100 Continue\r\n'), {
      what: 'a worker has the held request',
    })
    const exited = new Promise<{ code: number | null; signal: string | null }>(resolve =>
      server.child.once('exit', (code, signal) => resolve({ code, signal }))
    )
    const signalledAt = Date.now()
    server.child.kill('SIGTERM')
    const exit = await exited
    const ms = Date.now() - signalledAt
    held.destroy()
    expect(exit).toEqual({ code: 0, signal: null })
    expect(ms).toBeGreaterThanOrEqual(DEADLINE_MS - 100)
    expect(ms).toBeLessThan(DEADLINE_MS + 3000)
    expect(pids.filter(alive)).toEqual([])
    expect(server.output()).toContain('SIGTERM: stopping 2 workers')
    for (const pid of pids) expect(server.output()).toContain(`stopping: shutting down pid=${pid}`)
  }, 20_000)
})
