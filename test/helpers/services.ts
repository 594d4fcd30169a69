/**
 * Where the integration tests find the real services (MariaDB, Redis, RabbitMQ, OpenSearch). Each is
 * named by an environment variable; `scripts/services/start.sh` starts them and writes the URLs, and
 * `.ci/run` exports them. A test whose service is not configured skips with a reason that starts with
 * "service unavailable" — except under REQUIRE_SERVICES=1 (CI), where it fails instead.
 */
export const SERVICES = {
  mysql: 'MYSQL_TEST_URL',
  redis: 'REDIS_TEST_URL',
  amqp: 'AMQP_TEST_URL',
  search: 'SEARCH_TEST_URL',
} as const;

export type ServiceName = keyof typeof SERVICES;

export interface ServiceAvailability {
  url: string | undefined;
  /** `false` when the service is configured; otherwise the skip reason for node:test's `skip` option. */
  skip: string | false;
}

export function service(name: ServiceName): ServiceAvailability {
  const variable = SERVICES[name];
  const url = process.env[variable] || undefined;
  if (url) return { url, skip: false };
  if (process.env.REQUIRE_SERVICES === '1') {
    throw new Error(`${variable} is not set, and REQUIRE_SERVICES=1 forbids skipping the ${name} tests`);
  }
  return { url, skip: `service unavailable: set ${variable} (scripts/services/start.sh starts one)` };
}

/**
 * The caller's environment without the services' own settings (MARIADB_PORT, RABBITMQ_NODENAME…), for
 * starting a private set of services: scripts/services derives the settings it is not given (the
 * RabbitMQ node name and Erlang ports from RABBITMQ_PORT), and an exported value left over from another
 * instance's services.env would make the new instance collide with that one.
 */
export function envWithoutServiceSettings(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !/^(MARIADB|REDIS|RABBITMQ|OPENSEARCH)_/.test(key)),
  );
}
