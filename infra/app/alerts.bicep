// Alert rules on the app's structured logs (Log Analytics, workspace-based Application Insights).
//
// The app writes one JSON object per log line through src/observability.ts logEvent():
//   {"event": "...", "site": "<host>", "step": "...", "instanceId": "...", "outcome": "...", ...}
// Application Insights stores it as the Message of an AppTraces row. The events these rules need:
//   onboarding.finished / rotation.finished   outcome "failed" (or "succeeded"), step = failing step
//   secret.expiry                             one per managed secret per sweep: expiresOn (ISO 8601), daysLeft
//   sweep.started / sweep.finished            the rotation sweep ran
//   siteNotMailReady                          one per site per sweep whose app Exchange Online does not let use EWS
// Rules that can also use what the platform logs do so, so a missing app log does not hide a failure:
// the Durable extension logs "<id>: Function '<name> (Orchestrator)' failed with an error. ..."
// (azure-functions-durable-extension EndToEndTraceHelper.FunctionFailed), and every function
// invocation is an AppRequests row named after the function.
// Rule schema: learn.microsoft.com/azure/templates/microsoft.insights/2022-06-15/scheduledqueryrules.

param location string
param tags object
param resourceToken string
@description('Log Analytics workspace behind Application Insights.')
param workspaceId string
@description('Email for notifications; empty: no action group.')
param alertEmail string
@description('Name the timer trigger is registered under (src/functions).')
param sweepFunctionName string = 'rotationSweep'

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: 'ag-${resourceToken}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'creatio-o365'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

var actions = empty(alertEmail) ? {} : { actionGroups: [actionGroup.id] }

// Parses the structured lines once; every rule starts from it.
var events = 'let events = AppTraces | where Message startswith "{" and Message has "\\"event\\"" | extend e = parse_json(Message) | extend event = tostring(e.event), site = tostring(e.site), step = tostring(e.step), instanceId = tostring(e.instanceId), outcome = tostring(e.outcome);'

resource failedRunAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: 'alert-failed-onboarding-or-rotation-${resourceToken}'
  location: location
  tags: tags
  properties: {
    displayName: 'creatio-o365-oauth: onboarding or rotation failed'
    description: 'An onboardTenant or rotateSecret orchestration failed. Rows name the site, the failing step and the instance id; GET /api/tenants/{host} shows the error. A failed rotation keeps the old secret, so mail sync still works until it expires.'
    severity: 1
    enabled: true
    scopes: [workspaceId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: '${events} let structured = events | where event in ("onboarding.finished", "rotation.finished") and outcome == "failed" | project TimeGenerated, event, site, step, instanceId, detail = tostring(e.error); let durable = AppTraces | where Message has "failed with an error" and Message has "(Orchestrator)" and (Message has "onboardTenant" or Message has "rotateSecret") | project TimeGenerated, event = "durable.orchestrator.failed", site = "", step = "", instanceId = tostring(split(Message, ":")[0]), detail = Message; union structured, durable'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: actions
  }
}

resource expiringSecretAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: 'alert-secret-expires-within-7-days-${resourceToken}'
  location: location
  tags: tags
  properties: {
    displayName: 'creatio-o365-oauth: a Creatio site\'s client secret expires within 7 days, or it has none'
    description: 'The latest sweep saw a site whose Creatio holds a client secret that expires in under 7 days (rotation has not happened in time), or holds none of its app (an onboarding failed before Creatio got it). GET /api/tenants/{host} names the cause; rotate by hand: POST /api/tenants/{host}/rotate.'
    severity: 2
    enabled: true
    scopes: [workspaceId]
    evaluationFrequency: 'PT6H'
    windowSize: 'P2D'
    criteria: {
      allOf: [
        {
          query: '${events} events | where event == "secret.expiry" | summarize arg_max(TimeGenerated, e) by site | extend expiresOn = todatetime(e.expiresOn), daysLeft = todouble(e.daysLeft), creatioConfigured = tobool(e.creatioConfigured) | where expiresOn < now() + 7d or creatioConfigured == false | project site, expiresOn, daysLeft, creatioConfigured'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: actions
  }
}

resource notMailReadyAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: 'alert-site-not-mail-ready-${resourceToken}'
  location: location
  tags: tags
  properties: {
    displayName: 'creatio-o365-oauth: Exchange Online does not let a site\'s app use EWS'
    description: 'The latest sweep found a site whose app is not in the tenant\'s EwsAllowedAppIDs, whose tenant has EWS disabled, whose EWS access could not be read (the identity lacks Exchange.ManageAsApp or a directory role), or EWS was retired: Creatio\'s mail cannot sync. Rows carry the PowerShell an Exchange administrator runs (fix); GET /api/tenants/{host} shows mail.'
    severity: 2
    enabled: true
    scopes: [workspaceId]
    evaluationFrequency: 'PT6H'
    windowSize: 'P2D'
    criteria: {
      allOf: [
        {
          query: '${events} let lastSweep = toscalar(events | where event == "sweep.started" | summarize max(TimeGenerated)); events | where event == "siteNotMailReady" and TimeGenerated >= lastSweep | summarize arg_max(TimeGenerated, e) by site | project site, ews = tostring(e.outcome), appId = tostring(e.appId), reason = tostring(e.reason), fix = tostring(e.fix)'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: actions
  }
}

resource sweepMissingAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: 'alert-sweep-not-succeeded-26h-${resourceToken}'
  location: location
  tags: tags
  properties: {
    displayName: 'creatio-o365-oauth: no rotation sweep succeeded in 26 hours'
    description: 'No ${sweepFunctionName} run ended with sweep.finished outcome succeeded in 26 hours (the schedule is daily): the app is not running, ROTATION_SCHEDULE is wrong, the app settings are invalid (the timer then logs "Invalid app settings: ..." and does nothing, which Functions counts as a successful invocation), or Key Vault could not be listed (sweep.finished outcome failed names the error). Right after the first deployment this fires until the first sweep; run it once by hand (README, Deploy to Azure).'
    severity: 2
    enabled: true
    scopes: [workspaceId]
    evaluationFrequency: 'PT1H'
    windowSize: 'P2D'
    criteria: {
      allOf: [
        {
          query: '${events} events | where event == "sweep.finished" and outcome == "succeeded" and TimeGenerated > ago(26h) | summarize runs = count() | where runs == 0'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: actions
  }
}
