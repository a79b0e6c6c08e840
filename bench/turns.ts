/**
 * Side by side: several things measured in turns, slice after slice, until each has run its
 * time. A change in the machine's load (other processes) then falls on all of them alike, so
 * their ratios stay fair, and what a slice sends is prepared just before it (signed requests are
 * at most a few seconds old when sent). The order goes back and forth from slice to slice (see
 * below). Used by bench/run.ts and bench/workers.ts.
 */
import type { Sample } from './load'

export interface Turn {
  /** Builds the timed run of `count` units, outside the clock (signing, opening sessions). */
  prepare(count: number): Promise<() => Promise<Sample>>
  /** Counters read just before and after each run (CPU µs…); their growth is summed. */
  read?(): number[] | Promise<number[]>
}

export interface TurnOptions {
  /** Seconds each one runs in all. */
  duration: number
  /** Seconds of one slice, about. */
  slice: number
  /** Units per second each was seen to run at (a warm-up): sizes the first slices. */
  rates: readonly number[]
  /** The lowest rate a slice is sized for. */
  minRate: number
  /** The fewest units in a slice. @default 1 */
  minCount?: number
}

/** The samples of each turn, slice by slice, and the growth of its counters over its runs. */
export async function takeTurns(
  turns: readonly Turn[],
  options: TurnOptions
): Promise<{ samples: Sample[][]; counted: number[][] }> {
  const rates = turns.map((_, i) => Math.max(options.minRate, options.rates[i] ?? 0))
  const samples: Sample[][] = turns.map(() => [])
  const counted: number[][] = turns.map(() => [])
  const elapsed = turns.map(() => 0)
  const slices = Math.max(2, Math.round(options.duration / options.slice))
  // Forward in even slices, backward in odd ones: what one leaves behind in a shared process
  // (garbage a later collection pays for) does not always fall on the same next one.
  const forward = turns.map((_, i) => i)
  const backward = [...forward].reverse()
  for (let slice = 0; slice < slices; slice++) {
    for (const i of slice % 2 === 0 ? forward : backward) {
      const turn = turns[i] as Turn
      const seconds = (options.duration - (elapsed[i] as number)) / (slices - slice)
      if (seconds <= 0.05) continue
      const count = Math.max(options.minCount ?? 1, Math.ceil((rates[i] as number) * seconds))
      const run = await turn.prepare(count)
      const before = (await turn.read?.()) ?? []
      const sample = await run()
      const after = (await turn.read?.()) ?? []
      const sums = counted[i] as number[]
      after.forEach((value, k) => (sums[k] = (sums[k] ?? 0) + value - (before[k] ?? 0)))
      ;(samples[i] as Sample[]).push(sample)
      elapsed[i] = (elapsed[i] as number) + sample.elapsed
      rates[i] = Math.max(options.minRate, sample.ok / sample.elapsed)
    }
  }
  return { samples, counted }
}
