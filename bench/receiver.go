package bench

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/surveyhooks/surveyhooks/signature"
)

// verifyEvery: the receiver checks the signature of one request in this many (and of the
// first), which proves the requests are really signed at a cost the raw loop barely feels.
const verifyEvery = 50

// receiver is the webhook endpoint every scenario delivers to. Each pass of a scenario has
// its own URL prefix (/p<n>/<webhook index>), so that a late request of an earlier pass is
// never counted in a later one.
type receiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	pass *pass
	// stray counts requests for a pass that is over.
	stray atomic.Int64
}

func newReceiver() *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

func (r *receiver) close() { r.srv.Close() }

// pass tracks one pass of one scenario: when each event was published and which of its
// deliveries arrived, when.
type pass struct {
	number   int
	failRate float64
	latency  time.Duration
	secrets  []string // by webhook index

	mu sync.Mutex
	// sent is each published event's publish time (its intended time at a fixed rate).
	sent map[string]time.Time
	// delivered holds "<event id>/<webhook index>" of every 2xx answer given.
	delivered map[string]struct{}
	// latencies are receive time - publish time of each first 2xx answer, in ms.
	latencies []float64

	requests, refused, duplicates, badSignatures, unknown int
	// expected counts the deliveries of every event published so far.
	expected int
	// published is false while publishers run.
	published bool
}

var passCounter atomic.Int64

// begin starts a new pass and makes it the one the receiver counts.
func (r *receiver) begin(webhooks int, failRate float64, latency time.Duration) *pass {
	p := &pass{
		number:    int(passCounter.Add(1)),
		failRate:  failRate,
		latency:   latency,
		secrets:   make([]string, webhooks),
		sent:      map[string]time.Time{},
		delivered: map[string]struct{}{},
	}
	r.mu.Lock()
	r.pass = p
	r.mu.Unlock()
	return p
}

// url is the address of webhook i of pass p.
func (r *receiver) url(p *pass, i int) string {
	return fmt.Sprintf("%s/p%d/%d", r.srv.URL, p.number, i)
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	received := time.Now()
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	p := r.pass
	r.mu.Unlock()
	number, hook, ok := parsePath(req.URL.Path)
	if p == nil || !ok || number != p.number || hook >= len(p.secrets) {
		r.stray.Add(1)
		w.WriteHeader(http.StatusOK)
		return
	}
	refuse := p.failRate > 0 && rand.Float64() < p.failRate
	p.record(req.Header, body, hook, received, refuse)
	if p.latency > 0 {
		time.Sleep(p.latency) // the receiver's own work, after the arrival is timed
	}
	if refuse {
		http.Error(w, "bench: refused on purpose", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (p *pass) record(h http.Header, body []byte, hook int, received time.Time, refuse bool) {
	eventID := eventIDOf(body)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	if p.requests%verifyEvery == 1 {
		if err := signature.Verify(p.secrets[hook], h.Get(signature.HeaderSignature), body); err != nil {
			p.badSignatures++
		}
	}
	sent, ok := p.sent[eventID]
	if !ok {
		p.unknown++
		return
	}
	if refuse {
		p.refused++
		return
	}
	key := eventID + "/" + strconv.Itoa(hook)
	if _, dup := p.delivered[key]; dup {
		p.duplicates++
		return
	}
	p.delivered[key] = struct{}{}
	p.latencies = append(p.latencies, float64(received.Sub(sent).Microseconds())/1000)
}

// publishing records that eventID is about to be published at t with deliveries deliveries.
func (p *pass) publishing(eventID string, t time.Time) {
	p.mu.Lock()
	p.sent[eventID] = t
	p.mu.Unlock()
}

// accepted adds an accepted event's deliveries to those expected.
func (p *pass) accepted(deliveries int) {
	p.mu.Lock()
	p.expected += deliveries
	p.mu.Unlock()
}

func (p *pass) donePublishing() {
	p.mu.Lock()
	p.published = true
	p.mu.Unlock()
}

// counts returns the deliveries the receiver answered 2xx to, those expected, and whether
// publishing is over.
func (p *pass) counts() (delivered, expected int, published bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.delivered), p.expected, p.published
}

// parsePath reads /p<pass>/<webhook index>.
func parsePath(path string) (number, hook int, ok bool) {
	rest, found := strings.CutPrefix(path, "/p")
	if !found {
		return 0, 0, false
	}
	passText, hookText, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	number, err1 := strconv.Atoi(passText)
	hook, err2 := strconv.Atoi(hookText)
	return number, hook, err1 == nil && err2 == nil && hook >= 0
}

var eventIDKey = []byte(`"event_id":"`)

// eventIDOf finds the event id in a body without decoding it all: the envelope puts it first.
func eventIDOf(body []byte) string {
	i := bytes.Index(body, eventIDKey)
	if i < 0 {
		return ""
	}
	rest := body[i+len(eventIDKey):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}
