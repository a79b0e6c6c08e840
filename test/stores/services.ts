/**
 * The real PostgreSQL and Redis the store tests run against (the machine's services; see
 * `.ci/run`). Every run works in its own schema / key prefix and removes it afterwards.
 */
import { randomBytes } from 'node:crypto'
import { Pool } from 'pg'

export const POSTGRES_URL =
  process.env.BETTER_AUTH_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test'
export const REDIS_URL = process.env.BETTER_AUTH_TEST_REDIS ?? 'redis://127.0.0.1:6379'

/** A name unique to this run: a schema, a key prefix. */
export function uniqueName(kind: string): string {
  return `ba_test_${kind}_${process.pid}_${randomBytes(4).toString('hex')}`
}

/** Drops a test schema and everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  const pool = new Pool({ connectionString: POSTGRES_URL, max: 1 })
  try {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  } finally {
    await pool.end()
  }
}
