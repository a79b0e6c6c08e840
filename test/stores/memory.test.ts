import { MemoryStore } from '../../src/stores/memory'
import { Clock } from '../helpers'
import { describeStoreConformance } from './conformance'

describeStoreConformance(
  'memory',
  async () => {
    const clock = new Clock()
    const store = new MemoryStore({ now: clock.now, sweepIntervalMs: 0 })
    return {
      accounts: store.accounts,
      challenges: store.challenges,
      refreshKeys: store.refreshKeys,
      accessNonces: store.accessNonces,
      now: clock.now,
      advance: async ms => clock.advance(ms / 1000),
    }
  },
  undefined,
  { parts: ['accounts', 'admin', 'ephemeral'] }
)
