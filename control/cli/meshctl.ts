// meshctl: the one CLI. Errors print their cause and what to do, never a stack trace for a known error.
import { Command } from 'commander';
import { labCommand } from './lab-commands.js';
import { infoCommand, nodeCommand, swarmCommand, targetFrom } from './cluster-commands.js';
import { configCommand } from './config-commands.js';
import { networkCommand } from './network-commands.js';
import { meshCommand } from './mesh-commands.js';
import { serviceCommand } from './service-commands.js';
import { runCommands } from './run-commands.js';
import { publishCommand } from './publish-commands.js';
import { debugCommand } from './debug-commands.js';
import { ClientError } from '../api/client.js';
import { NetlinkError } from '../../dataplane/netlink/errors.js';
import { LabConfigError, LabError } from '../lab/plan.js';

export async function main(argv: string[]): Promise<void> {
  const program = new Command('meshctl')
    .description('manage a meshd cluster: overlay networks, service DNS, routing mesh')
    .version('0.1.0')
    .showHelpAfterError('(add --help for usage)')
    .enablePositionalOptions()
    .option('-H, --host <addr>', 'daemon to talk to: unix:///path.sock or tcp://HOST:2377 (default $MESH_HOST, else unix:///run/meshd/meshd.sock)');
  const target = targetFrom(program);
  program.addCommand(swarmCommand(target));
  program.addCommand(infoCommand(target));
  program.addCommand(nodeCommand(target));
  program.addCommand(serviceCommand(target));
  program.addCommand(configCommand(target));
  program.addCommand(networkCommand(target));
  for (const c of runCommands(target)) program.addCommand(c);
  program.addCommand(publishCommand(target));
  program.addCommand(debugCommand(target));
  program.addCommand(meshCommand(target));
  program.addCommand(labCommand());
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof NetlinkError && e.code === 'EPERM') {
      console.error(`error: ${e.message}\nmeshctl needs root for kernel objects: run it with sudo.`);
    } else if (e instanceof ClientError || e instanceof NetlinkError || e instanceof LabError || e instanceof LabConfigError || (e instanceof Error && e.constructor === Error)) {
      console.error(`error: ${e.message}`);
    } else {
      console.error(e);
    }
    process.exitCode = 1;
  }
}
