package rpc

import "testing"

// The cluster-internal codes stay out of the Catalogue: that is what reserves
// them to cluster members when a server runs with Access.
func TestClusterCodesAreMemberOnly(t *testing.T) {
	a := &Access{}
	for _, code := range []string{
		CodeBeacon, CodeConfigSync, CodeUpdatePartitionConfig, CodeConfigProposal,
		CodePrepare, CodeGroupCheck, CodeRemoveReplica,
		CodeAddLearner, CodeLearn, CodeLearnCompleted, CodeNFSCopy,
	} {
		if _, ok := Catalogue()[code]; ok {
			t.Errorf("%s is in the client Catalogue", code)
		}
		if !a.internal(code) {
			t.Errorf("%s is not reserved to cluster members", code)
		}
	}
	if a.internal(CodeGet) {
		t.Errorf("%s is reserved to cluster members", CodeGet)
	}
}
