package target

import (
	"strings"
	"testing"
)

// Red team: a secret put in NAME_FILE instead of NAME (AWS_SECRET_ACCESS_KEY_FILE=wJalr…, a
// swap easily made in a compose file) is repeated by the error, as the file's "name": it
// reaches the plugin's terminal, the sidecar's log and `status`. The error should name the
// variable, not its value (or only say the value is no file's name).
func TestRedTeamEnvOrFileShowsASecretPutInTheFileVariable(t *testing.T) {
	const secret = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"
	t.Setenv("REDTEAM_SECRET", "")
	t.Setenv("REDTEAM_SECRET_FILE", secret)
	_, err := EnvOrFile("REDTEAM_SECRET")
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("the error shows the secret: %v", err)
	}
}
