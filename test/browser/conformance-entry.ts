/**
 * Bundled into the browser test page: the client-store conformance suite on browserStores
 * (IndexedDB, WebCrypto keys, navigator.locks).
 */
import { browserStores } from '../../src/client'
import { clientStoreCases, type ClientStoreFixture } from '../../testing/client-stores'

let count = 0

async function fixture(): Promise<ClientStoreFixture> {
  const name = `conformance-${Date.now()}-${count++}`
  const handles = [browserStores(name)]
  const open = () => {
    const stores = browserStores(name)
    handles.push(stores)
    return stores
  }
  return {
    stores: handles[0] as ReturnType<typeof browserStores>,
    reopen: open,
    async corrupt() {
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const req = indexedDB.open(name, 1)
        req.onsuccess = () => resolve(req.result)
        req.onerror = () => reject(req.error)
      })
      await new Promise<void>((resolve, reject) => {
        const tx = db.transaction('state', 'readwrite')
        tx.objectStore('state').put({ current: { publicKey: 'x', key: 1 } }, 'authenticationKeys')
        tx.oncomplete = () => resolve()
        tx.onerror = () => reject(tx.error)
      })
      db.close()
    },
    async dispose() {
      for (const stores of handles) await stores.close()
      await handles[0]?.destroy()
    },
  }
}

/** Runs every case; returns one line per case. */
export async function runClientStoreConformance(): Promise<{ name: string; error?: string }[]> {
  const results: { name: string; error?: string }[] = []
  for (const c of clientStoreCases(fixture)) {
    try {
      await c.run()
      results.push({ name: c.name })
    } catch (error) {
      results.push({ name: c.name, error: String((error as Error).stack ?? error) })
    }
  }
  return results
}
