/**
 * Reading callgrind's dumps (bench/instructions.ts): a window's instructions split into V8's
 * garbage collector, its compilers, and the rest.
 */
/** A window's instructions: all, and those of V8's garbage collector and of its compilers. */
export interface Counts {
  total: number
  gc: number
  compiler: number
}

// Functions of V8's collector and of its compilers (TurboFan, Maglev, the bytecode compiler), by
// their C++ names. Their work comes in lumps (a major GC or a burst of optimization falls in one
// window and not the next, and moves the total by tens of thousands of instructions per request
// when K is 400), so the steady work of a request is the rest.
const GC =
  /Mark|Scaveng|Heap::|Sweep|Evacuat|GC|RememberedSet|SlotSet|PagedSpace|BodyDescriptor|Compactor|MemoryChunk/
const COMPILER = /compiler::|maglev::|Maglev|Compile|interpreter::|Turbo/

/**
 * Splits a callgrind dump by function (self cost): `fn=` names a function (by `(id) name` the
 * first time, `(id)` after), a cost line after `calls=` is the call's inclusive cost (skipped),
 * any other cost line is the current function's own.
 */
export function splitCounts(text: string): Counts {
  const names = new Map<string, string>()
  const counts: Counts = { total: 0, gc: 0, compiler: 0 }
  let kind: 'gc' | 'compiler' | undefined
  let call = false
  // Cost lines start with the positions (`positions: line`, or `instr line`), then Ir.
  let positions = 1
  for (const line of text.split('\n')) {
    if (line.startsWith('positions:')) positions = line.trim().split(/\s+/).length - 1
    else if (line.startsWith('fn=')) {
      const m = /^fn=\((\d+)\)(?: (.*))?$/.exec(line)
      let name = line.slice(3)
      if (m !== null) {
        if (m[2] !== undefined) names.set(m[1] as string, m[2])
        name = names.get(m[1] as string) ?? ''
      }
      kind = GC.test(name) ? 'gc' : COMPILER.test(name) ? 'compiler' : undefined
    } else if (line.startsWith('calls=')) call = true
    else if (/^[0-9+*-]/.test(line)) {
      if (call) call = false
      else {
        const ir = Number(line.split(' ')[positions] ?? 0)
        counts.total += ir
        if (kind !== undefined) counts[kind] += ir
      }
    } else if (line.startsWith('cfn=')) {
      // A callee's name is defined here the first time it appears.
      const m = /^cfn=\((\d+)\) (.*)$/.exec(line)
      if (m !== null) names.set(m[1] as string, m[2] as string)
    }
  }
  return counts
}
