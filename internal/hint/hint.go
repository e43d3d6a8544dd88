// Package hint gives an error a line of advice for the person at the
// terminal, kept apart from the error's message.
//
// It promises: the advice never becomes part of Error(), so messages stay
// short and stable for errors.Is and logs; an error with advice implements
// Hinter, and the command line finds the first Hinter in an error's chain
// with errors.As and prints its advice as a "hint:" line. Sentinels made
// with New compare by identity, as errors.New's do.
package hint

import "errors"

// Hinter is an error that carries advice for the user.
type Hinter interface {
	error
	Hint() string
}

// sentinel is an error value with advice, for a package's sentinels.
type sentinel struct{ msg, hint string }

func (e *sentinel) Error() string { return e.msg }
func (e *sentinel) Hint() string  { return e.hint }

// New returns a sentinel error whose message is msg and whose advice is
// hint. Like errors.New, each call returns a distinct value.
func New(msg, hint string) error { return &sentinel{msg: msg, hint: hint} }

// Of returns the advice of the first error in err's chain that has any,
// or "".
func Of(err error) string {
	var h Hinter
	for err != nil {
		if !errors.As(err, &h) {
			return ""
		}
		if s := h.Hint(); s != "" {
			return s
		}
		// An empty hint: look further down the chain.
		err = errors.Unwrap(h)
		if err == nil {
			return ""
		}
	}
	return ""
}
