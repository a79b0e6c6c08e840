/**
 * Where Nest's Express and Fastify platforms differ, for the guard and the interceptor: the
 * node:http request under a platform request, and setting headers on a platform response.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

/** How to keep the raw bytes, logged once when a body was re-serialized. */
export const RAW_BODY_ADVICE =
  'Create the app with NestFactory.create(AppModule, { rawBody: true }) so the raw bytes are kept.'

/** Express's response (`setHeader`, `headersSent`) or Fastify's reply (`header`, `sent`). */
export interface PlatformResponse {
  statusCode?: number
  headersSent?: boolean
  sent?: boolean
  header?(name: string, value: string): unknown
  setHeader?(name: string, value: string): unknown
}

/** Sets a header on either platform's response. */
export function setResponseHeader(response: PlatformResponse, name: string, value: string): void {
  if (typeof response.header === 'function') response.header(name, value)
  else response.setHeader?.(name, value)
}

/** Whether the handler already sent the response itself (`@Res()`). */
export const responseSent = (response: PlatformResponse): boolean =>
  response.headersSent === true || response.sent === true

/**
 * The node:http request under a platform's request: Fastify's request keeps it as `raw`;
 * Express's request is one.
 */
export function nodeRequestOf(request: object): IncomingMessage {
  const raw = (request as { raw?: unknown }).raw
  return (
    raw !== null && typeof raw === 'object' && 'headers' in raw ? raw : request
  ) as IncomingMessage
}

/**
 * The node:http response under a platform's response: Fastify's reply keeps it as `raw`;
 * Express's response is one.
 */
export function nodeResponseOf(response: object): ServerResponse {
  const raw = (response as { raw?: unknown }).raw
  return (
    raw !== null && typeof raw === 'object' && 'setHeader' in raw ? raw : response
  ) as ServerResponse
}
