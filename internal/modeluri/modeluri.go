// Package modeluri parses the names and URIs MLflow users write: registered
// model names (a workspace model registry name such as "churn", or a Unity
// Catalog name "catalog.schema.model"), run artifact URIs (runs:/<run id>/<path>),
// logged model URIs of MLflow 3 (models:/m-<id>), registry URIs
// (models:/<name>/<version|stage|latest>, models:/<name>@<alias>), stages and
// aliases. Everything here is pure: a task validates its inputs with
// it before any remote call.
//
// Forms follow MLflow's own parsers (mlflow/store/artifact/utils/models.py
// _parse_model_uri, mlflow/store/artifact/runs_artifact_repo.py parse_runs_uri).
package modeluri

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Name is a registered model name. A name with exactly two dots is a Unity
// Catalog name (catalog.schema.model); a name without dots is a workspace
// model registry name. Any other number of dots is refused, so that a typo in
// a Unity Catalog name is not silently taken for a workspace model.
type Name struct {
	Full                   string
	Catalog, Schema, Model string // set for Unity Catalog names
}

// UC reports whether the name is a Unity Catalog three-part name.
func (n Name) UC() bool { return n.Catalog != "" }

// Registry names the registry the model lives in, for messages.
func (n Name) Registry() string {
	if n.UC() {
		return "Unity Catalog"
	}
	return "the workspace model registry"
}

func (n Name) String() string { return n.Full }

// ucPart is what this package accepts for one part of a Unity Catalog name:
// no dots, spaces, slashes or control characters (Unity Catalog forbids them
// in unquoted identifiers).
var ucPart = regexp.MustCompile(`^[^.\s/\x00-\x1f\x7f` + "`" + `]+$`)

// ParseName reads a registered model name.
func ParseName(s string) (Name, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Name{}, fmt.Errorf("is empty")
	case strings.HasPrefix(s, "models:/") || strings.HasPrefix(s, "runs:/"):
		return Name{}, fmt.Errorf("%q is a URI, not a model name: give the name alone (churn, or catalog.schema.model)", s)
	}
	parts := strings.Split(s, ".")
	switch len(parts) {
	case 1:
		if strings.ContainsAny(s, "/:%") || strings.IndexFunc(s, isControl) >= 0 {
			return Name{}, fmt.Errorf("%q is not a model name: a workspace registry name may not contain '/', ':', '%%' or control characters", s)
		}
		return Name{Full: s}, nil
	case 3:
		for _, p := range parts {
			if !ucPart.MatchString(p) {
				return Name{}, fmt.Errorf("%q is not a Unity Catalog model name: each of catalog, schema and model must be non-empty, without spaces, slashes or backquotes", s)
			}
		}
		return Name{Full: s, Catalog: parts[0], Schema: parts[1], Model: parts[2]}, nil
	default:
		return Name{}, fmt.Errorf("%q has %d dot-separated parts: a Unity Catalog model name has three (catalog.schema.model), a workspace model registry name has no dots", s, len(parts))
	}
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// Stages are the workspace model registry stages, spelled as the API wants
// them (case-sensitive on the wire).
var Stages = []string{"None", "Staging", "Production", "Archived"}

// ParseStage returns the stage's canonical spelling, accepting any case.
func ParseStage(s string) (string, bool) {
	for _, st := range Stages {
		if strings.EqualFold(st, strings.TrimSpace(s)) {
			return st, true
		}
	}
	return "", false
}

// alias is what MLflow accepts as an alias name
// (mlflow/utils/validation.py _validate_model_alias_name): letters, digits,
// underscores and dashes, at most 255 characters.
var alias = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

// reservedAlias are alias names MLflow refuses: "latest" and v<number>,
// which would be ambiguous in models:/ URIs.
var reservedAlias = regexp.MustCompile(`(?i)^(latest|v\d+)$`)

// ValidateAlias checks an alias name.
func ValidateAlias(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("is empty")
	case !alias.MatchString(s):
		return fmt.Errorf("%q is not a valid alias: use 1 to 255 letters, digits, underscores (_) and dashes (-)", s)
	case reservedAlias.MatchString(s):
		return fmt.Errorf("%q is reserved: MLflow does not allow 'latest' or v<number> as an alias", s)
	}
	if _, err := strconv.Atoi(s); err == nil {
		return fmt.Errorf("%q is a number: an alias must not be a version number", s)
	}
	return nil
}

// VersionRef says which version of a model to act on: exactly one field is
// set.
type VersionRef struct {
	Number int    // a version number (1, 2, ...)
	Latest bool   // the highest version number
	Stage  string // the version currently in this stage (workspace registry)
	Alias  string // the version this alias points to (Unity Catalog)
}

func (v VersionRef) String() string {
	switch {
	case v.Number > 0:
		return strconv.Itoa(v.Number)
	case v.Latest:
		return "latest"
	case v.Stage != "":
		return "the version in " + v.Stage
	default:
		return "@" + v.Alias
	}
}

// ParseVersionRef reads a version: a number, "latest", a stage name (any
// case) or "@alias", as in MLflow's models:/ URIs.
func ParseVersionRef(s string) (VersionRef, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return VersionRef{}, fmt.Errorf("is empty")
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || strconv.Itoa(n) != s {
			return VersionRef{}, fmt.Errorf("%q is not a version number (1, 2, ...)", s)
		}
		return VersionRef{Number: n}, nil
	}
	if strings.EqualFold(s, "latest") {
		return VersionRef{Latest: true}, nil
	}
	if st, ok := ParseStage(s); ok {
		return VersionRef{Stage: st}, nil
	}
	if a, ok := strings.CutPrefix(s, "@"); ok {
		if err := ValidateAlias(a); err != nil {
			return VersionRef{}, err
		}
		return VersionRef{Alias: a}, nil
	}
	return VersionRef{}, fmt.Errorf("%q is not a version: give a number (3), latest, a stage (Staging) or an alias (@champion)", s)
}

// CheckVersion reports whether ref can name a version of the model n: a stage
// only in the workspace model registry, an alias only in Unity Catalog. An
// empty name (not known yet) accepts every ref.
func (n Name) CheckVersion(ref VersionRef) error {
	switch {
	case n.Full == "":
		return nil
	case ref.Stage != "" && n.UC():
		return fmt.Errorf("%s is a Unity Catalog model, which has no stages: name the version by number, latest or @alias", n.Full)
	case ref.Alias != "" && !n.UC():
		return fmt.Errorf("%s is a workspace model registry model, which has no aliases: name the version by number, latest or stage", n.Full)
	}
	return nil
}

// Source is where a new model version's files come from.
type Source struct {
	URI     string // as written
	RunID   string // runs:/ URIs: the MLflow run
	Path    string // runs:/ URIs: the artifact path inside the run (e.g. "model")
	ModelID string // models:/m-<id> URIs: the MLflow 3 logged model
}

// loggedModelID is an MLflow 3 logged model id: "m-" and letters or digits
// (MLflow makes "m-" and 32 hex digits: mlflow/store/tracking/
// sqlalchemy_store.py create_logged_model). In a models:/ URI it stands
// alone, without a version or alias (mlflow/store/artifact/utils/models.py
// _parse_model_uri: "models:/<model_id>").
var loggedModelID = regexp.MustCompile(`^m-[A-Za-z0-9]{1,64}$`)

// runID is an MLflow run id: 32 hex digits on Databricks; MLflow itself only
// requires letters, digits, '-' and '_' (mlflow/utils/validation.py _RUN_ID_REGEX).
var runID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,255}$`)

// ParseSource reads the model URI a version is registered from:
// runs:/<run id>/<artifact path>, models:/m-<id> (an MLflow 3 logged model),
// or a dbfs:/ folder.
func ParseSource(s string) (Source, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Source{}, fmt.Errorf("is empty")
	}
	if rest, ok := strings.CutPrefix(s, "runs:/"); ok {
		id, p, _ := strings.Cut(rest, "/")
		p = strings.Trim(p, "/")
		if !runID.MatchString(id) {
			return Source{}, fmt.Errorf("%q is not a runs:/ URI: write runs:/<run id>/<artifact path>, e.g. runs:/0f1e2d.../model", s)
		}
		if p == "" {
			return Source{}, fmt.Errorf("%q names no artifact path: write runs:/%s/<artifact path>, e.g. runs:/%s/model", s, id, id)
		}
		if !validPath(p) {
			return Source{}, fmt.Errorf("%q has an invalid artifact path %q", s, p)
		}
		return Source{URI: s, RunID: id, Path: p}, nil
	}
	if rest, ok := strings.CutPrefix(s, "dbfs:/"); ok {
		folder := strings.Trim(rest, "/")
		if folder != "" && validPath(folder) {
			// One spelling per folder (no trailing '/'), so that versions
			// registered from it compare equal by source.
			return Source{URI: "dbfs:/" + folder}, nil
		}
		if folder != "" {
			return Source{}, fmt.Errorf("%q has an invalid folder path %q", s, folder)
		}
	}
	if rest, ok := strings.CutPrefix(s, "models:/"); ok {
		if id := strings.TrimSuffix(rest, "/"); loggedModelID.MatchString(id) {
			return Source{URI: "models:/" + id, ModelID: id}, nil
		}
		if !strings.ContainsAny(rest, "/@") {
			return Source{}, fmt.Errorf("%q is not a logged model URI: a logged model's id starts with m- (models:/m-<id>, the DatabricksTrain output modelUri)", s)
		}
		return Source{}, fmt.Errorf("%q is a registry URI: register from the logged model (models:/m-<id>) or the run (runs:/<run id>/<path>) that logged the model", s)
	}
	return Source{}, fmt.Errorf("%q is not a model URI: give the DatabricksTrain output modelUri (models:/m-<id> or runs:/<run id>/<artifact path>) or a dbfs:/ folder", s)
}

// validPath reports whether every segment of a slash-separated path is a
// name: not empty, not "." or "..", without spaces around it (model /, a
// typo, is not the folder model that the run logged).
func validPath(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." || seg != strings.TrimSpace(seg) {
			return false
		}
	}
	return true
}

// ModelsURI is the registry URI of a version: models:/<name>/<version>.
func ModelsURI(name string, version string) string {
	return "models:/" + name + "/" + version
}
