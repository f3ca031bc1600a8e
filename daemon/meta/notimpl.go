package meta

import (
	"reflect"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/rpc"
)

// hintFields are the names the generated response structs give their
// human-readable explanation (hint_message, hint_msg, hint, err_hint).
var hintFields = []string{"HintMessage", "HintMsg", "Hint", "ErrHint"}

// notImplemented fills a response of an RPC this release does not serve: err
// ERR_NOT_IMPLEMENTED and, where the struct has one, a hint that tools print
// (admin-cli shows it beside the error).
func notImplemented(res rpc.Value, code string) {
	setErr(res, base.ErrNotImplemented)
	hint := code + " is not supported by this release"
	v := reflect.ValueOf(res).Elem()
	for _, name := range hintFields {
		f := v.FieldByName(name)
		switch {
		case !f.IsValid() || !f.CanSet():
		case f.Kind() == reflect.String:
			f.SetString(hint)
			return
		case f.Type() == reflect.TypeOf((*string)(nil)):
			f.Set(reflect.ValueOf(&hint))
			return
		}
	}
}
