package replica

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/pegasusgo/pegasus/daemon/role"
)

// httpDataVersion serves /replica/data_version?app_id=<id>, which admin-cli's
// data-version command asks of every replica server: the data version of each
// local replica of the table, whatever its status, as
// {"<partition index>": {"data_version": "<n>"}}. Errors are upstream's: 400 for
// a missing or bad app_id, 404 when no replica of the table is here.
func (s *Stub) httpDataVersion(w http.ResponseWriter, r *http.Request) {
	arg, ok := r.URL.Query()["app_id"]
	if !ok {
		role.WriteText(w, http.StatusBadRequest, "app_id should not be empty")
		return
	}
	v := arg[0]
	appID, err := strconv.ParseInt(v, 10, 32)
	if err != nil || appID < 0 {
		role.WriteText(w, http.StatusBadRequest, fmt.Sprintf("invalid app_id=%s", v))
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
		role.WriteText(w, http.StatusNotFound, fmt.Sprintf("app_id=%s not found", v))
		return
	}
	role.WriteJSON(w, out)
}
