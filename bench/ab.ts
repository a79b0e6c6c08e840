/**
 * Two variants of one benchmark target side by side: two server processes started at once, the
 * same environment but for one variable, served in alternating rounds (the order flipped every
 * round) so that the machine's changes of speed fall on both. Prints each variant's server CPU per
 * protected request (all threads, and the main thread alone), the median of the rounds. Run by
 * hand:
 *
 *   npx tsx bench/ab.ts <target> <forms> <VARIABLE> <value A> <value B> [requests] [rounds]
 *   npx tsx bench/ab.ts express classic,headers BENCH_EXPRESS_SERVER plain own
 *
 * `forms` is `classic`, `headers` or both, comma-separated. Environment: BENCH_ECDSA as for
 * bench/forms.ts.
 */
import type { ChildProcess } from 'node:child_process'
import { blastRaw, median } from './load'
import { threadsCpu } from './proc'
import { protectedRequests, sessionsFor, startTarget, targetEnv, type Form } from './signed'

const [TARGET, FORMS_TEXT, VARIABLE, A, B, N_TEXT = '8000', R_TEXT = '5'] = process.argv.slice(2)
const N = Number(N_TEXT)
const R = Number(R_TEXT)
const CONNECTIONS = 8

interface Variant {
  value: string
  child: ChildProcess
  url: string
  rounds: Map<Form, { all: number[]; main: number[] }>
}

async function main(): Promise<void> {
  if (
    TARGET === undefined ||
    FORMS_TEXT === undefined ||
    VARIABLE === undefined ||
    A === undefined ||
    B === undefined
  ) {
    throw new Error(
      'usage: npx tsx bench/ab.ts <target> <forms> <VARIABLE> <A> <B> [requests] [rounds]'
    )
  }
  const forms = FORMS_TEXT.split(',') as Form[]
  const env = targetEnv()
  const sessions = await sessionsFor(env, 8)
  const variants: Variant[] = []
  for (const value of [A, B]) {
    const { child, url } = await startTarget(TARGET, { ...env, [VARIABLE]: value })
    variants.push({
      value,
      child,
      url,
      rounds: new Map(forms.map(f => [f, { all: [], main: [] }])),
    })
  }
  try {
    for (const v of variants) {
      for (const form of forms)
        await blastRaw(v.url, await protectedRequests(v.url, form, sessions, 3000), CONNECTIONS) // warm-up
    }
    for (let r = 0; r < R; r++) {
      for (const form of forms) {
        for (const v of r % 2 === 0 ? variants : [...variants].reverse()) {
          const batch = await protectedRequests(v.url, form, sessions, N)
          const pid = v.child.pid as number
          const before = threadsCpu(pid)
          const sample = await blastRaw(v.url, batch, CONNECTIONS)
          const after = threadsCpu(pid)
          if (sample.ok !== N)
            throw new Error(`${v.value} ${form}: ${N - sample.ok} of ${N} failed`)
          const rounds = v.rounds.get(form) as { all: number[]; main: number[] }
          rounds.all.push((after.all - before.all) / N)
          rounds.main.push((after.main - before.main) / N)
        }
      }
    }
  } finally {
    for (const v of variants) v.child.kill()
  }
  console.log(
    `${TARGET}, ${VARIABLE}, ECDSA ${process.env.BENCH_ECDSA ?? 'auto'}: server CPU µs per protected request, median of ${R} rounds of ${N}`
  )
  for (const form of forms) {
    for (const v of variants) {
      const { all, main } = v.rounds.get(form) as { all: number[]; main: number[] }
      console.log(
        `${form.padEnd(8)} ${v.value.padEnd(12)} all threads ${median(all).toFixed(1)}  main thread ${median(main).toFixed(1)}  (rounds: ${all.map(x => x.toFixed(0)).join(' ')})`
      )
    }
  }
}

main().catch(error => {
  console.error(error)
  process.exit(1)
})
