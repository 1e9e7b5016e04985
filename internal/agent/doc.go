// Package agent is the contract between a Brickferry task and the Azure Pipelines
// agent: the Go counterpart of what azure-pipelines-task-lib does for Node
// tasks, written from the agent's sources rather than ported from the library.
//
// What the agent gives a Node-handler task (microsoft/azure-pipelines-agent
// src/Agent.Worker/Handlers/Handler.cs, NodeHandler.cs) arrives as environment
// variables and is read once into an [Env]:
//
//   - INPUT_<NAME>: every declared input, defaults filled, name upper-cased with
//     '.' and ' ' replaced by '_' ([Inputs] reads and validates them against
//     the task's task.json, see [Definition]);
//   - public variables by the same name rule, secret ones as SECRET_<NAME>
//     ([Env.Variable]);
//   - service connections as ENDPOINT_URL_<id>, ENDPOINT_AUTH_<id>, ... ([Env.Endpoint]);
//   - system and build information ([System]).
//
// A task reports back only through logging commands, `##vso[area.event k=v;]message`
// lines on stdout ([Command], written by [Log]). The result is the single
// task.complete command; the process itself must exit 0 ([Run]).
package agent
