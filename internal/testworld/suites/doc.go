// Package suites holds cross-task test suites that run the built brickferry
// executable the way the Azure Pipelines agent does (package agenttest)
// against https emulated workspaces (package emulator). It has no code of
// its own; the suites prove four contracts every task shares:
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
//   - A killed step is safe to rerun (TestCrash): SIGKILL, sent at a seeded
//     random point after the step's remote work began (anywhere among its
//     further requests, each slowed to 15 ms, sometimes while one is on its
//     way), leaves no handler a chance to clean up. For DatabricksTrain,
//     MLflowPromote register, transition to a stage and to a Unity Catalog
//     alias, BatchScore and ModelServe, the step is then run again, both as
//     a retry of the step (retryCountOnTaskFailure: the same job attempt
//     with the task variables the killed try set) and as the next job
//     attempt. The rerun succeeds and nothing is duplicated or half-made:
//     one Databricks run (the killed step's, still running, is taken over),
//     one MLflow run, one scoring job and one write of its table, one model
//     version (READY, none pending or failed beside it), one holder of the
//     stage or alias, one endpoint config update, and lineage tags that are
//     all those of one pipeline run. MLflowPromote copy's kill -9 test lives
//     with the copy tests in internal/promote.
//   - Two pipeline runs promoting the same model at once leave a consistent
//     registry (TestConcurrency): two processes of different pipeline runs
//     (their own build, plan and job ids, so their own idempotency tokens
//     and lineage) start together, 5 rounds per race with the start order
//     alternating and a seeded half of the requests delayed 10 ms: both
//     register the same training run (one version of it, both report it);
//     both move a different version to Production, archiving the holder
//     (exactly one holder; the others Archived with brickferry_action
//     archived); both move @champion to a different version (exactly one
//     holder). Every version's lineage tags are those of one pipeline run.
//
// Run with go test -race ./internal/testworld/suites/ (the race detector covers this
// package's helpers; the tasks' own code runs in the child processes).
// -suites.seed replays the random points of a run (signal and kill points,
// request latencies), which every suite logs.
package suites
