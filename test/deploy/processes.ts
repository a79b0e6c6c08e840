/**
 * Real server processes for the deployment tests: the example server (`make server`) or the
 * CLI's `serve`, started with tsx and stopped by their pid.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { BetterAuthClient, FetchNetwork, type AuditEvent, type Network } from '../../src'
import { runCli, type CliIo } from '../../cli'

const ROOT = join(__dirname, '..', '..')

export interface ServerProcess {
  url: string
  child: ChildProcess
  /** Everything the process wrote, for failure messages. */
  output(): string
  /** SIGTERM (or `signal`), then waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>
}

/** Starts `script` (relative to the project root) and waits until it answers /key/response. */
export async function startServer(
  script: string,
  port: number,
  env: Record<string, string>,
  args: string[] = []
): Promise<ServerProcess> {
  if (await answers(`http://127.0.0.1:${port}`)) throw new Error(`port ${port} is taken`)
  const { child, out, err, exited } = runTsx(script, args, {
    HOST: '127.0.0.1',
    PORT: String(port),
    // As `make server` runs it: the conformance server without rate limits.
    BETTER_AUTH_RATE_LIMIT: 'off',
    ...env,
  })
  const output = () => out() + err()
  const url = `http://127.0.0.1:${port}`
  const started = Date.now()
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited early:\n${output()}`)
    if (await answers(url)) break
    if (Date.now() - started > 20_000) {
      child.kill('SIGKILL')
      throw new Error(`server did not start:\n${output()}`)
    }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return {
    url,
    child,
    output,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    },
  }
}

/** Whether a server answers /key/response at `url`. */
async function answers(url: string): Promise<boolean> {
  try {
    const reply = await fetch(`${url}/key/response`, {
      method: 'POST',
      signal: AbortSignal.timeout(1000),
    })
    await reply.text()
    return reply.status === 200
  } catch {
    return false
  }
}

/** A network whose target can be switched between servers (a load balancer, by hand). */
export class SwitchNetwork implements Network {
  private inner: Network
  constructor(url: string) {
    this.inner = new FetchNetwork(url)
  }
  to(url: string): void {
    this.inner = new FetchNetwork(url)
  }
  send(path: string, body: string): Promise<{ status: number; body: string }> {
    return this.inner.send(path, body)
  }
}

export function clientOn(network: Network): BetterAuthClient {
  return new BetterAuthClient({ network })
}

/** POSTs a body and returns the status and the parsed reply. */
export async function post(
  url: string,
  body: string
): Promise<{ status: number; json: { error?: { code: string }; payload?: unknown } }> {
  const reply = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  })
  return { status: reply.status, json: (await reply.json()) as { error?: { code: string } } }
}

/**
 * Runs the CLI in process (`runCli`) with `env` as its environment, capturing what it prints;
 * `events` collects the audit events of what it did (admin commands).
 */
export async function cli(
  args: string[],
  env: Record<string, string> = {},
  events?: AuditEvent[]
): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const io: CliIo = {
    out: t => void (out += t),
    err: t => void (err += t),
    env,
    ...(events === undefined ? {} : { onEvent: (event: AuditEvent) => void events.push(event) }),
  }
  const code = await runCli(args, io)
  return { code, out, err }
}

/** `serve` with options, as a child process; resolves once it prints its response key. */
export async function serveCli(args: string[], env: Record<string, string>) {
  const { child, out, err, exited } = runTsx('cli/index.ts', ['serve', ...args], env)
  const started = Date.now()
  while (!/response key: \S+\n/.test(out())) {
    if (child.exitCode !== null) throw new Error(`serve exited early:\n${out()}${err()}`)
    if (Date.now() - started > 20_000) {
      child.kill('SIGKILL')
      throw new Error(`serve did not start:\n${out()}${err()}`)
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  const url = /better-auth server on (http:\/\/\S+)/.exec(out())?.[1] as string
  return {
    url,
    out,
    err,
    async stop(): Promise<number | null> {
      child.kill('SIGTERM')
      return exited
    },
  }
}

/**
 * Runs a TypeScript file of the project (relative to its root) in one node process, with tsx as
 * a loader, so a signal reaches the program itself; with PATH, HOME and `env` as its whole
 * environment. What it writes is collected; `exited` resolves with its exit code once all of it
 * has been read.
 */
export function runTsx(file: string, args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, file), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.on('data', chunk => (out += String(chunk)))
  child.stderr.on('data', chunk => (err += String(chunk)))
  const exited = new Promise<number | null>(resolve => child.once('close', code => resolve(code)))
  return { child, out: () => out, err: () => err, exited }
}
