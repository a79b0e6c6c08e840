/**
 * CPU time of other processes, read from Linux's /proc: the servers the benchmark did not start
 * itself (the reference server) and process trees (`serve --workers`).
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs'

const TICK_US = 1e6 / 100 // /proc times are in clock ticks (USER_HZ, 100 on Linux)

/**
 * The fields of a /proc `stat` file after the command's name (which may hold spaces and
 * parentheses, so it is skipped up to its last `)`): `[0]` is the state, `[7]` the minor faults,
 * `[11]` and `[12]` the user and system times in clock ticks.
 */
export function statFields(path: string): string[] {
  const text = readFileSync(path, 'utf8')
  return text.slice(text.lastIndexOf(')') + 2).split(' ')
}

/**
 * CPU µs so far of a process's main thread and of all its threads, from each thread's /proc
 * schedstat (the scheduler's own runtime, in ns): exact, where the user and system times of
 * /proc's stat are counted in 10 ms clock ticks (1.25 µs a request over 8,000) and split between
 * the two by sampling.
 */
export function threadsCpu(pid: number): { main: number; all: number } {
  const runtime = (tid: string) =>
    Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ', 1)[0]) / 1000
  const main = runtime(String(pid))
  let all = 0
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      all += runtime(tid)
    } catch {
      // the thread ended meanwhile
    }
  }
  return { main, all }
}

/** CPU time of a process and every descendant (all threads), and of the process alone, µs. */
export function treeCpu(root: number): { all: number; root: number } {
  const parent = new Map<number, number>()
  const cpu = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    let fields: string[]
    try {
      fields = statFields(`/proc/${entry}/stat`)
    } catch {
      continue // gone meanwhile
    }
    parent.set(Number(entry), Number(fields[1]))
    cpu.set(Number(entry), (Number(fields[11]) + Number(fields[12])) * TICK_US)
  }
  let all = 0
  for (const [pid, micros] of cpu) {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = parent.get(p)) {
      if (p === root) {
        all += micros
        break
      }
    }
  }
  return { all, root: cpu.get(root) ?? 0 }
}

/**
 * The process listening on a local TCP port (IPv4 or IPv6), or undefined where /proc does not
 * say (another OS, or a process of another user).
 */
export function listeningPid(port: number): number | undefined {
  const inodes = new Set<string>()
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string
    try {
      text = readFileSync(table, 'utf8')
    } catch {
      continue
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      // local_address is HEX_IP:HEX_PORT, st 0A is LISTEN, the inode is the 10th field.
      if (f[3] === '0A' && parseInt(f[1]?.split(':')[1] ?? '', 16) === port && f[9]) {
        inodes.add(`socket:[${f[9]}]`)
      }
    }
  }
  if (inodes.size === 0) return undefined
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    let fds: string[]
    try {
      fds = readdirSync(`/proc/${entry}/fd`)
    } catch {
      continue
    }
    for (const fd of fds) {
      try {
        if (inodes.has(readlinkSync(`/proc/${entry}/fd/${fd}`))) return Number(entry)
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined
}
