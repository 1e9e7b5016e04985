package azurestandin_test

import (
	"archive/zip"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/azurestandin"
)

const galleryTaskID = "0f6d1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"

// vsix is a minimal extension package as tfx-cli writes one: the VSIX
// manifest, the contributions manifest it lists as an asset, and one task.
// drop leaves a file out.
func vsix(t *testing.T, publisher, version, drop string) []byte {
	t.Helper()
	files := map[string]string{
		"extension.vsixmanifest": `<?xml version="1.0" encoding="utf-8"?>
<PackageManifest Version="2.0.0" xmlns="http://schemas.microsoft.com/developer/vsx-schema/2011" xmlns:d="http://schemas.microsoft.com/developer/vsx-schema-design/2011">
  <Metadata><Identity Language="en-US" Id="brickferry" Publisher="` + publisher + `" Version="` + version + `"/><DisplayName>Brickferry</DisplayName></Metadata>
  <Assets><Asset Type="Microsoft.VisualStudio.Services.Manifest" d:Source="File" Path="extension.vsomanifest" Addressable="true"/></Assets>
</PackageManifest>`,
		"extension.vsomanifest":   `{"contributions":[{"id":"tools","type":"ms.vss-distributed-task.task","properties":{"name":"tasks/ToolsV1"}}]}`,
		"tasks/ToolsV1/task.json": `{"id":"` + galleryTaskID + `","name":"Tools","version":{"Major":1,"Minor":0,"Patch":` + strings.Split(version, ".")[2] + `}}`,
		"tasks/ToolsV1/index.js":  `console.log("tools")`,
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		if name == drop {
			continue
		}
		w, err := zw.Create(name)
		require.NoError(t, err)
		_, err = w.Write([]byte(content))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// TestGalleryIsStrict walks the Marketplace, extension management and task
// download stand-ins through what tfx-cli and the launcher do, and through
// what the real services refuse.
func TestGalleryIsStrict(t *testing.T) {
	az := azurestandin.Start(t, azurestandin.Options{})
	az.AddPublisher("brickferry-test")
	client := &http.Client{Transport: &http.Transport{DialContext: az.DialContext, TLSClientConfig: &tls.Config{RootCAs: az.CA.Pool(), MinVersion: tls.VersionTLS12}}}
	const market = "https://" + azurestandin.MarketplaceHost + "/_apis/gallery"
	install := "https://" + azurestandin.ExtMgmtHost + "/" + az.Organization + "/_apis/extensionmanagement/installedextensionsbyname/brickferry-test/brickferry?api-version=7.1-preview.1"
	tasks := az.CollectionURI + "_apis/distributedtask/tasks/" + galleryTaskID
	pat := "Basic " + base64.StdEncoding.EncodeToString([]byte("any-user:"+az.PersonalAccessToken()))
	job := "Bearer " + az.JobToken

	type call struct {
		name, method, url, auth, accept, contentType string
		body                                         []byte
		status                                       int
		contains                                     string
	}
	octet := "application/octet-stream"
	json72 := "application/json;api-version=7.2-preview.2"
	zip72 := "application/zip;api-version=7.2-preview.1"
	calls := []call{
		{name: "no token", method: "OPTIONS", url: market, status: 401},
		{name: "a job token is not a PAT", method: "OPTIONS", url: market, auth: job, status: 401},
		{name: "location data", method: "OPTIONS", url: market, auth: pat, status: 200, contains: "accountsbyname"},
		{name: "no api-version", method: "GET", url: market + "/publishers/brickferry-test/extensions/brickferry", auth: pat, status: 400},
		{name: "not published yet", method: "GET", url: market + "/publishers/brickferry-test/extensions/brickferry", auth: pat, accept: json72, status: 404},
		{name: "not octet-stream", method: "POST", url: market + "/extensions", auth: pat, accept: json72, contentType: "application/json", body: vsix(t, "brickferry-test", "1.0.1", ""), status: 415},
		{name: "not a zip", method: "POST", url: market + "/extensions", auth: pat, accept: json72, contentType: octet, body: []byte("PK?"), status: 400},
		{name: "a listed asset is missing", method: "POST", url: market + "/extensions", auth: pat, accept: json72, contentType: octet, body: vsix(t, "brickferry-test", "1.0.1", "extension.vsomanifest"), status: 400, contains: "extension.vsomanifest"},
		{name: "a task without task.json", method: "POST", url: market + "/extensions", auth: pat, accept: json72, contentType: octet, body: vsix(t, "brickferry-test", "1.0.1", "tasks/ToolsV1/task.json"), status: 400, contains: "task.json"},
		{name: "another publisher", method: "POST", url: market + "/extensions", auth: pat, accept: json72, contentType: octet, body: vsix(t, "someone-else", "1.0.1", ""), status: 403},
		{name: "create", method: "POST", url: market + "/extensions", auth: pat, accept: json72, contentType: octet, body: vsix(t, "brickferry-test", "1.0.1", ""), status: 200, contains: `"version":"1.0.1"`},
		{name: "create again", method: "POST", url: market + "/extensions", auth: pat, accept: json72, contentType: octet, body: vsix(t, "brickferry-test", "1.0.2", ""), status: 409},
		{name: "update with the same version", method: "PUT", url: market + "/publishers/brickferry-test/extensions/brickferry", auth: pat, accept: json72, contentType: octet, body: vsix(t, "brickferry-test", "1.0.1", ""), status: 400, contains: "Version number must increase"},
		{name: "update another extension's route", method: "PUT", url: market + "/publishers/brickferry-test/extensions/other", auth: pat, accept: json72, contentType: octet, body: vsix(t, "brickferry-test", "1.0.2", ""), status: 400},
		{name: "install before sharing", method: "POST", url: install, auth: pat, status: 404},
		{name: "share with another organization", method: "POST", url: market + "/publisher/brickferry-test/extension/brickferry/accountsbyname/fabrikam", auth: pat, accept: json72, status: 404},
		{name: "share", method: "POST", url: market + "/publisher/brickferry-test/extension/brickferry/accountsbyname/" + az.Organization, auth: pat, accept: json72, status: 200},
		{name: "tasks before installing", method: "GET", url: tasks + "/1.0.1", auth: job, accept: zip72, status: 404},
		{name: "install with the job token", method: "POST", url: install, auth: job, status: 401},
		{name: "install", method: "POST", url: install, auth: pat, status: 200, contains: `"version":"1.0.1"`},
		{name: "install again", method: "POST", url: install, auth: pat, status: 409, contains: "TF1590010"},
		{name: "task zip without the job token", method: "GET", url: tasks + "/1.0.1", auth: pat, accept: zip72, status: 401},
		{name: "task zip, API version too new", method: "GET", url: tasks + "/1.0.1", auth: job, accept: "application/zip;api-version=8.0", status: 400},
		{name: "task zip", method: "GET", url: tasks + "/1.0.1", auth: job, accept: zip72, status: 200, contains: "task.json"},
		{name: "update", method: "PUT", url: market + "/publishers/brickferry-test/extensions/brickferry", auth: pat, accept: json72, contentType: octet, body: vsix(t, "brickferry-test", "1.0.2", ""), status: 200},
		{name: "the old version's task is gone", method: "GET", url: tasks + "/1.0.1", auth: job, accept: zip72, status: 404},
		{name: "the task's versions, camelCase", method: "GET", url: tasks + "?allversions=true", auth: job, accept: "application/json;api-version=7.2-preview.1", status: 200, contains: `"version":{"isTest":false,"major":1,"minor":0,"patch":2}`},
	}
	for _, c := range calls {
		req, err := http.NewRequest(c.method, c.url, bytes.NewReader(c.body))
		require.NoError(t, err)
		for k, v := range map[string]string{"Authorization": c.auth, "Accept": c.accept, "Content-Type": c.contentType} {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		res, err := client.Do(req)
		require.NoError(t, err, c.name)
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		_ = res.Body.Close()
		assert.Equal(t, c.status, res.StatusCode, "%s: %s", c.name, body)
		assert.Contains(t, string(body), c.contains, c.name)
		if c.name == "task zip" {
			z, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
			require.NoError(t, err)
			var names []string
			for _, f := range z.File {
				names = append(names, f.Name)
			}
			assert.ElementsMatch(t, []string{"task.json", "index.js"}, names, "the task folder's files at the root")
		}
	}
	state, ok := az.Extension("brickferry-test", "brickferry")
	require.True(t, ok)
	assert.Equal(t, azurestandin.ExtensionState{Versions: []string{"1.0.2", "1.0.1"}, SharedWith: []string{az.Organization}, Installed: true}, state)
	assert.Contains(t, az.Secrets(), az.PersonalAccessToken())
}
