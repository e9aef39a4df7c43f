/** The NeutronApi contract against the embedded SQLite store, on a temporary database file. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEmbeddedNeutron } from '../../src/neutron/embedded/index.ts';
import { neutronContract } from './neutron-contract.ts';

neutronContract('embedded (SQLite file)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kuryr-contract-'));
  const api = openEmbeddedNeutron({ path: join(dir, 'neutron.db') });
  return {
    api,
    async close() {
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
