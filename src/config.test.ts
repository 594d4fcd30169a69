import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from './config.ts';

describe('configuration', () => {
  it('has defaults for everything', () => {
    const config = loadConfig({});
    assert.equal(config.port, 3000);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.dataDir, './data');
    assert.equal(config.adminToken, undefined);
    assert.equal(config.messageMaxBytes, 65536);
    assert.equal(config.sqliteSynchronous, 'FULL');
    assert.equal(config.requestTimeoutMs, 30_000);
  });

  it('reads and converts variables', () => {
    const config = loadConfig({
      PORT: '8080',
      ACCESS_LOG: 'yes',
      SQLITE_SYNCHRONOUS: 'normal',
      ADMIN_TOKEN: 'a-long-enough-admin-token',
      LOG_LEVEL: 'debug',
    });
    assert.equal(config.port, 8080);
    assert.equal(config.accessLog, true);
    assert.equal(config.sqliteSynchronous, 'NORMAL');
    assert.equal(config.adminToken, 'a-long-enough-admin-token');
    assert.equal(config.logLevel, 'debug');
  });

  it('reports every problem at once', () => {
    assert.throws(
      () =>
        loadConfig({ PORT: '70000', ADMIN_TOKEN: 'short', ACCESS_LOG: 'maybe', MESSAGE_MAX_BYTES: '1.5' }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.problems.length, 4);
        assert.match(error.message, /PORT/);
        assert.match(error.message, /ADMIN_TOKEN: must be at least 16 characters/);
        return true;
      },
    );
  });

  it('takes the distributed services all together or not at all', () => {
    const all = {
      MYSQL_URL: 'mysql://chat:chat@127.0.0.1:3307/chat',
      REDIS_URL: 'redis://127.0.0.1:6380',
      AMQP_URL: 'amqp://guest:guest@127.0.0.1:5673',
      SEARCH_URL: 'http://127.0.0.1:9201',
    };
    assert.equal(loadConfig(all).mysqlUrl, all.MYSQL_URL);
    assert.equal(loadConfig({}).mysqlUrl, undefined);
    assert.throws(
      () => loadConfig({ MYSQL_URL: all.MYSQL_URL, REDIS_URL: all.REDIS_URL }),
      /AMQP_URL, SEARCH_URL: the distributed mode needs all of/,
    );
    assert.throws(() => loadConfig({ DEPLOYMENT_NAME: 'Bad Name' }), /DEPLOYMENT_NAME/);
  });

  it('reads the cache time-to-live: 60 s by default, 0 turns the cache off, negative is refused', () => {
    assert.equal(loadConfig({}).cacheTtlSeconds, 60);
    assert.equal(loadConfig({ CACHE_TTL_SECONDS: '0' }).cacheTtlSeconds, 0);
    assert.throws(() => loadConfig({ CACHE_TTL_SECONDS: '-1' }), /CACHE_TTL_SECONDS/);
  });

  it('reads the search refresh interval: 500ms by default, a duration in ms or s', () => {
    assert.equal(loadConfig({}).searchRefreshInterval, '500ms');
    assert.equal(loadConfig({ SEARCH_REFRESH_INTERVAL: '2s' }).searchRefreshInterval, '2s');
    for (const bad of ['0ms', '-1s', 'soon', '1m', '500']) {
      assert.throws(() => loadConfig({ SEARCH_REFRESH_INTERVAL: bad }), /SEARCH_REFRESH_INTERVAL/);
    }
  });

  it('reads the CORS origins: none by default, * or a list of exact origins', () => {
    assert.equal(loadConfig({}).corsOrigins, undefined);
    assert.equal(
      loadConfig({ CORS_ORIGINS: '*', ADMIN_TOKEN: 'a-long-enough-admin-token' }).corsOrigins,
      '*',
    );
    // Without the admin token, any page could read every tenant's token through its visitors' browsers.
    assert.throws(
      () => loadConfig({ CORS_ORIGINS: '*' }),
      (error: ConfigError) => error.problems.some((p) => p.includes('needs ADMIN_TOKEN')),
    );
    assert.deepEqual(loadConfig({ CORS_ORIGINS: 'https://a.example, http://localhost:5173' }).corsOrigins, [
      'https://a.example',
      'http://localhost:5173',
    ]);
    for (const wrong of [
      'https://a.example/',
      'https://A.example',
      'a.example',
      'https://a.example/app',
      '*,x',
    ]) {
      assert.throws(
        () => loadConfig({ CORS_ORIGINS: wrong }),
        (error: ConfigError) => error.problems.some((p) => p.startsWith('CORS_ORIGINS')),
        wrong,
      );
    }
  });

  it('requires the request cap to hold the largest message', () => {
    assert.throws(
      () => loadConfig({ MESSAGE_MAX_BYTES: '200000', REQUEST_MAX_BYTES: '100000' }),
      /REQUEST_MAX_BYTES/,
    );
  });
});
