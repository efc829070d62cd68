// `swarm init --force-new-cluster`: restart a surviving manager as a one-member cluster that keeps
// its data. Everything this manager knows to be committed is applied to a store, written as a snapshot
// whose membership is this node alone, and the WAL is rewritten to start from it.
import path from 'node:path';
import fs from 'node:fs';
import { Wal } from '../raft/wal.js';
import { MemoryStorage } from '../raft/storage.js';
import { decodeConfChange, type NodeId } from '../raft/types.js';
import { Store } from '../store/store.js';
import type { Cipher } from '../ca/seal.js';

export function forceNewCluster(stateDir: string, self: NodeId, addr: string, cipher?: Cipher): { index: number; term: number } {
  const dir = path.join(stateDir, 'raft');
  const { wal, recovered } = Wal.open(dir, cipher);
  try {
    const old = recovered.storage;
    const store = new Store();
    const snap = old.snapshot();
    const members: Record<NodeId, string> = {};
    if (snap.meta.index > 0) {
      const data = JSON.parse(Buffer.from(snap.data).toString('utf8')) as { store: string; members: Record<NodeId, string> };
      store.restore(Buffer.from(data.store, 'utf8'));
    }
    const commit = old.hardState.commit;
    const entries = commit > snap.meta.index ? (old.entries(snap.meta.index + 1, commit + 1) ?? []) : [];
    for (const e of entries) {
      if (e.type === 'conf') {
        decodeConfChange(e.data); // validates; membership is replaced below anyway
        store.appliedIndex = e.index;
      } else {
        store.applyEntry(e.index, e.data);
      }
    }
    const index = Math.max(commit, snap.meta.index);
    const term = old.term(index) ?? snap.meta.term;
    members[self] = addr;
    const fresh = new MemoryStorage();
    const s = { meta: { index, term, conf: { voters: [self], learners: [] } }, data: Buffer.from(JSON.stringify({ store: Buffer.from(store.encodeSnapshot()).toString('utf8'), members }), 'utf8') };
    fresh.applySnapshot(s);
    fresh.setHardState({ term: Math.max(old.hardState.term, term) + 1, vote: '', commit: index });
    wal.saveSnapshot(s);
    wal.rewrite(fresh);
    fs.writeFileSync(path.join(dir, 'members.json'), JSON.stringify(members), { mode: 0o600 });
    return { index, term };
  } finally {
    wal.close();
  }
}
