package store

// The dispatch marks' statements, for the test of their plans.
const (
	MarkEventDispatchedQuery  = markEventDispatchedQuery
	MarkEventsDispatchedQuery = markEventsDispatchedQuery
)
