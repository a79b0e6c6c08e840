/**
 * The classic form against the header form on one benchmark target, in alternating rounds: the
 * server's CPU per protected request (all threads, and the main thread alone), the median of the
 * rounds and of the rounds' differences, per server process and over several. A quicker and
 * steadier A/B of the two forms than `make bench` (no other groups); run by hand:
 *
 *   npx tsx bench/forms.ts [express|standalone|koa|nest|nest-fastify|node] [requests] [rounds] [processes]
 *
 * `node` is bare node:http (bench/targets/node.ts): both forms' bytes with no protocol work.
 *
 * Environment: BENCH_ECDSA (`auto`, `threadpool`, `inline`: where the server's ECDSA runs),
 * FORMS_PROFILE=dir (a V8 CPU profile of the server, written when it exits), FORMS_NODE_ARGS
 * (more node flags for the server, space-separated, e.g. `--hash-seed=1`), FORMS_PIN=1 (the
 * server's main thread alone on CPU 0, everything else on CPU 1: it is then almost never
 * preempted).
 */
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { blastRaw, median } from './load'
import { statFields, threadsCpu } from './proc'
import { protectedRequests, sessionsFor, startTarget, targetEnv, type Form } from './signed'
import type { Session } from './protocol'

const [TARGET = 'express', N_TEXT = '8000', R_TEXT = '7', P_TEXT = '1'] = process.argv.slice(2)
const N = Number(N_TEXT)
const R = Number(R_TEXT)
const P = Number(P_TEXT)
const FORMS: readonly Form[] = ['classic', 'headers']
const CONNECTIONS = 8
const env = targetEnv()

type Cpu = { main: number; all: number; faults: number; preempted: number }

/**
 * CPU µs so far of the process's main thread and of all its threads (`threadsCpu`), its minor
 * page faults, and the times its main thread was preempted.
 */
function cpu(pid: number): Cpu {
  const { main, all } = threadsCpu(pid)
  // minor page faults of the whole process
  const faults = Number(statFields(`/proc/${pid}/stat`)[7])
  // times the main thread was preempted (involuntary context switches), from its status
  const status = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8')
  const preempted = Number(/nonvoluntary_ctxt_switches:\s*(\d+)/.exec(status)?.[1])
  return { main, all, faults, preempted }
}

/**
 * FORMS_PIN=1: the server's main thread alone on CPU 0; its other threads (the threadpool, V8's
 * helpers) and this load generator on CPU 1.
 */
function pin(pid: number): void {
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    execFileSync('taskset', ['-p', '-c', tid === String(pid) ? '0' : '1', tid], { stdio: 'ignore' })
  }
  for (const tid of readdirSync(`/proc/${process.pid}/task`)) {
    execFileSync('taskset', ['-p', '-c', '1', tid], { stdio: 'ignore' })
  }
}

/** One server process: a warm-up, then `R` alternating rounds of the two forms. */
async function oneProcess(sessions: Session[]): Promise<Record<Form, Cpu[]>> {
  const profile = process.env.FORMS_PROFILE
  const extra = (process.env.FORMS_NODE_ARGS ?? '').split(' ').filter(a => a !== '')
  const { child, url } = await startTarget(TARGET, env, {
    execArgv: [
      ...(profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profile}`]),
      ...extra,
    ],
  })
  const requests = (form: Form, n: number) => protectedRequests(url, form, sessions, n)
  const pid = child.pid as number
  for (const form of FORMS) await blastRaw(url, await requests(form, 3000), CONNECTIONS) // warm-up
  if (process.env.FORMS_PIN === '1') pin(pid)
  const rounds: Record<Form, Cpu[]> = { classic: [], headers: [] }
  for (let r = 0; r < R; r++) {
    for (const form of FORMS) {
      const batch = await requests(form, N)
      const before = cpu(pid)
      const sample = await blastRaw(url, batch, CONNECTIONS)
      const after = cpu(pid)
      if (sample.ok !== N) throw new Error(`${form}: ${N - sample.ok} of ${N} requests failed`)
      rounds[form].push({
        main: (after.main - before.main) / N,
        all: (after.all - before.all) / N,
        faults: (after.faults - before.faults) / N,
        preempted: (after.preempted - before.preempted) / N,
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
          `  main thread ${f(median(v.map(x => x.main)))}` +
          `  minor faults ${median(v.map(x => x.faults)).toFixed(3)}` +
          `  main thread preempted ${median(v.map(x => x.preempted)).toFixed(3)}`
      )
    }
    // Each round's header form against the classic round just before it.
    const diff = (k: keyof Cpu) =>
      median(rounds.headers.map((h, i) => h[k] - (rounds.classic[i] as Cpu)[k]))
    perProcess.push(diff('all'))
    console.log(
      `header − classic, median of the rounds' differences: ${f(diff('all'))}` +
        ` (main thread ${f(diff('main'))}, minor faults ${diff('faults').toFixed(3)})`
    )
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
