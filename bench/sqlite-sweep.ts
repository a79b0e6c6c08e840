/**
 * How long a SQLite sweep blocks the event loop: fills a database file with expired used nonces,
 * sweeps it, and reports the longest event-loop stall during the sweep.
 *
 *   npx tsx bench/sqlite-sweep.ts [rows]   # default 200000; SWEEP_BATCH sets the batch size
 *
 * Also times one unbatched DELETE of the same rows, for comparison.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { SqliteStore } from '../src/stores/sqlite'

const rows = Number(process.argv[2] ?? 200_000)
const batch = Number(process.env.SWEEP_BATCH ?? 500)

function filled(path: string): SqliteStore {
  const store = new SqliteStore({ path, sweepIntervalMs: 0, sweepBatchSize: batch })
  const insert = store.db.prepare(
    `INSERT INTO ${store.tables.timeLocks} (scope, value, expires_at) VALUES ('nonce', ?, ?)`
  )
  const expired = Date.now() - 1000
  store.db.transaction(() => {
    for (let i = 0; i < rows; i++) insert.run(`0A${i.toString(36).padStart(22, '0')}`, expired)
  })()
  return store
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'better-auth-sweep-'))
  try {
    const store = filled(join(dir, 'batched.db'))
    const delay = monitorEventLoopDelay({ resolution: 1 })
    delay.enable()
    const started = performance.now()
    const deleted = await store.sweep()
    const elapsed = performance.now() - started
    delay.disable()
    await store.close()
    console.log(
      `sweep() (${batch} rows a step): deleted ${deleted} rows in ${elapsed.toFixed(0)} ms; ` +
        `longest event-loop delay ${(delay.max / 1e6).toFixed(1)} ms, ` +
        `p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms`
    )

    // The same steps, each timed: the longest is the longest the sweep holds the thread.
    const steps = filled(join(dir, 'steps.db'))
    const times: number[] = []
    for (;;) {
      const t = performance.now()
      const n = steps.sweepBatch()
      times.push(performance.now() - t)
      if (n === 0) break
      await new Promise<void>(resolve => setImmediate(resolve))
    }
    times.sort((x, y) => x - y)
    const at = (q: number): string => (times[Math.floor(q * (times.length - 1))] ?? 0).toFixed(2)
    console.log(
      `one step: median ${at(0.5)} ms, p99 ${at(0.99)} ms, longest ${at(1)} ms ` +
        `(${times.length} steps; the longest include SQLite's WAL checkpoints)`
    )
    await steps.close()

    const whole = filled(join(dir, 'whole.db'))
    const t0 = performance.now()
    const { changes } = whole.db
      .prepare(`DELETE FROM ${whole.tables.timeLocks} WHERE expires_at <= ?`)
      .run(Date.now())
    console.log(
      `one DELETE: ${changes} rows, blocking the event loop for ${(performance.now() - t0).toFixed(0)} ms`
    )
    await whole.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

void main()
