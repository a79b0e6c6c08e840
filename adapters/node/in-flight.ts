/** The responses in flight on a server, for its graceful shutdown (see drainOf in ./index). */
import type { ServerResponse } from 'node:http'

const PREVIOUS = Symbol('betterAuth.inFlight.previous')
const NEXT = Symbol('betterAuth.inFlight.next')
type Listed = ServerResponse & { [PREVIOUS]?: Listed | undefined; [NEXT]?: Listed | undefined }

/**
 * The responses in flight on one server: a doubly linked list through the responses themselves.
 * Written here because a Set (the obvious choice) costs the whole server its young-generation
 * garbage collection. V8 rebuilds a Set's table as entries come and go, and keeps each replaced
 * table, entries included, linked to its successor (for iterators). Once one replaced table has
 * been promoted to the old generation, every later table, and every response still in flight when
 * its table was rebuilt, survives each scavenge until the next full collection. With a response
 * added and removed per request, a route awaiting the threadpool had ~1.9 MB survive each scavenge
 * instead of ~12 KB (docs/performance.md, change 16). A response taken out drops its links: a dead
 * one keeps nothing alive. The links are set by the server's first `request` listener, before a
 * framework changes the response's prototype (Express), while adding a property is still cheap.
 */
export class InFlight {
  private head: Listed | undefined

  add(res: ServerResponse): void {
    const listed = res as Listed
    const head = this.head
    listed[PREVIOUS] = undefined
    listed[NEXT] = head
    if (head !== undefined) head[PREVIOUS] = listed
    this.head = listed
  }

  /** Takes `res` out; nothing if it is not in the list. */
  delete(res: ServerResponse): void {
    const listed = res as Listed
    const previous = listed[PREVIOUS]
    const next = listed[NEXT]
    if (previous !== undefined) previous[NEXT] = next
    else if (this.head === listed) this.head = next
    else return
    if (next !== undefined) next[PREVIOUS] = previous
    listed[PREVIOUS] = undefined
    listed[NEXT] = undefined
  }

  /** The responses in the list now. */
  all(): ServerResponse[] {
    const found: ServerResponse[] = []
    for (let res = this.head; res !== undefined; res = res[NEXT]) found.push(res)
    return found
  }
}
