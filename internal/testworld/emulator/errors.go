package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// apiError is an error answer in Databricks' REST error shape
// {"error_code": "...", "message": "..."}, which databricks-sdk-go's apierr
// package maps to its sentinel errors (apierr.ErrResourceDoesNotExist, ...).
type apiError struct {
	Status     int    `json:"-"`
	ErrorCode  string `json:"error_code"`
	Message    string `json:"message"`
	RetryAfter int    `json:"-"` // seconds; 0 = no Retry-After header
}

func (e *apiError) Error() string { return e.ErrorCode + ": " + e.Message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, ErrorCode: code, Message: fmt.Sprintf(format, args...)}
}

// The error codes and HTTP statuses Databricks uses
// (https://docs.databricks.com/api/workspace/introduction, "Error handling").
func notFound(format string, args ...any) *apiError {
	return errorf(http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", format, args...)
}

func alreadyExists(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS", format, args...)
}

// ucAlreadyExists is Unity Catalog's answer for an object that exists: 409
// ALREADY_EXISTS, not the workspace APIs' 400 RESOURCE_ALREADY_EXISTS.
// Sources: mlflow/mlflow PR 8219 ("Allow model registry client to accept
// ALREADY_EXISTS error code": the UC model registry "has the error code 409
// rather than 400"), after which MLflow's register_model treats both codes
// alike (mlflow/tracking/_model_registry/fluent.py _register_model); the open
// source Unity Catalog server answers ALREADY_EXISTS "Registered model
// already exists" for the same route (unitycatalog/unitycatalog
// server/src/main/java/io/unitycatalog/server/persist/ModelRepository.java);
// MLflow maps ALREADY_EXISTS to 409 (mlflow/protos/databricks_pb2 ErrorCode,
// ERROR_CODE_TO_HTTP_STATUS in mlflow/exceptions.py).
func ucAlreadyExists(format string, args ...any) *apiError {
	return errorf(http.StatusConflict, "ALREADY_EXISTS", format, args...)
}

func invalidParam(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", format, args...)
}

func invalidState(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "INVALID_STATE", format, args...)
}

func permissionDenied(format string, args ...any) *apiError {
	return errorf(http.StatusForbidden, "PERMISSION_DENIED", format, args...)
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	writeJSON(w, e.Status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = json.Marshal(&apiError{ErrorCode: "INTERNAL_ERROR", Message: "emulator: encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
