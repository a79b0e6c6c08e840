/**
 * A TCP proxy between a store and its real backend, that a test can cut and restore: how the
 * fault tests make PostgreSQL or Redis unreachable without stopping the shared services.
 */
import { createServer, connect, type Server, type Socket } from 'node:net'

export class FaultProxy {
  private readonly server: Server
  private readonly pairs = new Set<[Socket, Socket]>()
  private down = false
  private marker: { text: Buffer; hit: () => void } | undefined

  constructor(
    private readonly target: { host: string; port: number },
    readonly port: number
  ) {
    this.server = createServer(client => this.accept(client))
  }

  /** The backend URL through the proxy, from the real one. */
  url(real: string): string {
    const parsed = new URL(real)
    parsed.hostname = '127.0.0.1'
    parsed.port = String(this.port)
    return parsed.toString()
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.port, '127.0.0.1', () => resolve())
    })
  }

  /** Drops every connection and refuses new ones until `restore()`. */
  cut(): void {
    this.down = true
    for (const [a, b] of this.pairs) {
      a.destroy()
      b.destroy()
    }
    this.pairs.clear()
  }

  restore(): void {
    this.down = false
  }

  /**
   * Cuts everything the moment a client sends bytes containing `text` (the bytes are not
   * forwarded): a failure in the middle of an operation. Resolves when it happened.
   */
  cutOn(text: string): Promise<void> {
    return new Promise(resolve => {
      this.marker = { text: Buffer.from(text), hit: resolve }
    })
  }

  get connections(): number {
    return this.pairs.size
  }

  close(): Promise<void> {
    this.cut()
    return new Promise(resolve => this.server.close(() => resolve()))
  }

  private accept(client: Socket): void {
    if (this.down) {
      client.destroy()
      return
    }
    const upstream = connect(this.target.port, this.target.host)
    const pair: [Socket, Socket] = [client, upstream]
    this.pairs.add(pair)
    const drop = (): void => {
      client.destroy()
      upstream.destroy()
      this.pairs.delete(pair)
    }
    client.on('data', chunk => {
      const marker = this.marker
      if (marker !== undefined && chunk.includes(marker.text)) {
        this.marker = undefined
        this.cut()
        marker.hit()
        return
      }
      upstream.write(chunk)
    })
    upstream.on('data', chunk => client.write(chunk))
    client.on('error', drop)
    upstream.on('error', drop)
    client.on('close', drop)
    upstream.on('close', drop)
  }
}
