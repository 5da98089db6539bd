// Package netguard keeps webhook deliveries away from addresses they must not
// reach: loopback, private networks, link-local and cloud metadata services, and
// the other special-purpose ranges listed in blocked.go.
//
// It checks twice. CheckURL validates a URL when a webhook is created or updated,
// refusing IP literals in blocked ranges; hostnames are not resolved there,
// because the answer may differ by the time of delivery. The HTTP client built
// by Client checks again when it connects, after DNS resolution, so a name that
// resolves to an internal address (DNS rebinding) is refused before any packet
// is sent.
package netguard
