/**
 * History events in the shape the durable-functions JS SDK replays (PascalCase fields,
 * node_modules/durable-functions/lib/src/history/*.js; numeric EventType from HistoryEventType.js).
 */
export const EventType = {
  ExecutionStarted: 0,
  ExecutionCompleted: 1,
  ExecutionFailed: 2,
  ExecutionTerminated: 3,
  TaskScheduled: 4,
  TaskCompleted: 5,
  TaskFailed: 6,
  SubOrchestrationInstanceCreated: 7,
  SubOrchestrationInstanceCompleted: 8,
  SubOrchestrationInstanceFailed: 9,
  TimerCreated: 10,
  TimerFired: 11,
  OrchestratorStarted: 12,
  OrchestratorCompleted: 13,
  EventSent: 14,
  EventRaised: 15,
  ContinueAsNew: 16,
  GenericEvent: 17,
  HistoryState: 18,
  ExecutionSuspended: 19,
  ExecutionResumed: 20,
} as const;

export const EventTypeName: Record<number, string> = Object.fromEntries(
  Object.entries(EventType).map(([k, v]) => [v, k]),
);

export interface HistoryEvent {
  EventType: number;
  EventId: number;
  IsPlayed: boolean;
  Timestamp: string;
  Name?: string;
  Input?: string | null;
  Result?: string | null;
  Reason?: string;
  Details?: string;
  TaskScheduledId?: number;
  TimerId?: number;
  FireAt?: string;
  InstanceId?: string;
  OrchestrationStatus?: string;
  FailureDetails?: unknown;
  OrchestrationInstance?: { InstanceId: string; ExecutionId: string };
  ParentInstance?: unknown;
  [key: string]: unknown;
}

export function ev(type: number, timestamp: Date, fields: Partial<HistoryEvent> = {}): HistoryEvent {
  return { EventType: type, EventId: -1, IsPlayed: false, Timestamp: timestamp.toISOString(), ...fields };
}

/** The id a completion-type event refers to, or undefined. */
export function completionKey(e: HistoryEvent): string | undefined {
  switch (e.EventType) {
    case EventType.TaskCompleted:
    case EventType.TaskFailed:
    case EventType.SubOrchestrationInstanceCompleted:
    case EventType.SubOrchestrationInstanceFailed:
      return `task-${e.TaskScheduledId}`;
    case EventType.TimerFired:
      return `timer-${e.TimerId}`;
    case EventType.ExecutionStarted:
      return "start";
    default:
      return undefined;
  }
}

/**
 * History as the Durable HTTP API shows it with showHistory=true: event types by name, no
 * OrchestratorStarted/Completed; inputs and results only with showHistoryOutput=true
 * (azure-functions-durable-extension, HttpApiHandler / DurableOrchestrationClient.ConvertHistoryEvent).
 */
export function historyForApi(events: HistoryEvent[], showOutput: boolean): Record<string, unknown>[] {
  const scheduled = new Map<number, HistoryEvent>();
  const out: Record<string, unknown>[] = [];
  for (const e of events) {
    if (e.EventType === EventType.OrchestratorStarted || e.EventType === EventType.OrchestratorCompleted) continue;
    if (e.EventType === EventType.TaskScheduled || e.EventType === EventType.TimerCreated || e.EventType === EventType.SubOrchestrationInstanceCreated) {
      scheduled.set(e.EventId, e);
    }
    const row: Record<string, unknown> = { EventType: EventTypeName[e.EventType] ?? String(e.EventType), EventId: e.EventId, Timestamp: e.Timestamp };
    for (const k of ["Name", "TaskScheduledId", "TimerId", "FireAt", "Reason", "Details", "InstanceId", "OrchestrationStatus"]) {
      if (e[k] !== undefined) row[k] = e[k];
    }
    if (e.TaskScheduledId !== undefined) {
      const s = scheduled.get(e.TaskScheduledId);
      if (s?.Name) row.FunctionName = s.Name;
      if (s) row.ScheduledTime = s.Timestamp;
    }
    if (e.EventType === EventType.ExecutionStarted || e.EventType === EventType.TaskScheduled) row.FunctionName = e.Name;
    if (showOutput) {
      if (e.Input !== undefined) row.Input = parseMaybe(e.Input);
      if (e.Result !== undefined) row.Result = parseMaybe(e.Result);
    }
    out.push(row);
  }
  return out;
}

export function parseMaybe(s: string | null | undefined): unknown {
  if (s === null || s === undefined || s === "") return null;
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}
