package webhook

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. The API maps each one to an HTTP status in one table
// (internal/api/errors.go); nothing else decides a status.
const (
	EInvalid         = "invalid"           // 400: the caller sent something wrong
	ETooLarge        = "too_large"         // 413
	EUnauthorized    = "unauthorized"      // 401: no valid credentials
	EForbidden       = "forbidden"         // 403: valid credentials, wrong organization
	ENotFound        = "not_found"         // 404
	EConflict        = "conflict"          // 409
	EPrecondition    = "precondition"      // 412: If-Match names a version that is no longer current
	EUnprocessable   = "unprocessable"     // 422: well formed, but at odds with what is stored
	ETooManyRequests = "too_many_requests" // 429
	EUnavailable     = "unavailable"       // 503
	EInternal        = "internal"          // 500: a bug or an outage; the message never reaches the client
)

// Error is hookd's one error type. Message is safe to show to the caller
// (it never carries a secret); Field names the request field at fault.
type Error struct {
	Code    string
	Message string
	Field   string
	// RetryAfter is how long the caller should wait before trying again,
	// for ETooManyRequests and EUnavailable (zero: a second).
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Message }

// ErrUnwritable is what a backend returns when the database refuses
// writes: a read-only file or database, a full disk. Nothing is stored;
// the caller should try again later (intake answers 503 with Retry-After,
// which senders retry), and the server is not ready meanwhile.
var ErrUnwritable = &Error{Code: EUnavailable, RetryAfter: 30 * time.Second,
	Message: "the database cannot be written (read-only, or out of disk space); try again later"}

// ErrUnreachable is what a backend returns when its connection to the
// database failed (a restart of the server, a network cut) and nothing
// else was said. The work may or may not have been stored: a commit whose
// answer was lost did land. So intake answers 503 with Retry-After, which
// senders retry with the same Idempotency-Key (an event stored all the
// same is then answered as a replay), rather than a 500 and an error in
// the log for every request while the database is away.
var ErrUnreachable = &Error{Code: EUnavailable, RetryAfter: 5 * time.Second,
	Message: "the database could not be reached; try again later"}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns a validation error that names the field at fault.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EInvalid, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err if it is (or wraps) an *Error, and
// EInternal for anything else: an unexpected error is a server fault.
func ErrorCode(err error) string {
	if err == nil {
		return "" // before errors.As, whose target would be allocated
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the caller-safe message of err; unexpected errors
// get a generic text so driver messages never leak.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "an internal error occurred"
}

// Undecryptable refuses doing something that needs the sealed fields of
// a webhook or source (kind) that cannot be decrypted (Unreadable): a
// conflict with how the server is set up, which the same request no
// longer meets once the operator adds the key back. Only deleting and
// reading such a resource succeed meanwhile. It names no key: which one
// is missing is in the server's log.
func Undecryptable(kind, fields, doing string) *Error {
	return Errorf(EConflict, "the %s's %s cannot be decrypted with the keys this server has (the key they were encrypted with is not in its HOOKD_ENCRYPTION_KEY, or the stored value is damaged): its operator must add that key back before %s; the %s can be deleted meanwhile",
		kind, fields, doing, kind)
}

// TooManyWebhooks is WebhookCreate's refusal when the organization has
// max webhooks already. It is a conflict with the organization's state,
// not a bad request or a rate: the same request succeeds once a webhook
// is deleted, and not before, however long the caller waits.
func TooManyWebhooks(max int) *Error {
	return Errorf(EConflict, "the organization has %d webhooks, the most this server allows; delete one before creating another", max)
}

// TooManySources is SourceCreate's refusal when the organization has max
// sources already: a conflict, as TooManyWebhooks.
func TooManySources(max int) *Error {
	return Errorf(EConflict, "the organization has %d sources, the most this server allows; delete one before creating another", max)
}
