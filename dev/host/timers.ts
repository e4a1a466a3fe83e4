/**
 * Timer triggers. The schedule is NCRONTAB with six fields, seconds first
 * ("{second} {minute} {hour} {day} {month} {day-of-week}"), or a TimeSpan "hh:mm:ss"; it may be an
 * app setting expression "%NAME%" that the host resolves from the environment
 * (learn.microsoft.com/azure/azure-functions/functions-bindings-timer#ncrontab-expressions and
 * functions-bindings-expressions-patterns#binding-expressions---app-settings). Times are UTC unless
 * WEBSITE_TIME_ZONE / TZ says otherwise.
 */
import { Cron } from "croner";
import type { RegisteredFunction } from "./functionsCore";

export function resolveSettingExpression(value: string, env: NodeJS.ProcessEnv): string {
  return value.replace(/%([^%]+)%/g, (_, name: string) => {
    const v = env[name];
    if (v === undefined) throw new Error(`The app setting '${name}' used in '%${name}%' is not set.`);
    return v;
  });
}

export interface Schedule {
  expression: string;
  next(after: Date): Date | undefined;
}

export function parseSchedule(raw: string, env: NodeJS.ProcessEnv): Schedule {
  const expression = resolveSettingExpression(raw, env).trim();
  const span = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})$/.exec(expression);
  if (span) {
    const ms = ((Number(span[1] ?? 0) * 24 + Number(span[2])) * 3600 + Number(span[3]) * 60 + Number(span[4])) * 1000;
    if (ms <= 0) throw new Error(`Invalid timer interval '${expression}'.`);
    return { expression, next: (after) => new Date(after.getTime() + ms) };
  }
  const fields = expression.split(/\s+/);
  if (fields.length !== 6) throw new Error(`The schedule expression '${expression}' is not a six-field NCRONTAB expression.`);
  const tz = env.WEBSITE_TIME_ZONE ?? "UTC";
  const cron = new Cron(expression, { paused: true, timezone: tz === "UTC" ? "Etc/UTC" : tz });
  return { expression, next: (after) => cron.nextRun(after) ?? undefined };
}

/** The timer object a timer trigger receives (PascalCase on the wire; the worker camel-cases it). */
export function timerPayload(isPastDue: boolean, last: Date | undefined, next: Date | undefined): Record<string, unknown> {
  return {
    Schedule: { AdjustForDST: true },
    ScheduleStatus: {
      Last: (last ?? new Date(0)).toISOString(),
      Next: (next ?? new Date(0)).toISOString(),
      LastUpdated: new Date().toISOString(),
    },
    IsPastDue: isPastDue,
  };
}

export class TimerScheduler {
  private readonly handles: NodeJS.Timeout[] = [];
  private stopped = false;

  constructor(
    private readonly fire: (fn: RegisteredFunction, payload: Record<string, unknown>) => Promise<void>,
    private readonly onError: (fn: RegisteredFunction, e: unknown) => void,
  ) {}

  schedule(fn: RegisteredFunction, schedule: Schedule, runOnStartup: boolean): void {
    let last: Date | undefined;
    const arm = (): void => {
      if (this.stopped) return;
      const now = new Date();
      const next = schedule.next(now);
      if (!next) return;
      // setTimeout caps at ~24.8 days; re-arm in steps.
      const delay = Math.min(next.getTime() - now.getTime(), 2 ** 31 - 1);
      const h = setTimeout(() => {
        if (Date.now() + 5 < next.getTime()) return arm();
        const following = schedule.next(new Date(next.getTime() + 1));
        this.fire(fn, timerPayload(false, last, following))
          .catch((e) => this.onError(fn, e))
          .finally(() => {
            last = next;
          });
        arm();
      }, delay);
      h.unref?.();
      this.handles.push(h);
    };
    if (runOnStartup) this.fire(fn, timerPayload(false, undefined, schedule.next(new Date()))).catch((e) => this.onError(fn, e));
    arm();
  }

  stop(): void {
    this.stopped = true;
    for (const h of this.handles) clearTimeout(h);
  }
}
