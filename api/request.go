package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// decodeJSON reads a request body of at most maxBody bytes into v: JSON
// only (Content-Type application/json, or none), one value, no unknown
// fields, every type as declared. Each failure is a problem the client can
// act on, naming the field where there is one; nothing is executed.
func decodeJSON(w http.ResponseWriter, r *http.Request, maxBody int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return fail(probMediaType, fmt.Sprintf("Content-Type %q is not JSON", ct), fmt.Sprintf("نوع محتوای %q از نوع JSON نیست", ct))
		}
	}
	body := http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err, maxBody)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		if err != nil {
			return jsonProblem(err, maxBody)
		}
		return fail(probMalformed, "the body holds more than one JSON value", "بدنه درخواست بیش از یک مقدار JSON دارد")
	}
	return nil
}

// jsonProblem classifies a decoding error.
func jsonProblem(err error, maxBody int64) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
		tooBig *http.MaxBytesError
	)
	switch {
	case errors.As(err, &tooBig):
		return fail(probTooLarge, fmt.Sprintf("the body is larger than %d bytes", maxBody), fmt.Sprintf("بدنه درخواست بزرگ‌تر از %d بایت است", maxBody))
	case errors.Is(err, io.EOF):
		return fail(probMalformed, "the body is empty; a JSON object is expected", "بدنه درخواست خالی است؛ یک شیء JSON لازم است")
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return fail(probMalformed, "the body is not valid JSON: "+err.Error(), "بدنه درخواست JSON معتبر نیست: "+err.Error())
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(body)"
		}
		pe := fail(probValidation, "a field has the wrong type", "نوع یک فیلد نادرست است")
		pe.fields = []FieldProblem{{Field: field, Code: "type",
			Message: fmt.Sprintf("must be %s, not %s", jsonTypeName(typ.Type.Kind().String()), typ.Value)}}
		return pe
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		pe := fail(probValidation, "the body has an unknown field", "بدنه درخواست فیلد ناشناخته دارد")
		pe.fields = []FieldProblem{{Field: name, Code: "unknown_field", Message: "is not a field of this request"}}
		return pe
	}
	return fail(probMalformed, "the body cannot be read: "+err.Error(), "بدنه درخواست قابل خواندن نیست: "+err.Error())
}

// jsonTypeName names a Go kind the way a JSON client thinks of it.
func jsonTypeName(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "an integer"
	case strings.HasPrefix(kind, "float"):
		return "a number"
	case kind == "string":
		return "a string"
	case kind == "bool":
		return "true or false"
	case kind == "slice", kind == "array":
		return "an array"
	case kind == "struct", kind == "map":
		return "an object"
	}
	return kind
}
