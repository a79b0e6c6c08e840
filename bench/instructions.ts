/**
 * Instructions per protected request, classic form against header form, counted by valgrind's
 * callgrind (all threads of the server process): a count that other load on the machine does not
 * move, for differences of a few µs that CPU time cannot resolve here (docs/performance.md,
 * "Method"). The server is the benchmark's own target (bench/child.ts, compiled) under callgrind,
 * with a one-hour access window. After W warm-up requests of each form it serves R windows of K
 * requests per form, the forms alternating; the counters are zeroed before each window and dumped
 * after it (`callgrind_control`), so startup, warm-up and signing in this process are not counted.
 * The median over the windows is the figure: a major GC falls in one window and not the next.
 * Needs valgrind; run by hand:
 *
 *   npx tsx bench/instructions.ts [express|standalone|koa|nest|nest-fastify …]
 *
 * Environment: INSN_FORMS (default `classic,headers`), INSN_W (default 1500), INSN_K (400),
 * INSN_R (7), INSN_PARALLEL (servers measured at a time, default 2).
 */
import { execFileSync } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { splitCounts, type Counts } from './callgrind'
import type { Session } from './protocol'
import { blastRaw, median } from './load'
import {
  protectedRequests as requests,
  sessionsFor,
  startTarget,
  targetEnv,
  type Form,
} from './signed'

const W = Number(process.env.INSN_W ?? 1500)
const K = Number(process.env.INSN_K ?? 400)
const R = Number(process.env.INSN_R ?? 7)
const PARALLEL = Number(process.env.INSN_PARALLEL ?? 2)
const FORMS = (process.env.INSN_FORMS ?? 'classic,headers').split(',') as Form[]
const CONNECTIONS = 8
const env = targetEnv()

/** The counts of the last dump of a callgrind run writing to `prefix`. */
function dumped(prefix: string, n: number): Counts {
  const file = `${prefix}.${n}`
  const text = readFileSync(file, 'utf8')
  rmSync(file, { force: true })
  return splitCounts(text)
}

/**
 * One server process of `target` under callgrind: W warm-up requests of every form, then R
 * windows of K requests per form, the forms alternating; the counters are zeroed before each
 * window and dumped after it (`callgrind_control`). Returns instructions per request, by form,
 * for every window.
 */
async function measure(target: string, all: Session[]): Promise<Record<Form, Counts[]>> {
  const prefix = join(tmpdir(), `insn-${process.pid}-${target}`)
  const { child, url } = await startTarget(target, env, {
    execPath: 'valgrind',
    execArgv: [
      '--tool=callgrind',
      `--callgrind-out-file=${prefix}`,
      '--dump-line=no',
      '--dump-instr=no',
      '--quiet',
      process.execPath,
      '--single-threaded',
    ],
  })
  const send = async (form: Form, n: number) => {
    const sample = await blastRaw(url, await requests(url, form, all, n), CONNECTIONS)
    const failed = n - sample.ok
    if (failed > 0) throw new Error(`${target} ${form}: ${failed} of ${n} requests failed`)
  }
  const control = (option: string) =>
    execFileSync('callgrind_control', [option, String(child.pid)], { stdio: 'ignore' })
  for (const form of FORMS) await send(form, W)
  const per = Object.fromEntries(FORMS.map(f => [f, [] as Counts[]])) as Record<Form, Counts[]>
  let dumps = 0
  for (let r = 0; r < R; r++) {
    for (const form of FORMS) {
      const batch = await requests(url, form, all, K)
      control('--zero')
      const sample = await blastRaw(url, batch, CONNECTIONS)
      control('--dump')
      if (sample.ok !== K) throw new Error(`${target} ${form}: ${K - sample.ok} requests failed`)
      const c = dumped(prefix, ++dumps)
      per[form].push({ total: c.total / K, gc: c.gc / K, compiler: c.compiler / K })
      process.stderr.write(
        `${target} ${form} window ${r + 1}: ${fmt(c.total / K)} (GC ${fmt(c.gc / K)}, ` +
          `compilers ${fmt(c.compiler / K)})\n`
      )
    }
  }
  await new Promise<void>(resolve => {
    child.once('exit', () => resolve())
    child.send({ type: 'stop' })
  })
  rmSync(prefix, { force: true })
  return per
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')

async function main(): Promise<void> {
  const targets = process.argv.slice(2)
  if (targets.length === 0) targets.push('standalone', 'express')
  const all = await sessionsFor(env, 8)
  const results = new Map<string, Record<Form, Counts[]>>()
  let next = 0
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < targets.length) {
        const target = targets[next++] as string
        results.set(target, await measure(target, all))
      }
    })
  )
  console.log(`Instructions per protected request (median of ${R} windows of ${K}, after ${W})`)
  console.log('(all: every instruction; work: without the collector and the compilers)')
  const work = (c: Counts): number => c.total - c.gc - c.compiler
  for (const target of targets) {
    const per = results.get(target) as Record<Form, Counts[]>
    for (const form of FORMS) {
      const all = [...per[form].map(c => c.total)].sort((a, b) => a - b)
      const steady = [...per[form].map(work)].sort((a, b) => a - b)
      console.log(
        `${target.padEnd(14)} ${form.padEnd(8)} all ${fmt(median(all)).padStart(10)}` +
          `  (${fmt(all[0] as number)} – ${fmt(all.at(-1) as number)})` +
          `  work ${fmt(median(steady)).padStart(10)}` +
          `  (${fmt(steady[0] as number)} – ${fmt(steady.at(-1) as number)})`
      )
    }
    if (per.classic !== undefined && per.headers !== undefined) {
      // The difference window by window (each pair ran back to back), then its median.
      const diff = (f: (c: Counts) => number): string => {
        const d = median(per.headers.map((h, i) => f(h) - f(per.classic[i] as Counts)))
        return `${d >= 0 ? '+' : ''}${fmt(d)}`
      }
      console.log(
        `${target.padEnd(14)} header − classic: all ${diff(c => c.total)}, work ${diff(work)}`
      )
    }
  }
}

main().catch(error => {
  console.error(error)
  process.exit(1)
})
