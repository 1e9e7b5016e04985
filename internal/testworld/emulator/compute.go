package emulator

import (
	"maps"
	"net/http"
	"slices"

	"github.com/databricks/databricks-sdk-go/service/compute"
)

// Clusters, instance pools and cluster policies, read-only: tests add them
// with AddCluster, AddInstancePool and AddClusterPolicy; job tasks that
// reference them are not checked against them.

type computeState struct {
	clusters map[string]compute.ClusterDetails
	pools    map[string]compute.GetInstancePool
	policies map[string]compute.Policy
}

func newComputeState() computeState {
	return computeState{clusters: map[string]compute.ClusterDetails{}, pools: map[string]compute.GetInstancePool{}, policies: map[string]compute.Policy{}}
}

// AddClusterPolicy makes policies/clusters/get know p (by p.PolicyId).
func (ws *Workspace) AddClusterPolicy(p compute.Policy) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.compute.policies[p.PolicyId] = p
}

// AddCluster makes clusters/get know c (by c.ClusterId).
func (ws *Workspace) AddCluster(c compute.ClusterDetails) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.compute.clusters[c.ClusterId] = c
}

// AddInstancePool makes instance-pools/get know p (by p.InstancePoolId).
func (ws *Workspace) AddInstancePool(p compute.GetInstancePool) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.compute.pools[p.InstancePoolId] = p
}

// azureNodeTypes is the node type catalog clusters/list-node-types answers:
// a few Azure VM sizes with their cores, memory and temporary (local) disk
// as Microsoft's VM size pages list them (Fsv1, DSv2, Dsv5/Ddv5, Edv5,
// NCasT4_v3 series), the disk counted as one local disk.
var azureNodeTypes = []compute.NodeType{
	azureNode("Standard_D2s_v5", "General Purpose", 2, 8, 0, 0),
	azureNode("Standard_F4s", "Compute Optimized", 4, 8, 16, 0),
	azureNode("Standard_DS3_v2", "General Purpose", 4, 14, 28, 0),
	azureNode("Standard_D4ds_v5", "General Purpose", 4, 16, 150, 0),
	azureNode("Standard_E4ds_v5", "Memory Optimized", 4, 32, 150, 0),
	azureNode("Standard_NC4as_T4_v3", "GPU Accelerated", 4, 28, 180, 1),
}

func azureNode(id, category string, cores, memoryGB, diskGB, gpus int) compute.NodeType {
	nt := compute.NodeType{
		NodeTypeId: id, InstanceTypeId: id, Category: category, Description: id,
		NumCores: float64(cores), MemoryMb: memoryGB * 1024, NumGpus: gpus,
		NodeInstanceType: &compute.NodeInstanceType{InstanceTypeId: id},
	}
	if diskGB > 0 {
		nt.NodeInstanceType.LocalDisks = 1
		nt.NodeInstanceType.LocalDiskSizeGb = diskGB
	}
	return nt
}

func (ws *Workspace) computeRoutes() {
	// Every cluster added, in one page, by id: filter_by, sort_by and paging
	// are not modelled (a page_token the emulator never handed out is refused).
	handle(ws, "GET /api/2.1/clusters/list", func(r *http.Request, req *compute.ListClustersRequest) (any, *apiError) {
		if req.PageToken != "" {
			return nil, invalidParam("Invalid page token: %s", req.PageToken)
		}
		resp := &compute.ListClustersResponse{}
		for _, id := range slices.Sorted(maps.Keys(ws.compute.clusters)) {
			resp.Clusters = append(resp.Clusters, ws.compute.clusters[id])
		}
		return resp, nil
	})
	handle(ws, "GET /api/2.1/clusters/list-node-types", func(r *http.Request, req *struct{}) (any, *apiError) {
		return &compute.ListNodeTypesResponse{NodeTypes: slices.Clone(azureNodeTypes)}, nil
	})
	handle(ws, "GET /api/2.1/clusters/get", func(r *http.Request, req *compute.GetClusterRequest) (any, *apiError) {
		c, ok := ws.compute.clusters[req.ClusterId]
		if !ok {
			// 400 + this message is what the SDK maps to ErrResourceDoesNotExist
			// (apierr/error_overrides.go).
			return nil, invalidParam("Cluster %s does not exist", req.ClusterId)
		}
		return &c, nil
	})
	handle(ws, "GET /api/2.0/instance-pools/get", func(r *http.Request, req *compute.GetInstancePoolRequest) (any, *apiError) {
		p, ok := ws.compute.pools[req.InstancePoolId]
		if !ok {
			return nil, notFound("Can't find an instance pool with id: %s.", req.InstancePoolId)
		}
		return &p, nil
	})
	// GET /api/2.0/policies/clusters/get?policy_id= (databricks-sdk-go
	// service/compute impl.go, ClusterPolicies.Get); an unknown id is a 404,
	// as databricks/cli's test server answers it
	// (libs/testserver/cluster_policies.go ClusterPoliciesGet).
	handle(ws, "GET /api/2.0/policies/clusters/get", func(r *http.Request, req *compute.GetClusterPolicyRequest) (any, *apiError) {
		p, ok := ws.compute.policies[req.PolicyId]
		if !ok {
			return nil, notFound("Cluster policy %s does not exist.", req.PolicyId)
		}
		return &p, nil
	})
}
