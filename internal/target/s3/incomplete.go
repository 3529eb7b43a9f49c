package s3

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/target"
)

// RemoveIncomplete aborts the multipart uploads of key that were never completed.
func (s *Target) RemoveIncomplete(ctx context.Context, key string) error {
	if err := target.ValidateKey(key); err != nil {
		return err
	}
	if err := s.client.RemoveIncompleteUpload(ctx, s.cfg.Bucket, s.object(key)); err != nil {
		return fmt.Errorf("aborting unfinished uploads of %s: %w", key, s.explain(err))
	}
	return nil
}

// RemoveStale aborts the multipart uploads under prefix that were started before the
// cut-off and never completed.
func (s *Target) RemoveStale(ctx context.Context, prefix string, before time.Time) ([]string, error) {
	var removed []string
	for u := range s.client.ListIncompleteUploads(ctx, s.cfg.Bucket, s.object(prefix), true) {
		if u.Err != nil {
			return removed, fmt.Errorf("listing unfinished uploads in %s: %w", s, s.explain(u.Err))
		}
		if !u.Initiated.Before(before) {
			continue
		}
		if err := s.client.RemoveIncompleteUpload(ctx, s.cfg.Bucket, u.Key); err != nil {
			return removed, fmt.Errorf("aborting the unfinished upload of %s: %w", u.Key, s.explain(err))
		}
		removed = append(removed, strings.TrimPrefix(u.Key, s.cfg.Prefix+"/"))
	}
	return removed, nil
}
