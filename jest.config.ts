import type { Config } from 'jest'

const config: Config = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  setupFiles: ['<rootDir>/test/setup-env.ts'],
  transform: {
    '^.+\\.ts$': [
      'ts-jest',
      { tsconfig: 'tsconfig.json', diagnostics: { warnOnly: false, ignoreCodes: [151002] } },
    ],
  },
  // The package's own name resolves to the sources (as tsconfig "paths" does), so the examples
  // run under test exactly as written for users.
  moduleNameMapper: {
    '^better-auth-protocol$': '<rootDir>/src/index.ts',
    '^better-auth-protocol/(express|koa|nestjs|node|fetch)$': '<rootDir>/adapters/$1/index.ts',
    '^better-auth-protocol/noble$': '<rootDir>/src/noble.ts',
    '^better-auth-protocol/stores/(sqlite|postgres|redis)$': '<rootDir>/src/stores/$1.ts',
  },
  testTimeout: 30000,
}

export default config
