/**
 * The classic form against the header form on one benchmark target, in alternating rounds: the
 * server's CPU per protected request (all threads, and the main thread's user and system time
 * apart), the median of the rounds and of the rounds' differences, per server process and over
 * several. A quicker and steadier A/B of the two forms than `make bench` (no other groups); run
 * by hand:
 *
 *   npx tsx bench/forms.ts [express|standalone|koa|nest|nest-fastify] [requests] [rounds] [processes]
 *
 * Environment: BENCH_ECDSA (`auto`, `threadpool`, `inline`: where the server's ECDSA runs),
 * FORMS_PROFILE=dir (a V8 CPU profile of the server, written when it exits).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { blastRaw, median } from './load'
import { protectedRequests, sessionsFor, startTarget, targetEnv, type Form } from './signed'
import type { Session } from './protocol'

const [TARGET = 'express', N_TEXT = '8000', R_TEXT = '7', P_TEXT = '1'] = process.argv.slice(2)
const N = Number(N_TEXT)
const R = Number(R_TEXT)
const P = Number(P_TEXT)
const FORMS: readonly Form[] = ['classic', 'headers']
const CONNECTIONS = 8
/** Clock ticks of /proc's CPU times, in µs (USER_HZ is 100 on Linux). */
const TICK = 10_000
const env = targetEnv()

/** CPU µs so far of the process's main thread (user, system) and of all its threads. */
function cpu(pid: number): { user: number; system: number; all: number } {
  const times = (stat: string) => {
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return [Number(fields[11]) * TICK, Number(fields[12]) * TICK] as const
  }
  const [user, system] = times(readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8'))
  let all = 0
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const [u, s] = times(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'))
      all += u + s
    } catch {
      // the thread ended meanwhile
    }
  }
  return { user, system, all }
}

type Cpu = { user: number; system: number; all: number }

/** One server process: a warm-up, then `R` alternating rounds of the two forms. */
async function oneProcess(sessions: Session[]): Promise<Record<Form, Cpu[]>> {
  const profile = process.env.FORMS_PROFILE
  const { child, url } = await startTarget(TARGET, env, {
    execArgv: profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profile}`],
  })
  const requests = (form: Form, n: number) => protectedRequests(url, form, sessions, n)
  const pid = child.pid as number
  for (const form of FORMS) await blastRaw(url, await requests(form, 3000), CONNECTIONS) // warm-up
  const rounds: Record<Form, Cpu[]> = { classic: [], headers: [] }
  for (let r = 0; r < R; r++) {
    for (const form of FORMS) {
      const batch = await requests(form, N)
      const before = cpu(pid)
      const sample = await blastRaw(url, batch, CONNECTIONS)
      const after = cpu(pid)
      if (sample.ok !== N) throw new Error(`${form}: ${N - sample.ok} of ${N} requests failed`)
      rounds[form].push({
        user: (after.user - before.user) / N,
        system: (after.system - before.system) / N,
        all: (after.all - before.all) / N,
      })
    }
  }
  await new Promise<void>(resolve => {
    child.once('exit', () => resolve())
    child.send({ type: 'stop' })
  })
  return rounds
}

/**
 * Each process's figures, then, with more than one, the median over processes of each one's
 * median difference: a server's JIT settles differently from one process to the next (what it
 * inlines, when it optimizes), which moves the difference of the forms by more than the rounds of
 * one process spread, so one process is one sample.
 */
async function main(): Promise<void> {
  const sessions = await sessionsFor(env, 8)
  const f = (n: number) => n.toFixed(1)
  console.log(
    `${TARGET}, ECDSA ${process.env.BENCH_ECDSA ?? 'auto'}: server CPU µs per request, ` +
      `median of ${R} rounds of ${N}, ${P} server process(es)`
  )
  const perProcess: number[] = []
  for (let p = 0; p < P; p++) {
    const rounds = await oneProcess(sessions)
    if (P > 1) console.log(`process ${p + 1}:`)
    for (const form of FORMS) {
      const v = rounds[form]
      console.log(
        `${form.padEnd(8)} all threads ${f(median(v.map(x => x.all)))}` +
          `  main thread user ${f(median(v.map(x => x.user)))} system ${f(median(v.map(x => x.system)))}`
      )
    }
    const diff = rounds.headers.map((h, i) => h.all - (rounds.classic[i] as Cpu).all)
    perProcess.push(median(diff))
    console.log(`header − classic, median of the rounds' differences: ${f(median(diff))}`)
  }
  if (P > 1) {
    const sorted = [...perProcess].sort((a, b) => a - b)
    console.log(
      `header − classic over ${P} processes: median ${f(median(perProcess))} ` +
        `(each: ${sorted.map(f).join(', ')})`
    )
  }
}

main().catch(error => {
  console.error(error)
  process.exit(1)
})
