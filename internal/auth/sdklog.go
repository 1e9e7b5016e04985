package auth

import (
	"context"
	"fmt"

	"github.com/databricks/databricks-sdk-go/logger"

	"github.com/brickferry/brickferry/internal/agent"
)

// sdkLogger writes databricks-sdk-go's log lines as the task's debug output.
// The SDK logs request and response bodies at debug level, with secrets in
// known fields redacted; headers are only logged with Config.DebugHeaders,
// which Brickferry never sets. Our Log masks every registered secret as well.
type sdkLogger struct{ log *agent.Log }

func (l sdkLogger) Enabled(_ context.Context, level logger.Level) bool {
	return l.log != nil && l.log.DebugEnabled() && level >= logger.LevelDebug
}

func (l sdkLogger) write(level string, format string, v []any) {
	if l.log == nil {
		return
	}
	l.log.Debug("databricks-sdk %s: %s", level, fmt.Sprintf(format, v...))
}

func (l sdkLogger) Tracef(_ context.Context, format string, v ...any) {}
func (l sdkLogger) Debugf(ctx context.Context, format string, v ...any) {
	if l.Enabled(ctx, logger.LevelDebug) {
		l.write("debug", format, v)
	}
}
func (l sdkLogger) Infof(_ context.Context, format string, v ...any)  { l.write("info", format, v) }
func (l sdkLogger) Warnf(_ context.Context, format string, v ...any)  { l.write("warning", format, v) }
func (l sdkLogger) Errorf(_ context.Context, format string, v ...any) { l.write("error", format, v) }

// withSDKLogger attaches the logger to ctx; the SDK takes the logger of the
// request's context before its global one (logger.Get).
func withSDKLogger(ctx context.Context, log *agent.Log) context.Context {
	return logger.NewContext(ctx, sdkLogger{log: log})
}

// QuietSDKLogger replaces databricks-sdk-go's global logger, which writes
// INFO lines to stderr, with one that discards everything. The SDK offers no
// other way for the few lines it logs without a request context (config
// loading, a response header it cannot parse). Call it once, from main,
// before any task runs: it is the only global Brickferry changes. Lines logged
// with a request context go to the task's debug output (Workspace.Context).
func QuietSDKLogger() {
	logger.DefaultLogger = sdkLogger{}
}
