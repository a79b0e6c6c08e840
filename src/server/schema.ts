/** Building blocks of the JSON Schemas (2020-12, as OpenAPI 3.1 uses them) of protocol messages. */

/** A JSON Schema or any other OpenAPI object. */
export type Json = Record<string, unknown>

/** A reference to a schema of the document's `components.schemas`. */
export const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` })

/** An object schema; every property is required unless `required` says otherwise. */
export const object = (
  properties: Record<string, Json>,
  required = Object.keys(properties)
): Json => ({
  type: 'object',
  properties,
  required,
})

/** Any object (a reply without application data). */
export const EMPTY: Json = { type: 'object' }

/** A reply with the protocol's error body (`components.schemas.Error`). */
export const errorResponse = (description: string, headers?: Json): Json => ({
  description,
  ...(headers === undefined ? {} : { headers }),
  content: { 'application/json': { schema: ref('Error') } },
})
