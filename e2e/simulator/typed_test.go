package simulator

import (
	"testing"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	operatorv1 "github.com/openshift/api/operator/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var longAgo = metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))

// The ingress operator's MergeConditions gives a condition whose reason or message
// changed a new lastTransitionTime even when its status did not
// (cluster-ingress-operator pkg/operator/controller/ingress/status.go).
func TestIngressConditionsMoveOnAnyChange(t *testing.T) {
	list := []operatorv1.OperatorCondition{
		{Type: "Progressing", Status: operatorv1.ConditionTrue, Reason: "A", LastTransitionTime: longAgo},
		{Type: "Available", Status: operatorv1.ConditionTrue, LastTransitionTime: longAgo},
	}
	list = setIngressConds(list,
		cond{Type: "Progressing", Status: "True", Reason: "B"},
		cond{Type: "Available", Status: "True"},
		cond{Type: "Admitted", Status: "True", Reason: "Valid"})
	require.Len(t, list, 3)
	assert.Equal(t, "B", list[0].Reason)
	assert.True(t, list[0].LastTransitionTime.After(longAgo.Time), "a changed reason moves lastTransitionTime")
	assert.Equal(t, longAgo, list[1].LastTransitionTime, "an unchanged condition keeps it")
	assert.Equal(t, "Admitted", list[2].Type)
	assert.False(t, list[2].LastTransitionTime.IsZero(), "a new condition gets one")
}

// ClusterOperators keep lastTransitionTime while the status stays
// (library-go pkg/config/clusteroperator/v1helpers/status.go SetStatusCondition).
func TestClusterOperatorConditionsKeepTheirTransitionTime(t *testing.T) {
	st := &configv1.ClusterOperatorStatus{Conditions: []configv1.ClusterOperatorStatusCondition{
		{Type: configv1.OperatorProgressing, Status: configv1.ConditionTrue, Reason: "A", LastTransitionTime: longAgo},
		{Type: configv1.OperatorAvailable, Status: configv1.ConditionTrue, Reason: "A", LastTransitionTime: longAgo},
	}}
	assert.False(t, setOperatorConds(st, cond{Type: "Available", Status: "True", Reason: "A"}), "nothing changed")
	assert.True(t, setOperatorConds(st,
		cond{Type: "Progressing", Status: "True", Reason: "B"},
		cond{Type: "Available", Status: "False", Reason: "A"}))
	assert.Equal(t, "B", st.Conditions[0].Reason)
	assert.Equal(t, longAgo, st.Conditions[0].LastTransitionTime, "same status: the transition time stays")
	assert.True(t, st.Conditions[1].LastTransitionTime.After(longAgo.Time), "a new status moves it")
}
