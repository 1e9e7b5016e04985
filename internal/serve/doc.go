// Package serve is the ModelServe@1 task: it deploys a registered model
// version to a Databricks Model Serving endpoint, waits for it, smoke-tests
// it and rolls back when that fails.
//
// Contract (docs/tasks/ModelServe.md has the user's view):
//
//   - Every input is read into [Options] and validated before any remote
//     call: endpoint name, model version number, traffic 1..100, workload
//     size and type, environment variables and secret references, the smoke
//     test body (valid JSON, one of dataframe_split, dataframe_records,
//     inputs, instances, with rows).
//   - The endpoint is created, or its config replaced with one that serves
//     the version (served entity "<model>-<version>", dots of a Unity
//     Catalog name as dashes). With 100 % traffic the new config holds only
//     that entity; with less it holds the entity with the most traffic
//     served now plus the new one (a canary). A config equal to the one
//     served (entities, settings, traffic) is not sent again.
//   - An update already in progress is never overwritten: the task waits for
//     it or fails, as ifUpdateInProgress says. databricks-sdk-go's waiter
//     only waits for NOT_UPDATING (PLATFORM-FACTS.md); this package's waiter
//     also waits for READY, logs every state change and keeps the endpoint
//     on UPDATE_FAILED.
//   - On UPDATE_FAILED the new entity's build and server logs are printed
//     (neutralised: they come from the model's container). Databricks keeps
//     the previous config serving when an update fails, so the task checks
//     that it does (rolledBack=true) instead of sending it again; only if the
//     endpoint serves something else is the previous config put back.
//   - On a failed smoke test the previous config is put back (input
//     rollback, default on) and waited for. An endpoint the step created has
//     no previous config: it is left as it is.
//   - AI Gateway (aigateway.go): inference tables, usage tracking and rate
//     limits are put with PutAiGateway once the endpoint is READY, merged
//     with what it has; nothing is sent when no such input is given or the
//     endpoint has them already. The inference table's schema is checked
//     before any write; a legacy auto_capture_config is never sent on a new
//     endpoint.
//   - A canary (trafficPercent below 100) with canaryMinutes is watched on
//     the endpoint's own metrics (canary.go) on the step's clock, then
//     promoted to 100 %, rolled back, or left as canaryTooLittleTraffic
//     says when it got too little traffic to judge.
//   - A route-optimized endpoint (routeopt.go) is smoke-tested on its own
//     URL with a token exchanged for it; a connection with a personal
//     access token is refused before any write.
//   - Cancellation (SIGINT from the agent): waiting stops at once. A config
//     update that is running is left running and is not rolled back:
//     Databricks has no call to cancel a config update, and refuses a new
//     config (the rollback) until the running one ends, which takes minutes
//     while the agent kills the task 10 seconds after SIGINT. A warning says
//     so; the next run waits for that update before deploying.
package serve
