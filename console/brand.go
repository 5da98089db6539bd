package console

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"regexp"
)

// DefaultProductName is the console's title when the platform names none.
const DefaultProductName = "surveyhooks"

// DefaultAccent is the accent colour when the platform gives none.
const DefaultAccent = "#2457c5"

// MaxLogoBytes bounds the logo, which is held in memory and sent with every page's header.
const MaxLogoBytes = 256 << 10

// Brand is how the platform dresses the console. The logo is served by the console itself
// (GET /console/brand/logo), never fetched from elsewhere, so that the page loads nothing
// from a third-party origin and the CSP can stay 'self'.
type Brand struct {
	// Name replaces "surveyhooks" in titles and the header.
	Name string
	// Logo is a PNG, JPEG, WebP or SVG image (SURVEYHOOKS_CONSOLE_LOGO_FILE's bytes); nil
	// shows the name alone.
	Logo []byte
	// Accent is a #rrggbb colour for links, buttons and focus rings; "" is DefaultAccent.
	Accent string
}

var accentPattern = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// check refuses a brand the console cannot show safely.
func (b Brand) check() error {
	if b.Accent != "" && !accentPattern.MatchString(b.Accent) {
		return fmt.Errorf("console accent colour %q: must be #rrggbb", b.Accent)
	}
	if len(b.Logo) > MaxLogoBytes {
		return fmt.Errorf("console logo: %d bytes, more than %d", len(b.Logo), MaxLogoBytes)
	}
	if b.Logo != nil && logoType(b.Logo) == "" {
		return errors.New("console logo: not a PNG, JPEG, WebP or SVG image")
	}
	return nil
}

// logoType names the logo's image type from its bytes, or "" for none the console serves.
// An SVG served as an image runs no script, and the CSP forbids it anyway.
func logoType(b []byte) string {
	switch ct := http.DetectContentType(b); ct {
	case "image/png", "image/jpeg", "image/webp":
		return ct
	}
	head := bytes.TrimSpace(b[:min(len(b), 512)])
	if bytes.HasPrefix(head, []byte("<svg")) || (bytes.HasPrefix(head, []byte("<?xml")) && bytes.Contains(b, []byte("<svg"))) {
		return "image/svg+xml"
	}
	return ""
}

func (s *Server) handleLogo(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Brand.Logo == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", logoType(s.cfg.Brand.Logo))
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(s.cfg.Brand.Logo)
}

// handleBrandCSS serves the accent colour as a stylesheet: the CSP allows no inline style.
func (s *Server) handleBrandCSS(w http.ResponseWriter, r *http.Request) {
	accent := s.cfg.Brand.Accent
	if accent == "" {
		accent = DefaultAccent
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write([]byte(":root{--accent:" + accent + "}\n"))
}
