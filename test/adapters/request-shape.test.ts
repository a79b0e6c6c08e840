/**
 * The access check leaves Express's request in V8's fast-properties mode, in both forms: a
 * request turned into a dictionary makes every later property access of the app slower (issue
 * 14: this cost the header form ~15,000 instructions a request on Express). Checked with V8's
 * `%HasFastProperties` in a child process started with --allow-natives-syntax
 * (test/fixtures/express-request-shape.ts).
 */
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'

describe("the principal's property on Express's request", () => {
  it('keeps the request in fast mode in both forms, under the default name or another', () => {
    const child = spawnSync(
      process.execPath,
      ['--allow-natives-syntax', '--import', 'tsx', 'test/fixtures/express-request-shape.ts'],
      { cwd: join(__dirname, '..', '..'), encoding: 'utf8', timeout: 60_000 }
    )
    expect({ status: child.status, stderr: child.stderr }).toEqual({ status: 0, stderr: '' })
    const seen = JSON.parse(child.stdout) as Record<string, boolean>
    // `custom`: the header form with `requestProperty: 'auth'`.
    expect(seen).toEqual({ classic: true, headers: true, custom: true })
  }, 90_000)
})
