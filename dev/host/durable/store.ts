/**
 * Durable state in Azure Storage (Azurite locally), designed so that a SIGKILL at any moment
 * loses nothing and applies nothing twice:
 *
 * - `{hub}Instances`: one partition per instance. RowKey "instance" is the status row and the
 *   commit point (its `episode` counter says how many history episodes are committed). In the
 *   same partition live the inbox ("p-…": events waiting to be applied: start, activity results,
 *   timers with `visibleAt`, raised events, terminate) and activity work items ("a-…"). Because
 *   they share a partition, an episode commit (status row + consumed inbox deletes + new work
 *   items + new timers) and an activity completion (delete work item + add result to inbox) are
 *   single entity-group transactions.
 * - `{hub}History`: one row per episode (events as JSON), written before the commit; a row whose
 *   episode number is above the committed counter is a leftover of a crashed episode and ignored.
 * - No queue: the tables are the source of truth. The dispatcher scans them on start and on every
 *   idle tick, so restart resumes in milliseconds and work another process committed is found
 *   within one tick (a process dispatches its own new work directly, see engine.ts).
 *
 * Inbox row keys are deterministic per event (e.g. "p-{execution}-task-{id}") so a result written
 * twice is one row, and the episode drops any event whose key is already in history.
 */
import { TableClient, TableServiceClient, type TableEntityResult, type TransactionAction, odata } from "@azure/data-tables";
import type { HistoryEvent } from "./history";

export type RuntimeStatus = "Pending" | "Running" | "Completed" | "Failed" | "Terminated" | "ContinuedAsNew" | "Canceled" | "Suspended";
export const TERMINAL: RuntimeStatus[] = ["Completed", "Failed", "Terminated", "Canceled"];

export interface InstanceRow {
  instanceId: string;
  name: string;
  status: RuntimeStatus;
  executionId: string;
  episode: number;
  input: string | null;
  output: string | null;
  customStatus: string | null;
  createdTime: string;
  lastUpdatedTime: string;
  parentInstanceId?: string;
  parentExecutionId?: string;
  parentTaskId?: number;
  /** For sub-orchestrations: whether the parent has been told the outcome. */
  parentNotified?: boolean;
  etag?: string;
}

export interface InboxRow {
  rowKey: string;
  executionId: string;
  visibleAt: string;
  enqueuedAt: string;
  /** "event" (append to history) or "terminate". */
  kind: "event" | "terminate";
  event?: HistoryEvent;
  reason?: string;
}

export interface ActivityRow {
  rowKey: string;
  instanceId: string;
  executionId: string;
  taskId: number;
  name: string;
  input: string | null;
}

const CHUNK = 30000; // Table string properties hold 64 KiB = 32K UTF-16 chars.

function putBig(e: Record<string, unknown>, name: string, value: string | null | undefined): void {
  if (value === null || value === undefined) {
    e[`${name}_n`] = -1;
    return;
  }
  const n = Math.max(1, Math.ceil(value.length / CHUNK));
  e[`${name}_n`] = n;
  for (let i = 0; i < n; i++) e[`${name}_${i}`] = value.slice(i * CHUNK, (i + 1) * CHUNK);
}

function getBig(e: Record<string, unknown>, name: string): string | null {
  const n = Number(e[`${name}_n`] ?? -1);
  if (n < 0) return null;
  let s = "";
  for (let i = 0; i < n; i++) s += String(e[`${name}_${i}`] ?? "");
  return s;
}

/** PartitionKey / RowKey may not contain / \ # ? or control characters. */
export function encodeKey(id: string): string {
  return id.replace(/[%/\\#?\u0000-\u001f\u007f-\u009f]/g, (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0"));
}
export function decodeKey(k: string): string {
  return k.replace(/%([0-9a-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

const INSTANCE_RK = "instance";
const pad = (n: number): string => String(n).padStart(10, "0");

type Entity = TableEntityResult<Record<string, unknown>>;

export class DurableStore {
  readonly instances: TableClient;
  readonly history: TableClient;
  private readonly service: TableServiceClient;

  constructor(
    connectionString: string,
    readonly hubName: string,
  ) {
    const opts = { allowInsecureConnection: true };
    this.service = TableServiceClient.fromConnectionString(connectionString, opts);
    this.instances = TableClient.fromConnectionString(connectionString, `${hubName}Instances`, opts);
    this.history = TableClient.fromConnectionString(connectionString, `${hubName}History`, opts);
  }

  async init(): Promise<void> {
    for (const t of [this.instances, this.history]) {
      try {
        await this.service.createTable(t.tableName);
      } catch (e) {
        if ((e as { statusCode?: number }).statusCode !== 409) throw e;
      }
    }
  }

  // ---- instances -------------------------------------------------------------------------

  private toInstance(e: Entity): InstanceRow {
    return {
      instanceId: decodeKey(e.partitionKey as string),
      name: String(e.name),
      status: e.status as RuntimeStatus,
      executionId: String(e.executionId),
      episode: Number(e.episode ?? 0),
      input: getBig(e, "input"),
      output: getBig(e, "output"),
      customStatus: getBig(e, "customStatus"),
      createdTime: String(e.createdTime),
      lastUpdatedTime: String(e.lastUpdatedTime),
      parentInstanceId: e.parentInstanceId === undefined ? undefined : String(e.parentInstanceId),
      parentExecutionId: e.parentExecutionId === undefined ? undefined : String(e.parentExecutionId),
      parentTaskId: e.parentTaskId === undefined ? undefined : Number(e.parentTaskId),
      parentNotified: e.parentNotified === undefined ? undefined : Boolean(e.parentNotified),
      etag: e.etag,
    };
  }

  instanceEntity(r: InstanceRow): Record<string, unknown> & { partitionKey: string; rowKey: string } {
    const e: Record<string, unknown> & { partitionKey: string; rowKey: string } = {
      partitionKey: encodeKey(r.instanceId),
      rowKey: INSTANCE_RK,
      name: r.name,
      status: r.status,
      executionId: r.executionId,
      episode: r.episode,
      createdTime: r.createdTime,
      lastUpdatedTime: r.lastUpdatedTime,
    };
    putBig(e, "input", r.input);
    putBig(e, "output", r.output);
    putBig(e, "customStatus", r.customStatus);
    if (r.parentInstanceId !== undefined) {
      e.parentInstanceId = r.parentInstanceId;
      e.parentExecutionId = r.parentExecutionId;
      e.parentTaskId = r.parentTaskId;
      e.parentNotified = r.parentNotified ?? false;
    }
    return e;
  }

  async getInstance(id: string): Promise<InstanceRow | undefined> {
    try {
      const e = await this.instances.getEntity<Record<string, unknown>>(encodeKey(id), INSTANCE_RK);
      return this.toInstance(e);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    }
  }

  async listInstances(): Promise<InstanceRow[]> {
    const out: InstanceRow[] = [];
    const it = this.instances.listEntities<Record<string, unknown>>({ queryOptions: { filter: odata`RowKey eq ${INSTANCE_RK}` } });
    for await (const e of it) out.push(this.toInstance(e));
    return out;
  }

  // ---- inbox -----------------------------------------------------------------------------

  inboxEntity(instanceId: string, m: InboxRow): Record<string, unknown> & { partitionKey: string; rowKey: string } {
    const e: Record<string, unknown> & { partitionKey: string; rowKey: string } = {
      partitionKey: encodeKey(instanceId),
      rowKey: m.rowKey,
      executionId: m.executionId,
      visibleAt: m.visibleAt,
      enqueuedAt: m.enqueuedAt,
      kind: m.kind,
    };
    putBig(e, "event", m.event === undefined ? null : JSON.stringify(m.event));
    if (m.reason !== undefined) putBig(e, "reason", m.reason);
    return e;
  }

  private toInbox(e: Entity): InboxRow {
    const evText = getBig(e, "event");
    return {
      rowKey: String(e.rowKey),
      executionId: String(e.executionId),
      visibleAt: String(e.visibleAt),
      enqueuedAt: String(e.enqueuedAt),
      kind: e.kind as InboxRow["kind"],
      event: evText === null ? undefined : (JSON.parse(evText) as HistoryEvent),
      reason: getBig(e, "reason") ?? undefined,
    };
  }

  /** Adds one inbox message (idempotent: same row key = same message). */
  async enqueue(instanceId: string, m: InboxRow): Promise<void> {
    await this.instances.upsertEntity(this.inboxEntity(instanceId, m), "Replace");
  }

  /**
   * The status row and the inbox of one instance, in one partition query (one round trip instead
   * of two; both live in the instance's partition). Inbox sorted by enqueue time.
   */
  async readInstanceAndInbox(instanceId: string): Promise<{ inst: InstanceRow | undefined; inbox: InboxRow[] }> {
    const pk = encodeKey(instanceId);
    let inst: InstanceRow | undefined;
    const inbox: InboxRow[] = [];
    const it = this.instances.listEntities<Record<string, unknown>>({
      queryOptions: { filter: odata`PartitionKey eq ${pk} and (RowKey eq ${INSTANCE_RK} or (RowKey ge 'p-' and RowKey lt 'p.'))` },
    });
    for await (const e of it) {
      if (e.rowKey === INSTANCE_RK) inst = this.toInstance(e);
      else inbox.push(this.toInbox(e));
    }
    inbox.sort((a, b) => (a.enqueuedAt === b.enqueuedAt ? (a.rowKey < b.rowKey ? -1 : 1) : a.enqueuedAt < b.enqueuedAt ? -1 : 1));
    return { inst, inbox };
  }

  /** Instance ids with at least one inbox message visible at `now`. */
  async instancesWithDueWork(now: Date): Promise<{ due: string[]; nextVisibleAt?: string }> {
    const due = new Set<string>();
    let next: string | undefined;
    const nowIso = now.toISOString();
    const it = this.instances.listEntities<Record<string, unknown>>({
      queryOptions: { filter: "RowKey ge 'p-' and RowKey lt 'p.'", select: ["PartitionKey", "visibleAt"] },
    });
    for await (const e of it) {
      const v = String(e.visibleAt);
      if (v <= nowIso) due.add(decodeKey(String(e.partitionKey)));
      else if (next === undefined || v < next) next = v;
    }
    return { due: [...due], nextVisibleAt: next };
  }

  // ---- activities ------------------------------------------------------------------------

  activityEntity(a: ActivityRow): Record<string, unknown> & { partitionKey: string; rowKey: string } {
    const e: Record<string, unknown> & { partitionKey: string; rowKey: string } = {
      partitionKey: encodeKey(a.instanceId),
      rowKey: a.rowKey,
      executionId: a.executionId,
      taskId: a.taskId,
      name: a.name,
    };
    putBig(e, "input", a.input);
    return e;
  }

  async listActivities(): Promise<ActivityRow[]> {
    const out: ActivityRow[] = [];
    const it = this.instances.listEntities<Record<string, unknown>>({ queryOptions: { filter: "RowKey ge 'a-' and RowKey lt 'a.'" } });
    for await (const e of it) {
      out.push({
        rowKey: String(e.rowKey),
        instanceId: decodeKey(String(e.partitionKey)),
        executionId: String(e.executionId),
        taskId: Number(e.taskId),
        name: String(e.name),
        input: getBig(e, "input"),
      });
    }
    return out;
  }

  /** Activity done: its work item goes and its result enters the inbox, atomically. */
  async completeActivity(a: ActivityRow, result: InboxRow): Promise<boolean> {
    const pk = encodeKey(a.instanceId);
    try {
      await this.instances.submitTransaction([
        ["delete", { partitionKey: pk, rowKey: a.rowKey }],
        ["upsert", this.inboxEntity(a.instanceId, result), "Replace"],
      ]);
    } catch (e) {
      // The work item is gone (instance purged, terminated or restarted): drop the result.
      if ((e as { statusCode?: number }).statusCode === 404) return false;
      throw e;
    }
    return true;
  }

  // ---- history ---------------------------------------------------------------------------

  async loadHistory(instanceId: string, executionId: string, upToEpisode: number): Promise<HistoryEvent[]> {
    const pk = encodeKey(instanceId);
    const rows: { episode: number; events: HistoryEvent[] }[] = [];
    const it = this.history.listEntities<Record<string, unknown>>({ queryOptions: { filter: odata`PartitionKey eq ${pk}` } });
    for await (const e of it) {
      const episode = Number(e.episode);
      if (e.executionId !== executionId || episode > upToEpisode) continue;
      rows.push({ episode, events: JSON.parse(getBig(e, "events") ?? "[]") as HistoryEvent[] });
    }
    rows.sort((a, b) => a.episode - b.episode);
    return rows.flatMap((r) => r.events);
  }

  async writeHistoryEpisode(instanceId: string, executionId: string, episode: number, events: HistoryEvent[]): Promise<void> {
    const e: Record<string, unknown> & { partitionKey: string; rowKey: string } = {
      partitionKey: encodeKey(instanceId),
      rowKey: pad(episode),
      executionId,
      episode,
    };
    putBig(e, "events", JSON.stringify(events));
    // Upsert: a leftover row from a crashed attempt at this episode is simply overwritten.
    await this.history.upsertEntity(e, "Replace");
  }

  /** Runs transaction actions on one instance partition; the first batch holds the commit. */
  async commit(actions: TransactionAction[]): Promise<void> {
    for (let i = 0; i < actions.length; i += 100) await this.instances.submitTransaction(actions.slice(i, i + 100));
  }

  async partitionRowKeys(instanceId: string): Promise<string[]> {
    const pk = encodeKey(instanceId);
    const out: string[] = [];
    const it = this.instances.listEntities({ queryOptions: { filter: odata`PartitionKey eq ${pk}`, select: ["RowKey"] } });
    for await (const e of it) out.push(String(e.rowKey));
    return out;
  }

  /** Deletes everything about an instance. */
  async purge(instanceId: string): Promise<number> {
    const pk = encodeKey(instanceId);
    const keys = await this.partitionRowKeys(instanceId);
    if (!keys.includes(INSTANCE_RK)) return 0;
    for (let i = 0; i < keys.length; i += 100) {
      await this.instances.submitTransaction(keys.slice(i, i + 100).map((rk) => ["delete", { partitionKey: pk, rowKey: rk }] as TransactionAction));
    }
    const hist: string[] = [];
    for await (const e of this.history.listEntities({ queryOptions: { filter: odata`PartitionKey eq ${pk}`, select: ["RowKey"] } })) {
      hist.push(String(e.rowKey));
    }
    for (let i = 0; i < hist.length; i += 100) {
      await this.history.submitTransaction(hist.slice(i, i + 100).map((rk) => ["delete", { partitionKey: pk, rowKey: rk }] as TransactionAction));
    }
    return 1;
  }
}

export { INSTANCE_RK };
