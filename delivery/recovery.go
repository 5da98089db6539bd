package delivery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/surveyhooks/surveyhooks/store"
)

// The recovery workflow's contract: its name, its progress query, and its pace.
const (
	// RecoveryWorkflow re-attempts every delivery of a webhook that a store.RecoveryFilter
	// picks, batch by batch, at a bounded rate.
	RecoveryWorkflow = "Recovery"
	// RecoveryProgressQuery answers the workflow's RecoveryProgress.
	RecoveryProgressQuery = "progress"
	// DefaultRecoveryRate bounds the retries a recovery asks for per second, so that a
	// receiver coming back from an outage is not flooded by its backlog.
	DefaultRecoveryRate = 20.0
	// DefaultRecoveryBatch is how many deliveries one activity retries.
	DefaultRecoveryBatch = 100
	// recoveryIDPrefix starts every recovery's workflow id, followed by its webhook's id.
	recoveryIDPrefix = "recovery-"
)

// RecoverableStatuses are the statuses a recovery may pick: deliveries whose schedule is
// over without success. Pending and retrying ones are still on their schedule.
var RecoverableStatuses = []string{StatusFailed, StatusSkipped}

// RecoveryInput is the recovery workflow's input: never a secret.
type RecoveryInput struct {
	Filter store.RecoveryFilter
	// Rate bounds the retries asked for per second; Batch is how many one activity asks for.
	Rate  float64
	Batch int
	// After and Progress carry a recovery on across continue-as-new: the last delivery
	// retried, and the counts so far.
	After    uuid.UUID
	Progress RecoveryProgress
}

// RecoveryProgress is how far a recovery got.
type RecoveryProgress struct {
	// Matched is how many deliveries the filter picked when the recovery started.
	Matched int
	// Retried counts the deliveries whose retry was asked for; Skipped the ones that were
	// delivered meanwhile (nothing is sent again).
	Retried int
	Skipped int
	// Finished is set when every picked delivery was handled, or the recovery stopped;
	// Error says why it stopped early.
	Finished bool
	Error    string
	// Filter is what the recovery picks, its window's end set; StartedAt when it started;
	// Last the last delivery handled. They let the service count the outcomes.
	Filter    store.RecoveryFilter
	StartedAt time.Time
	Last      uuid.UUID
}

// RecoverBatchInput asks for the retry of up to Limit deliveries of Filter after After.
type RecoverBatchInput struct {
	Filter store.RecoveryFilter
	After  uuid.UUID
	Limit  int
}

// RecoverBatchResult is what one batch did: Last is the last delivery handled; More says
// whether the batch was full (another may follow).
type RecoverBatchResult struct {
	Last    uuid.UUID
	Retried int
	Skipped int
	More    bool
}

// Recoverer holds the recovery workflow's activities. Register it with a worker.
type Recoverer struct {
	svc *Service
}

// NewRecoverer returns the recovery activities, which retry through s.
func NewRecoverer(s *Service) *Recoverer {
	return &Recoverer{svc: s}
}

// CountRecoverable counts the deliveries f picks.
func (r *Recoverer) CountRecoverable(ctx context.Context, f store.RecoveryFilter) (int, error) {
	return r.svc.store.CountRecoverable(ctx, f)
}

// RecoverBatch asks for the retry of the next batch of deliveries, as a person's retry
// would (Service.Retry). It heartbeats the last delivery handled, so that a retried
// activity goes on after it and asks for no retry twice. A webhook turned off meanwhile
// stops the recovery.
func (r *Recoverer) RecoverBatch(ctx context.Context, in RecoverBatchInput) (RecoverBatchResult, error) {
	res := RecoverBatchResult{Last: in.After}
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &res) // a bad value starts the batch over
	}
	ids, err := r.svc.store.ListRecoverable(ctx, in.Filter, res.Last, in.Limit-res.Retried-res.Skipped)
	if err != nil {
		return res, err
	}
	for _, id := range ids {
		err := r.retry(ctx, in.Filter, id)
		switch {
		case err == nil:
			res.Retried++
		case errors.Is(err, ErrDelivered), errors.Is(err, store.ErrNotFound):
			res.Skipped++
		case errors.Is(err, ErrInactive) && in.Filter.WebhookID == uuid.Nil:
			res.Skipped++ // one webhook of the account is off; the others' deliveries go on
		case errors.Is(err, ErrInactive):
			return res, temporal.NewNonRetryableApplicationError("the webhook was turned off; turn it on and recover again", "WebhookInactive", err)
		default:
			return res, err
		}
		res.Last = id
		activity.RecordHeartbeat(ctx, res)
	}
	res.More = res.Retried+res.Skipped == in.Limit
	return res, nil
}

// retry asks for the retry of delivery id, which f picked: of f's webhook, or of any
// webhook of f's account.
func (r *Recoverer) retry(ctx context.Context, f store.RecoveryFilter, id uuid.UUID) error {
	if f.WebhookID != uuid.Nil {
		_, err := r.svc.Retry(ctx, f.WebhookID, id, false)
		return err
	}
	t, err := r.svc.store.GetTarget(ctx, id)
	if err != nil {
		return err
	}
	if t.Webhook.AccountID != f.AccountID {
		return fmt.Errorf("delivery %s of account %s: %w", id, f.AccountID, store.ErrNotFound)
	}
	_, err = r.svc.retry(ctx, t, false)
	return err
}

// RecoveryID is the id of the recovery of webhookID with these parameters (until zero
// meaning "until it starts"): the same request while one runs finds that one.
func RecoveryID(webhookID uuid.UUID, since, until time.Time, statuses []string) string {
	return recoveryPrefix(store.RecoveryFilter{WebhookID: webhookID}) + filterHash(store.RecoveryFilter{Since: since, Until: until, Statuses: statuses})
}

// recoveryPrefix starts the ids of the recoveries of f's webhook, or of its account:
// "recovery-<webhook id>-" or "recovery-account-<account id>-". Webhook ids are UUIDs, so
// the two never meet.
func recoveryPrefix(f store.RecoveryFilter) string {
	if f.WebhookID != uuid.Nil {
		return recoveryIDPrefix + f.WebhookID.String() + "-"
	}
	return recoveryIDPrefix + "account-" + f.AccountID + "-"
}

// filterHash names a filter's window, statuses, survey and event type in 16 hex digits.
func filterHash(f store.RecoveryFilter) string {
	sorted := slices.Sorted(slices.Values(f.Statuses))
	text := fmt.Sprintf("%d|%d|%s", f.Since.UnixNano(), unixNanoOrZero(f.Until), strings.Join(sorted, ","))
	if f.SurveyID != "" || f.EventType != "" {
		text += "|" + f.SurveyID + "|" + f.EventType
	}
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:8])
}

func unixNanoOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// ownsRecovery reports whether id is a recovery of f's webhook or account: its prefix,
// then exactly a filter hash (an account id may hold "-", so that another account's
// recovery cannot pass for this one's).
func ownsRecovery(f store.RecoveryFilter, id string) bool {
	hash, ok := strings.CutPrefix(id, recoveryPrefix(f))
	if !ok || len(hash) != 16 {
		return false
	}
	_, err := hex.DecodeString(hash)
	return err == nil
}

// Recovery is a recovery as the service shows it.
type Recovery struct {
	ID string
	// Status is running, completed, failed, canceled or terminated.
	Status   string
	Progress RecoveryProgress
	// Delivered and Failed count the retried deliveries by how their retry ended so far;
	// the others wait for their attempt.
	Delivered int
	Failed    int
}

// Recover starts the recovery of hook's deliveries made in [since, until) (until zero:
// until now) whose status is one of statuses (RecoverableStatuses when empty), and returns
// its id. The same request while that recovery runs returns its id and starts nothing.
func (s *Service) Recover(ctx context.Context, hook store.Webhook, since, until time.Time, statuses []string) (string, error) {
	if !hook.IsActive {
		return "", ErrInactive
	}
	return s.startRecovery(ctx, store.RecoveryFilter{WebhookID: hook.ID, Since: since, Until: until, Statuses: statuses},
		fmt.Sprintf("recover deliveries of webhook %s", hook.ID), fmt.Sprintf("webhook `%s`", hook.ID))
}

// RetryMatching retries every delivery of an account that f picks (f.AccountID, with
// f.WebhookID nil), as a recovery does, and returns its id; a delivery of a webhook that
// is off is skipped. The same request while it runs returns its id and starts nothing.
func (s *Service) RetryMatching(ctx context.Context, f store.RecoveryFilter) (string, error) {
	if f.WebhookID != uuid.Nil || f.AccountID == "" {
		return "", fmt.Errorf("retry matching: the filter must name an account and no webhook")
	}
	what := fmt.Sprintf("account `%s`", f.AccountID)
	if f.SurveyID != "" {
		what += fmt.Sprintf(", survey `%s`", f.SurveyID)
	}
	if f.EventType != "" {
		what += fmt.Sprintf(", event type `%s`", f.EventType)
	}
	return s.startRecovery(ctx, f, fmt.Sprintf("retry deliveries of account %s", f.AccountID), what)
}

// CountMatching counts the deliveries f picks now: the dry run of a retry or recovery.
func (s *Service) CountMatching(ctx context.Context, f store.RecoveryFilter) (int, error) {
	if len(f.Statuses) == 0 {
		f.Statuses = RecoverableStatuses
	}
	if f.Until.IsZero() {
		f.Until = s.now()
	}
	return s.store.CountRecoverable(ctx, f)
}

// startRecovery starts the recovery workflow of f, named by its filter.
func (s *Service) startRecovery(ctx context.Context, f store.RecoveryFilter, summary, what string) (string, error) {
	if len(f.Statuses) == 0 {
		f.Statuses = RecoverableStatuses
	}
	id := recoveryPrefix(f) + filterHash(f)
	in := RecoveryInput{Filter: f, Rate: s.cfg.RecoveryRate, Batch: s.cfg.RecoveryBatch}
	if in.Rate <= 0 {
		in.Rate = DefaultRecoveryRate
	}
	if in.Batch <= 0 {
		in.Batch = DefaultRecoveryBatch
	}
	startCtx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	_, err := s.client.ExecuteWorkflow(startCtx, client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: s.cfg.TaskQueue,
		// A second identical request while it runs gets the running one.
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		StaticSummary:            summary,
		StaticDetails: fmt.Sprintf("Retries the %s deliveries of %s made from %s to %s, %d at a time, at most %.0f a second. Query `%s` for its progress.",
			strings.Join(f.Statuses, " and "), what, f.Since.UTC().Format(time.RFC3339), untilText(f.Until), in.Batch, in.Rate, RecoveryProgressQuery),
	}, RecoveryWorkflow, in)
	if err != nil {
		s.logger.WarnContext(ctx, "start recovery", "recovery_id", id, "err", err)
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return id, nil
}

func untilText(until time.Time) string {
	if until.IsZero() {
		return "its start"
	}
	return until.UTC().Format(time.RFC3339)
}

// Recovery returns the recovery id of the webhook, or store.ErrNotFound.
func (s *Service) Recovery(ctx context.Context, webhookID uuid.UUID, id string) (Recovery, error) {
	return s.recovery(ctx, store.RecoveryFilter{WebhookID: webhookID}, id)
}

// AccountRecovery returns the retry of the account's deliveries id (RetryMatching), or
// store.ErrNotFound.
func (s *Service) AccountRecovery(ctx context.Context, accountID, id string) (Recovery, error) {
	return s.recovery(ctx, store.RecoveryFilter{AccountID: accountID}, id)
}

// recovery returns the recovery id of the owner f names.
func (s *Service) recovery(ctx context.Context, owner store.RecoveryFilter, id string) (Recovery, error) {
	if !ownsRecovery(owner, id) {
		return Recovery{}, fmt.Errorf("recovery %s: %w", id, store.ErrNotFound)
	}
	desc, err := s.client.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return Recovery{}, recoveryError(id, err)
	}
	rec := Recovery{ID: id, Status: strings.ToLower(strings.TrimPrefix(desc.GetWorkflowExecutionInfo().GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_"))}
	value, err := s.client.QueryWorkflow(ctx, id, "", RecoveryProgressQuery)
	if err != nil {
		return Recovery{}, recoveryError(id, err)
	}
	if err := value.Get(&rec.Progress); err != nil {
		return Recovery{}, fmt.Errorf("recovery %s: progress: %w", id, err)
	}
	if p := rec.Progress; p.Last != uuid.Nil {
		outcomes, err := s.store.RecoveredOutcomes(ctx, p.Filter, p.Last, p.StartedAt)
		if err != nil {
			return Recovery{}, fmt.Errorf("recovery %s: %w", id, err)
		}
		rec.Delivered, rec.Failed = outcomes[StatusDelivered], outcomes[StatusFailed]
	}
	return rec, nil
}

// CancelRecovery stops the recovery id of the webhook: the retries asked for so far go on,
// no more are asked for.
func (s *Service) CancelRecovery(ctx context.Context, webhookID uuid.UUID, id string) error {
	return s.cancelRecovery(ctx, store.RecoveryFilter{WebhookID: webhookID}, id)
}

// CancelAccountRecovery stops the retry of the account's deliveries id.
func (s *Service) CancelAccountRecovery(ctx context.Context, accountID, id string) error {
	return s.cancelRecovery(ctx, store.RecoveryFilter{AccountID: accountID}, id)
}

func (s *Service) cancelRecovery(ctx context.Context, owner store.RecoveryFilter, id string) error {
	if !ownsRecovery(owner, id) {
		return fmt.Errorf("recovery %s: %w", id, store.ErrNotFound)
	}
	desc, err := s.client.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return recoveryError(id, err)
	}
	if desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return ErrRecoveryFinished
	}
	if err := s.client.CancelWorkflow(ctx, id, ""); err != nil {
		return recoveryError(id, err)
	}
	return nil
}

// ErrRecoveryFinished: the recovery ended already; there is nothing to stop.
var ErrRecoveryFinished = errors.New("the recovery has finished")

// recoveryError maps Temporal's answers about a recovery's workflow.
func recoveryError(id string, err error) error {
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return fmt.Errorf("recovery %s: %w", id, store.ErrNotFound)
	}
	return fmt.Errorf("recovery %s: %w: %v", id, ErrUnavailable, err)
}
