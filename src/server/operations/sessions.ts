/** Sessions: a challenge for an identity, its signed answer for a token, and token refresh. */
import { formatTimestamp } from '../../codec/timestamp'
import {
  ExpiredTokenError,
  InvalidChallengeError,
  InvalidHashError,
  ReplayError,
  UnknownAccountError,
} from '../../errors'
import { verifySigned } from '../../messages/envelope'
import { readCreateSession, readRefreshSession, readRequestSession } from '../../messages/requests'
import { identityAtIp } from '../rate-keys'
import { object, ref } from '../schema'
import { seen } from './shared'
import { defineOperation } from './types'

const TOKEN_RESPONSE = object({ access: object({ token: ref('Token') }) })

export const SESSION_OPERATIONS = {
  requestSession: defineOperation({
    area: 'sessions',
    path: '/session/request',
    summary: 'Request a single-use session challenge for an identity',
    signed: false,
    event: 'session.requested',
    rateLimit: { ip: { points: 60, duration: 60 }, identity: { points: 30, duration: 60 } },
    suspendable: true,
    schemas: {
      request: object({ authentication: object({ identity: ref('Hash') }) }),
      response: object({ authentication: object({ nonce: ref('Nonce') }) }),
    },
    read: readRequestSession,
    async handle({ services: s, trace, limitIdentity }, { nonce, identity }) {
      seen(trace, identity)
      // Unsigned: the identity's limit and backoff count per client IP, so that no one elsewhere
      // can use them up.
      const local = identityAtIp(identity, trace.ip)
      await s.checkBackoff(local)
      await limitIdentity(local)
      // The identity exists and is not suspended.
      await s.sessions.requestSession(identity)
      const challenge = s.noncer.generate128()
      await s.store.challenges.create(challenge, identity, s.ms.challenge)
      return s.respond(nonce, { authentication: { nonce: challenge } })
    },
  }),

  createSession: defineOperation({
    area: 'sessions',
    path: '/session/create',
    summary: 'Answer a session challenge and receive an access token',
    signed: true,
    event: 'session.created',
    rateLimit: { ip: { points: 60, duration: 60 }, identity: { points: 30, duration: 60 } },
    backoff: true,
    suspendable: true,
    schemas: {
      request: object({
        access: object({ publicKey: ref('PublicKey'), rotationHash: ref('Hash') }),
        authentication: object({ device: ref('Hash'), nonce: ref('Nonce') }),
      }),
      response: TOKEN_RESPONSE,
    },
    read: readCreateSession,
    async handle({ services: s, envelope, trace, limitIdentity }, request) {
      const { nonce, access, authentication } = request
      trace.device = authentication.device
      const identity = await s.store.challenges.peek(authentication.nonce)
      if (identity === undefined) throw new InvalidChallengeError()
      seen(trace, identity)
      await s.checkBackoff(identityAtIp(identity, trace.ip))
      const key = await s.store.accounts.getDeviceKey(identity, authentication.device)
      if (key === undefined) throw new UnknownAccountError('device')
      await verifySigned(s.verifier, envelope, key.publicKey)
      await limitIdentity(identity)
      const state = await s.sessions.createSession(identity, authentication.device)
      const attributes = await s.attributes(identity, authentication.device, {
        operation: 'createSession',
      })
      // Consume only now, so a rejected message leaves the challenge usable; the atomic
      // consume lets exactly one of several concurrent valid answers through.
      if ((await s.store.challenges.consume(authentication.nonce)) !== identity) {
        throw new InvalidChallengeError()
      }
      const now = s.now()
      const token = await s.issueToken({
        device: authentication.device,
        identity,
        publicKey: access.publicKey,
        rotationHash: access.rotationHash,
        issuedAt: formatTimestamp(now),
        expiry: formatTimestamp(now + s.ms.accessToken),
        refreshExpiry: formatTimestamp(now + s.ms.refresh),
        attributes,
      })
      s.sessions.recorded(identity, authentication.device, state, now)
      return s.respond(nonce, { access: { token } })
    },
  }),

  refreshSession: defineOperation({
    area: 'sessions',
    path: '/session/refresh',
    summary: 'Exchange an access token and its next key for a new token',
    signed: true,
    event: 'session.refreshed',
    rateLimit: { identity: { points: 20, duration: 60 } },
    suspendable: true,
    schemas: {
      request: object({
        access: object({
          publicKey: ref('PublicKey'),
          rotationHash: ref('Hash'),
          token: ref('Token'),
        }),
      }),
      response: TOKEN_RESPONSE,
    },
    read: readRefreshSession,
    async handle({ services: s, envelope, trace, limitIdentity }, { nonce, access }) {
      await verifySigned(s.verifier, envelope, access.publicKey)
      const token = await s.verifyToken(access.token)
      seen(trace, token.identity, token.device)
      const keyHash = s.hasher.sum(access.publicKey)
      if (keyHash !== token.rotationHash) throw new InvalidHashError('rotation')
      // The signature is by the key the token commits to: the identity's own session.
      await limitIdentity(token.identity)
      // The device is active, the identity not suspended, the session not ended since the token.
      const state = await s.sessions.refresh(token.identity, token.device, token.issuedAtMs)
      const now = s.now()
      if (now > token.refreshExpiryMs) throw new ExpiredTokenError('refresh')
      // Before the key is spent: a callback that refuses leaves the refresh repeatable.
      const attributes = s.sessions.refreshAttributes
        ? await s.attributes(token.identity, token.device, {
            operation: 'refreshSession',
            previous: token.attributes,
          })
        : token.attributes
      const lock = Math.max(1, token.refreshExpiryMs - now) + s.ms.clockSkew
      // The key could have been used from the token's issue (less the skew between instances): a
      // store that lost its state since then refuses (BA607) rather than allow a second refresh.
      const usableFrom = token.issuedAtMs - s.ms.clockSkew
      if (!(await s.store.refreshKeys.reserve(keyHash, lock, usableFrom))) {
        throw new ReplayError('access key')
      }
      const fresh = await s.issueToken({
        device: token.device,
        identity: token.identity,
        publicKey: access.publicKey,
        rotationHash: access.rotationHash,
        issuedAt: formatTimestamp(now),
        expiry: formatTimestamp(now + s.ms.accessToken),
        refreshExpiry: token.refreshExpiry,
        attributes,
      })
      s.sessions.recorded(token.identity, token.device, state, now)
      return s.respond(nonce, { access: { token: fresh } })
    },
  }),
}
