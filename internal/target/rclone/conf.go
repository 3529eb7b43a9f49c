package rclone

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// EnvConfig names rclone's config file, as rclone itself reads it.
const EnvConfig = "RCLONE_CONFIG"

// configFile says which rclone.conf to read and where it was named, for messages.
func (c Config) configFile() (file, source string, err error) {
	if c.ConfigFile != "" {
		return c.ConfigFile, "the config file given", nil
	}
	if c.CredentialsEnv != "" {
		if v := strings.TrimSpace(os.Getenv(c.CredentialsEnv + "_" + EnvConfig)); v != "" {
			return v, c.CredentialsEnv + "_" + EnvConfig, nil
		}
	}
	if v := strings.TrimSpace(os.Getenv(EnvConfig)); v != "" {
		return v, EnvConfig, nil
	}
	// rclone's own default locations, in its order.
	var tried []string
	if xdg := os.Getenv("XDG_CONFIG_HOME"); xdg != "" {
		tried = append(tried, filepath.Join(xdg, "rclone", "rclone.conf"))
	}
	home, herr := os.UserHomeDir()
	if herr == nil {
		tried = append(tried, filepath.Join(home, ".config", "rclone", "rclone.conf"), filepath.Join(home, ".rclone.conf"))
	}
	for _, f := range tried {
		if _, err := os.Stat(f); err == nil {
			return f, "rclone's default location", nil
		}
	}
	return "", "", fmt.Errorf("no rclone.conf found: set %s (tried %s)", EnvConfig, strings.Join(tried, ", "))
}

// readSection reads the settings of remote from an rclone.conf (an INI file).
func readSection(file, remote string) (map[string]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseSection(f, remote)
}

var errEncrypted = errors.New("the config file is encrypted (RCLONE_ENCRYPT_V0): decrypt it, or keep the backups' remote in a plain one readable only by the sidecar")

// parseSection finds remote's section in an INI stream: "key = value" lines, comments
// starting with # or ;.
func parseSection(r io.Reader, remote string) (map[string]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20) // tokens are long lines
	var section map[string]string
	in := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "RCLONE_ENCRYPT_V0:"):
			return nil, errEncrypted
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			in = strings.TrimSpace(line[1:len(line)-1]) == remote
			if in && section == nil {
				section = map[string]string{}
			}
		case in:
			k, v, ok := strings.Cut(line, "=")
			if ok {
				section[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return section, nil
}
