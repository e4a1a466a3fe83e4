import { daysToEwsShutdown, EWS_SHUTDOWN_WARNING_DAYS } from "../../src/domain/ews";

/**
 * What a freshly onboarded, fully working site's health is today. The end-to-end tests run on the
 * real clock, and from EWS_SHUTDOWN_WARNING_DAYS before Exchange Online's EWS shutdown every site is
 * at risk (src/domain/health.ts): the expectation follows the calendar instead of failing on that day.
 * After the shutdown itself EWS is retired and no site is mail-ready; these tests then need the
 * Graph-based permission profile (issue 8, item 5).
 */
export function workingSiteHealth(now = new Date()): { state: "healthy" | "atRisk"; problems: unknown } {
  return daysToEwsShutdown(now) > EWS_SHUTDOWN_WARNING_DAYS
    ? { state: "healthy", problems: [] }
    : { state: "atRisk", problems: [expect.stringMatching(/EWS|Exchange Web Services/)] };
}
