package role

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/pegasusgo/pegasus/config"
)

// flagJSON is one flag as upstream's /configs and /config show it, fields in
// upstream's order. Every value is a string, as upstream's table printer
// writes them.
type flagJSON struct {
	Name    string `json:"name"`
	Section string `json:"section"`
	Type    string `json:"type"`
	// Tags is "flag_tag::FT_MUTABLE" upstream for a flag /updateConfig may
	// change. Nothing here changes at run time (config.ini is read once), so
	// it is always empty.
	Tags        string `json:"tags"`
	Description string `json:"description"`
	Value       string `json:"value"`
}

func toFlagJSON(f config.Flag) flagJSON {
	return flagJSON{Name: f.Name, Section: f.Section, Type: string(f.Type), Description: f.Description, Value: f.Value}
}

// withConfigs adds upstream's configuration endpoints to h, so that every role
// answers them alike from the configuration it runs with: /configs (every
// flag), /config?name= (one) and /updateConfig (which changes nothing). They
// are what admin-cli's server-config command calls.
func withConfigs(cfg *config.Config, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/configs":
			serveConfigs(cfg, w, r)
		case "/config":
			serveConfig(cfg, w, r)
		case "/updateConfig":
			serveUpdateConfig(cfg, w, r)
		default:
			if h == nil {
				http.Error(w, fmt.Sprintf("service not found for %q", r.URL.Path), http.StatusNotFound)
				return
			}
			h.ServeHTTP(w, r)
		}
	})
}

// query parses the query string as upstream does: a key given twice is an
// error rather than a list.
func query(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err == nil {
		for k, vs := range q {
			if len(vs) > 1 {
				err = fmt.Errorf("repeated query key %q", k)
				break
			}
		}
	}
	if err != nil {
		WriteText(w, http.StatusBadRequest, "failed to parse request: "+err.Error())
		return nil, false
	}
	return q, true
}

func serveConfigs(cfg *config.Config, w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r)
	if !ok {
		return
	}
	if len(q) > 0 {
		WriteText(w, http.StatusBadRequest, "")
		return
	}
	out := make(map[string]flagJSON, len(cfg.Flags))
	for _, f := range cfg.Flags {
		out[f.Name] = toFlagJSON(f)
	}
	WriteJSON(w, out)
}

func serveConfig(cfg *config.Config, w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r)
	if !ok {
		return
	}
	for k := range q {
		if k != "name" {
			WriteText(w, http.StatusBadRequest, "")
			return
		}
	}
	name := q.Get("name")
	if name == "" {
		WriteText(w, http.StatusBadRequest, "name shouldn't be empty")
		return
	}
	f, found := cfg.Flag(name)
	if !found {
		// 200, as upstream: admin-cli prints a body that is not JSON as is.
		WriteText(w, http.StatusOK, fmt.Sprintf("ERR_OBJECT_NOT_FOUND: '%s' is not found", name))
		return
	}
	WriteJSON(w, toFlagJSON(f))
}

// serveUpdateConfig answers as upstream does for a flag without the mutable
// tag, which here is every flag: the configuration is read once at start.
func serveUpdateConfig(cfg *config.Config, w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r)
	if !ok {
		return
	}
	var status string
	switch {
	case len(q) != 1:
		status = "ERR_INVALID_PARAMETERS: there should be exactly one config to be updated once"
	default:
		var name string
		for k := range q {
			name = k
		}
		if _, found := cfg.Flag(name); !found {
			status = fmt.Sprintf("ERR_OBJECT_NOT_FOUND: %s is not found", name)
		} else {
			status = fmt.Sprintf("ERR_INVALID_PARAMETERS: %s is not mutable", name)
		}
	}
	WriteJSON(w, map[string]string{"update_status": status})
}

// WriteJSON answers v as JSON (500 if it does not encode).
func WriteJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// WriteText answers a plain-text body with the status code, as upstream's HTTP
// errors are.
func WriteText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}
