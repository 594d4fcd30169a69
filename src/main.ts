/**
 * Entry point: `node src/main.ts [role]` with role all (embedded default), api, worker or indexer.
 * The role may also come from ROLE. Two commands instead: `node src/main.ts reindex` rebuilds the
 * distributed search index from the store, `node src/main.ts backup <file>` copies the embedded
 * database; each exits when done.
 */
import { pino } from 'pino';
import { ConfigError, loadConfig } from './config.ts';
import { ROLES, type Role, runBackup, runReindex, start } from './wiring.ts';

const role = (process.argv[2] ?? process.env.ROLE ?? 'all') as Role | 'reindex' | 'backup';
if (role !== 'reindex' && role !== 'backup' && !ROLES.includes(role)) {
  console.error(
    `unknown role "${role}"; expected one of: ${ROLES.join(', ')} (or the commands reindex, backup)`,
  );
  process.exit(2);
}

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(2);
}

const log = pino({ level: config.logLevel, base: { role } });
if (role === 'reindex') process.exit(await runReindex(config, log));
if (role === 'backup') process.exit(runBackup(config, process.argv[3], log));
const running = await start(role, config, log).catch((error: unknown) => {
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
