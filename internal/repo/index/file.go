package index

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/repo/blob"
	"github.com/docker-backup/docker-backup/internal/repo/pack"
)

// Pack is one pack as an index file lists it.
type Pack struct {
	ID    blob.ID      `json:"id"`
	Size  int64        `json:"size"`
	Blobs []pack.Entry `json:"-"`
}

// File is the content of one index file.
type File struct {
	Packs []Pack `json:"packs"`
}

type fileJSON struct {
	Version int        `json:"version"`
	Packs   []packJSON `json:"packs"`
}

type packJSON struct {
	ID    blob.ID    `json:"id"`
	Size  int64      `json:"size"`
	Blobs []blobJSON `json:"blobs"`
}

type blobJSON struct {
	ID     blob.ID `json:"id"`
	Type   string  `json:"type"`
	Comp   uint8   `json:"comp"`
	Offset uint32  `json:"offset"`
	Length uint32  `json:"length"`
	Raw    uint32  `json:"raw_length"`
}

// MaxFile bounds an index file's plaintext.
const MaxFile = 256 << 20

// Encode returns an index file's stored bytes: JSON, compressed, sealed.
func Encode(k *blob.Keys, signer *artifact.SigningKey, f File) ([]byte, error) {
	if signer == nil {
		return nil, errors.New("no signing key to sign the index file with")
	}
	j := fileJSON{Version: 1}
	for _, p := range f.Packs {
		pj := packJSON{ID: p.ID, Size: p.Size}
		for _, e := range p.Blobs {
			pj.Blobs = append(pj.Blobs, blobJSON{ID: e.ID, Type: e.Type.String(), Comp: e.Comp, Offset: e.Offset, Length: e.Length, Raw: e.Raw})
		}
		j.Packs = append(j.Packs, pj)
	}
	body, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	env, err := json.Marshal(envelope{Version: 1, Index: body, Signature: signer.SignBytes(purpose, body)})
	if err != nil {
		return nil, err
	}
	return k.Seal(k.Compress(env))
}

// purpose is what an index file's signature is for (see artifact.SigningKey.SignBytes).
const purpose = "repository index v1"

// envelope is an index file: its listing and a signature over it. Signed, a listing cannot
// be forged by whoever can write to an unencrypted repository (its chunk-ID key is in the
// clear in its config, so blob IDs of guessable content can be computed): a forged entry
// would make backups of that content deduplicate against junk.
type envelope struct {
	Version   int                 `json:"version"`
	Index     json.RawMessage     `json:"index"`
	Signature *artifact.Signature `json:"signature"`
}

// Decode reads an index file's stored bytes: a trusted key must have signed it.
func Decode(k *blob.Keys, trust *artifact.Keyring, stored []byte) (File, error) {
	plain, err := k.Unseal(stored)
	if err != nil {
		return File{}, err
	}
	if plain, err = k.Decompress(plain, MaxFile); err != nil {
		return File{}, err
	}
	var env envelope
	if err := json.Unmarshal(plain, &env); err != nil || env.Version != 1 {
		return File{}, errors.New("not a version 1 index file")
	}
	if trust == nil {
		return File{}, errors.New("no trusted key to verify the index file with")
	}
	if err := trust.VerifyBytes(purpose, env.Index, env.Signature); err != nil {
		return File{}, fmt.Errorf("refused: %w", err)
	}
	var j fileJSON
	if err := json.Unmarshal(env.Index, &j); err != nil {
		return File{}, fmt.Errorf("decoding: %w", err)
	}
	if j.Version != 1 {
		return File{}, fmt.Errorf("index version %d is not 1 (written by a newer version?)", j.Version)
	}
	var f File
	for _, pj := range j.Packs {
		p := Pack{ID: pj.ID, Size: pj.Size}
		for _, b := range pj.Blobs {
			t, err := parseType(b.Type)
			if err != nil {
				return File{}, fmt.Errorf("pack %s blob %s: %w", pj.ID, b.ID, err)
			}
			p.Blobs = append(p.Blobs, pack.Entry{ID: b.ID, Type: t, Comp: b.Comp, Offset: b.Offset, Length: b.Length, Raw: b.Raw})
		}
		f.Packs = append(f.Packs, p)
	}
	return f, nil
}

func parseType(s string) (blob.Type, error) {
	switch s {
	case "data":
		return blob.Data, nil
	case "tree":
		return blob.Tree, nil
	}
	return 0, fmt.Errorf("blob type %q is not data or tree", s)
}

// Add records every pack of f. A pack listed before with other blobs is refused.
func (x *Index) Add(f File) error {
	for _, p := range f.Packs { // all or nothing
		if err := x.conflict(p.ID, p.Size, p.Blobs); err != nil {
			return err
		}
	}
	for _, p := range f.Packs {
		if err := x.addPack(p.ID, p.Size, p.Blobs); err != nil {
			return err
		}
	}
	return nil
}

// Split groups packs into index files of about perFile blobs.
func Split(packs []Pack, perFile int) []File {
	var files []File
	var f File
	n := 0
	for _, p := range packs {
		f.Packs = append(f.Packs, p)
		if n += len(p.Blobs); n >= perFile {
			files, f, n = append(files, f), File{}, 0
		}
	}
	if len(f.Packs) > 0 {
		files = append(files, f)
	}
	return files
}
