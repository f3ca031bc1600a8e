package replica

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// httpDataVersion serves /replica/data_version?app_id=<id>, which admin-cli's
// data-version command asks of every replica server: the data version of each
// local replica of the table, whatever its status, as
// {"<partition index>": {"data_version": "<n>"}}. Errors are upstream's: 400 for
// a missing or bad app_id, 404 when no replica of the table is here.
func (s *Stub) httpDataVersion(w http.ResponseWriter, r *http.Request) {
	arg, ok := r.URL.Query()["app_id"]
	if !ok {
		httpText(w, http.StatusBadRequest, "app_id should not be empty")
		return
	}
	v := arg[0]
	appID, err := strconv.ParseInt(v, 10, 32)
	if err != nil || appID < 0 {
		httpText(w, http.StatusBadRequest, fmt.Sprintf("invalid app_id=%s", v))
		return
	}
	type row struct {
		DataVersion string `json:"data_version"`
	}
	out := map[string]row{}
	for _, p := range s.all() {
		if int64(p.gpid.Appid) == appID {
			out[strconv.Itoa(int(p.gpid.PartitionIndex))] = row{strconv.FormatUint(uint64(p.st().DataVersion()), 10)}
		}
	}
	if len(out) == 0 {
		httpText(w, http.StatusNotFound, fmt.Sprintf("app_id=%s not found", v))
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func httpText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}
