package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
)

// contract checks answers against the OpenAPI document: every response a
// test gets through it must be declared for its route and status, and its
// body must validate against the declared schema. It also records which
// routes and statuses the tests reached.
type contract struct {
	t       testing.TB
	srv     *Server
	doc     map[string]any
	c       *jsonschema.Compiler
	mu      sync.Mutex
	schemas map[string]*jsonschema.Schema
	seen    map[string]bool // "METHOD pattern status"
}

// newContract loads srv's document.
func newContract(t testing.TB, srv *Server) *contract {
	t.Helper()
	doc, err := srv.openAPI()
	require.NoError(t, err)
	// Round trip through JSON: the compiler wants JSON values.
	b, err := json.Marshal(doc)
	require.NoError(t, err)
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	require.NoError(t, c.AddResource("payesh:openapi.json", v))
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return &contract{t: t, srv: srv, doc: m, c: c, schemas: map[string]*jsonschema.Schema{}, seen: map[string]bool{}}
}

// schema compiles (once) the schema at a JSON pointer into the document.
func (k *contract) schema(pointer string) *jsonschema.Schema {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s, ok := k.schemas[pointer]; ok {
		return s
	}
	s, err := k.c.Compile("payesh:openapi.json#" + pointer)
	require.NoError(k.t, err, pointer)
	k.schemas[pointer] = s
	return s
}

// ServeHTTP serves through srv and checks the answer.
func (k *contract) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	k.srv.ServeHTTP(rec, r)
	k.check(r, rec)
	for key, vals := range rec.Header() {
		w.Header()[key] = vals
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// check validates one answer; only /v1 routes are in the document.
func (k *contract) check(r *http.Request, rec *httptest.ResponseRecorder) {
	t := k.t
	_, pattern := k.srv.mux.Handler(r)
	method, path, ok := strings.Cut(pattern, " ")
	if !ok || !strings.HasPrefix(path, "/v1/") {
		return
	}
	k.mu.Lock()
	k.seen[fmt.Sprintf("%s %s %d", method, path, rec.Code)] = true
	k.mu.Unlock()
	where := fmt.Sprintf("%s %s → %d", method, path, rec.Code)
	paths := k.doc["paths"].(map[string]any)
	op, ok := paths[path].(map[string]any)[strings.ToLower(method)].(map[string]any)
	require.True(t, ok, "%s: not in the document", where)
	resp, ok := op["responses"].(map[string]any)[strconv.Itoa(rec.Code)].(map[string]any)
	require.True(t, ok, "%s: status not declared for the route; body %s", where, rec.Body.String())
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		require.Zero(t, rec.Body.Len(), "%s: declared without a body", where)
		return
	}
	ct, _, err := mime.ParseMediaType(rec.Header().Get("Content-Type"))
	require.NoError(t, err, "%s: Content-Type", where)
	_, ok = content[ct]
	require.True(t, ok, "%s: Content-Type %s not declared", where, ct)
	if ct == "text/csv" {
		return
	}
	body, err := jsonschema.UnmarshalJSON(bytes.NewReader(rec.Body.Bytes()))
	require.NoError(t, err, "%s: body is not JSON: %s", where, rec.Body.String())
	pointer := fmt.Sprintf("/paths/%s/%s/responses/%d/content/%s/schema",
		escapePointer(path), strings.ToLower(method), rec.Code, escapePointer(ct))
	if err := k.schema(pointer).Validate(body); err != nil {
		t.Errorf("%s: body does not match the document: %v\nbody: %s", where, err, rec.Body.String())
	}
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// Every route is documented, with schemas that exist and compile.
func TestOpenAPIDocumentDescribesEveryRoute(t *testing.T) {
	srv := &Server{cfg: Config{}, mux: http.NewServeMux()}
	doc, err := srv.openAPI()
	require.NoError(t, err)
	require.Equal(t, "3.1.0", doc["openapi"])
	k := newContract(t, srv)
	paths := k.doc["paths"].(map[string]any)
	for _, rt := range srv.routes() {
		op, ok := paths[rt.Pattern].(map[string]any)[strings.ToLower(rt.Method)].(map[string]any)
		require.True(t, ok, "%s %s", rt.Method, rt.Pattern)
		for code := range op["responses"].(map[string]any) {
			for ct := range op["responses"].(map[string]any)[code].(map[string]any)["content"].(map[string]any) {
				if ct == "text/csv" {
					continue
				}
				k.schema(fmt.Sprintf("/paths/%s/%s/responses/%s/content/%s/schema",
					escapePointer(rt.Pattern), strings.ToLower(rt.Method), code, escapePointer(ct)))
			}
		}
		if rt.Doc.Request != "" {
			k.schema("/components/schemas/" + rt.Doc.Request)
		}
	}
	for name := range k.doc["components"].(map[string]any)["schemas"].(map[string]any) {
		k.schema("/components/schemas/" + name)
	}
}
