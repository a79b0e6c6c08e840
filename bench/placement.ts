/**
 * Where the server's ECDSA runs (`crypto.ecdsa`: auto, threadpool, inline), compared on the
 * standalone server under two loads:
 *
 *   npx tsx bench/placement.ts        # or: make bench-placement
 *
 * - **light**: one keep-alive connection, one protected request every 2 ms (500/s), as most
 *   servers spend most of their time: every request wakes the server alone;
 * - **saturated**: BENCH_CONNECTIONS (default 32) connections sending as fast as answered.
 *
 * Each placement runs in its own process (the compiled servers of bench/run.ts, `UV_THREADPOOL_SIZE`
 * 1 as there), started afresh for each measurement, in alternating order over BENCH_ROUNDS rounds
 * (default 2), so a change in the machine's load falls on all alike. Prints the CPU µs per
 * request of the server process (all threads) for each placement and load, every round.
 * BENCH_DURATION: seconds per measurement (default 6).
 */
import { fork } from 'node:child_process'
import { request as httpRequest, Agent } from 'node:http'
import { NodeSigningKey, type EcdsaPlacement } from '../src'
import { compiledChild } from './compile'
import { blast } from './load'
import { accessBody, createAccounts, openSessions, type Session } from './protocol'
import { PROTECTED_PATH } from './targets/common'

const PLACEMENTS: EcdsaPlacement[] = ['threadpool', 'auto', 'inline']
const DURATION = Number(process.env.BENCH_DURATION ?? 6)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32)
const LIGHT_RATE = 500

type Load = 'light' | 'saturated'

/** CPU µs per protected request of a fresh standalone server with `ecdsa`, under `load`. */
async function measure(ecdsa: EcdsaPlacement, load: Load): Promise<number> {
  const child = fork(compiledChild(), ['standalone', '0'], {
    execArgv: ['--expose-gc'],
    env: {
      ...process.env,
      NODE_ENV: 'production',
      UV_THREADPOOL_SIZE: '1',
      BENCH_ECDSA: ecdsa,
      BETTER_AUTH_RESPONSE_KEY: NodeSigningKey.generate().toPem(),
      BETTER_AUTH_ACCESS_KEY: NodeSigningKey.generate().toPem(),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  try {
    const { port } = await new Promise<{ port: number }>(resolve =>
      child.once('message', message => resolve(message as { port: number }))
    )
    const url = `http://127.0.0.1:${port}`
    const cpu = () =>
      new Promise<number>(resolve => {
        child.once('message', message => resolve((message as { micros: number }).micros))
        child.send({ type: 'cpu' })
      })
    const sessions = await openSessions(url, await createAccounts(url, 8), CONNECTIONS)
    const bodies = (count: number) =>
      Array.from({ length: count }, (_, i) => accessBody(sessions[i % sessions.length] as Session))
    await blast(url, PROTECTED_PATH, bodies(10_000), CONNECTIONS) // warm-up
    if (load === 'saturated') {
      const prepared = bodies(DURATION * 6000)
      const before = await cpu()
      const sample = await blast(url, PROTECTED_PATH, prepared, CONNECTIONS)
      return ((await cpu()) - before) / sample.ok
    }
    const count = DURATION * LIGHT_RATE
    const prepared = bodies(count)
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    const before = await cpu()
    const started = performance.now()
    for (let i = 0; i < count; i++) {
      await post(`${url}${PROTECTED_PATH}`, prepared[i] as string, agent)
      const wait = started + ((i + 1) * 1000) / LIGHT_RATE - performance.now()
      if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait))
    }
    const used = (await cpu()) - before
    agent.destroy()
    return used / count
  } finally {
    child.send({ type: 'stop' })
    await new Promise(resolve => child.once('exit', resolve))
  }
}

/** One POST, resolved when its 200 reply has been read. */
function post(url: string, body: string, agent: Agent): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
      res => {
        res.resume()
        res.on('end', () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))
        )
      }
    )
    req.on('error', reject)
    req.end(body)
  })
}

async function main(): Promise<void> {
  const results: Record<string, number[]> = {}
  for (let round = 0; round < ROUNDS; round++) {
    for (const load of ['light', 'saturated'] as const) {
      // Alternating order: each placement goes first in some round.
      const order = PLACEMENTS.map((_, i) => PLACEMENTS[(i + round) % PLACEMENTS.length])
      for (const ecdsa of order as EcdsaPlacement[]) {
        const micros = await measure(ecdsa, load)
        ;(results[`${load} ${ecdsa}`] ??= []).push(Math.round(micros))
        console.log(
          `round ${round + 1}, ${load}, ecdsa ${ecdsa}: ${micros.toFixed(1)} CPU µs/request`
        )
      }
    }
  }
  console.log('')
  console.log('| load | ' + PLACEMENTS.join(' | ') + ' |')
  console.log('|---|' + PLACEMENTS.map(() => '---|').join(''))
  for (const load of ['light', 'saturated']) {
    const cells = PLACEMENTS.map(p => (results[`${load} ${p}`] ?? []).join(', '))
    console.log(`| ${load} | ${cells.join(' | ')} |`)
  }
  console.log(JSON.stringify({ placement: results, duration: DURATION, rounds: ROUNDS }))
}

main().catch(error => {
  console.error(error)
  process.exit(1)
})
