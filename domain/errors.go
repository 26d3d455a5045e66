package domain

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors that callers branch on with errors.Is. The typed errors below
// wrap them so that a caller needing only the category can ignore the detail.
var (
	// ErrInvalid: the command or input is malformed or out of range.
	ErrInvalid = errors.New("invalid input")
	// ErrIllegalTransition: the command is well formed but the aggregate's
	// current state forbids it (the real process does not allow it).
	ErrIllegalTransition = errors.New("illegal transition")
	// ErrNotFound: the aggregate or a referenced entity does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the command would create something that already exists
	// or would break an invariant such as a non-negative balance.
	ErrConflict = errors.New("conflict")
)

// FieldError is one problem with one input field. Message is English;
// MessageFa is the Persian text for clients that ask for it.
type FieldError struct {
	Field     string `json:"field"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	MessageFa string `json:"message_fa,omitempty"`
}

// ValidationError lists every field problem found in one command, so a
// client can fix them all at once. It matches ErrInvalid.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Validator collects field errors; Err returns nil when there were none.
type Validator struct{ fields []FieldError }

// Add records a problem with a field.
func (v *Validator) Add(field, code, en, fa string) {
	v.fields = append(v.fields, FieldError{Field: field, Code: code, Message: en, MessageFa: fa})
}

// Check records the problem when ok is false.
func (v *Validator) Check(ok bool, field, code, en, fa string) {
	if !ok {
		v.Add(field, code, en, fa)
	}
}

// Err returns a *ValidationError holding every problem recorded, or nil.
func (v *Validator) Err() error {
	if len(v.fields) == 0 {
		return nil
	}
	return &ValidationError{Fields: append([]FieldError(nil), v.fields...)}
}

// TransitionError says which command the aggregate refused in which state.
// It matches ErrIllegalTransition.
type TransitionError struct {
	Aggregate string // "facility", "quota", ...
	State     string // the state the aggregate is in
	Command   string // the command that was refused
	Reason    string // why, in English
	ReasonFa  string // why, in Persian
}

func (e *TransitionError) Error() string {
	msg := fmt.Sprintf("%s in state %q cannot %s", e.Aggregate, e.State, e.Command)
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

// Is makes errors.Is(err, ErrIllegalTransition) true.
func (e *TransitionError) Is(target error) bool { return target == ErrIllegalTransition }

// NotFoundError names what was looked for. It matches ErrNotFound.
type NotFoundError struct {
	Kind string // "facility", "agency", "event", ...
	ID   string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("%s %q not found", e.Kind, e.ID) }

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// ConflictError explains an invariant the command would break. It matches
// ErrConflict.
type ConflictError struct {
	Reason   string
	ReasonFa string
}

func (e *ConflictError) Error() string { return "conflict: " + e.Reason }

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// QuotaExceededError is returned when a transfer or charge asks for more than
// an account's free balance. It matches ErrConflict.
type QuotaExceededError struct {
	Account   string
	Free      int64 // rials free at decision time
	Requested int64 // rials asked for
}

func (e *QuotaExceededError) Error() string {
	return fmt.Sprintf("quota account %s has %d rials free, %d requested", e.Account, e.Free, e.Requested)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *QuotaExceededError) Is(target error) bool { return target == ErrConflict }
