/**
 * Our client's conformance flows against whatever server listens on BASE_URL
 * (default http://127.0.0.1:8080).
 *
 *   make test-integration [BASE_URL=http://host:port]
 *
 * Exits non-zero if any flow fails.
 */
import { conformanceFlows } from './flows'

const baseUrl = process.env.BASE_URL ?? 'http://127.0.0.1:8080'

async function main(): Promise<void> {
  console.log(`conformance flows against ${baseUrl}`)
  let failed = 0
  for (const [name, run] of Object.entries(conformanceFlows(baseUrl))) {
    const started = Date.now()
    try {
      await run()
      console.log(`  ok    ${name} (${Date.now() - started} ms)`)
    } catch (error) {
      failed++
      console.log(`  FAIL  ${name}: ${(error as Error).stack ?? String(error)}`)
    }
  }
  console.log(failed === 0 ? 'all flows passed' : `${failed} flow(s) failed`)
  process.exit(failed === 0 ? 0 : 1)
}

void main()
