/** Loading the server keys once, and again after a failed load (e.g. an unreachable key store). */
import { ServerKeys, type ServerKeyOptions } from './keys'

export class KeyLoader {
  private promise: Promise<ServerKeys>
  private failed = false
  /** The keys once loaded (the fast path of every signature). */
  loaded: ServerKeys | undefined

  constructor(private readonly source: () => Promise<ServerKeys>) {
    this.promise = this.load()
  }

  /** Keys given as they are, or loaded from options over `defaults` (the store, clock, retirement). */
  static of(
    keys: ServerKeyOptions | ServerKeys | undefined,
    defaults: ServerKeyOptions
  ): KeyLoader {
    return new KeyLoader(() =>
      keys instanceof ServerKeys ? Promise.resolve(keys) : ServerKeys.load({ ...defaults, ...keys })
    )
  }

  private load(): Promise<ServerKeys> {
    const loading = this.source().then(
      loaded => (this.loaded = loaded),
      error => {
        this.failed = true
        throw error
      }
    )
    loading.catch(() => undefined)
    return loading
  }

  /** The keys; after a failed load the next use tries again. */
  current(): Promise<ServerKeys> {
    if (this.failed) {
      this.failed = false
      this.promise = this.load()
    }
    return this.promise
  }
}
