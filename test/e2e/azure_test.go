package e2e

import (
	"fmt"
	"testing"

	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/target/targettest"
)

// TestAzureContract holds the Azure target to the contract (internal/target/targettest)
// against Azurite.
func TestAzureContract(t *testing.T) {
	a := startAzurite(t)
	a.container("contract")
	n := 0
	targettest.Contract(t, func(t *testing.T) target.Target {
		n++
		return a.open(fmt.Sprintf("contract/run%d", n))
	})
}
