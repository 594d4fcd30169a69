/**
 * Entry point: `node src/main.ts [role]` with role all (embedded default), api, worker or indexer.
 * The role may also come from ROLE. Commands instead of a role run once and exit with their code:
 * `reindex` rebuilds the distributed search index from the store, `backup <file>` copies the embedded
 * database, `requeue-dead-letters` moves dead-lettered queue messages back for another round.
 */
import { type Logger, pino } from 'pino';
import { type Config, ConfigError, loadConfig } from './config.ts';
import { ROLES, type Role, roleProblem, runBackup, runReindex, runRequeue, start } from './wiring.ts';

const COMMANDS: Record<string, (config: Config, log: Logger) => number | Promise<number>> = {
  reindex: runReindex,
  backup: (config, log) => runBackup(config, process.argv[3], log),
  'requeue-dead-letters': runRequeue,
};

// Read here, not in loadConfig: it picks a command too, and a command decides what configuration it needs.
// Empty means unset, as for every variable.
const role = process.argv[2] ?? (process.env.ROLE || undefined) ?? 'all';
const command = Object.hasOwn(COMMANDS, role) ? COMMANDS[role] : undefined;
// Every problem at once, as loadConfig reports its own, with the role's among them.
const problems: string[] = [];
const known = (ROLES as readonly string[]).includes(role);
if (command === undefined && !known) {
  problems.push(
    `ROLE: unknown role "${role}"; expected one of: ${ROLES.join(', ')} (or the commands ${Object.keys(COMMANDS).join(', ')})`,
  );
}
let loaded: Config | undefined;
try {
  loaded = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  problems.push(...error.problems);
}
const roleRefused = loaded && known ? roleProblem(role as Role, loaded) : undefined;
if (roleRefused) problems.push(`ROLE: ${roleRefused}`);
if (problems.length > 0 || !loaded) {
  console.error(new ConfigError(problems).message);
  process.exit(2);
}
const config: Config = loaded;

const log = pino({ level: config.logLevel, base: { role } });
if (command) {
  // One place for every command's failure: logged with its reason, exit code 1.
  const code = await Promise.resolve()
    .then(() => command(config, log))
    .catch((error: unknown) => {
      log.error({ err: error }, `${role} failed: ${error instanceof Error ? error.message : String(error)}`);
      return 1;
    });
  process.exit(code);
}
const running = await start(role as Role, config, log).catch((error: unknown) => {
  log.fatal({ err: error }, 'start failed');
  process.exit(1);
});
const listening = running.server
  ?.addresses()
  .map((a) => (typeof a === 'string' ? a : `${a.address}:${a.port}`));
log.info({ listening }, 'ready');

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: no new requests, draining the queue');
    const deadline = setTimeout(() => {
      log.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    deadline.unref();
    running.stop().then(
      () => {
        log.info('stopped cleanly');
        process.exit(0);
      },
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}
