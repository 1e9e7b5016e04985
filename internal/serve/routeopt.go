package serve

import (
	"context"
	"fmt"
	"strings"

	"github.com/databricks/databricks-sdk-go/config/experimental/auth/dataplane"
	"github.com/databricks/databricks-sdk-go/service/serving"
	"golang.org/x/oauth2"
)

// Route-optimized endpoints (CreateServingEndpoint.route_optimized) are
// queried on their own URL (the endpoint's endpoint_url, and
// data_plane_info.query_info.endpoint_url) with OAuth tokens only:
// "Personal access tokens are not supported", and endpoints created since
// 2025-09-22 answer only there (Microsoft Learn, "Query route-optimized
// serving endpoints"). Route optimization is chosen when the endpoint is
// created and cannot be changed after (Databricks docs, "Configure route
// optimization on serving endpoints").
//
// The token is obtained as databricks-sdk-go's ServingEndpointsDataPlaneAPI
// does (config/experimental/auth/dataplane): the workspace's OAuth token is
// exchanged at /oidc/v1/token (jwt-bearer grant) for one scoped by the
// endpoint's authorization_details. That needs an OAuth workspace token:
// Microsoft Entra ID (Azure Resource Manager connection) or a Databricks
// OAuth service principal (service connection or Key Vault with an OAuth
// client); a personal access token cannot be exchanged.

// routeOptimized reports whether the endpoint is (or, when it does not
// exist yet, will be) route-optimized, and checks that the connection can
// query it. It runs before anything is written.
func (s *step) routeOptimized(ep *serving.ServingEndpointDetailed) error {
	want := s.o.RouteOptimized
	if ep != nil {
		s.log.SetOutput("endpointUrl", s.invocationsURL(ep))
		if want && !ep.RouteOptimized {
			s.log.Warning("endpoint %s exists without route optimization, which can only be chosen when an endpoint is created: it keeps serving on the workspace URL (delete it and run again to create it route-optimized)", s.o.Endpoint)
		}
		if !want && ep.RouteOptimized {
			s.log.Info("Endpoint %s is route-optimized: it is queried on its own URL.", s.o.Endpoint)
		}
		want = ep.RouteOptimized
	}
	if !want || s.oauth {
		return nil
	}
	msg := fmt.Sprintf("endpoint %s is route-optimized, so it is queried on its own URL with an OAuth token only, and this connection (%s) gives a personal access token, which Databricks does not accept there", s.o.Endpoint, s.principal)
	if s.o.SmokeTest {
		return fmt.Errorf("%s: connect with an Azure Resource Manager connection (Microsoft Entra ID) or an OAuth service principal (Databricks service connection or Key Vault with an OAuth client), or turn the smoke test off; nothing was changed", msg)
	}
	s.log.Warning("%s; the smoke test is off, so the step does not query it, but its clients need OAuth tokens", msg)
	return nil
}

// invocationsURL is where clients query the endpoint: its route-optimized
// URL when it has one.
func (s *step) invocationsURL(ep *serving.ServingEndpointDetailed) string {
	if ep != nil && ep.RouteOptimized {
		if info := queryInfo(ep); info != nil && info.EndpointUrl != "" {
			return info.EndpointUrl
		}
		if ep.EndpointUrl != "" {
			return ep.EndpointUrl
		}
	}
	return strings.TrimSuffix(s.c.Config.Host, "/") + invocationsPath(s.o.Endpoint)
}

func queryInfo(ep *serving.ServingEndpointDetailed) *serving.DataPlaneInfo {
	if ep == nil || ep.DataPlaneInfo == nil {
		return nil
	}
	return ep.DataPlaneInfo.QueryInfo
}

// endpointQuery is how the smoke test queries the endpoint: on the
// workspace URL, or on the route-optimized URL with a token obtained for it.
// A token that cannot be obtained is the step's error, not a failed smoke
// test: the model was not queried.
func (s *step) endpointQuery(ctx context.Context, ep *serving.ServingEndpointDetailed) (query, error) {
	if ep == nil || !ep.RouteOptimized {
		return workspaceQuery(s.c, s.o.Endpoint), nil
	}
	info := queryInfo(ep)
	if info == nil || info.EndpointUrl == "" || info.AuthorizationDetails == "" {
		return nil, fmt.Errorf("endpoint %s is route-optimized but Databricks gave no data_plane_info.query_info to query it with", s.o.Endpoint)
	}
	ts := dataplane.NewEndpointTokenSource(s.c, s.c.Config.GetTokenSource())
	tok, err := ts.Token(ctx, info.EndpointUrl, info.AuthorizationDetails)
	if err != nil {
		return nil, fmt.Errorf("getting an OAuth token for the route-optimized URL of endpoint %s (the workspace token of %s is exchanged at /oidc/v1/token for one scoped to the endpoint): %w; the endpoint was left as it is", s.o.Endpoint, s.principal, err)
	}
	s.log.Info("Obtained an OAuth token for the route-optimized URL of endpoint %s.", s.o.Endpoint)
	return dataPlaneQuery(s.c.Config.HTTPTransport, info.EndpointUrl, &oauth2.Token{AccessToken: tok.AccessToken, TokenType: tok.TokenType, Expiry: tok.Expiry}), nil
}
