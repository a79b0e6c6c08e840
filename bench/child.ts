/**
 * A benchmark target in its own process, so the load generator never shares its event loop.
 *
 *   node --expose-gc --import tsx bench/child.ts <target> <port>
 *
 * Talks to the runner over IPC: sends `ready`; answers `memory` (after two full GCs) with
 * `process.memoryUsage()` plus the target's own numbers, and `cpu` with the process's CPU time
 * (all threads, µs); exits on `stop` or when the runner goes.
 */
import type { Running, Start } from './targets/common'

const TARGETS: Record<string, () => Promise<{ start: Start }>> = {
  node: () => import('./targets/node.js'),
  standalone: () => import('./targets/standalone.js'),
  express: () => import('./targets/express.js'),
  koa: () => import('./targets/koa.js'),
  nest: () => import('./targets/nest.js'),
  'nest-fastify': () => import('./targets/nest-fastify.js'),
}

interface Message {
  type: 'memory' | 'cpu' | 'stop'
}

async function main(): Promise<void> {
  const [name, portText] = process.argv.slice(2)
  const load = TARGETS[name ?? '']
  if (load === undefined || portText === undefined) {
    throw new Error(`usage: child.ts <${Object.keys(TARGETS).join('|')}> <port>`)
  }
  const running: Running = await (await load()).start(Number(portText))
  const send = (message: object) => process.send?.(message)
  process.on('message', (message: Message) => {
    if (message.type === 'memory') {
      const gc = (globalThis as { gc?: () => void }).gc
      gc?.()
      gc?.()
      send({ type: 'memory', ...process.memoryUsage(), ...running.stats?.() })
    } else if (message.type === 'cpu') {
      const { user, system } = process.cpuUsage()
      send({ type: 'cpu', micros: user + system })
    } else if (message.type === 'stop') {
      running.close().finally(() => process.exit(0))
    }
  })
  process.on('disconnect', () => process.exit(0))
  send({ type: 'ready', pid: process.pid, port: running.port })
}

main().catch(error => {
  console.error(error)
  process.exit(1)
})
