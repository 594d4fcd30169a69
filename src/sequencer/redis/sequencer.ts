import { randomUUID } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { LRUCache } from 'lru-cache';
import { isWriteCommand, numbered } from '../../domain/commands.ts';
import { CreateOutcomeUnknownError, UnavailableError } from '../../domain/errors.ts';
import type { Sequencer, SequenceSeed } from '../../domain/ports.ts';
import type { ChatCreate, MessageCreate, WriteCommand } from '../../domain/types.ts';
import { type NodeRedisOptions, openOnNodeRedis, type RedisConnection } from '../../redis/client.ts';
import { type IntentKeys, MISSING, OTHER_EPOCH, Scripts, UNCONFIRMED } from './scripts.ts';

/** Numbering is paused until the sequencer has re-seeded after Redis lost its data (a 503 with Retry-After). */
export class SequencerRecoveringError extends UnavailableError {
  constructor(retryAfter = 1) {
    super('numbering is paused while the sequencer recovers from a loss of Redis data; retry shortly', {
      retryAfter,
    });
  }
}

export interface RedisSequencerOptions {
  /** Prepended to every key. Default `seq:`. */
  prefix?: string;
  /**
   * Awaited before counters are seeded after a loss of Redis's data, so that the store's maxima have
   * caught up with every number handed out before the loss: in the distributed mode numbers wait in the
   * queue before the writer stores them, and seeding from a store that has not stored them yet would
   * hand them out again. So it has to wait until the queue is drained, including the commands whose
   * numbers were handed out before the loss but that other API processes have not published yet.
   * Also awaited when a process finds no epoch at all (first start ever, or a loss while every process
   * was down), since the two cannot be told apart. Called once per loss (concurrent callers share it);
   * while it is pending, calls fail with SequencerRecoveringError. A rejection ends that attempt: the
   * next call starts a new one.
   */
  beforeReseed?: () => Promise<void>;
  /** Retry-After of SequencerRecoveringError, in seconds. Default 1. */
  retryAfterSeconds?: number;
  /**
   * How many counters this process remembers as checked against the store. One it forgot is checked
   * again on its next use (one store query and a few Redis round trips), which is always safe.
   * Default 100 000.
   */
  checkedKeysLimit?: number;
  /**
   * Told when dropping settled intents failed (they are then published again by the reaper: harmless), and
   * when unreadable intents were dropped.
   */
  onSettleError?: (error: unknown) => void;
}

/** Settled intents are dropped in batches of at most this many members (Lua's unpack has a limit). */
const SETTLE_BATCH = 1000;

/** More than this many sentinels in one call means the key space is being wiped faster than we seed it. */
const MAX_ATTEMPTS = 6;

interface Recovery {
  gatePending: boolean;
  done: Promise<string>;
}

/**
 * The distributed sequencer: counters in Redis, shared by every API process. Numbers come from Lua
 * scripts (one atomic step each); a counter is seeded from the store's maximum, never invented.
 *
 * Keys: `<prefix>epoch` holds a random id made when the key space was (re)started. A chat counter is
 * `<prefix>{a:<app>}`, a message counter `<prefix>{a:<app>}:m:<chat>`: the hash tag keeps an
 * application's counters in one Cluster slot, so a later script may check a chat and number its
 * message atomically. Each counter is a hash stamped with the epoch it was seeded in (Centrifugo's
 * pattern) instead of every script reading the epoch key, which would be two slots on Cluster.
 *
 * Why a counter is trusted: (1) the process learns the epoch; a missing epoch key means the data may
 * have been lost, so it goes through `beforeReseed` first. (2) On first use of a counter in this
 * process, the seed script creates it from the store's maximum, or raises it to that maximum, stamped
 * with the epoch and unconfirmed. (3) The process reads the epoch key again; only if it still holds the
 * same epoch does it confirm the counter. The scripts number only from confirmed counters of the
 * caller's epoch. A loss between (2) and (3) shows in (3); a loss after (3) deletes the counter too, so
 * a process that seeded it from a lagging store after the loss never gets to confirm it, and no other
 * process can number from it meanwhile. After a loss every process meets a missing counter, or one
 * stamped with a new epoch, and re-reads the epoch key: that is how each one learns of the loss.
 *
 * Assumptions: Redis runs with `maxmemory-policy noeviction` and nothing else deletes these keys (they
 * have no TTL): a counter that vanished alone, with the epoch key intact, is taken for a new one. On
 * Cluster, a shard that loses its data alone is such a case (the epoch key lives on one shard); that
 * needs an epoch per shard, which this does not do.
 *
 * Durability: with `appendfsync everysec` (the default of scripts/services) Redis fsyncs its log once a
 * second. It write()s an increment to the log before it replies, so a crash of Redis alone keeps it
 * (kill -9 under load lost none here); but a crash of the machine, or of Redis while a slow disk makes
 * it postpone writes, can lose the last second or two of increments and keep the epoch key. Nothing
 * above notices that: the counters come back below numbers already handed out, which would be handed
 * out again. What guards against it: `appendfsync always` (an fsync per write batch), the only full
 * guard, since numbers still in the queue are not in the store either; and, cheap and done here, a
 * counter is checked against the store's maximum on its first use in each process and again after
 * every reconnection (a restart is one), and raised when it is lower. That covers every number already
 * stored, not those still in the queue.
 *
 * Intents (see the Sequencer port): `<prefix>intents` (a sorted set by age) and `<prefix>intents:commands`
 * (the commands) hold the creates whose numbers were handed out and whose publish has not been confirmed.
 * Settling is batched per event-loop turn (one script call for all the creates confirmed in that turn)
 * and not awaited by the request: an intent left behind only costs the reaper a second publish. Intents
 * live in Redis, so a loss of Redis's data loses them too: a create whose process died in the same window
 * leaves its number unused (two faults at once); re-seeding after the loss never hands a number out twice.
 */
export class RedisSequencer implements Sequencer {
  readonly name = 'redis';
  readonly #redis: RedisConnection;
  readonly #scripts: Scripts;
  readonly #seed: SequenceSeed;
  readonly #prefix: string;
  readonly #epochKey: string;
  readonly #beforeReseed: (() => Promise<void>) | undefined;
  readonly #retryAfter: number;
  readonly #checkedLimit: number;
  readonly #intents: IntentKeys;
  readonly #onSettleError: (error: unknown) => void;
  /** Members settled in this turn, dropped together at its end. */
  #settling: string[] = [];
  #settled: Promise<void> | undefined;

  /** The epoch this process numbers in; undefined until first use. */
  #epoch: string | undefined;
  #discovering: Promise<string> | undefined;
  #recovery: Recovery | undefined;
  /** Bumped whenever what was checked can no longer be trusted, so checks begun before are not kept. */
  #generation = 0;
  /** Counters seeded, raised and confirmed by this process in the current generation, oldest first. */
  readonly #checked = new Set<string>();
  readonly #checking = new Map<string, Promise<void>>();
  /** Highest chat number this process has seen handed out, per application (the least used go first). */
  readonly #knownChats: LRUCache<number, number>;

  constructor(redis: RedisConnection, seed: SequenceSeed, options: RedisSequencerOptions = {}) {
    this.#redis = redis;
    this.#scripts = new Scripts(redis);
    this.#seed = seed;
    this.#prefix = options.prefix ?? 'seq:';
    this.#epochKey = `${this.#prefix}epoch`;
    this.#beforeReseed = options.beforeReseed;
    this.#retryAfter = options.retryAfterSeconds ?? 1;
    this.#checkedLimit = options.checkedKeysLimit ?? 100_000;
    this.#knownChats = new LRUCache({ max: this.#checkedLimit });
    this.#intents = { byAge: `${this.#prefix}intents`, commands: `${this.#prefix}intents:commands` };
    this.#onSettleError = options.onSettleError ?? (() => {});
    // The server may have restarted and lost its last increments: check every counter again.
    redis.onReconnect(() => this.#forgetChecked());
  }

  /** SCRIPT LOAD of every script (they are sent again by EVAL whenever Redis has lost them). */
  async load(): Promise<void> {
    await this.#scripts.load();
  }

  async nextChatNumber(applicationId: number, intent?: ChatCreate): Promise<number> {
    const number = await this.#number(
      'next',
      this.#chatKey(applicationId),
      () => this.#seed.maxChatNumber(applicationId),
      intent,
    );
    this.#knowChats(applicationId, number);
    return number;
  }

  nextMessageNumber(applicationId: number, chatNumber: number, intent?: MessageCreate): Promise<number> {
    return this.#number(
      'next',
      this.#messageKey(applicationId, chatNumber),
      () => this.#seed.maxMessageNumber(applicationId, chatNumber),
      intent,
    );
  }

  settle(command: WriteCommand): void {
    this.#settling.push(this.#member(command));
    this.#settled ??= nextTurn().then(() => this.#dropSettled());
  }

  async overdue(olderThanMs: number, limit: number): Promise<WriteCommand[]> {
    const pairs = await this.#scripts.overdue(this.#intents, olderThanMs, limit);
    const commands: WriteCommand[] = [];
    const unreadable: string[] = [];
    for (const [member, json] of pairs) {
      const number = Number(member.slice(member.lastIndexOf('#') + 1));
      let command: unknown;
      try {
        command = JSON.parse(json);
      } catch {
        // Reported below with the member.
      }
      if (Number.isSafeInteger(number) && number >= 1 && isWriteCommand(command)) {
        commands.push(numbered(command, number));
      } else {
        unreadable.push(member);
      }
    }
    if (unreadable.length > 0) {
      // Not ours to publish (written by something else into our keys): dropped, or the reaper would meet
      // them on every look. Reported, since their numbers are then never stored.
      await this.#scripts.settle(this.#intents, unreadable);
      this.#onSettleError(new Error(`dropped intents that are not write commands: ${unreadable.join(', ')}`));
    }
    return commands;
  }

  async chatExists(applicationId: number, chatNumber: number): Promise<boolean> {
    if (!Number.isSafeInteger(chatNumber) || chatNumber < 1) return false;
    // A chat number once handed out exists for good, so what this process saw needs no round trip:
    // every message create asks this first.
    if (chatNumber <= (this.#knownChats.get(applicationId) ?? 0)) return true;
    const last = await this.#number('current', this.#chatKey(applicationId), () =>
      this.#seed.maxChatNumber(applicationId),
    );
    this.#knowChats(applicationId, last);
    return chatNumber <= last;
  }

  #knowChats(applicationId: number, last: number): void {
    if (last > (this.#knownChats.get(applicationId) ?? 0)) this.#knownChats.set(applicationId, last);
  }

  async messageExists(applicationId: number, chatNumber: number, number: number): Promise<boolean> {
    if (!Number.isSafeInteger(number) || number < 1) return false;
    const last = await this.#number('current', this.#messageKey(applicationId, chatNumber), () =>
      this.#seed.maxMessageNumber(applicationId, chatNumber),
    );
    return number <= last;
  }

  async ping(): Promise<void> {
    await this.#redis.ping();
  }

  async close(): Promise<void> {
    await this.#settled;
    await this.#redis.close();
  }

  #chatKey(applicationId: number): string {
    return `${this.#prefix}{a:${applicationId}}`;
  }

  #messageKey(applicationId: number, chatNumber: number): string {
    return `${this.#chatKey(applicationId)}:m:${chatNumber}`;
  }

  /** An intent's name: its counter and number (next.lua builds the same). */
  #member(command: WriteCommand): string {
    const counter =
      command.kind === 'chat.create'
        ? this.#chatKey(command.applicationId)
        : this.#messageKey(command.applicationId, command.chatNumber);
    return `${counter}#${command.number}`;
  }

  async #dropSettled(): Promise<void> {
    const members = this.#settling;
    this.#settling = [];
    this.#settled = undefined;
    for (let i = 0; i < members.length; i += SETTLE_BATCH) {
      await this.#scripts
        .settle(this.#intents, members.slice(i, i + SETTLE_BATCH))
        .catch((error: unknown) => this.#onSettleError(error));
    }
  }

  async #number(
    op: 'next' | 'current',
    key: string,
    loadSeed: () => Promise<number>,
    intent?: WriteCommand,
  ): Promise<number> {
    // The intent's own number is ignored: overdue() numbers it from its member.
    const kept = intent && { keys: this.#intents, json: JSON.stringify(intent) };
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const epoch = await this.#currentEpoch();
      if (!this.#checked.has(key)) await this.#check(key, loadSeed);
      const result =
        op === 'next' ? await this.#next(key, epoch, kept) : await this.#scripts.current(key, epoch);
      if (result >= 0) return result;
      if (result !== MISSING && result !== OTHER_EPOCH && result !== UNCONFIRMED) {
        throw new Error(`the ${op} script answered ${result}`);
      }
      // Gone, re-seeded elsewhere, or not confirmed: checking it again repairs it. A counter that is
      // gone or re-seeded may mean a loss, which must be known before seeding from the store.
      this.#checked.delete(key);
      if (result !== UNCONFIRMED) await this.#epochStillCurrent(epoch);
    }
    throw new UnavailableError(`the sequencer could not settle counter ${key}; Redis keeps losing it`);
  }

  /**
   * next.lua, whose answer may be lost (a timeout, a dropped connection) after it ran: the create may then
   * have its number and its intent kept, which the reaper publishes. That is a create of unknown outcome
   * (the idempotency key stays held, see CreateOutcomeUnknownError), not one known to have failed.
   */
  async #next(
    key: string,
    epoch: string,
    kept: { keys: IntentKeys; json: string } | undefined,
  ): Promise<number> {
    try {
      return await this.#scripts.next(key, epoch, kept);
    } catch (error) {
      if (!kept) throw error;
      throw new CreateOutcomeUnknownError(
        'the create may have been numbered; retry it with the same Idempotency-Key',
        { cause: error },
      );
    }
  }

  /** Seeds and confirms a counter once, even when many requests ask for it at the same moment. */
  async #check(key: string, loadSeed: () => Promise<number>): Promise<void> {
    let checking = this.#checking.get(key);
    if (!checking) {
      checking = this.#seedAndConfirm(key, loadSeed).finally(() => this.#checking.delete(key));
      this.#checking.set(key, checking);
    }
    await checking;
  }

  async #seedAndConfirm(key: string, loadSeed: () => Promise<number>): Promise<void> {
    const epoch = await this.#currentEpoch();
    const generation = this.#generation;
    const seed = await loadSeed();
    let state = await this.#scripts.seed(key, epoch, seed, false);
    if (state === OTHER_EPOCH) {
      // Either we missed a loss (then we recover instead), or it is a leftover of an older epoch, which
      // we take over: the seed only raises it, so whatever it handed out stays behind us.
      if (!(await this.#epochStillCurrent(epoch))) return;
      state = await this.#scripts.seed(key, epoch, seed, true);
    }
    if (state !== 1) {
      if (!(await this.#epochStillCurrent(epoch))) return;
      // Anything but 1 means the counter went away again; the caller's next script call says how.
      if ((await this.#scripts.confirm(key, epoch)) !== 1) return;
    }
    if (generation === this.#generation) this.#remember(key);
  }

  #remember(key: string): void {
    this.#checked.add(key);
    if (this.#checked.size > this.#checkedLimit) {
      this.#checked.delete(this.#checked.values().next().value!);
    }
  }

  #forgetChecked(): void {
    this.#generation++;
    this.#checked.clear();
  }

  /** The epoch to number in; fails fast while a recovery waits for `beforeReseed`. */
  #currentEpoch(): Promise<string> {
    if (this.#recovery) return this.#join(this.#recovery);
    if (this.#epoch !== undefined) return Promise.resolve(this.#epoch);
    this.#discovering ??= this.#discover().finally(() => {
      this.#discovering = undefined;
    });
    return this.#discovering;
  }

  async #discover(): Promise<string> {
    const epoch = await this.#redis.get(this.#epochKey);
    if (this.#recovery) return this.#join(this.#recovery);
    if (this.#epoch !== undefined) return this.#epoch;
    if (epoch === null) return this.#join(this.#startRecovery());
    this.#epoch = epoch;
    return epoch;
  }

  /** Reads the epoch key: true if it still holds `epoch`; otherwise recovers (or fails fast) and false. */
  async #epochStillCurrent(epoch: string): Promise<boolean> {
    if ((await this.#redis.get(this.#epochKey)) === epoch) return true;
    // Callers that noticed the same loss share one recovery; one that noticed it late finds it done.
    if (this.#recovery) await this.#join(this.#recovery);
    else if (this.#epoch === epoch) await this.#join(this.#startRecovery());
    return false;
  }

  #startRecovery(): Recovery {
    const recovery: Recovery = { gatePending: true, done: Promise.resolve('') };
    this.#recovery = recovery;
    recovery.done = (async () => {
      try {
        if (this.#beforeReseed) await this.#beforeReseed();
        recovery.gatePending = false;
        // Another process may have recovered first; then we join its epoch, after our own gate.
        const fresh = randomUUID();
        const epoch = (await this.#redis.setIfAbsent(this.#epochKey, fresh)) ?? fresh;
        this.#epoch = epoch;
        this.#forgetChecked();
        return epoch;
      } finally {
        this.#recovery = undefined;
      }
    })();
    // Callers that failed fast do not wait for it; its failure reaches whoever joined it.
    recovery.done.catch(() => {});
    return recovery;
  }

  async #join(recovery: Recovery): Promise<string> {
    if (recovery.gatePending) {
      // A gate with nothing to wait for (an empty queue) costs callers a turn; one that waits fails them.
      await Promise.race([recovery.done, nextTurn()]);
      if (recovery.gatePending) throw new SequencerRecoveringError(this.#retryAfter);
    }
    return recovery.done;
  }
}

export interface OpenRedisSequencerOptions extends RedisSequencerOptions, NodeRedisOptions {}

export async function openRedisSequencer(
  url: string,
  seed: SequenceSeed,
  options: OpenRedisSequencerOptions = {},
): Promise<RedisSequencer> {
  return openOnNodeRedis(url, options, async (redis) => {
    const sequencer = new RedisSequencer(redis, seed, options);
    await sequencer.load();
    return sequencer;
  });
}
