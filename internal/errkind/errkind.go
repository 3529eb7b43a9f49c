// Package errkind marks an error with a kind — a sentinel error that errors.Is finds — without
// adding the kind's words to the error's message.
package errkind

// Silent returns kind with an empty message, to be wrapped beside the error it marks:
//
//	fmt.Errorf("opening %s: %w%w", key, err, errkind.Silent(ErrTarget))
//
// says what err says, and errors.Is finds ErrTarget in it.
func Silent(kind error) error { return silent{kind} }

type silent struct{ error }

func (silent) Error() string   { return "" }
func (s silent) Unwrap() error { return s.error }
