/**
 * Redis servers of the tests' own (the machine's Redis is shared and is never wiped): plain
 * servers without persistence, and a 3-master Redis Cluster, each on free ports, stopped by pid.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { until } from '../helpers'

const run = promisify(execFile)

/** A port nobody listens on (and, for a cluster node, its bus port + 10000 too). */
export async function freePort(bus = false): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer()
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => {
        const address = server.address()
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
      })
    })
    if (!bus) return port
    if (port + 10000 > 65535) continue
    const busFree = await new Promise<boolean>(resolve => {
      const server = createServer()
      server.once('error', () => resolve(false))
      server.listen(port + 10000, '127.0.0.1', () => server.close(() => resolve(true)))
    })
    if (busFree) return port
  }
}

export interface RedisProcess {
  port: number
  url: string
  child: ChildProcess
  /** Stops the server (by pid) and waits for its exit. */
  stop(signal?: NodeJS.Signals): Promise<void>
}

/** Starts `redis-server` without persistence on `port` and waits until it accepts connections. */
export async function startRedis(
  port: number,
  args: string[] = [],
  dir?: string
): Promise<RedisProcess> {
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      ...(dir === undefined ? [] : ['--dir', dir]),
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] }
  )
  let output = ''
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: unknown): void => {
      output += String(chunk)
      if (output.includes('Ready to accept connections')) resolve()
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', code => reject(new Error(`redis-server exited (${code}):\n${output}`)))
  })
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    child,
    async stop(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      await exited
    },
  }
}

/** Runs `redis-cli` with `args` and returns its output. */
export async function redisCli(args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', args, { timeout: 20_000 })
  return stdout
}

export interface RedisClusterProcesses {
  nodes: RedisProcess[]
  /** `127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3` */
  seeds: string
  stop(): Promise<void>
}

/** Starts a Redis Cluster of `masters` masters without replicas and waits until it is ok. */
export async function startRedisCluster(masters = 3): Promise<RedisClusterProcesses> {
  const dir = mkdtempSync(join(tmpdir(), 'better-auth-cluster-'))
  const nodes: RedisProcess[] = []
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map(node => node.stop()))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < masters; i++) {
      const port = await freePort(true)
      nodes.push(
        await startRedis(
          port,
          [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            join(dir, `nodes-${port}.conf`),
            '--cluster-node-timeout',
            '5000',
          ],
          dir
        )
      )
    }
    const addresses = nodes.map(node => `127.0.0.1:${node.port}`)
    await redisCli([
      '--cluster',
      'create',
      ...addresses,
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ])
    for (const node of nodes) {
      const clusterOk = async () =>
        (await redisCli(['-p', String(node.port), 'cluster', 'info'])).includes('cluster_state:ok')
      await until(clusterOk, {
        timeoutMs: 30_000,
        intervalMs: 100,
        what: `cluster_state:ok on the node at port ${node.port}`,
      })
    }
    return { nodes, seeds: addresses.join(','), stop }
  } catch (error) {
    await stop()
    throw error
  }
}
