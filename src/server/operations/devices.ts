/** Devices: linking a new device to an identity, unlinking one, rotating a device's key. */
import { MismatchedIdentitiesError } from '../../errors'
import { verifySigned } from '../../messages/envelope'
import { readLinkDevice, readRotateDevice, readUnlinkDevice } from '../../messages/requests'
import { EMPTY, object, ref } from '../schema'
import { checkDevice, rotateWith } from './shared'
import { defineOperation } from './types'

export const DEVICE_OPERATIONS = {
  linkDevice: defineOperation({
    area: 'devices',
    path: '/device/link',
    summary: "Link a new device (its signed link container) to the signer's identity",
    signed: true,
    event: 'device.linked',
    rateLimit: {},
    conflicts: true,
    schemas: {
      request: object({ authentication: ref('Authentication'), link: ref('LinkContainer') }),
      response: EMPTY,
    },
    read: readLinkDevice,
    async handle(call, { nonce, authentication, link }) {
      const s = call.services
      const linked = link.authentication
      call.trace.targetDevice = linked.device
      const { device, publicKey, rotationHash } = linked
      const effect = { kind: 'linkDevice', device, publicKey, rotationHash } as const
      await rotateWith(call, authentication, effect, async () => {
        await verifySigned(
          s.verifier,
          link,
          publicKey,
          'link container',
          'payload.request.link.signature'
        )
        if (linked.identity !== authentication.identity) throw new MismatchedIdentitiesError()
        checkDevice(s, device, publicKey, rotationHash)
      })
      return s.respond(nonce, {})
    },
  }),

  unlinkDevice: defineOperation({
    area: 'devices',
    path: '/device/unlink',
    summary: 'Unlink a device of the identity (rotates the signing device)',
    signed: true,
    event: 'device.unlinked',
    rateLimit: {},
    schemas: {
      request: object({
        authentication: ref('Authentication'),
        link: object({ device: ref('Hash') }),
      }),
      response: EMPTY,
    },
    read: readUnlinkDevice,
    async handle(call, { nonce, authentication, link }) {
      call.trace.targetDevice = link.device
      await rotateWith(call, authentication, { kind: 'revokeDevice', device: link.device })
      return call.services.respond(nonce, {})
    },
  }),

  rotateDevice: defineOperation({
    area: 'devices',
    path: '/device/rotate',
    summary: "Rotate a device's authentication key",
    signed: true,
    event: 'device.rotated',
    rateLimit: {},
    schemas: { request: object({ authentication: ref('Authentication') }), response: EMPTY },
    read: readRotateDevice,
    async handle(call, { nonce, authentication }) {
      await rotateWith(call, authentication, { kind: 'none' })
      return call.services.respond(nonce, {})
    },
  }),
}
