package testbed

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestTXTValue(t *testing.T) {
	for in, want := range map[string]string{
		`"abc"`:            "abc",
		`"two" "parts"`:    "twoparts",
		`"say \"hi\""`:     `say "hi"`,
		`"back\\slash"`:    `back\slash`,
		`"octal\052star"`:  "octal*star",
		`unquoted-value`:   "unquoted-value",
		`  "padded"  `:     "padded",
		`"with space" "x"`: "with spacex",
	} {
		assert.Equal(t, want, txtValue(in), "txtValue(%s)", in)
	}
}

func TestDefaultFeatureSet(t *testing.T) {
	for name, want := range map[string]bool{
		"0000_10_config-operator_01_oauths.crd.yaml":                           true,
		"0000_10_config-operator_01_apiservers-Default.crd.yaml":               true,
		"0000_10_config-operator_01_schedulers-SelfManagedHA-Default.crd.yaml": true,
		"0000_10_config-operator_01_apiservers-TechPreviewNoUpgrade.crd.yaml":  false,
		"0000_10_config-operator_01_apiservers-DevPreviewNoUpgrade.crd.yaml":   false,
		"0000_10_config-operator_01_apiservers-CustomNoUpgrade.crd.yaml":       false,
		"0000_10_config-operator_01_apiservers-OKD.crd.yaml":                   false,
		"0000_10_config-operator_01_schedulers-Hypershift.crd.yaml":            false,
		"0000_50_ingress_00_ingresscontrollers-Default.crd.yaml":               true,
		"doc.go": false,
	} {
		assert.Equal(t, want, defaultFeatureSet(name), name)
	}
}
