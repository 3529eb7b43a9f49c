package sftp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"path"
	"strings"
	"sync"
	"testing"

	sftplib "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// recordingPut records the mode each file was created with (the OPEN request's attributes):
// none means the server's default (OpenSSH: 0666 less its umask, usually 0644).
type recordingPut struct {
	sftplib.FileWriter
	mu    sync.Mutex
	modes map[string]string
	// private: the directories made 0700 (a SETSTAT of their mode) before the file was opened.
	private map[string]bool
	early   map[string]bool // files opened in a directory not (yet) private
}

func (p *recordingPut) Filewrite(r *sftplib.Request) (io.WriterAt, error) {
	mode := "none (the server's default)"
	if r.AttrFlags().Permissions {
		mode = r.Attributes().FileMode().String()
	}
	p.mu.Lock()
	p.modes[r.Filepath] = mode
	if !p.private[path.Dir(r.Filepath)] {
		p.early[r.Filepath] = true
	}
	p.mu.Unlock()
	return p.FileWriter.Filewrite(r)
}

// recordingCmd records which directories were made 0700.
type recordingCmd struct {
	sftplib.FileCmder
	p *recordingPut
}

func (c *recordingCmd) Filecmd(r *sftplib.Request) error {
	if r.Method == "Setstat" && r.AttrFlags().Permissions && r.Attributes().FileMode().Perm() == 0o700 {
		c.p.mu.Lock()
		c.p.private[r.Filepath] = true
		c.p.mu.Unlock()
	}
	return c.FileCmder.Filecmd(r)
}

// Red team: "Backups are readable by their owner only, where the server lets the mode be set"
// (0600). The temporary file is created without a mode, so with the server's default
// (0666 & ~umask: 0644 on OpenSSH), and made 0600 by a SETSTAT one round trip later. Whoever
// shares the target's directory (a group with write access, which must not read backups)
// opens the temporary file in that window (inotify tells when) and, through that handle,
// reads the whole backup as it is written — the later chmod does not close a handle.
func TestRedTeamSFTPTemporaryCreatedWithDefaultMode(t *testing.T) {
	t.Parallel()
	client, keyFile := newSSHKey(t)
	hostKey, _ := newSSHKey(t)
	handlers := sftplib.InMemHandler()
	rec := &recordingPut{FileWriter: handlers.FilePut, modes: map[string]string{}, private: map[string]bool{}, early: map[string]bool{}}
	handlers.FilePut = rec
	handlers.FileCmd = &recordingCmd{FileCmder: handlers.FileCmd, p: rec}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	config := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		if bytes.Equal(key.Marshal(), client.PublicKey().Marshal()) {
			return nil, nil
		}
		return nil, errors.New("unknown key")
	}}
	config.AddHostKey(hostKey)
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go serveRequests(nc, config, handlers)
		}
	}()
	srv := &sshServer{addr: l.Addr().String(), hostKey: hostKey}
	s := srv.target(t, "", keyFile, srv.knownHosts(t, hostKey.PublicKey()))
	if _, err := s.Put(context.Background(), "p/s/a.tar.zst", strings.NewReader("the backup")); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.modes) == 0 {
		t.Fatal("no file was created")
	}
	// Fixed: SFTP's open cannot carry a mode here (pkg/sftp sends none), so each file is made
	// in a hidden directory made 0700 first: no one else can reach it before it is 0600.
	for name, mode := range rec.modes {
		if mode != "-rw-------" && rec.early[name] {
			t.Errorf("%s was created with mode %s in a directory others may reach, made 0600 only afterwards", name, mode)
		}
	}
}

func serveRequests(nc net.Conn, config *ssh.ServerConfig, handlers sftplib.Handlers) {
	defer nc.Close()
	_, chans, reqs, err := ssh.NewServerConn(nc, config)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nch := range chans {
		ch, requests, err := nch.Accept()
		if err != nil {
			return
		}
		go func() {
			for req := range requests {
				ok := req.Type == "subsystem"
				_ = req.Reply(ok, nil)
				if ok {
					_ = sftplib.NewRequestServer(ch, handlers).Serve()
					ch.Close()
				}
			}
		}()
	}
}
