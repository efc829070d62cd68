// The load-balancing suite on IPVS, for real: the same kernel test files the kernel tier runs on
// nftables (test/kernel/lb), run inside a VM whose kernel has IPVS, with MESH_LB_BACKEND=ipvs.
// One boot for all files (boots are the expensive part under emulation).
import t from 'tap';
import { runInVm, vmUnavailable } from './vm.js';

const FILES = ['dist/test/kernel/lb/routing.test.js', 'dist/test/kernel/lb/backend.test.js'];

const why = vmUnavailable();
t.test('load balancing on IPVS in the kernel VM', { skip: why ?? false }, async (t) => {
  // Each file runs as a plain node script (tap's runner costs tens of seconds under TCG); its TAP
  // output comes back, and its exit code is printed after a marker.
  const cmd = FILES.map((f) => `node ${f}; echo "== exit ${f} $?"`).join('; ');
  // Standalone tap files time out after 30 s unless told otherwise; emulation is slow.
  const r = runInVm(cmd, { env: { MESH_LB_BACKEND: 'ipvs', TAP_TIMEOUT: '500' } });
  t.comment(`VM run: ${(r.ms / 1000).toFixed(0)} s`);
  t.equal(r.code, 0, 'the VM ran the command');
  for (const f of FILES) {
    const m = new RegExp(`== exit ${f.replace(/[.]/g, '\\.')} (\\d+)`).exec(r.output);
    t.equal(m?.[1], '0', `${f} passed on IPVS`);
  }
  const failures = r.output.split('\n').filter((l) => /^\s*not ok /.test(l));
  t.same(failures, [], 'no failing assertion');
  const passed = r.output.split('\n').filter((l) => /^\s*ok /.test(l)).length;
  t.ok(passed > 40, `${passed} assertions passed inside the VM`);
  if (failures.length || r.code !== 0) t.comment(r.output.slice(-8000));
});
