/** `serve --metrics` and `--metrics-port`: /metrics on the API's listener or on its own. */
import { startServer } from './processes'

const PORT = 18731
const METRICS_PORT = 18732

describe('serve --metrics', () => {
  it('serves /metrics on the API port, counting what was sent', async () => {
    const server = await startServer('cli/index.ts', PORT, { BETTER_AUTH_DATABASE: 'memory:' }, [
      'serve',
      '--metrics',
    ])
    try {
      // An invalid createAccount body: refused with BA101, counted under its code.
      const refused = await fetch(`${server.url}/account/create`, { method: 'POST', body: '{}' })
      expect(refused.status).toBe(400)
      const text = await (await fetch(`${server.url}/metrics`)).text()
      expect(text).toContain('better_auth_requests_total{operation="createAccount",code="BA101"} 1')
      expect(server.output()).toContain(`metrics: ${server.url}/metrics`)
    } finally {
      await server.stop()
    }
  })

  it('serves /metrics on its own port with --metrics-port, not on the API port', async () => {
    const server = await startServer('cli/index.ts', PORT, { BETTER_AUTH_DATABASE: 'memory:' }, [
      'serve',
      '--metrics-port',
      String(METRICS_PORT),
    ])
    try {
      expect((await fetch(`${server.url}/metrics`)).status).toBe(404)
      const scraped = await fetch(`http://127.0.0.1:${METRICS_PORT}/metrics`)
      expect(scraped.status).toBe(200)
      expect(await scraped.text()).toContain('# TYPE better_auth_access_checks_total counter')
    } finally {
      await server.stop()
    }
  })
})
