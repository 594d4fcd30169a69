/**
 * A steady load at a fixed arrival rate (an open model, as wrk2 or k6's constant-arrival-rate): request i
 * is due at start + i / rate whatever the earlier ones are doing, and its latency counts from when it was
 * due, so a stall shows in every request it delayed (no coordinated omission).
 *
 * Hand-written because autocannon has no such mode: its `overallRate` gives every connection a quota per
 * second, which it sends back to back as soon as the second starts. "1 200/s over 50 connections" is then
 * a burst at full speed for part of each second and silence for the rest, and the latency it reports is
 * that of the burst. autocannon still measures every closed-loop scenario.
 */
import { Agent, request } from 'node:http';

export interface OpenLoadOptions {
  url: string;
  method: 'POST' | 'GET';
  headers?: Record<string, string>;
  body?: string;
  /** Requests per second. */
  rate: number;
  seconds: number;
  /** Keep-alive connections; requests due while all are busy wait (and their wait counts). */
  connections: number;
  timeoutMs?: number;
}

export interface OpenLoadResult {
  sent: number;
  /** Per status code. */
  statuses: Record<number, number>;
  errors: number;
  /** Milliseconds from due time to complete response, sorted ascending. */
  latencies: number[];
  /** Wall time from the first due request to the last response, in seconds. */
  duration: number;
}

export async function openLoad(options: OpenLoadOptions): Promise<OpenLoadResult> {
  const target = new URL(options.url);
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections });
  const total = Math.round(options.rate * options.seconds);
  const statuses: Record<number, number> = {};
  const latencies: number[] = [];
  let errors = 0;
  let finished = 0;
  const start = performance.now();

  const done = new Promise<void>((resolve) => {
    const fire = (due: number) => {
      const settle = (status: number | undefined) => {
        latencies.push(performance.now() - due);
        if (status === undefined) errors++;
        else statuses[status] = (statuses[status] ?? 0) + 1;
        if (++finished === total) resolve();
      };
      const req = request(
        target,
        { method: options.method, headers: options.headers, agent, timeout: options.timeoutMs ?? 10_000 },
        (res) => {
          res.resume();
          res.on('end', () => settle(res.statusCode));
          res.on('error', () => settle(undefined));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => settle(undefined));
      req.end(options.body);
    };
    let sent = 0;
    // Every millisecond, send whatever has fallen due since the last tick (timers are not more exact).
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - start) * options.rate) / 1000) + 1);
      for (; sent < due; sent++) fire(start + (sent * 1000) / options.rate);
      if (sent === total) clearInterval(timer);
    }, 1);
  });
  await done;
  const duration = (performance.now() - start) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    sent: total,
    statuses,
    errors,
    latencies,
    duration,
  };
}
