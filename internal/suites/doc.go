// Package suites holds cross-task test suites that run the built brickops
// executable the way the Azure Pipelines agent does (package agenttest)
// against https emulated workspaces (package emulator). It has no code of
// its own; the suites prove two contracts every task shares:
//
//   - Bad inputs fail before any remote call (TestBadInputs): for every task
//     and command, a malformed input ends the step Failed with exit code 0
//     and one error issue per bad input naming that input (its label and
//     name), and the workspace receives no request at all, so no write.
//   - Cancellation is prompt and safe to rerun (TestCancellation): SIGINT,
//     sent at a seeded random point while a step waits on remote work, ends
//     the step Canceled within 5 s with exit code 0; the remote run is
//     cancelled where Databricks can cancel one (jobs runs/cancel for
//     DatabricksTrain and BatchScore; a register left PENDING is deleted)
//     and a serving config update, which Databricks cannot cancel, is left
//     to finish; a rerun of the step (a new job attempt) then succeeds and
//     exactly one successful run, model version or endpoint exists.
//
// Run with go test -race ./internal/suites/ (the race detector covers this
// package's helpers; the tasks' own code runs in the child processes).
// -suites.seed replays a cancellation schedule.
package suites
