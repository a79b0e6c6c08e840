/**
 * The test-runner globals the shipped suites use (Jest's, or Vitest's with `globals: true`),
 * declared here so the package's types need no `@types/jest`, and looked up only when a suite is
 * declared.
 */

/** The matchers the suites use. */
export interface Matchers {
  toBe(expected: unknown): void
  toEqual(expected: unknown): void
  toBeUndefined(): void
  toBeDefined(): void
  toBeNull(): void
  toContain(expected: unknown): void
  toHaveLength(length: number): void
  toMatch(expected: string | RegExp): void
  toBeGreaterThan(expected: number): void
  toBeLessThan(expected: number): void
  not: Matchers
  resolves: AsyncMatchers
  rejects: AsyncMatchers
}

/** Matchers of `resolves` / `rejects`. */
export type AsyncMatchers = {
  [K in Exclude<keyof Matchers, 'not' | 'resolves' | 'rejects'>]: (
    ...args: Parameters<Matchers[K]>
  ) => Promise<void>
} & { toThrow(expected?: unknown): Promise<void> }

export interface TestGlobals {
  describe(name: string, body: () => void): void
  it(name: string, body: () => unknown, timeoutMs?: number): void
  beforeAll(body: () => unknown, timeoutMs?: number): void
  afterAll(body: () => unknown, timeoutMs?: number): void
  beforeEach(body: () => unknown, timeoutMs?: number): void
  afterEach(body: () => unknown, timeoutMs?: number): void
  expect(actual: unknown): Matchers
}

/** The runner's globals; throws, naming what is missing, outside a test runner. */
export function testGlobals(): TestGlobals {
  const scope = globalThis as Record<string, unknown>
  for (const name of [
    'describe',
    'it',
    'beforeAll',
    'afterAll',
    'beforeEach',
    'afterEach',
    'expect',
  ]) {
    if (typeof scope[name] !== 'function') {
      throw new Error(
        `better-auth-protocol/testing needs the test runner's global ${name}() ` +
          '(Jest, or Vitest with globals: true)'
      )
    }
  }
  return scope as unknown as TestGlobals
}
